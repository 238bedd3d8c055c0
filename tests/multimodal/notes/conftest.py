from __future__ import annotations

import pytest

from tests.multimodal.notes.kb_notes import build_notes_kb


@pytest.fixture(scope="session")
def notes_kb(tmp_path_factory):
    """The small knowledge base with ICD-10-CM's headache codes and drug classes (see kb_notes)."""
    return build_notes_kb(tmp_path_factory.mktemp("notes-kb") / "kb.sqlite")
