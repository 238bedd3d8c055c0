"""``python -m recipes.image.make_fairness OUT``: held-out DICOMs with the patient's sex and age varied.

The image recipe's held-out scans carry little demographic variety (most of
pydicom's test files record no sex or age), so this writes each scan as
de-identified DICOM copies (``medany deid``'s allowlist profile) in a full
factorial design: once per sex (F, M) and age band (20-29, 40-49, 60-69,
80-89; PatientAge at the band's middle, ``025Y`` ...). Every group then holds
the same pictures, so a gap between groups can only come from the sex and age
the header states. ``OUT/eval.jsonl`` records are assistant-format (the
pipeline's own prompt: the DICOM line, which names the age band and sex, the
placeholder and the question) with the recipe's fields, so ``medany eval``
scores them with or without ``--fairness``::

    {"id": "fair-00000", "image": "dicom/fair-00000.dcm", "fields": {"modality": "CT", "body_part": "HEAD"},
     "sex": "F", "age_band": "20-29", "source": "J2K_pixelrep_mismatch.dcm", "conversations": [...]}

``--scans all`` takes one file of every source group, seen in training or not.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import warnings
from pathlib import Path

from multimodal.errors import MedAnyError

from ..dataset import write_manifest, write_split
from .assistant_format import caption_sentence
from .make_data import PROMPT
from .scans import Scan, split_groups, usable_scans

SEXES = ("F", "M")
AGES = {"20-29": "025Y", "40-49": "045Y", "60-69": "065Y", "80-89": "085Y"}
"""Age band -> the PatientAge written (the band's middle)."""


def pick_scans(which: str = "held-out", seed: int = 0) -> list[Scan]:
    """One file per source group: the recipe's held-out groups (``held-out``) or every group (``all``)."""
    if which not in ("held-out", "all"):
        raise MedAnyError(f"Unknown scan set '{which}' (choose held-out or all).")
    scans = usable_scans()
    pool = split_groups(scans, seed)[1] if which == "held-out" else list(scans)
    firsts: dict[str, Scan] = {}
    for scan in sorted(pool, key=lambda s: s.name):
        firsts.setdefault(scan.group, scan)
    return list(firsts.values())


def demographic_copy(path: Path, sex: str, age: str) -> bytes:
    """The DICOM at ``path`` de-identified (allowlist profile), with PatientSex ``sex`` and PatientAge ``age``."""
    from multimodal.io import read_bytes
    from multimodal.io.deid import deidentify
    from multimodal.io.dicom import parse_dicom

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's notes on odd values; the burned-in-text warning (test data)
        ds = parse_dicom(read_bytes(path))  # as the loader parses it: files without a preamble too
        deidentify(ds, profile="allowlist")
    ds.PatientSex, ds.PatientAge = sex, age
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def record(rid: str, image: str, scan: Scan, decoded) -> dict:
    """An assistant-format record: the pipeline's system prompt, the DICOM line as the pipeline writes it for the
    ``decoded`` copy (its header fields; first, for a picture that is no scan, the image-domain verdict), the
    placeholder and the recipe's caption question, answered by the caption of the scan's fields."""
    from multimodal.image_domain import check_domain
    from multimodal.prompt import chat_messages, dicom_summary, domain_summary, media_line
    from multimodal.template import PLACEHOLDERS

    meta = decoded.meta
    verdict = check_domain(decoded)  # a DICOM is judged by its header or its colour: no classifier needed
    line = dicom_summary(meta) if verdict.scan else f"{domain_summary(verdict)}; {dicom_summary(meta)}"
    system, user = chat_messages([media_line("image", 1, line), PLACEHOLDERS["image"]], PROMPT)
    return {"id": rid, "image": image, "source": scan.name, "sex": meta.get("sex"), "age_band": meta.get("age_band"),
            "fields": dict(scan.fields),
            "conversations": [{"from": "system", "value": system["content"]},
                              {"from": "human", "value": user["content"]},
                              {"from": "gpt", "value": caption_sentence(scan.fields)}]}


def make_fairness_set(out: str | Path, scans: str = "held-out", seed: int = 0) -> dict:
    """Write ``OUT/dicom/*.dcm`` and ``OUT/eval.jsonl`` (see the module docstring); returns the manifest."""
    from multimodal.io import load_image

    out = Path(out)
    (out / "dicom").mkdir(parents=True, exist_ok=True)
    chosen = pick_scans(scans, seed)
    records = []
    for scan in chosen:
        for sex in SEXES:
            for band, age in AGES.items():
                rid = f"fair-{len(records):05d}"
                image = f"dicom/{rid}.dcm"
                (out / image).write_bytes(demographic_copy(scan.path, sex, age))
                decoded = load_image(out / image)  # what the pipeline will read: the de-identified fields
                if (decoded.meta.get("sex"), decoded.meta.get("age_band")) != (sex, band):
                    raise MedAnyError(f"The copy of {scan.name} does not read back as sex {sex}, age {band}.")
                records.append(record(rid, image, scan, decoded))
    write_split(out / "eval.jsonl", records)
    manifest = {"recipe": "image-fairness", "seed": seed, "scans": [s.name for s in chosen], "scan_set": scans,
                "sexes": list(SEXES), "age_bands": list(AGES), "records": len(records),
                "deid_profile": "allowlist"}
    write_manifest(out, manifest)
    return manifest


def main(argv: list[str] | None = None) -> int:
    """``python -m recipes.image.make_fairness OUT [--scans held-out|all] [--seed S]``."""
    parser = argparse.ArgumentParser(prog="python -m recipes.image.make_fairness",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("out", help="output folder (dicom/, eval.jsonl, manifest.json)")
    parser.add_argument("--scans", choices=("held-out", "all"), default="held-out")
    parser.add_argument("--seed", type=int, default=0, help="the recipe's split seed")
    args = parser.parse_args(argv)
    try:
        manifest = make_fairness_set(args.out, args.scans, args.seed)
    except MedAnyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(manifest, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
