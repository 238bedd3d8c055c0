"""Nutrient table and meal arithmetic."""

import csv

import pytest

from demos.nutrition import (NUTRIENT_KEYS, TABLE_PATH, describe_for_prompt, load_table, lookup, meal_totals,
                             portion_nutrients, summary_table)
from multimodal.errors import InputError


def test_table_rows_are_complete_and_sourced():
    with open(TABLE_PATH, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) >= 8
    for row in rows:
        assert int(row["fdc_id"]) > 100000, row["food"]
        assert "FoodData Central" in row["source"]
        for key in NUTRIENT_KEYS:
            assert float(row[key]) >= 0
        # Atwater sanity check: SR Legacy uses food-specific factors (citrus carbohydrate ~2.5 kcal/g),
        # so energy lies between half and all of the general 4/9/4 figure (a typo'd column would not).
        atwater = 4 * float(row["protein_g"]) + 9 * float(row["fat_g"]) + 4 * float(row["carbohydrate_g"])
        assert 0.5 * atwater - 2 <= float(row["energy_kcal"]) <= atwater + 5, row["food"]


def test_table_covers_imagenet_food_names():
    foods = pytest.importorskip("encoders.imagenet_foods")
    names = set(foods.IMAGENET_FOODS.values())
    for food in load_table():
        assert food in names, f"{food} is not a name encoders.imagenet_foods produces"


def test_lookup_aliases_and_plurals():
    assert lookup("Banana").fdc_id == 173944
    assert lookup("bananas").name == "banana"
    assert lookup("Granny-Smith").name == "apple"
    assert lookup("pizza") is None


def test_portion_math():
    banana = lookup("banana")
    n = portion_nutrients(banana, 150)
    assert n["energy_kcal"] == pytest.approx(89 * 1.5)
    assert n["potassium_mg"] == pytest.approx(358 * 1.5)
    assert portion_nutrients(banana, 0)["protein_g"] == 0


def test_meal_totals_sum_and_unknown():
    summary = meal_totals([("banana", 100), ("broccoli", 200), ("pizza", 300), ("", 50)])
    assert [r["food"] for r in summary.rows] == ["banana", "broccoli"]
    assert summary.unknown == ["pizza"]
    assert summary.totals["energy_kcal"] == pytest.approx(89 + 2 * 34)
    assert summary.totals["sodium_mg"] == pytest.approx(1 + 2 * 33)
    assert summary.total_grams == 300
    table = summary_table(summary)
    assert table[-1][0] == "Total" and table[-1][2] == "157"
    text = describe_for_prompt(summary)
    assert "banana 100 g" in text and "energy 157 kcal" in text and "pizza" in text


@pytest.mark.parametrize("grams", [-1, "ten", float("nan"), 1e6])
def test_bad_portions_are_refused(grams):
    with pytest.raises(InputError):
        meal_totals([("banana", grams)])
