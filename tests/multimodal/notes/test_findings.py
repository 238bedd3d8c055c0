"""A note's findings as rows: kinds, codes (HPO, DrugBank, ICD-10-CM), drug classes, negation, spans."""

from __future__ import annotations

from multimodal.notes.findings import COLUMNS, Coder, note_rows, schema, split_citation

NOTE = ("Patient ID: P000007\nHistory: headache for three days. Denies fever. Possible nausea.\n"
        "Medications: Advil 200 mg as needed; stopped taking aspirin; diclofenac 50 mg twice a day.\n"
        "Allergic to penicillin.")


def test_each_finding_is_one_row_with_its_codes_negation_and_where_it_was_said(notes_kb):
    rows = note_rows(NOTE, "a/n1.txt", "P000007", Coder(notes_kb))
    assert all(list(r) == [name for name, _ in COLUMNS] for r in rows)
    got = [(r["kind"], r["text"], r["concept"], r["code_system"], r["code"], r["negated"], r["uncertain"])
           for r in rows]
    assert got == [("problem", "headache", "Headache", "HPO", "HP:0002315", False, False),
                   ("problem", "fever", "Fever", "HPO", "HP:0001945", True, False),
                   ("problem", "nausea", "Nausea", "HPO", "HP:0002018", False, True),
                   ("medication", "Advil", "Ibuprofen", "DrugBank", "DB01050", False, False),
                   ("medication", "aspirin", "Aspirin", "DrugBank", "DB00945", True, False),
                   ("medication", "diclofenac", "Diclofenac", "DrugBank", "DB00586", False, False),
                   ("allergy", "penicillin", "penicillin", None, None, False, False)]
    assert all(NOTE[r["span_start"]:r["span_end"]] == r["text"] for r in rows)
    assert {r["note_id"] for r in rows} == {"a/n1.txt"} and {r["patient_id"] for r in rows} == {"P000007"}
    headache, advil = rows[0], rows[3]
    assert (headache["icd10_code"], headache["icd10_name"], headache["duration"]) == ("R51.9", "Headache, unspecified",
                                                                                       "3 day")
    assert (advil["dose"], advil["frequency"]) == ("200 mg", "as needed")


def test_a_medication_carries_the_class_icd10cm_names_it_under_and_none_when_it_names_none(notes_kb):
    rows = {r["concept"]: r for r in note_rows(NOTE, "n", None, Coder(notes_kb)) if r["kind"] == "medication"}
    assert rows["Ibuprofen"]["drug_class_code"] == "T39.31"
    assert rows["Ibuprofen"]["drug_class"] == ("nonopioid analgesics, antipyretics and antirheumatics > other "
                                               "nonsteroidal anti-inflammatory drugs [NSAID] > propionic acid "
                                               "derivatives")
    assert rows["Aspirin"]["drug_class_code"] == "T39.01"
    assert rows["Diclofenac"]["drug_class_code"] is None and rows["Diclofenac"]["drug_class"] is None


def test_without_a_knowledge_base_the_word_lists_still_find_findings_uncoded():
    rows = note_rows("No fever. Takes ibuprofen.", "n", None, Coder(None))
    assert [(r["kind"], r["text"], r["negated"], r["code"], r["icd10_code"], r["drug_class_code"]) for r in rows] == [
        ("problem", "fever", True, None, None, None), ("medication", "ibuprofen", False, None, None, None)]


def test_rows_fit_the_schema_and_citations_split_into_system_and_code(notes_kb):
    import pyarrow as pa

    table = pa.Table.from_pylist(note_rows(NOTE, "n", "P1", Coder(notes_kb)), schema=schema())
    assert table.num_rows == 7 and table.schema.field("negated").type == pa.bool_()
    assert split_citation("HPO:0002315") == ("HPO", "HP:0002315")
    assert split_citation("DrugBank DB00788") == ("DrugBank", "DB00788")
    assert split_citation("ICD-10 R51.9") == ("ICD-10-CM", "R51.9")
    assert split_citation("USDA FDC 173944") == ("USDA FDC", "173944")
