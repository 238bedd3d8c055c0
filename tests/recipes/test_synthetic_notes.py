"""The synthetic notes: deterministic, in three formats, and their truth is what the notes say."""

from __future__ import annotations

import json
from collections import Counter

from recipes.synthetic_notes import corpus, main


def test_the_same_seed_gives_the_same_notes_and_another_seed_others():
    assert corpus(40, seed=1) == corpus(40, seed=1) != corpus(40, seed=2)


def test_the_truth_is_what_each_note_says_and_the_header_names_its_patient():
    notes = corpus(200, seed=0)
    assert Counter(n["note_id"].rsplit(".", 1)[1] for n in notes).keys() == {"txt", "md", "json"}
    for n in notes:
        text = json.loads(n["content"])["text"] if n["note_id"].endswith(".json") else n["content"]
        assert n["content"].count(n["patient_id"]) == 1
        for f in n["findings"]:
            said = f.get("said", f["name"])
            assert said in text or said.capitalize() in text
            if f["kind"] == "medication" and f["negated"]:
                assert f"Stopped taking {said}." in text
            if f["kind"] == "problem" and f["uncertain"]:
                assert f"Possible {said}." in text
    kinds = Counter((f["kind"], f["negated"]) for n in notes for f in n["findings"])
    assert all(kinds[k] > 10 for k in [("problem", False), ("problem", True), ("medication", False),
                                       ("medication", True), ("allergy", False)])
    assert len({n["patient_id"] for n in notes}) < len(notes)  # patients have several notes


def test_the_command_writes_the_notes_and_their_truth(tmp_path):
    assert main([str(tmp_path / "notes"), "--n", "12", "--truth", str(tmp_path / "truth.jsonl")]) == 0
    truth = [json.loads(line) for line in (tmp_path / "truth.jsonl").read_text().splitlines()]
    assert sorted(p.relative_to(tmp_path / "notes").as_posix() for p in (tmp_path / "notes").rglob("*.*")) == sorted(
        t["note_id"] for t in truth)
