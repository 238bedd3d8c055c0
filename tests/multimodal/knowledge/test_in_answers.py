"""Knowledge rows join the evidence with their citations; an invented citation is a contradiction."""

from __future__ import annotations

import pytest

from multimodal.evidence import knowledge_evidence, transcript_evidence
from multimodal.grounding import check
from tests.multimodal.knowledge.kb_helpers import build_small


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    return build_small(tmp_path_factory.mktemp("kb") / "kb.sqlite")


def test_an_invented_citation_contradicts_the_evidence(kb):
    ev = [knowledge_evidence(kb.get("ICD-10 G44.209"))]
    assert check("The code is G44.209 [ICD-10 G44.209].", ev).ok
    g = check("The code is G44.201 [ICD-10 G44.201].", ev)
    assert [(i.kind, i.said) for i in g.issues] == [("citation", "ICD-10 G44.201")]
    assert not check("Naproxen [DrugBank DB00788] may help.", ev).ok  # a real id, but not one found here


def test_an_invented_code_without_brackets_contradicts_too(kb):
    """The faithfulness benchmark's SmolLM2 answers wrote "ICD-10 R32.48" and "HPO:012489; HPO:013765" unbracketed."""
    ev = [knowledge_evidence(kb.get("ICD-10 G44.209")), knowledge_evidence(kb.get("DrugBank DB00788"))]
    g = check("Code it as ICD-10 R32.48. See HPO:012489; HP:0002315. Also ICD-10-CM G44.201.", ev)
    assert [i.said for i in g.issues] == ["ICD-10 R32.48", "HPO:012489", "HPO:0002315", "ICD-10 G44.201"]
    assert check("Code it as ICD-10-CM G44.209; naproxen is DrugBank DB00788.", ev).ok
    assert check("Naproxen is MedlinePlus a681029 [MedlinePlus a681029].", ev).ok  # an id the row states
    assert not check("Naproxen is MeSH D016861.", ev).ok  # one it does not
    assert check("The ICD-10 codes are in the table; HPO terms too.", ev).ok  # names of sources, no codes


def test_a_bare_code_the_evidence_does_not_give_contradicts_it(kb):
    """The tools benchmark's 1.5B answers wrote "... a flat bicycle tyre is covered by the ICD-10 code **J95.2**"
    and "DrugBank ID: DB01234" for made-up names, with no row found."""
    ev = [knowledge_evidence(kb.get("ICD-10 G44.209"))]
    g = check("A flat bicycle tyre is covered by the ICD-10 code **J95.2**. Its DrugBank ID: DB01234.", ev)
    assert [i.said for i in g.issues] == ["ICD-10 J95.2", "DrugBank DB01234"]
    assert check("Bill G44.209 [ICD-10 G44.209].", ev).ok  # the row's own code, bare and cited: no double count
    assert [i.said for i in check("Bill G44.209 [ICD-10 G44.209].", ev).issues] == []
    assert check("Take vitamin B12 and 1.5 L of water; see room A12, version v2.3.", ev).ok  # no dotted code


def test_knowledge_names_never_license_a_claim_about_the_patient(kb):
    """A knowledge row about migraine must not let an answer say the patient reported migraine."""
    said = "I have had a headache for two days."
    ev = [transcript_evidence("Audio 1", f'recording, transcript: "{said}"', said),
          knowledge_evidence(kb.get("OMIM:157300"))]
    assert [i.said for i in check("The patient reported nausea.", ev).issues] == ["nausea"]


def test_the_pipeline_adds_the_rows_the_question_and_transcript_name(kb, tmp_path):
    from multimodal.config import StackConfig
    from multimodal.io.types import AudioClip  # noqa: F401 - the plan takes decoded media
    from multimodal.pipeline import Assistant, Request
    from multimodal.prompt import CITE_KNOWLEDGE

    assistant = Assistant.load(StackConfig(llm="tiny-random", vision="", speech="", max_new_tokens=4,
                                           knowledge=str(kb.store.path)))
    assistant._knowledge = kb
    consult = transcript_evidence("Consultation", 'recording, transcript: "I took Aleve for my headaches."',
                                  "I took Aleve for my headaches.")
    plan = assistant.plan(Request("What is the ICD-10 code for a tension headache?"), context=[consult])
    rows = [e for e in plan.context if e.source == "knowledge"]
    assert [r.facts["citation"][0] for r in rows][:1] == ["ICD-10 G44.209"]
    assert {"DrugBank DB00788", "HPO:0002315"} <= {r.facts["citation"][0] for r in rows}
    messages, _ = assistant.build_messages(Request("What is the ICD-10 code for a tension headache?"), plan=plan)
    assert "[ICD-10 G44.209] Tension-type headache, unspecified, not intractable" in messages[-1]["content"]
    assert CITE_KNOWLEDGE in messages[-1]["content"]
    quiet = Assistant.load(StackConfig(llm="tiny-random", vision="", speech="", use_tools=False,
                                       knowledge=str(kb.store.path)))
    quiet._knowledge = kb
    assert not [e for e in quiet.plan(Request("ICD-10 code for tension headache?")).context]  # --no-tools


def test_a_lookup_that_finds_nothing_says_so_in_the_prompt(kb):
    import numpy as np

    from multimodal.config import StackConfig
    from multimodal.io.types import MedicalImage
    from multimodal.pipeline import Assistant, Request

    assistant = Assistant.load(StackConfig(llm="tiny-random", vision="", speech="", max_new_tokens=4,
                                           knowledge=str(kb.store.path)))
    assistant._knowledge = kb
    rows = assistant.plan(Request("What is the ICD-10 code for a broken spaceship engine?")).context
    assert [r.text for r in rows] == ["no match: no row of MedAny's knowledge base (ICD-10-CM codes) answers this "
                                      "question; say so and write no code or id"]
    found = assistant.plan(Request("What is the ICD-10 code for a tension headache?")).context
    assert not any(r.text.startswith("no match") for r in found)
    assert not assistant.plan(Request("How are you today?")).context  # no lookup asked: no line
    # The faithfulness benchmark: with the line, the 0.5B model answered a photo's runner-up ("crab").
    photo = MedicalImage(np.zeros((8, 8, 3), np.float32), {}, "photo")
    assert not assistant.plan(Request("What food is in this photo?", [photo])).context  # the photo is asked


def test_a_code_written_without_its_citation_gets_it(kb):
    from multimodal.grounding import citation_suffix

    ev = [knowledge_evidence(kb.get("ICD-10 G44.209")), knowledge_evidence(kb.get("DrugBank DB00788"))]
    assert citation_suffix("G44.209", ev) == " [ICD-10 G44.209]"
    assert citation_suffix("The code is G44.209 [ICD-10 G44.209].", ev) == ""
    assert citation_suffix("Use G44.209. It is billable.", ev) == "\n\nSources: [ICD-10 G44.209]"
    assert citation_suffix("G44.2099 is not a code here, nor is XG44.209", ev) == ""


def test_a_number_quoted_from_a_row_cites_it_and_a_named_concept_answers_alone(kb):
    from multimodal.grounding import citation_suffix

    ev = [knowledge_evidence(kb.get("USDA FDC 173944"))]
    assert citation_suffix("A banana has 89 kcal per 100 g.", ev) == " [USDA FDC 173944]"
    assert [h.citation for h in kb.search("Which drug is Aleve?")] == ["DrugBank DB00788"]
