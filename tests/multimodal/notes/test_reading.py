"""Which files are notes, their text and patient; files that are no readable note are refused with a reason only."""

from __future__ import annotations

import json
import os

import pytest

from multimodal.notes.reading import NotReadable, note_files, read_note

SECRET = "Jane Q. Public, born 1961-04-02"


def test_notes_are_text_markdown_and_json_files_found_recursively_hidden_ones_left_out(tmp_path):
    for name in ("b.txt", "a/c.md", "a/d.json", "a/e.pdf", ".hidden.txt", ".cache/f.txt", "g.TXT"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    assert note_files(tmp_path) == ["a/c.md", "a/d.json", "b.txt", "g.TXT"]


@pytest.mark.parametrize("header, patient", [("Patient ID: P000123", "P000123"), ("MRN: 00-4417", "00-4417"),
                                             ("  patient-id = abc.9", "abc.9"), ("Patient: 77", "77"),
                                             ("Patient: Jane Doe", None), ("Seen with the patient: P1 today", None)])
def test_the_patient_is_the_identifier_of_a_header_line(tmp_path, header, patient):
    (tmp_path / "n.txt").write_text(f"Date: 2024-01-01\n{header}\n\nHeadache.")
    text, got = read_note(tmp_path, "n.txt")
    assert got == patient and text.endswith("Headache.")


def test_a_header_line_below_the_first_ten_is_no_header(tmp_path):
    (tmp_path / "n.txt").write_text("\n" * 10 + "Patient ID: P1\nHeadache.")
    assert read_note(tmp_path, "n.txt")[1] is None


def test_a_json_note_gives_its_text_and_patient(tmp_path):
    (tmp_path / "n.json").write_text(json.dumps({"patient_id": 42, "text": "No fever."}))
    assert read_note(tmp_path, "n.json") == ("No fever.", "42")


@pytest.mark.parametrize("name, data, reason", [
    ("bin.txt", b"\x89PNG\r\n\x1a\n\x00\x00" + SECRET.encode(), "binary, not text"),
    ("latin.txt", SECRET.encode() + "é".encode("latin-1"), "not UTF-8 text"),
    ("big.txt", SECRET.encode() * 10, "larger than the limit of 100 bytes"),
    ("bad.json", b"{" + SECRET.encode(), "not valid JSON"),
    ("list.json", json.dumps([SECRET]).encode(), 'JSON without a "text" string'),
])
def test_a_file_that_is_no_readable_note_is_refused_with_a_reason_that_quotes_nothing_of_it(tmp_path, name, data,
                                                                                           reason):
    (tmp_path / name).write_bytes(data)
    with pytest.raises(NotReadable, match=reason) as err:
        read_note(tmp_path, name, max_bytes=100)
    assert "Jane" not in str(err.value) and "1961" not in str(err.value)


def test_a_file_that_cannot_be_opened_is_refused(tmp_path):
    (tmp_path / "n.txt").symlink_to(tmp_path / "gone.txt")  # dangling: fails as a permission error would, as root too
    with pytest.raises(NotReadable, match=r"cannot be read \(FileNotFoundError\)"):
        read_note(tmp_path, "n.txt")


def test_a_fifo_is_not_opened(tmp_path):
    os.mkfifo(tmp_path / "pipe.txt")  # opening it would block
    with pytest.raises(NotReadable, match="not a regular file"):
        read_note(tmp_path, "pipe.txt")
