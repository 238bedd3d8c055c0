"""Food recognition on the bundled sample photo with the embedded ImageNet model (real weights)."""

from demos.dietitian import SAMPLE_MEAL, recognize_foods
from demos.nutrition import lookup
from encoders import create_encoder
from multimodal.io import load_image


def test_sample_photo_foods_are_recognised_and_in_the_nutrient_table():
    foods = recognize_foods(create_encoder("medany-lite0").eval(), load_image(SAMPLE_MEAL))
    names = [name for name, _ in foods]
    assert names[:2] == ["lemon", "orange"]  # the cut lemon and orange fill most of the picture
    assert all(lookup(name) is not None for name in names)
    assert sum(p for _, p in foods) <= 1.0 and foods[0][1] > 0.5
