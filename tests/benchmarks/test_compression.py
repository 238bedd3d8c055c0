"""The compression benchmark's quality math against a hand computation on a tiny model, and its small helpers."""

import math

import torch

from benchmarks.compression import cpu_flags, greedy_identity, perplexity, window_quality
from multimodal.backbone import load_llm
from multimodal.quantize import quantize_llm


def test_perplexity_and_kl_match_a_hand_computation():
    model, _, _ = load_llm("tiny-random")
    ids = torch.randint(0, 256, (9,))
    with torch.no_grad():
        ref_logits = model(ids[None]).logits[0]  # [9, V]
        quantize_llm(model, "int8-dynamic")
        logits = model(ids[None]).logits[0]
    ref_nll, _, ref_lp = window_quality(ref_logits, ids, rows=3)  # chunking must not change anything
    nll, kl, _ = window_quality(logits, ids, ref_lp, rows=4)
    # by hand, one position at a time, in float64 with explicit sums
    for t in range(8):
        p = [math.exp(v) for v in ref_logits[t].double().tolist()]
        zp = sum(p)
        q = [math.exp(v) for v in logits[t].double().tolist()]
        zq = sum(q)
        target = int(ids[t + 1])
        assert math.isclose(float(nll[t]), -math.log(q[target] / zq), rel_tol=1e-5)
        assert math.isclose(float(ref_nll[t]), -math.log(p[target] / zp), rel_tol=1e-5)
        by_hand = sum(pi / zp * math.log((pi / zp) / (qi / zq)) for pi, qi in zip(p, q))
        assert abs(float(kl[t]) - by_hand) < 1e-6
    assert (kl >= -1e-7).all() and kl.max() > 0
    _, self_kl, _ = window_quality(ref_logits, ids, ref_lp)
    assert self_kl.abs().max() < 1e-6
    assert math.isclose(perplexity(nll), math.exp(float(nll.double().mean())), rel_tol=1e-9)


def test_greedy_identity_counts_equal_answers_and_common_prefixes():
    ref = [[1, 2, 3], [4, 5, 6], [7, 8]]
    same, prefix = greedy_identity(ref, [[1, 2, 3], [4, 9, 6], [0]])
    assert same == 1 / 3 and prefix == (3 + 1 + 0) / 3


def test_cpu_flags_are_the_known_ones():
    assert set(cpu_flags()) <= {"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile",
                                "amx_int8", "amx_bf16"}
