"""The names the grounding check recognises in an answer, by category.

Each category maps a canonical name to the phrases that mean it. Modalities,
body parts and views follow DICOM's own codes (Modality (0008,0060), Body Part
Examined (0018,0015), View Position (0018,5101)); foods are the embedded ImageNet classifier's food
classes; symptoms and medicines are a short list of common ones (the knowledge
base of a later release replaces them with ontologies). A phrase matches on
word boundaries, case-insensitively, except all-caps codes ("CT", "US"), which
must be written in capitals (so "us" the pronoun is never an ultrasound).
"""

from __future__ import annotations

import re
from functools import lru_cache

MODALITIES: dict[str, tuple[str, ...]] = {
    "CR": ("CR", "computed radiography", "radiograph", "radiographs", "radiography", "x-ray", "x-rays", "xray",
           "x ray", "plain film"),
    "DX": ("DX", "digital radiography", "radiograph", "radiographs", "radiography", "x-ray", "x-rays", "xray",
           "x ray", "plain film"),
    "CT": ("CT", "computed tomography", "CAT scan", "CT scan"),
    "MR": ("MR", "MRI", "magnetic resonance"),
    "US": ("US", "ultrasound", "sonography", "sonogram", "ultrasonography"),
    "MG": ("MG", "mammography", "mammogram"),
    "NM": ("NM", "nuclear medicine", "scintigraphy"),
    "PT": ("PET", "positron emission"),
    "XA": ("XA", "angiography", "angiogram"),
    "RF": ("RF", "fluoroscopy"),
    "OT": ("OT",),
    "XC": ("XC", "external-camera photography"),
}
# Codes that are one kind of examination: naming either is not a contradiction.
SAME_MODALITY = ({"CR", "DX"},)

BODY_PARTS: dict[str, tuple[str, ...]] = {
    "CHEST": ("chest", "thorax", "thoracic", "lung", "lungs"),
    "ABDOMEN": ("abdomen", "abdominal"),
    "PELVIS": ("pelvis", "pelvic", "hip", "hips"),
    "HEAD": ("head", "skull", "brain", "cranial"),
    "NECK": ("neck", "cervical"),
    "SPINE": ("spine", "spinal", "vertebra", "vertebrae", "lumbar", "thoracic spine"),
    "KNEE": ("knee", "knees"),
    "HAND": ("hand", "hands", "finger", "fingers", "wrist"),
    "FOOT": ("foot", "feet", "toe", "toes", "ankle"),
    "SHOULDER": ("shoulder",),
    "ELBOW": ("elbow",),
    "BREAST": ("breast", "breasts"),
    "HEART": ("heart", "cardiac"),
    "EXTREMITY": ("extremity", "limb", "arm", "leg"),
}

# Regions and what lies within them: naming the heart of a chest film, or calling a hand film
# "the extremity", names the same study more or less precisely; it does not contradict it.
WITHIN: dict[str, frozenset[str]] = {
    "CHEST": frozenset({"HEART", "BREAST"}),
    "EXTREMITY": frozenset({"HAND", "FOOT", "KNEE", "SHOULDER", "ELBOW"}),
    "HEAD": frozenset(),
}

# View Position (0018,5101): projection of a radiograph. Decubitus and oblique views name their side.
VIEWS: dict[str, tuple[str, ...]] = {
    "PA": ("PA", "posteroanterior", "postero-anterior", "posterior-anterior", "posterior to anterior"),
    "AP": ("AP", "anteroposterior", "antero-posterior", "anterior-posterior", "anterior to posterior"),
    "LATERAL": ("lateral", "LAT", "LL", "RL"),
    "OBLIQUE": ("oblique", "LLO", "RLO"),
    "DECUBITUS": ("decubitus", "LLD", "RLD"),
    "CC": ("CC", "craniocaudal", "cranio-caudal"),
    "MLO": ("MLO", "mediolateral oblique", "medio-lateral oblique"),
}
# Header codes -> the view they name.
VIEW_CODES = {"PA": "PA", "AP": "AP", "LL": "LATERAL", "RL": "LATERAL", "LATERAL": "LATERAL", "LLO": "OBLIQUE",
              "RLO": "OBLIQUE", "LLD": "DECUBITUS", "RLD": "DECUBITUS", "CC": "CC", "MLO": "MLO"}

SYMPTOMS: dict[str, tuple[str, ...]] = {
    "headache": ("headache", "headaches", "head ache", "migraine"),
    "cough": ("cough", "coughing", "coughs"),
    "fever": ("fever", "feverish", "pyrexia", "high temperature"),
    "sore throat": ("sore throat", "throat pain", "throatache", "throat ache"),
    "chest pain": ("chest pain", "chest tightness"),
    "back pain": ("back pain", "backache", "back ache"),
    "abdominal pain": ("abdominal pain", "stomach ache", "stomachache", "belly pain", "tummy ache"),
    "earache": ("earache", "ear ache", "ear pain"),
    "toothache": ("toothache", "tooth ache", "tooth pain"),
    "nausea": ("nausea", "nauseous", "feeling sick"),
    "vomiting": ("vomiting", "vomit", "throwing up"),
    "diarrhoea": ("diarrhoea", "diarrhea"),
    "dizziness": ("dizziness", "dizzy", "vertigo", "lightheaded"),
    "rash": ("rash", "rashes", "hives"),
    "fatigue": ("fatigue", "tiredness", "exhaustion"),
    "shortness of breath": ("shortness of breath", "short of breath", "breathless", "breathlessness",
                            "difficulty breathing"),
    "palpitations": ("palpitations", "racing heart"),
    "joint pain": ("joint pain", "joint pains", "arthralgia"),
    "swelling": ("swelling", "swollen"),
    "itching": ("itching", "itchy", "itch"),
    "insomnia": ("insomnia", "trouble sleeping", "cannot sleep", "can't sleep"),
    "runny nose": ("runny nose", "nasal congestion", "blocked nose", "stuffy nose"),
}

MEDICINES: dict[str, tuple[str, ...]] = {
    "paracetamol": ("paracetamol", "acetaminophen", "tylenol", "panadol"),
    "ibuprofen": ("ibuprofen", "advil", "nurofen", "motrin"),
    "aspirin": ("aspirin",),
    "naproxen": ("naproxen",),
    "codeine": ("codeine",),
    "amoxicillin": ("amoxicillin", "amoxycillin"),
    "azithromycin": ("azithromycin",),
    "metformin": ("metformin",),
    "insulin": ("insulin",),
    "lisinopril": ("lisinopril",),
    "amlodipine": ("amlodipine",),
    "atorvastatin": ("atorvastatin",),
    "simvastatin": ("simvastatin",),
    "omeprazole": ("omeprazole",),
    "salbutamol": ("salbutamol", "albuterol", "ventolin"),
    "prednisolone": ("prednisolone", "prednisone"),
    "cetirizine": ("cetirizine",),
    "loratadine": ("loratadine",),
    "warfarin": ("warfarin",),
    "levothyroxine": ("levothyroxine",),
    "sertraline": ("sertraline",),
    "metoprolol": ("metoprolol",),
}


# What an image shows. No embedded model reads pixels medically, so evidence never states a finding:
# an answer that claims one about an attachment (normal or not) claims what nobody saw.
FINDINGS: dict[str, tuple[str, ...]] = {
    "pneumonia": ("pneumonia",),
    "mass": ("mass", "masses", "tumour", "tumor", "tumours", "tumors", "malignancy", "cancer", "carcinoma"),
    "nodule": ("nodule", "nodules"),
    "fracture": ("fracture", "fractures", "fractured", "broken bone"),
    "effusion": ("effusion", "effusions", "pleural fluid"),
    "pneumothorax": ("pneumothorax", "collapsed lung"),
    "cardiomegaly": ("cardiomegaly", "enlarged heart"),
    "opacity": ("opacity", "opacities", "shadowing", "infiltrate", "infiltrates"),
    "consolidation": ("consolidation",),
    "oedema": ("oedema", "edema"),
    "atelectasis": ("atelectasis",),
    "lesion": ("lesion", "lesions", "cyst", "cysts"),
    "stone": ("stone", "stones", "calculus", "calculi"),
    "haemorrhage": ("haemorrhage", "hemorrhage", "bleed", "bleeding"),
    "inflammation": ("inflammation", "inflamed", "infection"),
    "emphysema": ("emphysema",),
    "fibrosis": ("fibrosis", "scarring"),
    "dislocation": ("dislocation", "dislocated"),
    "arthritis": ("arthritis", "degenerative change", "degenerative changes"),
    "normal": ("normal", "unremarkable", "abnormality", "abnormalities", "healthy lungs", "clear lungs",
               "lungs are clear", "lung fields are clear", "clear lung fields"),
}


def foods() -> dict[str, tuple[str, ...]]:
    """The classifier's food names (plural forms too)."""
    from encoders.imagenet_foods import IMAGENET_FOODS

    return {name: (name, _plural(name)) for name in sorted(set(IMAGENET_FOODS.values()))}


def _plural(name: str) -> str:
    if name.endswith(("s", "sh", "ch")):
        return name + "es"
    if name.endswith("y") and not name.endswith(("ay", "ey", "oy")):
        return name[:-1] + "ies"
    return name + "s"


def categories() -> dict[str, dict[str, tuple[str, ...]]]:
    return {"modality": MODALITIES, "body_part": BODY_PARTS, "view": VIEWS, "symptom": SYMPTOMS,
            "medicine": MEDICINES, "food": foods(), "finding": FINDINGS}


@lru_cache(maxsize=4096)
def phrase_pattern(phrase: str) -> re.Pattern:
    """Word-bounded pattern of ``phrase``: capitals-only codes are case-sensitive, the rest not."""
    body = r"[\s-]+".join(re.escape(w) for w in re.split(r"[\s-]+", phrase))
    flags = 0 if (phrase.isupper() and len(phrase) <= 4) else re.IGNORECASE
    return re.compile(rf"(?<![\w-]){body}(?![\w-])", flags)


def mentions(text: str, table: dict[str, tuple[str, ...]]) -> list[tuple[int, str, str]]:
    """``[(position, canonical name, phrase)]`` of every name of ``table`` in ``text``, in reading order.

    Where phrases overlap ("spaghetti squash" and "squash") the longest wins.
    """
    found: list[tuple[int, int, str, str]] = []
    for name, phrases in table.items():
        for phrase in phrases:
            for m in phrase_pattern(phrase).finditer(text):
                found.append((m.start(), m.end(), name, phrase))
    found.sort(key=lambda f: (f[0], -(f[1] - f[0])))
    out, end = [], -1
    for start, stop, name, phrase in found:
        if start >= end:
            out.append((start, name, phrase))
            end = stop
    return out


def same_modality(a: str, b: str) -> bool:
    return a == b or any({a, b} <= group for group in SAME_MODALITY)


def same_body_part(said: str, stated: str) -> bool:
    """``said`` names ``stated``, a structure within it, or the region that holds it."""
    return said == stated or said in WITHIN.get(stated, ()) or stated in WITHIN.get(said, ())
