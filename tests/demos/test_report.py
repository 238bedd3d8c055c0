"""Conversation export: Markdown for people, JSON for systems, no file names."""

import json

from demos.report import DISCLAIMER, SCHEMA, Report, history_to_turns


def _report():
    history = [{"role": "user", "content": "What does this show?"},
               {"role": "assistant", "content": [{"type": "text", "text": "A chest film | PA view."}]}]
    return Report(workspace="clinician", turns=history_to_turns(history),
                  images=[{"modality": "CR", "body_part": "CHEST", "view": "PA", "rows": 1955, "cols": 1841,
                           "spacing_mm": (0.1, 0.1)}],
                  tables={"Meal": {"headers": ["Food", "Grams"], "rows": [["banana", 120]]}},
                  models={"llm": "tiny-random"})


def test_json_round_trip():
    data = json.loads(_report().to_json())
    assert data["schema"] == SCHEMA and data["workspace"] == "clinician"
    assert data["turns"][1] == {"role": "assistant", "content": "A chest film | PA view."}
    assert data["images"][0]["modality"] == "CR" and data["disclaimer"] == DISCLAIMER


def test_markdown_sections():
    md = _report().to_markdown()
    assert md.startswith("# MedAny clinician report")
    assert DISCLAIMER in md
    assert "- Image 1: modality CR, body part CHEST, view PA, 1955 x 1841 px, pixel spacing 0.1 x 0.1 mm" in md
    assert "| banana | 120 |" in md
    assert "**Question:**" in md and "**MedAny:**" in md


def test_write_files(tmp_path):
    md, js = _report().write(tmp_path, stem="r")
    assert md.read_text().startswith("# MedAny") and json.loads(js.read_text())["workspace"] == "clinician"


def test_the_rows_the_answers_cite_travel_with_the_report(tmp_path):
    from tests.multimodal.knowledge.kb_helpers import build_small

    kb = build_small(tmp_path / "kb.sqlite")
    report = Report(workspace="consult", turns=[
        {"role": "user", "content": "Which code is a tension headache? [HPO:0002315]"},  # the user's brackets: no
        {"role": "assistant", "content": "G44.209 [ICD-10 G44.209]; naproxen [DrugBank DB00788]; [ICD-10 Q00.0]"}])
    report.cite(kb)
    assert [r["citation"] for r in report.sources] == ["ICD-10 G44.209", "DrugBank DB00788"]  # unknown ones: none
    assert json.loads(report.to_json())["sources"][1]["name"] == "Naproxen"
    assert "## Sources\n\n- [ICD-10 G44.209] Tension-type headache, unspecified" in report.to_markdown()
    assert Report(workspace="consult").cite(None).sources == []
