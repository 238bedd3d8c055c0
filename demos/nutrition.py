"""Meal arithmetic over a bundled per-100 g nutrient table (USDA FoodData Central).

``demos/assets/nutrients.csv`` holds one row per food the embedded ImageNet
model can name (plus lime and kiwifruit, on the sample photo), with the
FoodData Central SR Legacy id of the record each figure comes from (public
domain), the NDB number, and the two independent copies of the USDA data it
was read from and checked against (``docs/nutrients.md``). Only rows whose figures could
be traced to a FoodData Central record are bundled, so a recognised food may
be missing from the table; the meal summary then says so instead of guessing.

All functions here are pure: names and grams in, numbers out.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping

from multimodal.errors import InputError

TABLE_PATH = Path(__file__).with_name("assets") / "nutrients.csv"

# (column, label, unit): the order of every table and report.
NUTRIENTS: tuple[tuple[str, str, str], ...] = (
    ("energy_kcal", "Energy", "kcal"),
    ("protein_g", "Protein", "g"),
    ("fat_g", "Fat", "g"),
    ("carbohydrate_g", "Carbohydrate", "g"),
    ("fibre_g", "Fibre", "g"),
    ("sodium_mg", "Sodium", "mg"),
    ("potassium_mg", "Potassium", "mg"),
)
NUTRIENT_KEYS = tuple(key for key, _, _ in NUTRIENTS)
# US FDA Daily Values for adults and children 4+ (21 CFR 101.9(c), 2016 rule; energy: the 2,000 kcal reference
# diet). Written beside each total so advice can put a number in context without computing one.
DAILY_VALUES = {"energy_kcal": 2000, "protein_g": 50, "fat_g": 78, "carbohydrate_g": 275, "fibre_g": 28,
                "sodium_mg": 2300, "potassium_mg": 4700}
MAX_PORTION_G = 5000.0  # 5 kg on one plate is a typo, not a meal


@dataclass(frozen=True)
class Food:
    """One row of the nutrient table: per-100 g values and where they come from."""

    name: str
    fdc_id: int
    fdc_description: str
    portion_g: float
    per_100g: Mapping[str, float]
    source: str
    aliases: tuple[str, ...] = ()


@dataclass
class MealSummary:
    """Per-food nutrients for the given portions, their totals, and foods not in the table."""

    rows: list[dict] = field(default_factory=list)
    totals: dict[str, float] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)

    @property
    def total_grams(self) -> float:
        return sum(r["grams"] for r in self.rows)


def normalize(name: str) -> str:
    """Lower-case, collapse punctuation and spaces: ``" Granny-Smith "`` -> ``"granny smith"``."""
    return re.sub(r"[^a-z0-9]+", " ", str(name).lower()).strip()


@lru_cache(maxsize=4)
def load_table(path: str | None = None) -> dict[str, Food]:
    """The nutrient table keyed by food name (cached; ``path`` defaults to the bundled CSV)."""
    foods: dict[str, Food] = {}
    with open(path or TABLE_PATH, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            food = Food(
                name=row["food"].strip(),
                fdc_id=int(row["fdc_id"]),
                fdc_description=row["fdc_description"].strip(),
                portion_g=float(row["portion_g"]),
                per_100g={key: float(row[key]) for key in NUTRIENT_KEYS},
                source=row["source"].strip(),
                aliases=tuple(a.strip() for a in row.get("aliases", "").split("|") if a.strip()),
            )
            foods[food.name] = food
    return foods


def _index(table: Mapping[str, Food]) -> dict[str, Food]:
    index: dict[str, Food] = {}
    for food in table.values():
        for name in (food.name, *food.aliases):
            index[normalize(name)] = food
    return index


@lru_cache(maxsize=1)
def _bundled_index() -> dict:
    """:func:`_index` of the bundled table, built once (lookups run per label and per row)."""
    return _index(load_table())


def lookup(name: str, table: Mapping[str, Food] | None = None) -> Food | None:
    """The table row for ``name`` (exact name or alias, case/punctuation-insensitive), or None."""
    key = normalize(name)
    index = _bundled_index() if table is None else _index(table)
    if key in index:
        return index[key]
    if key.endswith("s") and key[:-1] in index:  # plain plural
        return index[key[:-1]]
    return None


def check_grams(grams) -> float:
    """A portion weight in grams as a float; ``InputError`` for negative, absurd or non-numbers."""
    try:
        value = float(grams)
    except (TypeError, ValueError):
        raise InputError("Each portion must be a number of grams.", code="bad_portion") from None
    if not math.isfinite(value) or value < 0:
        raise InputError("Portions must be zero or more grams.", code="bad_portion")
    if value > MAX_PORTION_G:
        raise InputError(f"A portion above {MAX_PORTION_G:.0f} g looks like a typo; please check it.",
                         code="bad_portion")
    return value


def portion_nutrients(food: Food, grams: float) -> dict[str, float]:
    """Nutrients in ``grams`` of ``food``: per-100 g value x grams / 100."""
    grams = check_grams(grams)
    return {key: food.per_100g[key] * grams / 100.0 for key in NUTRIENT_KEYS}


def meal_totals(portions: Iterable[tuple[str, float]], table: Mapping[str, Food] | None = None) -> MealSummary:
    """Nutrients for each ``(food, grams)`` portion and the meal totals.

    Blank food names are skipped (an empty table row); names missing from the
    table are listed in ``unknown`` and count nothing towards the totals.
    """
    table = load_table() if table is None else table
    summary = MealSummary(totals={key: 0.0 for key in NUTRIENT_KEYS})
    for name, grams in portions:
        if name is None or not str(name).strip():
            continue
        food = lookup(str(name), table)
        if food is None:
            summary.unknown.append(str(name).strip())
            continue
        values = portion_nutrients(food, grams)
        summary.rows.append({"food": food.name, "grams": check_grams(grams), "fdc_id": food.fdc_id, **values})
        for key in NUTRIENT_KEYS:
            summary.totals[key] += values[key]
    return summary


def _fmt(value: float, unit: str) -> str:
    return f"{value:.0f}" if unit in ("kcal", "mg") else f"{value:.1f}"


def summary_table(summary: MealSummary) -> list[list]:
    """Rows for display: one per food plus a ``Total`` row (rounded like a food label)."""
    rows = [[r["food"], round(r["grams"])] + [_fmt(r[k], u) for k, _, u in NUTRIENTS] for r in summary.rows]
    rows.append(["Total", round(summary.total_grams)] + [_fmt(summary.totals[k], u) for k, _, u in NUTRIENTS])
    return rows


def summary_headers() -> list[str]:
    return ["Food", "Grams"] + [f"{label} ({unit})" for _, label, unit in NUTRIENTS]


def daily_value_percent(key: str, total: float) -> int:
    """``total`` as a whole percentage of its FDA Daily Value (as printed on a food label)."""
    return round(100.0 * total / DAILY_VALUES[key])


def describe_for_prompt(summary: MealSummary) -> str:
    """The meal as plain text for the LLM: portions, totals with their share of the daily value, what is missing.

    Every number an answer may need is written here, rounded as the table
    shows it, so advice quotes numbers instead of computing them.
    """
    if not summary.rows and not summary.unknown:
        return "No foods were entered."
    lines = []
    if summary.rows:
        lines.append("Meal: " + ", ".join(f"{r['food']} {r['grams']:.0f} g" for r in summary.rows) + ".")
        totals = "; ".join(f"{label.lower()} {_fmt(summary.totals[k], u)} {u} "
                           f"({daily_value_percent(k, summary.totals[k])}% of the {DAILY_VALUES[k]} {u} daily value)"
                           for k, label, u in NUTRIENTS)
        lines.append(f"Totals (USDA FoodData Central): {totals}.")
    if summary.unknown:
        lines.append("Not in the nutrient table (not counted): " + ", ".join(summary.unknown) + ".")
    return "\n".join(lines)


def meal_evidence(summary: MealSummary):
    """The meal's nutrient table as evidence (:mod:`multimodal.evidence`): its foods and every number."""
    from multimodal.evidence import note_evidence

    return note_evidence("Nutrient table", describe_for_prompt(summary), source="nutrients")


def food_names(table: Mapping[str, Food] | None = None) -> list[str]:
    """Names in the table, sorted, for pickers."""
    return sorted((load_table() if table is None else table).keys())
