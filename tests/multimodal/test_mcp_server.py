"""``medany mcp``: the tools over the Model Context Protocol, through the ``mcp`` package's own client."""

from __future__ import annotations

import json
import shutil

import pytest

from multimodal.mcp_server import McpTools, build_server
from multimodal.tools.registry import ToolError
from tests.multimodal.knowledge.kb_helpers import build_small

mcp = pytest.importorskip("mcp")


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    return build_small(tmp_path_factory.mktemp("kb") / "kb.sqlite")


@pytest.fixture
def studies(tmp_path):
    from multimodal.samples import resolve_sample

    folder = tmp_path / "studies"
    folder.mkdir()
    shutil.copy(resolve_sample("sample:RG1_UNCR.dcm"), folder / "film.dcm")
    (tmp_path / "elsewhere.dcm").write_bytes((folder / "film.dcm").read_bytes())
    return folder


def run(coro_fn):
    import anyio

    return anyio.run(coro_fn)


def test_an_agent_lists_and_calls_the_knowledge_tools(kb):
    async def session():
        async with mcp.Client(build_server(McpTools(kb))) as client:
            listed = await client.list_tools()
            called = await client.call_tool("drug_lookup", {"name": "Aleve"})
            wrong = await client.call_tool("icd10_lookup", {"code": "G44"})
            unknown = await client.call_tool("dicom_metadata", {"path": "/etc/passwd"})
            return listed, called, wrong, unknown

    listed, called, wrong, unknown = run(session)
    assert [t.name for t in listed.tools] == ["icd10_lookup", "phenotype_lookup", "drug_lookup", "nutrient_lookup"]
    assert listed.tools[0].input_schema["required"] == ["query"]
    assert not called.is_error and called.structured_content["results"][0]["citation"] == "DrugBank DB00788"
    assert json.loads(called.content[0].text) == called.structured_content
    assert wrong.is_error and "takes no code" in wrong.content[0].text
    assert unknown.is_error and "Unknown tool" in unknown.content[0].text  # no media tools without a folder


def test_media_tools_read_only_inside_the_allowed_folders(kb, studies):
    tools = McpTools(kb, allow_files=[studies])
    assert [t["name"] for t in tools.offered()][-2:] == ["dicom_metadata", "transcribe"]
    out = tools.call("dicom_metadata", {"path": str(studies / "film.dcm")})
    assert out["dicom"] and out["modality"] == "CR"
    for outside in (studies.parent / "elsewhere.dcm", studies / ".." / "elsewhere.dcm", "/etc/passwd"):
        with pytest.raises(ToolError, match="outside the folders"):
            tools.call("dicom_metadata", {"path": str(outside)})
    with pytest.raises(ToolError, match="one argument, path"):
        tools.call("dicom_metadata", {"path": str(studies / "film.dcm"), "image": 2})
    from multimodal.errors import InputError

    (studies / "broken.dcm").write_bytes(b"DICM" * 10)
    with pytest.raises(InputError):
        tools.call("dicom_metadata", {"path": str(studies / "broken.dcm")})
