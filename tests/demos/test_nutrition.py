"""Nutrient table and meal arithmetic."""

import csv
import math

import pytest

from demos.nutrition import (
    NUTRIENT_KEYS,
    TABLE_PATH,
    describe_for_prompt,
    load_table,
    lookup,
    meal_totals,
    portion_nutrients,
    summary_table,
)
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
        # Atwater sanity check: SR Legacy uses food-specific factors (citrus carbohydrate ~2.5 kcal/g, fish
        # protein 4.27 kcal/g), so energy lies between half and 1.1x the general 4/9/4 figure (a typo'd
        # column would not). Alcohol (7 kcal/g) is not among the columns, so drinks may exceed it.
        atwater = 4 * float(row["protein_g"]) + 9 * float(row["fat_g"]) + 4 * float(row["carbohydrate_g"])
        ceiling = math.inf if row["fdc_description"].startswith("Alcoholic beverage") else 1.1 * atwater + 5
        assert 0.5 * atwater - 2 <= float(row["energy_kcal"]) <= ceiling, row["food"]


# ImageNet food classes with no traceable SR Legacy record (dishes SR Legacy lacks, or no FDC id found).
NOT_IN_TABLE = {"bread dough", "cardoon", "cheeseburger", "chocolate syrup", "consomme", "custard apple", "eggnog",
                "guacamole", "hot dog", "hot pot", "ice pop", "jackfruit", "king crab", "maitake mushroom",
                "meatloaf", "porcini mushroom", "spaghetti carbonara", "spaghetti squash", "spiny lobster", "trifle"}
HAND_ADDED = {"kiwifruit", "lime"}  # not ImageNet classes, but on the sample photo: added from the dropdown


def test_table_coverage_of_imagenet_food_names_is_as_documented():
    foods = pytest.importorskip("encoders.imagenet_foods")
    names = set(foods.IMAGENET_FOODS.values())
    assert {n for n in names if lookup(n) is None} == NOT_IN_TABLE
    assert set(load_table()) - names == HAND_ADDED
    assert len(load_table()) == 35


def test_lookup_aliases_and_plurals():
    assert lookup("Banana").fdc_id == 173944
    assert lookup("bananas").name == "banana"
    assert lookup("Granny-Smith").name == "apple"
    assert lookup("corn on the cob").name == "sweet corn"
    assert lookup("guacamole") is None


def test_portion_math():
    banana = lookup("banana")
    n = portion_nutrients(banana, 150)
    assert n["energy_kcal"] == pytest.approx(89 * 1.5)
    assert n["potassium_mg"] == pytest.approx(358 * 1.5)
    assert portion_nutrients(banana, 0)["protein_g"] == 0


def test_meal_totals_sum_and_unknown():
    summary = meal_totals([("banana", 100), ("broccoli", 200), ("guacamole", 300), ("", 50)])
    assert [r["food"] for r in summary.rows] == ["banana", "broccoli"]
    assert summary.unknown == ["guacamole"]
    assert summary.totals["energy_kcal"] == pytest.approx(89 + 2 * 34)
    assert summary.totals["sodium_mg"] == pytest.approx(1 + 2 * 33)
    assert summary.total_grams == 300
    table = summary_table(summary)
    assert table[-1][0] == "Total" and table[-1][2] == "157"
    text = describe_for_prompt(summary)
    assert "banana 100 g" in text and "energy 157 kcal" in text and "guacamole" in text


@pytest.mark.parametrize("grams", [-1, "ten", float("nan"), 1e6])
def test_bad_portions_are_refused(grams):
    with pytest.raises(InputError):
        meal_totals([("banana", grams)])
