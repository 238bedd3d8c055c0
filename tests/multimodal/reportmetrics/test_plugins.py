"""Learned-metric plug-ins: the typed refusals (package, weights, GPU), and CheXbert's loader on a tiny checkpoint.

No real weights are reachable here, so the present path of RadGraph and GREEN is not run; CheXbert's is, with a
random BERT of the published checkpoint's layout (the loading and label mapping, not the labels' quality).
"""

import pytest
import torch

from multimodal.errors import MetricUnavailableError
from multimodal.reportmetrics import LABELS, label_f1, plugins


@pytest.fixture(autouse=True)
def no_cached_weights(monkeypatch):
    monkeypatch.setattr(plugins, "_hub_cached", lambda *a: None)
    for name in ("MEDANY_CHEXBERT", "MEDANY_CHEXBERT_BERT", "MEDANY_GREEN_MODEL", "MEDANY_RADGRAPH_DIR"):
        monkeypatch.delenv(name, raising=False)


def refusal(name: str) -> MetricUnavailableError:
    with pytest.raises(MetricUnavailableError) as caught:
        plugins.compute(name, ["No effusion."], ["Small effusion."])
    return caught.value


def test_a_missing_package_is_not_installed(monkeypatch):
    monkeypatch.setattr(plugins.importlib.util, "find_spec", lambda name: None)
    for name in plugins.PLUGINS:
        err = refusal(name)
        assert err.code == "not_installed" and err.metric == name and "pip install" in str(err)


def test_absent_weights_are_weights_absent(monkeypatch, tmp_path):
    assert refusal("chexbert").code == "weights_absent"
    monkeypatch.setattr(plugins.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setenv("MEDANY_RADGRAPH_DIR", str(tmp_path))  # a cache folder without radgraph-xl/weights.th
    assert refusal("radgraph").code == "weights_absent"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert refusal("green").code == "weights_absent"


def test_green_needs_a_gpu(monkeypatch):
    monkeypatch.setattr(plugins.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert refusal("green").code == "needs_gpu"
    assert plugins.status("green").startswith("needs_gpu")


def tiny_chexbert(folder):
    """A random BERT (2 layers of 16) and 14 heads saved as the published checkpoint is: model_state_dict with
    DataParallel's ``module.`` prefix; the config and vocabulary in their own folder."""
    from transformers import BertConfig

    from multimodal.reportmetrics.chexbert import CheXbert

    bert = folder / "bert"
    bert.mkdir()
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "no", "small", "pleural", "effusion", "."]
    (bert / "vocab.txt").write_text("\n".join(words) + "\n")
    BertConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
               intermediate_size=32, max_position_embeddings=64).save_pretrained(bert)
    torch.manual_seed(0)
    state = {f"module.{k}": v for k, v in CheXbert(bert).state_dict().items()}
    torch.save({"model_state_dict": state, "epoch": 1}, folder / "chexbert.pth")
    return folder / "chexbert.pth", bert


def test_chexbert_runs_from_a_local_checkpoint_and_scores_its_labels(monkeypatch, tmp_path):
    checkpoint, bert = tiny_chexbert(tmp_path)
    monkeypatch.setenv("MEDANY_CHEXBERT", str(checkpoint))
    monkeypatch.setenv("MEDANY_CHEXBERT_BERT", str(bert))
    assert plugins.status("chexbert") == "ready"
    gen, ref = ["No pleural effusion.", "Small effusion."], ["Small pleural effusion.", "No effusion."]
    out = plugins.compute("chexbert", gen, ref)
    for labels in out["chexbert_generated_labels"] + out["chexbert_reference_labels"]:
        assert set(labels) == set(LABELS) and set(labels.values()) <= {1, 0, -1, None}
        assert labels["No Finding"] in (1, None)
    again = label_f1(out["chexbert_generated_labels"], out["chexbert_reference_labels"], "positive")
    assert out["chexbert"]["positive"] == again


def test_a_checkpoint_of_another_model_is_refused(monkeypatch, tmp_path):
    _, bert = tiny_chexbert(tmp_path)
    torch.save({"model_state_dict": {"classifier.weight": torch.zeros(2, 16)}}, tmp_path / "other.pth")
    monkeypatch.setenv("MEDANY_CHEXBERT", str(tmp_path / "other.pth"))
    monkeypatch.setenv("MEDANY_CHEXBERT_BERT", str(bert))
    err = refusal("chexbert")
    assert err.code == "failed" and "not a CheXbert checkpoint" in str(err)
