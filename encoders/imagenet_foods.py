"""Which ImageNet-1k classes are foods, and the plain food name each one stands for.

ImageNet-1k has ~45 dish/fruit/vegetable/drink classes (indices 924-969 plus a few
elsewhere). A classifier trained on it (the embedded EfficientNet-Lite0) can
therefore name the main item on a plate, which is enough to look nutrients up
before a dedicated food model exists. Names are short and generic ("pizza",
"apple") because they are matched against a nutrient table, not shown as labels.

Deliberately left out: tableware (plate 923, cup 968, bottles), hay 958, and
inedible look-alikes (buckeye 990, acorn 988, wild mushrooms other than the
edible maitake and porcini). Seafood classes are kept because a plated lobster
or crab is classified as the animal.
"""

from __future__ import annotations

import numpy as np

IMAGENET_FOODS: dict[int, str] = {
    # seafood and fish (ImageNet has them as animals)
    118: "crab",
    121: "king crab",
    122: "lobster",
    123: "spiny lobster",
    391: "salmon",
    # drinks
    441: "beer",
    966: "red wine",
    967: "espresso",
    969: "eggnog",
    # dishes and baked goods
    924: "guacamole",
    925: "consomme",
    926: "hot pot",
    927: "trifle",
    928: "ice cream",
    929: "ice pop",
    930: "french bread",
    931: "bagel",
    932: "pretzel",
    933: "cheeseburger",
    934: "hot dog",
    935: "mashed potatoes",
    959: "spaghetti carbonara",
    960: "chocolate syrup",
    961: "bread dough",
    962: "meatloaf",
    963: "pizza",
    964: "pot pie",
    965: "burrito",
    # vegetables
    936: "cabbage",
    937: "broccoli",
    938: "cauliflower",
    939: "zucchini",
    940: "spaghetti squash",
    941: "acorn squash",
    942: "butternut squash",
    943: "cucumber",
    944: "artichoke",
    945: "bell pepper",
    946: "cardoon",
    947: "mushroom",
    987: "sweet corn",
    996: "maitake mushroom",
    997: "porcini mushroom",
    998: "corn on the cob",
    # fruit
    948: "apple",
    949: "strawberry",
    950: "orange",
    951: "lemon",
    952: "fig",
    953: "pineapple",
    954: "banana",
    955: "jackfruit",
    956: "custard apple",
    957: "pomegranate",
}

NUM_IMAGENET_CLASSES = 1000
_INDEX = np.array(sorted(IMAGENET_FOODS), dtype=np.int64)


def _as_numpy(probs) -> np.ndarray:
    if hasattr(probs, "detach"):  # torch tensor, without importing torch here
        probs = probs.detach().float().cpu().numpy()
    p = np.asarray(probs, dtype=np.float64).reshape(-1)
    if p.shape[0] != NUM_IMAGENET_CLASSES:
        raise ValueError(f"expected {NUM_IMAGENET_CLASSES} ImageNet-1k probabilities, got {p.shape[0]}")
    return p


def food_mass(probs) -> float:
    """Total probability the classifier puts on food classes (0..1): 'is this a meal photo?'."""
    return float(_as_numpy(probs)[_INDEX].sum())


def food_predictions(probs, top_k: int = 5, min_prob: float = 0.0) -> list[tuple[str, float]]:
    """Foods ranked by probability from ImageNet-1k softmax ``probs`` (``[1000]``).

    Classes that share a food name have their probabilities summed. Returns at
    most ``top_k`` ``(food name, probability)`` pairs with probability >= ``min_prob``.
    """
    p = _as_numpy(probs)
    totals: dict[str, float] = {}
    for idx in _INDEX:
        name = IMAGENET_FOODS[int(idx)]
        totals[name] = totals.get(name, 0.0) + float(p[idx])
    ranked = sorted(totals.items(), key=lambda kv: kv[1], reverse=True)
    return [(name, prob) for name, prob in ranked[:top_k] if prob >= min_prob]
