"""Evidence: the facts and numbers each prompt line states."""

from multimodal.evidence import (
    classifier_evidence,
    dicom_evidence,
    durations_in,
    note_evidence,
    numbers_in,
    transcript_evidence,
)
from multimodal.prompt import classifier_summary, dicom_summary


def test_dicom_header_states_modality_body_part_and_view():
    meta = {"modality": "CR", "body_part": "CHEST", "view": "PA"}
    ev = dicom_evidence("Image 1", dicom_summary(meta), meta)
    assert ev.facts == {"modality": ("CR",), "body_part": ("CHEST",), "view": ("PA",)}
    assert ev.line.startswith("Image 1: DICOM")
    assert dicom_evidence("Image 1", "DICOM", {"body_part": "Left knee"}).facts["body_part"] == ("KNEE",)


def test_classifier_states_its_best_label_and_keeps_runners_up_apart():
    labels = [("strawberry", 0.95), ("trifle", 0.02)]
    ev = classifier_evidence("Image 1", classifier_summary(labels), labels)
    assert ev.facts["food"] == ("strawberry",) and ev.alternatives["food"] == ("trifle",)
    close = [("banana", 0.55), ("corn on the cob", 0.40)]
    assert classifier_evidence("Image 1", "", close).facts["food"] == ("banana", "corn on the cob")


def test_transcript_names_symptoms_medicines_and_durations():
    t = "I have had a terrible headache for three days and took ibuprofen twice."
    ev = transcript_evidence("Audio 1", f'recording (3.1 s), transcript: "{t}"', t)
    assert ev.facts["symptom"] == ("headache",) and ev.facts["medicine"] == ("ibuprofen",)
    assert ev.facts["duration"] == ("3 day",) and 3.0 in ev.numbers and 3.1 in ev.numbers


def test_numbers_and_durations_are_read_as_written():
    assert numbers_in("sodium 1,150 mg, fat 12.5 g, type 2, B12, 3-4") == (1150.0, 12.5, 2.0, 3.0, 4.0)
    assert durations_in("for two weeks, then 10 days, an hour") == ("2 week", "10 day", "1 hour")


def test_free_text_context_is_evidence_too():
    ev = note_evidence("Meal", "Meal: banana 120 g, broccoli 91 g. Totals: sodium 34 mg.", source="nutrients")
    assert set(ev.facts["food"]) == {"banana", "broccoli"} and ev.numbers == (120.0, 91.0, 34.0)
