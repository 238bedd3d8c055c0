"""The dispatcher: SDPA fallback equals the reference; env override; lazy triton import."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from multimodal.kernels.dispatch import (
    attention,
    attention_backend,
    forced_attention_backend,
    select_backend,
    set_attention_backend,
)
from multimodal.kernels.reference import reference_attention


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64,
                       requires_grad=True)


CASES = {
    "spans": dict(mask_kind="causal_spans", span_ids=torch.tensor([[0, 1, 1, 1, 0, 2, 2, 0, 0]] * 2)),
    "causal": dict(mask_kind="causal"),
    "full": dict(mask_kind="full"),
    "padded_spans": dict(mask_kind="causal_spans", span_ids=torch.tensor([[0, 0, 1, 1, 1, 0, 0, 0, 0]] * 2),
                         kv_padding=torch.tensor([[False] * 2 + [True] * 7, [False] * 9])),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_sdpa_path_equals_reference(case):
    kw = CASES[case]
    q, k, v = rand(2, 4, 9, 8, seed=1), rand(2, 2, 9, 8, seed=2), rand(2, 2, 9, 8, seed=3)
    out = attention(q, k, v, backend="sdpa", **kw)
    ref = reference_attention(q, k, v, **kw)
    torch.testing.assert_close(out, ref)
    do = torch.randn_like(out)
    for a, b in zip(torch.autograd.grad(out, (q, k, v), do), torch.autograd.grad(ref, (q, k, v), do)):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b)


def test_sdpa_cross_attention_decoding_and_packed():
    q, k, v = rand(1, 2, 3, 8, seed=4), rand(1, 2, 11, 8, seed=5), rand(1, 2, 11, 8, seed=6)
    for kind in ("full", "causal"):
        torch.testing.assert_close(attention(q, k, v, mask_kind=kind), reference_attention(q, k, v, mask_kind=kind))
    span = torch.tensor([[0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0]])
    cu = torch.tensor([0, 5, 11])
    qp = rand(1, 2, 11, 8, seed=7)
    out = attention(qp, k, v, mask_kind="causal_spans", span_ids=span, cu_seqlens=cu)
    ref = reference_attention(qp, k, v, mask_kind="causal_spans", span_ids=span, cu_seqlens_q=cu, cu_seqlens_k=cu)
    torch.testing.assert_close(out, ref)
    # span ids of None mean plain causal
    torch.testing.assert_close(attention(qp, k, v, mask_kind="causal_spans"),
                               reference_attention(qp, k, v, mask_kind="causal"))


def test_backend_selection_and_override():
    with forced_attention_backend(None):
        assert select_backend(torch.device("cpu")) == "sdpa"
        assert select_backend(torch.device("cuda")) == "triton"
    with forced_attention_backend("reference"):
        assert select_backend(torch.device("cuda")) == "reference" and attention_backend() == "reference"
        q = rand(1, 2, 6, 8, seed=8)
        torch.testing.assert_close(attention(q, q, q, mask_kind="causal"),
                                   reference_attention(q, q, q, mask_kind="causal"))
    with pytest.raises(ValueError, match="attention backend"):
        set_attention_backend("cuda-magic")


def test_the_environment_sets_the_backend_once_at_import():
    code = ("import torch\nfrom multimodal.kernels import select_backend\n"
            "assert select_backend(torch.device('cpu')) == 'reference'\n")
    env = {**__import__("os").environ, "MEDANY_ATTENTION": "reference"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)
    bad = subprocess.run([sys.executable, "-c", "import multimodal.kernels"], capture_output=True, text=True,
                         env={**env, "MEDANY_ATTENTION": "cuda-magic"}, timeout=120)
    assert bad.returncode != 0 and "MEDANY_ATTENTION" in bad.stderr


def test_forced_triton_runs_the_kernel_on_cpu():
    pytest.importorskip("triton")
    q, k, v = rand(1, 2, 20, 16, seed=9), rand(1, 1, 20, 16, seed=10), rand(1, 1, 20, 16, seed=11)
    span = torch.tensor([[0] * 4 + [1] * 10 + [0] * 6])
    with forced_attention_backend("triton"):
        out = attention(q, k, v, mask_kind="causal_spans", span_ids=span)
    torch.testing.assert_close(out, reference_attention(q, k, v, mask_kind="causal_spans", span_ids=span))


def test_cpu_path_does_not_import_triton():
    code = (
        "import sys, torch\n"
        "from multimodal.kernels import attention\n"
        "q = torch.randn(1, 2, 5, 8)\n"
        "attention(q, q, q, mask_kind='causal_spans', span_ids=torch.tensor([[0, 1, 1, 0, 0]]))\n"
        "assert 'triton' not in sys.modules, 'triton imported'\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "MEDANY_ATTENTION"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)


def test_span_length_must_match_keys():
    q = rand(1, 2, 5, 8, seed=12)
    with pytest.raises(ValueError, match="span_ids"):
        attention(q, q, q, span_ids=torch.zeros(1, 4, dtype=torch.long))
