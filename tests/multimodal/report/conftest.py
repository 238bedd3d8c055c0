"""Fixtures for reports: the sample chest film read for a report, and the tiny stack answering scripted JSON."""

from __future__ import annotations

import pytest

KEY = b"report-tests"
TINY = dict(llm="tiny-random", vision="tiny_vit", speech="", knowledge="none", max_new_tokens=16)


@pytest.fixture(scope="session")
def tiny_stack():
    from multimodal.config import StackConfig
    from multimodal.pipeline import Assistant

    return Assistant.load(StackConfig(**TINY))


@pytest.fixture
def chest():
    """The sample chest film (``RG1_UNCR.dcm``) read for a report, its UIDs remapped with :data:`KEY`."""
    from multimodal.io.deid import UidMapper
    from multimodal.report import read_study

    return read_study(["sample:RG1_UNCR.dcm"], UidMapper(KEY))

