"""Consult notes: findings by ConText-style rules, coded from the knowledge base, SOAP under a schema, FHIR."""

from __future__ import annotations

import pytest

from multimodal.consult_note import ConsultNote, extract, write_note
from tests.multimodal.knowledge.kb_helpers import build_small


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    return build_small(tmp_path_factory.mktemp("kb") / "kb.sqlite")


def test_negation_covers_its_clause_and_not_the_next():
    symptoms, _, _ = extract("I have had a headache for three days but no fever or cough. Maybe some nausea.")
    got = {s.name: (s.negated, s.uncertain, s.duration) for s in symptoms}
    assert got == {"headache": (False, False, "3 day"), "fever": (True, False, None), "cough": (True, False, None),
                   "nausea": (False, True, None)}


def test_a_medicine_keeps_its_dose_route_and_frequency_and_an_allergy_is_not_a_medicine():
    _, medications, allergies = extract("I take 200 mg of ibuprofen by mouth twice a day. I am allergic to aspirin. "
                                        "I don't take paracetamol.")
    got = {m.name: (m.dose, m.route, m.frequency, m.negated) for m in medications}
    assert got == {"ibuprofen": ("200 mg", "oral", "twice a day", False),
                   "paracetamol": (None, None, None, True)}
    assert [a.substance for a in allergies] == ["aspirin"]


def test_the_knowledge_base_codes_what_it_links(kb):
    symptoms, medications, _ = extract("My headaches started two weeks ago. I took Aleve.", kb)
    assert [(s.name, s.codes, s.concept, s.duration) for s in symptoms] == [
        ("headaches", ("HPO:0002315",), "Headache", "2 week")]
    assert [(m.name, m.codes) for m in medications] == [("Naproxen", ("DrugBank DB00788",))]


def test_the_fhir_bundle_validates_and_says_what_was_refuted(kb):
    symptoms, medications, allergies = extract("Headache for three days, no fever. I take 500 mg of naproxen "
                                               "daily. I am allergic to penicillin.", kb)
    bundle = ConsultNote("...", symptoms=symptoms, medications=medications, allergies=allergies).fhir_bundle()
    resources = [e["resource"] for e in bundle["entry"]]
    assert [r["resourceType"] for r in resources] == ["Condition", "Condition", "MedicationStatement",
                                                      "AllergyIntolerance"]
    headache, fever, naproxen, _ = resources
    assert headache["code"]["coding"][0] == {"system": "http://human-phenotype-ontology.org", "code": "HP:0002315",
                                             "display": "Headache"}
    assert headache["onsetString"] == "3 days before the consultation"
    assert fever["verificationStatus"]["coding"][0]["code"] == "refuted"
    assert naproxen["dosage"] == [{"text": "500 mg daily"}] and naproxen["status"] == "active"


def test_the_llm_writes_every_soap_section_under_the_schema(kb):
    from multimodal.config import StackConfig
    from multimodal.pipeline import Assistant

    assistant = Assistant.load(StackConfig(llm="tiny-random", vision="", speech="", knowledge=str(kb.store.path),
                                           max_new_tokens=8))
    assistant._knowledge = kb
    note = write_note(assistant, "Me duele la cabeza desde hace tres días.", "es",
                      "My head has hurt for three days, I have a headache.", max_chars=12)  # random model: short
    assert all(isinstance(getattr(note, k), str) and getattr(note, k) for k in ("subjective", "objective",
                                                                                  "assessment", "plan"))
    assert [s.name for s in note.symptoms] == ["headache"] and note.language == "es"
    markdown = note.to_markdown()
    assert markdown.startswith("**Subjective.**") and "| symptom | headache | present, 3 days | HPO:0002315 |" \
        in markdown
    prompt = assistant.last_answer.plan.evidence
    assert prompt[0].text.startswith('recording, spoken in Spanish, transcript: "Me duele')
    assert prompt[1].text == "headache for 3 days"


def test_a_section_cut_by_its_length_ends_at_its_last_whole_sentence():
    from multimodal.consult_note import _whole

    assert _whole("Rest. Drink fluids and take acetaminophen or", 44) == "Rest."
    assert _whole("Rest and drink fluids.", 44) == "Rest and drink fluids."
    assert _whole("one long clause without an end", 20) == "one long clause without an end"


def test_not_sure_is_an_uncertainty_not_a_negation():
    """The longer trigger wins where two overlap (multimodal.context): "not sure" hedges, its "not" negates nothing."""
    symptoms, _, _ = extract("I'm not sure I have a fever.")
    assert [(s.name, s.negated, s.uncertain) for s in symptoms] == [("fever", False, True)]


def test_every_finding_says_where_in_the_text_it_was_named(kb):
    text = "Headache for  three days;\n  no fever.  I took Aleve but not ibuprofen. Allergic to the penicillin."
    symptoms, medications, allergies = extract(text, kb)
    said = {f.name if hasattr(f, "name") else f.substance: text[f.span[0]:f.span[1]]
            for f in [*symptoms, *medications, *allergies]}
    assert said == {"headache": "Headache", "fever": "fever", "Naproxen": "Aleve", "ibuprofen": "ibuprofen",
                    "penicillin": "penicillin"}


def test_a_stopped_medicine_is_not_taken_but_a_symptom_after_stopped_is_not_negated():
    symptoms, medications, _ = extract("Stopped taking ibuprofen because of nausea. Discontinued metformin. "
                                       "The headache stopped after paracetamol.")
    assert {m.name: m.negated for m in medications} == {"ibuprofen": True, "metformin": True, "paracetamol": False}
    assert {s.name: s.negated for s in symptoms} == {"nausea": False, "headache": False}
