"""Linking, hybrid retrieval and abstention over a small knowledge base built in the test."""

from __future__ import annotations

import pytest

from tests.multimodal.knowledge.kb_helpers import build_small


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    return build_small(tmp_path_factory.mktemp("kb") / "kb.sqlite")


def test_the_store_records_its_manifest_and_edges(kb):
    assert kb.store.manifest["entities"] == 16 and kb.store.manifest["embedding"].startswith("bag")
    child = kb.get("ICD-10 G44.209")
    assert [p.citation for p in kb.related(child)] == ["ICD-10 G44.2"]
    migraine = kb.get("[OMIM:157300]")
    assert [p.citation for p in kb.related(migraine, "has_phenotype")] == ["HPO:0002315"]
    assert kb.get("ICD-10 Z99.999") is None


def test_link_finds_names_and_aliases_longest_first_without_overlaps(kb):
    hits = kb.link("I have had a tension headache and took Aleve and some paracetamol.")
    assert [(h.citation, h.how, h.mention) for h in hits] == [
        ("ICD-10 G44.209", "alias", "tension headache"), ("DrugBank DB00788", "alias", "Aleve"),
        ("DrugBank DB00316", "alias", "paracetamol")]
    assert [h.citation for h in kb.link("Headaches for three days")] == ["HPO:0002315"]  # a phenotype before a code


def test_link_tolerates_a_misspelling_but_not_a_stranger(kb):
    assert [(h.citation, h.how) for h in kb.link("took naproxin yesterday")] == [("DrugBank DB00788", "fuzzy")]
    assert kb.link("the weather is lovely") == []


def test_a_correctly_spelled_word_is_no_typo_of_a_name(kb):
    # "lasted" is one letter from Lastet (a brand of etoposide), but it is an English word
    assert kb.link("the headache lasted a week") == [kb.link("headache")[0]]
    assert [h.citation for h in kb.link("she was given lastet")] == ["DrugBank DB00773"]


def test_a_concept_named_by_an_everyday_word_is_searched_not_linked(kb):
    assert kb.link("she ate rice and a banana")[0].citation == "USDA FDC 173944"  # the rice is no drug
    assert len(kb.link("she ate rice and a banana")) == 1
    assert kb.search("Which drug is Rice?")[0].citation == "DrugBank DB10563"


def test_an_interrupted_build_leaves_nothing_behind(tmp_path):
    from multimodal.knowledge.store import build

    dead = _finished_pid()
    stale = tmp_path / f".kb.sqlite.{dead}.tmp"
    stale.write_bytes(b"half a database")
    build(tmp_path / "kb.sqlite", [], {"sources": {}})
    assert not stale.exists() and (tmp_path / "kb.sqlite").exists()


def _finished_pid() -> int:
    import subprocess

    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_search_fuses_lexical_and_dense_and_follows_the_asked_source(kb):
    hits = kb.search("What is the ICD-10 code for a tension headache?")
    assert hits and hits[0].citation == "ICD-10 G44.209" and all(h.kind == "diagnosis" for h in hits)
    assert kb.search("Which drug is Aleve?")[0].citation == "DrugBank DB00788"
    assert kb.search("How much potassium is in bananas? food")[0].citation == "USDA FDC 173944"


def test_search_abstains_when_nothing_answers(kb):
    assert kb.search("What is the capital of France?") == []
    assert kb.search("ICD-10 code for a broken spaceship engine") == []


def test_the_graph_view_holds_is_a_and_phenotype_edges(kb):
    from multimodal.knowledge.graph import ancestry, describe, neighbourhood

    g = neighbourhood(kb, "HPO:0002315")
    assert g.edges["OMIM:157300", "HPO:0002315"]["rel"] == "has_phenotype"
    assert g.nodes["OMIM:157300"]["name"] == "Migraine with or without aura 1"
    assert ancestry(kb, "ICD-10 G44.209") == ["ICD-10 G44.209", "ICD-10 G44.2"]
    lines = describe(kb, "HPO:0002315")
    assert lines[0].startswith("[HPO:0002315] Headache") and "diseases with it (1): Migraine" in lines[-1]
    with pytest.raises(KeyError, match="Z99"):
        neighbourhood(kb, "ICD-10 Z99.999")


def test_a_named_icd10_category_gives_way_to_its_billable_codes(kb):
    hits = kb.search("ICD-10 code for tension-type headache")
    assert (hits[0].citation, hits[0].detail) == ("ICD-10 G44.209", "billable")
    assert "ICD-10 G44.2" not in [h.citation for h in hits]  # a category is no code to bill
    assert kb.billable_under(kb.get("HPO:0002315")) == []


def test_the_most_general_billable_code_comes_first(kb):
    """The unspecified subdivision (character 9) first, then the fewest added details, then code order."""
    codes = [h.code for h in kb.billable_under(kb.get("ICD-10 E11"))]
    assert codes == ["E11.9", "E11.65", "E11.8"]
    assert [h.code for h in kb.search("ICD-10 code for type 2 diabetes mellitus")][:1] == ["E11.9"]


def test_an_upgrade_removes_the_knowledge_bases_of_older_formats(tmp_path):
    from multimodal.knowledge.build import NAME, remove_other_formats

    for name in ("kb-1.sqlite", "kb-2.sqlite", NAME, "notes.txt"):
        (tmp_path / name).write_text("x")
    assert sorted(p.name for p in remove_other_formats(tmp_path)) == ["kb-1.sqlite", "kb-2.sqlite"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([NAME, "notes.txt"])
