"""The built-in tools: schemas that constrained decoding accepts, checked arguments, cited results."""

from __future__ import annotations

import json

import pytest

from multimodal.structured import check_schema
from multimodal.tools import builtin  # noqa: F401  (registers the tools)
from multimodal.tools.registry import TOOLS, ToolContext, ToolError
from tests.multimodal.knowledge.kb_helpers import build_small


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    return ToolContext(knowledge=build_small(tmp_path_factory.mktemp("kb") / "kb.sqlite"))


def test_every_tool_has_a_schema_the_decoder_can_guarantee():
    assert list(TOOLS) == ["icd10_lookup", "phenotype_lookup", "drug_lookup", "nutrient_lookup", "dicom_metadata",
                           "transcribe"]
    for t in TOOLS.values():
        check_schema(t.parameters)
        assert t.description and all(p.get("description") for p in t.parameters["properties"].values())
    assert TOOLS["nutrient_lookup"].parameters["required"] == ["food"]
    assert TOOLS["nutrient_lookup"].openai()["function"]["parameters"]["properties"]["grams"]["type"] == "number"


def test_lookups_answer_with_citations(context):
    rows = TOOLS["icd10_lookup"].call({"query": "tension headache"}, context)["results"]
    assert rows[0]["citation"] == "ICD-10 G44.209"
    assert TOOLS["drug_lookup"].call('{"name": "Aleve"}', context)["results"][0]["citation"] == "DrugBank DB00788"
    phen = TOOLS["phenotype_lookup"].call({"query": "headaches"}, context)
    assert phen["results"][0]["citation"] == "HPO:0002315" and phen["diseases"][0]["citation"] == "OMIM:157300"
    assert TOOLS["icd10_lookup"].call({"query": "broken spaceship engine"}, context) == {"results": [],
                                                                                         "no_match": True}


def test_nutrients_scale_with_the_portion_and_come_from_the_table(context):
    out = TOOLS["nutrient_lookup"].call({"food": "banana", "grams": 150}, context)
    (row,) = out["results"]
    assert row["citation"] == "USDA FDC 173944" and row["grams"] == 150.0
    assert row["nutrients"]["energy_kcal"] == pytest.approx(89 * 1.5)
    json.dumps(out)  # plain JSON, ready to be a tool message


@pytest.mark.parametrize("name,arguments,message", [
    ("icd10_lookup", {}, "needs query"),
    ("icd10_lookup", {"query": 5}, "query must be string"),
    ("icd10_lookup", {"query": "x", "code": "G44"}, "takes no code"),
    ("nutrient_lookup", {"food": "banana", "grams": 10_000}, "between 0 and 5000"),
    ("nutrient_lookup", "{not json", "not valid JSON"),
    ("dicom_metadata", {"image": 2}, "no image 2"),
    ("transcribe", {"audio": 1}, "no recording 1"),
    ("drug_lookup", {"name": "x" * 501}, "too long"),
])
def test_wrong_arguments_are_named(context, name, arguments, message):
    with pytest.raises(ToolError, match=message):
        TOOLS[name].call(arguments, context)


def test_a_dicom_header_is_read_without_identifiers(context):
    from multimodal.io import load_image
    from multimodal.samples import resolve_sample

    image = load_image(resolve_sample("sample:RG1_UNCR.dcm"))
    out = TOOLS["dicom_metadata"].call({}, ToolContext(images=[image]))
    assert out["dicom"] and out["modality"] == "CR" and out["body_part"]
    assert not any(k in out for k in ("patient_name", "PatientName", "patient_id"))
    with pytest.raises(ToolError, match="No knowledge base"):
        TOOLS["icd10_lookup"].call({"query": "x"}, ToolContext())
