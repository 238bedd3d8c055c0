"""The built-in tools: look up codes, phenotypes, drugs and foods; read a DICOM header; transcribe a recording.

Every result is plain JSON with the citations of the rows it used, so an answer
built on it can cite them; ``"no_match": true`` says the knowledge base has nothing.
"""

from __future__ import annotations

import csv
from functools import lru_cache

from .registry import ToolContext, ToolError, tool

MAX_RESULTS = 10
SAME_FOOD_COSINE = 0.75
"""A food the knowledge base does not name must be this close in meaning to count as the same food: its numbers
are the answer ("cow milk" is "Milk, whole, Cow" at 0.76; "moon rock" is not "Moon fish" at 0.64, nor "chicken
curry" "Curry leaves" at 0.65)."""


def _kb(context: ToolContext):
    if context.knowledge is None:
        raise ToolError("No knowledge base is loaded (knowledge='none').")
    return context.knowledge


def _rows(hits) -> dict:
    return {"results": [h.as_dict() for h in hits], "no_match": not hits}


@tool
def icd10_lookup(context: ToolContext, query: str, limit: int = 5) -> dict:
    """Find ICD-10-CM (April 2026) codes for a diagnosis, symptom or condition described in words.

    Args:
        query: the diagnosis or condition, e.g. "tension headache"
        limit: at most this many codes (1-10)
    """
    return _rows(_kb(context).search(f"ICD-10 code {query}", k=_limit(limit), kinds={"diagnosis"}))


@tool
def phenotype_lookup(context: ToolContext, query: str, limit: int = 5) -> dict:
    """Find Human Phenotype Ontology terms for a sign or symptom, with diseases annotated with the first one.

    Args:
        query: the sign or symptom, e.g. "headaches"
        limit: at most this many terms (1-10)
    """
    kb = _kb(context)
    hits = kb.link(query, kinds={"phenotype"}) or kb.search(query, k=_limit(limit), kinds={"phenotype"})
    out = _rows(hits[:_limit(limit)])
    if hits:
        out["diseases"] = [d.as_dict() for d in kb.related(hits[0], "has_phenotype", reverse=True, limit=5)]
    return out


@tool
def drug_lookup(context: ToolContext, name: str) -> dict:
    """Identify a drug by a generic or brand name: its canonical name and DrugBank / MedlinePlus / MeSH ids.

    Args:
        name: the drug as written, e.g. "Aleve"
    """
    # A name is matched by name (exactly, by an alias, or with one typo): a made-up name only *looks* like
    # real ones, and MiniLM puts "Zorblaxin" at 0.70 from Zinpentraxin alfa.
    return _rows(_kb(context).link(name, kinds={"drug"}, everyday=True)[:3])


@tool
def nutrient_lookup(context: ToolContext, food: str, grams: float = 100.0) -> dict:
    """Nutrients in a portion of a food, from the USDA FoodData Central or Indian (IFCT 2017) tables.

    Args:
        food: the food, e.g. "banana" or "cow milk"
        grams: the portion in grams (0-5000)
    """
    if not 0 <= grams <= 5000:
        raise ToolError("nutrient_lookup: grams must be between 0 and 5000.")
    kb = _kb(context)
    hits = kb.link(food, kinds={"food"}) or kb.search(food, k=1, kinds={"food"}, min_cosine=SAME_FOOD_COSINE)
    if not hits:
        return {"results": [], "no_match": True}
    hit = hits[0]
    per_100g = food_per_100g(hit.source, hit.code)
    amounts = {k: round(v * grams / 100.0, 2) for k, v in per_100g.items()}
    return {"results": [{**hit.as_dict(), "grams": grams, "nutrients": amounts}], "no_match": False}


@tool
def dicom_metadata(context: ToolContext, image: int = 1) -> dict:
    """The de-identified header fields of an attached DICOM image (modality, body part, view, age band, sex).

    Args:
        image: which attached image, counting from 1
    """
    medium = _attached(context.images, image, "dicom_metadata", "image")
    if medium.kind != "dicom":
        return {"image": image, "dicom": False}
    keys = ("modality", "body_part", "view", "laterality", "age_band", "sex", "rows", "cols", "spacing_mm")
    return {"image": image, "dicom": True, **{k: medium.meta.get(k) for k in keys}}


@tool
def transcribe(context: ToolContext, audio: int = 1) -> dict:
    """What is said in an attached recording (Whisper), with its duration.

    Args:
        audio: which attached recording, counting from 1
    """
    clip = _attached(context.audios, audio, "transcribe", "recording")
    from encoders.base import Transcriber

    speech = context.speech
    if not isinstance(speech, Transcriber):
        raise ToolError("transcribe: this stack has no speech-to-text model.")
    return {"audio": audio, "seconds": round(clip.duration_s, 1), "transcript": speech.describe(clip).strip()}


def _attached(media, number: int, tool_name: str, what: str):
    """The ``number``-th attached medium (from 1), or a :class:`ToolError` naming what is attached."""
    if not 1 <= number <= len(media):
        raise ToolError(f"{tool_name}: there is no {what} {number} ({len(media)} attached).")
    return media[number - 1]


def _limit(limit: int) -> int:
    return max(1, min(int(limit), MAX_RESULTS))


@lru_cache(maxsize=1)
def _food_tables() -> dict[tuple[str, str], dict[str, float]]:
    from ..knowledge.sources import FOOD_COLUMNS, food_sources

    out = {}
    for source in food_sources():
        with open(source.files[0], encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                code = row.get("fdc_id") or row.get("code")
                out[(source.name, code)] = {k: float(row[k]) for k, _ in FOOD_COLUMNS if row.get(k) not in (None, "")}
    return out


def food_per_100g(source: str, code: str) -> dict[str, float]:
    """Per-100 g figures of a food row of the knowledge base (``usda`` / ``ifct`` and its code)."""
    try:
        return dict(_food_tables()[(source, str(code))])
    except KeyError:
        raise ToolError(f"No nutrient figures for {source} {code}.") from None
