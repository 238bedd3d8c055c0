"""Reading the published layouts: local folders (parquet, JSON, JSON lines, imgs.zip or imgs/) and the hub path
through ``datasets``, and the typed errors for a missing folder or a wrong layout."""

import json
import shutil
import zipfile

import pytest

from multimodal.bench import get_task
from multimodal.bench.command import load_split
from multimodal.bench.fixtures import render, write_fixture
from multimodal.bench.loaders import image_bytes, local_rows
from multimodal.errors import DataLayoutError, MissingDataError


def test_parquet_rows_carry_embedded_jpeg_images(tmp_path):
    spec = get_task("vqa_rad")
    ((config, loaded),) = load_split(spec, data=write_fixture(spec, tmp_path))
    assert config == "" and loaded.source == "local" and len(loaded.rows) == 6
    row = loaded.rows[0]
    assert set(row) == {"image", "question", "answer"} and row["question"] == "Is this a CT scan?"
    data = image_bytes(row["image"], "vqa_rad")
    assert data[:3] == b"\xff\xd8\xff" and data == render("sample:CT_small.dcm")


def test_hub_shard_names_with_a_hash_are_found(tmp_path):
    spec = get_task("pathvqa")
    folder = write_fixture(spec, tmp_path)
    shards = folder / "data"
    (shards / "test-00000-of-00001.parquet").rename(shards / "test-00000-of-00002-4e1c.parquet")
    shutil.copy(shards / "test-00000-of-00002-4e1c.parquet", shards / "test-00001-of-00002-9a0b.parquet")
    (_, loaded), = load_split(spec, data=folder)
    assert len(loaded.rows) == 10 and loaded.files == ["data/test-00000-of-00002-4e1c.parquet",
                                                        "data/test-00001-of-00002-9a0b.parquet"]


def test_slake_images_from_the_zip_or_the_unpacked_folder(tmp_path):
    spec = get_task("slake")
    folder = write_fixture(spec, tmp_path)
    (_, zipped), = load_split(spec, data=folder)
    want = render("sample:MR_small.dcm")
    assert zipped.image("xmlab902/source.jpg") == want
    with zipfile.ZipFile(folder / "imgs.zip") as zf:
        zf.extractall(folder)
    (folder / "imgs.zip").unlink()
    (_, unpacked), = load_split(spec, data=folder)
    assert unpacked.image("xmlab902/source.jpg") == want
    with pytest.raises(DataLayoutError, match="no image"):
        unpacked.image("../test.json")  # never outside imgs/
    shutil.rmtree(folder / "imgs")
    with pytest.raises(DataLayoutError, match="needs its images"):
        load_split(spec, data=folder)


def test_missing_folder_and_wrong_layout_are_typed_errors(tmp_path):
    spec = get_task("vqa_rad")
    with pytest.raises(MissingDataError, match="does not exist"):
        load_split(spec, data=tmp_path / "nowhere")
    (tmp_path / "test.csv").write_text("question,answer\n")
    with pytest.raises(DataLayoutError, match=r"expected data/test-\*\.parquet") as err:
        load_split(spec, data=tmp_path)
    assert str(tmp_path) not in str(err.value)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "test-0.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataLayoutError, match="cannot be read"):
        load_split(spec, data=tmp_path)
    (tmp_path / "test.json").write_text(json.dumps({"rows": "nope"}))
    with pytest.raises(DataLayoutError, match="not a JSON array"):
        local_rows(tmp_path, ("{split}.json",), "test", task="slake")


def test_a_split_other_than_the_default(tmp_path):
    spec = get_task("vqa_rad")
    folder = write_fixture(spec, tmp_path)
    (folder / "data" / "test-00000-of-00001.parquet").rename(folder / "data" / "train-00000-of-00001.parquet")
    (_, loaded), = load_split(spec, data=folder, split="train")
    assert loaded.files == ["data/train-00000-of-00001.parquet"]
    with pytest.raises(DataLayoutError, match="No test split"):
        load_split(spec, data=folder)


def test_image_values_without_bytes_are_refused():
    assert image_bytes({"bytes": b"\x89PNG", "path": "x.png"}) == b"\x89PNG"
    with pytest.raises(DataLayoutError, match="only a path"):
        image_bytes({"bytes": None, "path": "x.png"}, "vqa_rad")
    with pytest.raises(DataLayoutError, match="no image"):
        image_bytes(None, "vqa_rad")


@pytest.mark.parametrize("task, config", [("vqa_rad", None), ("mmlu_anatomy", "anatomy"),
                                          ("pubmedqa", "pqa_labeled"), ("slake", None)])
def test_the_hub_path_reads_the_same_rows_through_datasets(tmp_path, monkeypatch, task, config):
    """``--hub`` calls ``datasets.load_dataset(hub id, config, split=...)``; here that call is answered from the
    fixture in the hub's layout (no network), so the rows ``datasets`` builds (PIL images, class labels) go
    through the same items as the local reader's."""
    datasets = pytest.importorskip("datasets")
    huggingface_hub = pytest.importorskip("huggingface_hub")
    spec = get_task(task)
    folder = write_fixture(spec, tmp_path / "hub")
    real = datasets.load_dataset
    calls = []

    def offline(path, name=None, split=None):
        calls.append((path, name, split))
        assert path == spec.hub
        files = [str(p) for p in sorted(folder.glob(spec.files[0].format(split=split, config=name or "")))]
        kind = "json" if files[0].endswith(".json") else "parquet"
        return real(kind, data_files={split: files}, split=split, cache_dir=str(tmp_path / "cache"))

    monkeypatch.setattr(datasets, "load_dataset", offline)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download",
                        lambda repo_id, filename, repo_type: str(folder / filename))
    (_, hub), = load_split(spec, hub=True)
    (_, local), = load_split(spec, data=folder)
    assert calls == [(spec.hub, config, spec.split)] and hub.source == "hub"
    if spec.family == "vqa":
        from multimodal.bench.vqa import vqa_items
        from multimodal.io import load_image

        a, b = vqa_items(spec, hub), vqa_items(spec, local)
        assert [(i.question, i.answer, i.answer_type, i.fields) for i in a] == \
            [(i.question, i.answer, i.answer_type, i.fields) for i in b]
        assert load_image(a[0].image()).pixels.shape == load_image(b[0].image()).pixels.shape
    else:
        from multimodal.bench.choice import choice_items

        a, b = choice_items(spec, config or "", hub), choice_items(spec, config or "", local)
        assert [(i.context, i.choices, i.gold) for i in a] == [(i.context, i.choices, i.gold) for i in b]
