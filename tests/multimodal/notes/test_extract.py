"""medany extract: a folder of notes into one table, resumable after an interruption, bad files skipped quietly."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from multimodal.errors import InputError, MissingDataError
from multimodal.notes import extract as extract_module
from multimodal.notes.extract import parts_dir, run_extraction
from recipes.synthetic_notes import write_corpus

SECRET = "Jane Q. Public, born 1961-04-02"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus") / "notes"
    return folder, write_corpus(folder, 24, seed=3)


def _rows(path):
    return pq.read_table(path).to_pylist()


def test_every_note_becomes_rows_of_one_table_with_its_patient(corpus, notes_kb, tmp_path):
    folder, notes = corpus
    summary = run_extraction(folder, tmp_path / "t.parquet", batch=10, knowledge=notes_kb.store.path)
    rows = _rows(tmp_path / "t.parquet")
    assert (summary.notes, summary.read, summary.before, summary.skipped) == (24, 24, 0, [])
    assert summary.findings == len(rows) > 24
    assert {r["note_id"] for r in rows} == {n["note_id"] for n in notes}
    assert {(r["note_id"], r["patient_id"]) for r in rows} == {(n["note_id"], n["patient_id"]) for n in notes}
    assert sorted(p.name for p in parts_dir(tmp_path / "t.parquet").glob("part-*")) == [
        "part-000001.parquet", "part-000002.parquet", "part-000003.parquet"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.parquet", "t.parquet.parts"]  # nothing else written


def test_an_interrupted_run_leaves_whole_parts_and_the_next_run_reads_only_the_rest(corpus, notes_kb, tmp_path,
                                                                                   monkeypatch):
    folder, _ = corpus
    kb = notes_kb.store.path
    run_extraction(folder, tmp_path / "clean.parquet", batch=5, knowledge=kb)
    read = []

    def interrupted(text, note_id, patient_id, coder):
        if len(read) == 12:
            raise KeyboardInterrupt
        read.append(note_id)
        return real(text, note_id, patient_id, coder)

    real = extract_module.note_rows
    monkeypatch.setattr(extract_module, "note_rows", interrupted)
    out = tmp_path / "t.parquet"
    with pytest.raises(KeyboardInterrupt):
        run_extraction(folder, out, batch=5, knowledge=kb)
    parts = sorted(parts_dir(out).glob("*.parquet*"))
    assert [p.name for p in parts] == ["part-000001.parquet", "part-000002.parquet"] and not out.exists()
    assert sum(pq.read_table(p).num_rows for p in parts) > 0  # whole, readable parts: notes 1-10

    read.clear()
    monkeypatch.setattr(extract_module, "note_rows", lambda *a: (read.append(a[1]), real(*a))[1])
    summary = run_extraction(folder, out, batch=5, knowledge=kb)
    assert (summary.before, summary.read, len(read)) == (10, 14, 14)
    assert _rows(out) == _rows(tmp_path / "clean.parquet")

    read.clear()
    again = run_extraction(folder, out, batch=5, knowledge=kb)
    assert (again.before, again.read, read) == (24, 0, []) and _rows(out) == _rows(tmp_path / "clean.parquet")
    restarted = run_extraction(folder, out, batch=5, knowledge=kb, restart=True)
    assert restarted.read == 24 and _rows(out) == _rows(tmp_path / "clean.parquet")


def test_two_worker_processes_write_the_same_table(corpus, notes_kb, tmp_path):
    folder, _ = corpus
    one = run_extraction(folder, tmp_path / "one.parquet", batch=8, knowledge=notes_kb.store.path)
    two = run_extraction(folder, tmp_path / "two.parquet", workers=2, batch=8, knowledge=notes_kb.store.path)
    assert two.read == one.read == 24
    assert _rows(tmp_path / "two.parquet") == _rows(tmp_path / "one.parquet")


def test_a_file_that_is_no_note_is_skipped_with_its_name_and_reason_never_its_content(notes_kb, tmp_path, capsys):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "good.txt").write_text("Patient ID: P1\nHeadache, no fever.")
    (folder / "scan.txt").write_bytes(b"\x00\x01" + SECRET.encode())
    (folder / "huge.md").write_text(SECRET * 100)
    out = tmp_path / "t.parquet"
    argv = [str(folder), "--out", str(out), "--knowledge", str(notes_kb.store.path), "--max-bytes", "1000",
            "--no-progress"]
    assert extract_module.main(argv) == 1
    err = capsys.readouterr().err
    assert "skipped scan.txt: binary, not text" in err and "skipped huge.md: larger than the limit" in err
    assert "Jane" not in err and "Headache" not in err
    assert {(r["note_id"], r["text"], r["negated"]) for r in _rows(out)} == {("good.txt", "Headache", False),
                                                                             ("good.txt", "fever", True)}
    (folder / "scan.txt").write_text("Takes ibuprofen.")  # fixed: the next run reads the two skipped, not good.txt
    assert extract_module.main(argv[:-3] + ["--max-bytes", "10000", "--no-progress"]) == 0
    assert "2 notes read" in capsys.readouterr().err
    assert {r["note_id"] for r in _rows(out)} == {"good.txt", "scan.txt"}  # huge.md names nothing: no rows


def test_bad_input_is_a_typed_error_and_the_command_says_so_without_a_traceback(notes_kb, tmp_path, capsys):
    kb = notes_kb.store.path
    (tmp_path / "notes").mkdir()
    with pytest.raises(MissingDataError):
        run_extraction(tmp_path / "absent", tmp_path / "t.parquet", knowledge=kb)
    with pytest.raises(InputError) as err:
        run_extraction(tmp_path / "notes", tmp_path, knowledge=kb)
    assert err.value.code == "bad_output"
    with pytest.raises(InputError, match="does not exist"):
        run_extraction(tmp_path / "notes", tmp_path / "no" / "t.parquet", knowledge=kb)
    with pytest.raises(MissingDataError):
        run_extraction(tmp_path / "notes", tmp_path / "t.parquet", knowledge=tmp_path / "absent.sqlite")
    from multimodal.cli import main

    assert main(["extract", str(tmp_path / "absent"), "--out", str(tmp_path / "t.parquet")]) == 2
    assert capsys.readouterr().err.startswith("medany extract: input problem: The notes folder does not exist")


def test_parts_of_another_layout_are_refused_rather_than_mixed_in(notes_kb, tmp_path):
    import pyarrow as pa

    (tmp_path / "notes").mkdir()
    parts = parts_dir(tmp_path / "t.parquet")
    parts.mkdir()
    pq.write_table(pa.table({"x": [1]}).replace_schema_metadata({"medany.format": "0"}), parts / "part-000001.parquet")
    with pytest.raises(InputError, match="another version"):
        run_extraction(tmp_path / "notes", tmp_path / "t.parquet", knowledge=notes_kb.store.path)
