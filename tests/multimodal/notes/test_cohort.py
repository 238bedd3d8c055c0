"""medany cohort: SQL over the findings table answers cohort questions; anything but one SELECT is refused."""

from __future__ import annotations

import json

import pytest

from multimodal.errors import CohortQueryError, InputError, MissingDataError, QueryRefusedError
from multimodal.notes.cohort import cohort, query
from multimodal.notes.extract import parts_dir, run_extraction
from recipes.synthetic_notes import write_corpus
from tests.multimodal.notes.kb_notes import CLASSED_NSAIDS

HEADACHE_AND_NSAID = ("SELECT patient FROM patients WHERE list_contains(problem_codes, 'HP:0002315') AND "
                      "len(list_filter(drug_class_codes, lambda c: c LIKE 'T39.0%' OR c LIKE 'T39.3%')) > 0 "
                      "ORDER BY patient")
NOTES = {"p1.txt": "Patient ID: P1\nHeadache for two days. Takes ibuprofen 400 mg twice a day.",
         "p2-a.txt": "Patient ID: P2\nHeadache since Monday.",
         "p2-b.txt": "Patient ID: P2\nTakes aspirin 81 mg daily.",  # another note of the same patient
         "p3.txt": "Patient ID: P3\nDenies headache. Takes naproxen.",  # no headache
         "p4.txt": "Patient ID: P4\nHeadache. Takes diclofenac.",  # ICD-10-CM names no class for diclofenac
         "p5.txt": "Patient ID: P5\nPossible headache. Takes Advil.",  # unsure
         "p6.txt": "Patient ID: P6\nHeadache. Stopped taking ibuprofen.",  # not taken
         "p7.json": json.dumps({"text": "Headache. Takes Motrin."})}  # no patient id: the note is its own patient


@pytest.fixture(scope="module")
def table(tmp_path_factory, notes_kb):
    root = tmp_path_factory.mktemp("cohort")
    for name, text in NOTES.items():
        (root / "notes").mkdir(exist_ok=True)
        (root / "notes" / name).write_text(text)
    run_extraction(root / "notes", root / "t.parquet", knowledge=notes_kb.store.path)
    return root / "t.parquet"


def test_headache_and_an_nsaid_counts_patients_over_their_notes_and_not_what_is_denied_unsure_or_stopped(table):
    columns, rows = query(table, HEADACHE_AND_NSAID)
    assert columns == ["patient"] and rows == [("P1",), ("P2",), ("p7.json",)]


def test_the_same_question_over_the_findings_view(table):
    sql = ("SELECT coalesce(patient_id, note_id) AS patient FROM findings GROUP BY patient HAVING "
           "bool_or(kind = 'problem' AND code = 'HP:0002315' AND NOT negated AND NOT uncertain) AND "
           "bool_or(kind = 'medication' AND NOT negated AND drug_class LIKE '%[NSAID]%') ORDER BY 1")
    assert query(table, sql)[1] == [("P1",), ("p7.json",)]  # ibuprofen is an "other NSAID"; aspirin (P2) a salicylate


def test_on_a_generated_corpus_the_answer_is_the_generators_truth(notes_kb, tmp_path):
    notes = write_corpus(tmp_path / "notes", 30, seed=5)
    run_extraction(tmp_path / "notes", tmp_path / "t.parquet", knowledge=notes_kb.store.path)
    headache = {n["patient_id"] for n in notes for f in n["findings"]
                if f["kind"] == "problem" and f["name"] == "headache" and not f["negated"] and not f["uncertain"]}
    nsaid = {n["patient_id"] for n in notes for f in n["findings"]
             if f["kind"] == "medication" and f["name"] in CLASSED_NSAIDS and not f["negated"]}
    want = sorted(headache & nsaid)
    assert want and [r[0] for r in query(tmp_path / "t.parquet", HEADACHE_AND_NSAID)[1]] == want


@pytest.mark.parametrize("sql", [
    "COPY findings TO '{tmp}/out.csv'",
    "COPY (SELECT * FROM findings) TO '{tmp}/out.parquet' (FORMAT parquet)",
    "ATTACH '{tmp}/other.db' AS other",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "CREATE TABLE copy AS SELECT * FROM findings",
    "PRAGMA database_list",
    "SELECT 1; SELECT 2",
    "EXPORT DATABASE '{tmp}/dump'",
])
def test_a_statement_that_is_not_one_select_is_refused_before_it_runs(table, tmp_path, sql):
    with pytest.raises(QueryRefusedError) as err:
        query(table, sql.format(tmp=tmp_path))
    assert err.value.code == "query_refused" and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("sql", ["SELECT * FROM read_csv('/etc/passwd')", "SELECT * FROM read_text('/etc/hostname')",
                                 "SELECT * FROM glob('/etc/*')", "SELECT count(*) FROM '{table}.parts/*.parquet'",
                                 "SELECT * FROM read_parquet('{tmp}/*.parquet')"])
def test_a_select_that_reads_other_files_is_refused(table, tmp_path, sql):
    with pytest.raises(QueryRefusedError, match="only the views findings and patients"):
        query(table, sql.format(tmp=tmp_path, table=table))


def test_output_as_a_table_json_or_csv(table, capsys):
    sql = "SELECT patient, medications FROM patients WHERE patient IN ('P1', 'P2') ORDER BY patient"
    assert cohort(str(table), sql) == 0
    assert capsys.readouterr().out.splitlines() == ["patient  medications", "-------  -----------",
                                                    "P1       Ibuprofen", "P2       Aspirin", "(2 rows)"]
    assert cohort(str(table), sql, json=True) == 0
    assert json.loads(capsys.readouterr().out) == [{"patient": "P1", "medications": ["Ibuprofen"]},
                                                   {"patient": "P2", "medications": ["Aspirin"]}]
    assert cohort(str(table), sql, csv=True) == 0
    assert capsys.readouterr().out.splitlines() == ["patient,medications", 'P1,"[""Ibuprofen""]"',
                                                    'P2,"[""Aspirin""]"']


def test_the_parts_of_an_interrupted_run_can_be_asked_too(table):
    assert query(parts_dir(table), "SELECT count(DISTINCT patient) FROM patients")[1] == [(7,)]


def test_bad_input_is_a_typed_error_and_the_command_says_so(table, tmp_path, capsys):
    with pytest.raises(CohortQueryError) as err:
        query(table, "SELEC patient FROM patients")
    assert err.value.code == "bad_query"
    with pytest.raises(CohortQueryError, match="no_such_column"):
        query(table, "SELECT no_such_column FROM findings")
    with pytest.raises(MissingDataError):
        query(tmp_path / "absent.parquet", "SELECT 1")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"x": [1]}), tmp_path / "other.parquet")
    with pytest.raises(InputError, match="not a findings table"):
        query(tmp_path / "other.parquet", "SELECT 1")
    from multimodal.cli import main

    assert main(["cohort", str(table), "COPY findings TO 'x.csv'"]) == 2
    assert capsys.readouterr().err.startswith("medany cohort: input problem: Only a SELECT is run here, not COPY")
