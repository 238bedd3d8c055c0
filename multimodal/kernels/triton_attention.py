"""Fused flash-attention-2 style Triton kernel with bidirectional image spans.

The only module in MedAny that imports triton. Forward: one program per (query tile,
batch*head); K/V tiles stream through SRAM with an online softmax, the base-2
log-sum-exp is saved for the backward. Backward: a small kernel computes
``delta = rowsum(dO * O)``, one kernel accumulates dK/dV per (key tile, KV head)
looping over the query heads of its GQA group, one accumulates dQ per query tile.

Letters: B batch, Hq query heads, Hkv key/value heads, Lq/Lk query/key tokens,
D head dim (DP: D padded to a power of two), N packed sequences.

Masks (see :mod:`multimodal.kernels.masks`): MASK_KIND 0 full, 1 causal, 2 causal with
image spans; causal masks are aligned bottom-right (``off = Lk - Lq``). Tile skipping:
a query tile needs keys up to its last diagonal, extended for span masks to the last
key of any span present in the tile (``span_last``); a key tile needs queries from its
diagonal, extended back to the first query of any span present (``span_first``). Tiles
wholly below the diagonal run without evaluating the mask.

Tests run this file under ``TRITON_INTERPRET=1`` (fp64 on CPU); on CUDA the forward
block sizes are autotuned.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

MASK_CODES = {"full": 0, "causal": 1, "causal_spans": 2}
LOG2E = 1.4426950408889634


# --------------------------------------------------------------------------- helpers
@triton.jit
def _seq_bounds(CU_Q, CU_K, b, Lq, Lk, IS_VARLEN: tl.constexpr):
    """(batch row, q start, q len, k start, k len) of sequence ``b``."""
    if IS_VARLEN:
        q_start = tl.load(CU_Q + b)
        q_len = tl.load(CU_Q + b + 1) - q_start
        k_start = tl.load(CU_K + b)
        k_len = tl.load(CU_K + b + 1) - k_start
        row = b * 0
    else:
        q_start = b * 0
        q_len = Lq + b * 0
        k_start = b * 0
        k_len = Lk + b * 0
        row = b
    return row, q_start, q_len, k_start, k_len


@triton.jit
def _allowed(offs_m, offs_n, q_len, k_len, off, span_q, SPAN_ROW, KVALID_ROW,
             MASK_KIND: tl.constexpr, HAS_KPAD: tl.constexpr):
    """Bool[BM, BN]: may query ``offs_m`` attend to key ``offs_n`` (local positions)."""
    n_ok = offs_n < k_len
    allowed = (offs_m < q_len)[:, None] & n_ok[None, :]
    if MASK_KIND >= 1:
        vis = offs_n[None, :] <= (offs_m + off)[:, None]
        if MASK_KIND == 2:
            span_k = tl.load(SPAN_ROW + offs_n, mask=n_ok, other=0)
            vis = vis | ((span_q[:, None] == span_k[None, :]) & (span_q[:, None] != 0))
        allowed = allowed & vis
    if HAS_KPAD:
        kv = tl.load(KVALID_ROW + offs_n, mask=n_ok, other=0)
        allowed = allowed & (kv != 0)[None, :]
    return allowed


@triton.jit
def _kv_range(m0, q_len, k_len, off, SPAN_LAST_ROW, MASK_KIND: tl.constexpr,
              HAS_KPAD: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """Key range of a query tile: [0, full_hi) needs no mask, [full_hi, kv_hi) does."""
    k_full = (k_len // BLOCK_N) * BLOCK_N
    if MASK_KIND == 0:
        kv_hi = k_len
        full_hi = k_full
    else:
        last_q = tl.minimum(m0 + BLOCK_M, q_len) - 1
        kv_hi = tl.minimum(last_q + off + 1, k_len)
        if MASK_KIND == 2:
            pos = m0 + off + tl.arange(0, BLOCK_M)  # query positions in key coordinates
            ok = (pos >= 0) & (pos < k_len) & (pos < q_len + off)
            last = tl.load(SPAN_LAST_ROW + pos, mask=ok, other=-1)
            kv_hi = tl.maximum(kv_hi, tl.minimum(tl.max(last, 0) + 1, k_len))
        # tiles whose every key is <= the first query's diagonal
        # (clamp before dividing: GPU integer division truncates toward zero)
        full_hi = tl.minimum((tl.maximum(m0 + off + 1, 0) // BLOCK_N) * BLOCK_N, k_full)
    if HAS_KPAD:
        full_hi = full_hi * 0
    full_hi = tl.minimum(full_hi, kv_hi)
    return full_hi, kv_hi


# --------------------------------------------------------------------------- forward
@triton.jit
def _fwd_tile(acc, l_i, m_i, q, offs_m, n0, k_ptrs, v_ptrs, stride_kn, stride_vn,
              q_len, k_len, off, span_q, SPAN_ROW, KVALID_ROW, qk_scale, d_ok,
              MASKED: tl.constexpr, MASK_KIND: tl.constexpr, HAS_KPAD: tl.constexpr,
              BLOCK_N: tl.constexpr, ACC: tl.constexpr):
    offs_n = n0 + tl.arange(0, BLOCK_N)
    ld = d_ok[None, :]
    if MASKED:
        ld = ld & (offs_n < k_len)[:, None]
    k = tl.load(k_ptrs + n0 * stride_kn, mask=ld, other=0.0)  # [BN, DP]
    v = tl.load(v_ptrs + n0 * stride_vn, mask=ld, other=0.0)  # [BN, DP]
    qk = tl.dot(q, tl.trans(k), out_dtype=ACC) * qk_scale  # [BM, BN] base-2 logits
    if MASKED:
        allowed = _allowed(offs_m, offs_n, q_len, k_len, off, span_q, SPAN_ROW, KVALID_ROW,
                           MASK_KIND, HAS_KPAD)
        qk = tl.where(allowed, qk, float("-inf"))
    m_new = tl.maximum(m_i, tl.max(qk, 1))
    # a row with no allowed key so far keeps m = -inf; shift by 0 instead to avoid NaN
    m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
    alpha = tl.exp2(m_i - m_safe)
    p = tl.exp2(qk - m_safe[:, None])
    l_i = l_i * alpha + tl.sum(p, 1)
    acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, out_dtype=ACC)
    return acc, l_i, m_new


@triton.jit
def _fwd_kernel(Q, K, V, O, LSE, SPAN, SPAN_LAST, KVALID, CU_Q, CU_K,
                sqb, sqh, sqm, skb, skh, skn, svb, svh, svn, sob, soh, som,
                slb, slh, ssb, skvb,
                SCALE, Lq, Lk, H, GROUP, HEAD_DIM, SEQ_BUCKET,
                MASK_KIND: tl.constexpr, IS_VARLEN: tl.constexpr, HAS_KPAD: tl.constexpr,
                IS_FP64: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                BLOCK_D: tl.constexpr):
    ACC: tl.constexpr = tl.float64 if IS_FP64 else tl.float32
    # heaviest (last) query tiles first: better tail balance for causal masks
    pid_m = tl.num_programs(0) - 1 - tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = pid_bh // H
    h = pid_bh % H
    row, q_start, q_len, k_start, k_len = _seq_bounds(CU_Q, CU_K, b, Lq, Lk, IS_VARLEN)
    m0 = pid_m * BLOCK_M
    if m0 < q_len:
        row64 = row.to(tl.int64)
        off = k_len - q_len
        offs_m = m0 + tl.arange(0, BLOCK_M)
        offs_d = tl.arange(0, BLOCK_D)
        d_ok = offs_d < HEAD_DIM
        m_ok = offs_m < q_len
        q_ptrs = Q + row64 * sqb + h * sqh + (q_start + offs_m)[:, None] * sqm + offs_d[None, :]
        q = tl.load(q_ptrs, mask=m_ok[:, None] & d_ok[None, :], other=0.0)  # [BM, DP]
        hk = h // GROUP
        k_ptrs = K + row64 * skb + hk * skh + (k_start + tl.arange(0, BLOCK_N))[:, None] * skn + offs_d[None, :]
        v_ptrs = V + row64 * svb + hk * svh + (k_start + tl.arange(0, BLOCK_N))[:, None] * svn + offs_d[None, :]
        SPAN_ROW = SPAN + row64 * ssb + k_start
        SPAN_LAST_ROW = SPAN_LAST + row64 * ssb + k_start
        KVALID_ROW = KVALID + row64 * skvb + k_start
        span_q = offs_m * 0
        if MASK_KIND == 2:
            qpos = offs_m + off
            span_q = tl.load(SPAN_ROW + qpos, mask=m_ok & (qpos >= 0), other=0)
        full_hi, kv_hi = _kv_range(m0, q_len, k_len, off, SPAN_LAST_ROW, MASK_KIND, HAS_KPAD,
                                   BLOCK_M, BLOCK_N)
        qk_scale = tl.load(SCALE)  # scale * log2(e), in the accumulator dtype
        m_i = tl.full([BLOCK_M], float("-inf"), dtype=ACC)
        l_i = tl.zeros([BLOCK_M], dtype=ACC)
        acc = tl.zeros([BLOCK_M, BLOCK_D], dtype=ACC)
        for n0 in range(0, full_hi, BLOCK_N):
            acc, l_i, m_i = _fwd_tile(acc, l_i, m_i, q, offs_m, n0, k_ptrs, v_ptrs, skn, svn,
                                      q_len, k_len, off, span_q, SPAN_ROW, KVALID_ROW, qk_scale,
                                      d_ok, False, MASK_KIND, HAS_KPAD, BLOCK_N, ACC)
        for n0 in range(full_hi, kv_hi, BLOCK_N):
            acc, l_i, m_i = _fwd_tile(acc, l_i, m_i, q, offs_m, n0, k_ptrs, v_ptrs, skn, svn,
                                      q_len, k_len, off, span_q, SPAN_ROW, KVALID_ROW, qk_scale,
                                      d_ok, True, MASK_KIND, HAS_KPAD, BLOCK_N, ACC)
        empty = l_i == 0.0
        out = acc / tl.where(empty, 1.0, l_i)[:, None]
        # +inf makes exp2(s - lse) == 0 in the backward: empty rows get zero gradient
        lse = tl.where(empty, float("inf"), m_i + tl.log2(tl.where(empty, 1.0, l_i)))
        o_ptrs = O + row64 * sob + h * soh + (q_start + offs_m)[:, None] * som + offs_d[None, :]
        tl.store(o_ptrs, out.to(O.dtype.element_ty), mask=m_ok[:, None] & d_ok[None, :])
        tl.store(LSE + row64 * slb + h * slh + q_start + offs_m, lse, mask=m_ok)


# --------------------------------------------------------------------------- backward
@triton.jit
def _bwd_delta_kernel(O, DO, DELTA, sob, soh, som, sdb, sdh, sdm, slb, slh, H, T, HEAD_DIM,
                      IS_FP64: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr):
    ACC: tl.constexpr = tl.float64 if IS_FP64 else tl.float32
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = (pid_bh // H).to(tl.int64)
    h = pid_bh % H
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    ok = (offs_m < T)[:, None] & (offs_d < HEAD_DIM)[None, :]
    o = tl.load(O + b * sob + h * soh + offs_m[:, None] * som + offs_d[None, :], mask=ok, other=0.0)
    do = tl.load(DO + b * sdb + h * sdh + offs_m[:, None] * sdm + offs_d[None, :], mask=ok, other=0.0)
    delta = tl.sum(o.to(ACC) * do.to(ACC), 1)
    tl.store(DELTA + b * slb + h * slh + offs_m, delta, mask=offs_m < T)


@triton.jit
def _dkdv_tile(dk, dv, k, v, m0, offs_n, q_ptrs, do_ptrs, lse_ptr, delta_ptr, sqm, sdm,
               q_len, k_len, off, SPAN_ROW, KVALID_ROW, qk_scale, d_ok,
               MASKED: tl.constexpr, MASK_KIND: tl.constexpr, HAS_KPAD: tl.constexpr,
               BLOCK_M: tl.constexpr, ACC: tl.constexpr):
    offs_m = m0 + tl.arange(0, BLOCK_M)
    m_ok = offs_m < q_len
    ld = m_ok[:, None] & d_ok[None, :]
    q = tl.load(q_ptrs + m0 * sqm, mask=ld, other=0.0)  # [BM, DP]
    do = tl.load(do_ptrs + m0 * sdm, mask=ld, other=0.0)  # [BM, DP]
    # rows past the end get lse = +inf, hence p = 0, without a mask
    lse = tl.load(lse_ptr + offs_m, mask=m_ok, other=float("inf"))
    delta = tl.load(delta_ptr + offs_m, mask=m_ok, other=0.0)
    qkT = tl.dot(k, tl.trans(q), out_dtype=ACC) * qk_scale  # [BN, BM]
    pT = tl.exp2(qkT - lse[None, :])
    if MASKED:
        span_q = offs_m * 0
        if MASK_KIND == 2:
            qpos = offs_m + off
            span_q = tl.load(SPAN_ROW + qpos, mask=m_ok & (qpos >= 0), other=0)
        allowed = _allowed(offs_m, offs_n, q_len, k_len, off, span_q, SPAN_ROW, KVALID_ROW,
                           MASK_KIND, HAS_KPAD)  # [BM, BN]
        pT = tl.where(tl.trans(allowed), pT, 0.0)
    dv += tl.dot(pT.to(do.dtype), do, out_dtype=ACC)
    dpT = tl.dot(v, tl.trans(do), out_dtype=ACC)  # [BN, BM]
    dsT = pT * (dpT - delta[None, :])
    dk += tl.dot(dsT.to(q.dtype), q, out_dtype=ACC)
    return dk, dv


@triton.jit
def _bwd_dkdv_kernel(Q, K, V, DO, DK, DV, LSE, DELTA, SPAN, SPAN_FIRST, KVALID, CU_Q, CU_K,
                     sqb, sqh, sqm, skb, skh, skn, svb, svh, svn, sdb, sdh, sdm,
                     sdkb, sdkh, sdkn, sdvb, sdvh, sdvn, slb, slh, ssb, skvb,
                     SCALE, Lq, Lk, HKV, GROUP, HEAD_DIM, SEQ_BUCKET,
                     MASK_KIND: tl.constexpr, IS_VARLEN: tl.constexpr, HAS_KPAD: tl.constexpr,
                     IS_FP64: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                     BLOCK_D: tl.constexpr):
    ACC: tl.constexpr = tl.float64 if IS_FP64 else tl.float32
    pid_n = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = pid_bh // HKV
    hk = pid_bh % HKV
    row, q_start, q_len, k_start, k_len = _seq_bounds(CU_Q, CU_K, b, Lq, Lk, IS_VARLEN)
    n0 = pid_n * BLOCK_N
    if n0 < k_len:
        row64 = row.to(tl.int64)
        off = k_len - q_len
        offs_n = n0 + tl.arange(0, BLOCK_N)
        offs_d = tl.arange(0, BLOCK_D)
        d_ok = offs_d < HEAD_DIM
        n_ok = offs_n < k_len
        ld = n_ok[:, None] & d_ok[None, :]
        k = tl.load(K + row64 * skb + hk * skh + (k_start + offs_n)[:, None] * skn + offs_d[None, :],
                    mask=ld, other=0.0)  # [BN, DP]
        v = tl.load(V + row64 * svb + hk * svh + (k_start + offs_n)[:, None] * svn + offs_d[None, :],
                    mask=ld, other=0.0)  # [BN, DP]
        SPAN_ROW = SPAN + row64 * ssb + k_start
        KVALID_ROW = KVALID + row64 * skvb + k_start
        q_tiles = ((q_len + BLOCK_M - 1) // BLOCK_M) * BLOCK_M
        # query range that reaches this key tile: [q_lo, q_full) masked, [q_full, q_len) not
        if MASK_KIND == 0:
            q_lo = q_len * 0
            q_full = q_len * 0
        else:
            q_lo = n0 - off
            if MASK_KIND == 2:
                first = tl.load(SPAN_FIRST + row64 * ssb + k_start + offs_n, mask=n_ok, other=2147483647)
                q_lo = tl.minimum(q_lo, tl.min(first, 0) - off)
            q_lo = (tl.maximum(q_lo, 0) // BLOCK_M) * BLOCK_M
            q_full = ((tl.maximum(n0 + BLOCK_N - 1 - off, 0) + BLOCK_M - 1) // BLOCK_M) * BLOCK_M
            q_full = tl.minimum(tl.maximum(q_full, q_lo), q_tiles)
        if HAS_KPAD:
            q_full = q_tiles
        qk_scale = tl.load(SCALE)  # scale * log2(e), in the accumulator dtype
        dk = tl.zeros([BLOCK_N, BLOCK_D], dtype=ACC)
        dv = tl.zeros([BLOCK_N, BLOCK_D], dtype=ACC)
        for g in range(0, GROUP):
            h = hk * GROUP + g
            offs_m0 = tl.arange(0, BLOCK_M)
            q_ptrs = Q + row64 * sqb + h * sqh + (q_start + offs_m0)[:, None] * sqm + offs_d[None, :]
            do_ptrs = DO + row64 * sdb + h * sdh + (q_start + offs_m0)[:, None] * sdm + offs_d[None, :]
            lse_ptr = LSE + row64 * slb + h * slh + q_start
            delta_ptr = DELTA + row64 * slb + h * slh + q_start
            for m0 in range(q_lo, q_full, BLOCK_M):
                dk, dv = _dkdv_tile(dk, dv, k, v, m0, offs_n, q_ptrs, do_ptrs, lse_ptr, delta_ptr,
                                    sqm, sdm, q_len, k_len, off, SPAN_ROW, KVALID_ROW, qk_scale,
                                    d_ok, True, MASK_KIND, HAS_KPAD, BLOCK_M, ACC)
            for m0 in range(q_full, q_len, BLOCK_M):
                dk, dv = _dkdv_tile(dk, dv, k, v, m0, offs_n, q_ptrs, do_ptrs, lse_ptr, delta_ptr,
                                    sqm, sdm, q_len, k_len, off, SPAN_ROW, KVALID_ROW, qk_scale,
                                    d_ok, False, MASK_KIND, HAS_KPAD, BLOCK_M, ACC)
        dk = dk * tl.load(SCALE + 1)
        tl.store(DK + row64 * sdkb + hk * sdkh + (k_start + offs_n)[:, None] * sdkn + offs_d[None, :],
                 dk.to(DK.dtype.element_ty), mask=ld)
        tl.store(DV + row64 * sdvb + hk * sdvh + (k_start + offs_n)[:, None] * sdvn + offs_d[None, :],
                 dv.to(DV.dtype.element_ty), mask=ld)


@triton.jit
def _dq_tile(dq, q, do, lse, delta, offs_m, n0, k_ptrs, v_ptrs, skn, svn, q_len, k_len, off,
             span_q, SPAN_ROW, KVALID_ROW, qk_scale, d_ok,
             MASKED: tl.constexpr, MASK_KIND: tl.constexpr, HAS_KPAD: tl.constexpr,
             BLOCK_N: tl.constexpr, ACC: tl.constexpr):
    offs_n = n0 + tl.arange(0, BLOCK_N)
    ld = d_ok[None, :]
    if MASKED:
        ld = ld & (offs_n < k_len)[:, None]
    k = tl.load(k_ptrs + n0 * skn, mask=ld, other=0.0)  # [BN, DP]
    v = tl.load(v_ptrs + n0 * svn, mask=ld, other=0.0)  # [BN, DP]
    qk = tl.dot(q, tl.trans(k), out_dtype=ACC) * qk_scale  # [BM, BN]
    p = tl.exp2(qk - lse[:, None])
    if MASKED:
        allowed = _allowed(offs_m, offs_n, q_len, k_len, off, span_q, SPAN_ROW, KVALID_ROW,
                           MASK_KIND, HAS_KPAD)
        p = tl.where(allowed, p, 0.0)
    dp = tl.dot(do, tl.trans(v), out_dtype=ACC)  # [BM, BN]
    ds = p * (dp - delta[:, None])
    dq += tl.dot(ds.to(k.dtype), k, out_dtype=ACC)
    return dq


@triton.jit
def _bwd_dq_kernel(Q, K, V, DO, DQ, LSE, DELTA, SPAN, SPAN_LAST, KVALID, CU_Q, CU_K,
                   sqb, sqh, sqm, skb, skh, skn, svb, svh, svn, sdb, sdh, sdm,
                   sdqb, sdqh, sdqm, slb, slh, ssb, skvb,
                   SCALE, Lq, Lk, H, GROUP, HEAD_DIM, SEQ_BUCKET,
                   MASK_KIND: tl.constexpr, IS_VARLEN: tl.constexpr, HAS_KPAD: tl.constexpr,
                   IS_FP64: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                   BLOCK_D: tl.constexpr):
    ACC: tl.constexpr = tl.float64 if IS_FP64 else tl.float32
    # heaviest (last) query tiles first: better tail balance for causal masks
    pid_m = tl.num_programs(0) - 1 - tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = pid_bh // H
    h = pid_bh % H
    row, q_start, q_len, k_start, k_len = _seq_bounds(CU_Q, CU_K, b, Lq, Lk, IS_VARLEN)
    m0 = pid_m * BLOCK_M
    if m0 < q_len:
        row64 = row.to(tl.int64)
        off = k_len - q_len
        offs_m = m0 + tl.arange(0, BLOCK_M)
        offs_d = tl.arange(0, BLOCK_D)
        d_ok = offs_d < HEAD_DIM
        m_ok = offs_m < q_len
        ld = m_ok[:, None] & d_ok[None, :]
        q = tl.load(Q + row64 * sqb + h * sqh + (q_start + offs_m)[:, None] * sqm + offs_d[None, :],
                    mask=ld, other=0.0)
        do = tl.load(DO + row64 * sdb + h * sdh + (q_start + offs_m)[:, None] * sdm + offs_d[None, :],
                     mask=ld, other=0.0)
        lse = tl.load(LSE + row64 * slb + h * slh + q_start + offs_m, mask=m_ok, other=float("inf"))
        delta = tl.load(DELTA + row64 * slb + h * slh + q_start + offs_m, mask=m_ok, other=0.0)
        hk = h // GROUP
        k_ptrs = K + row64 * skb + hk * skh + (k_start + tl.arange(0, BLOCK_N))[:, None] * skn + offs_d[None, :]
        v_ptrs = V + row64 * svb + hk * svh + (k_start + tl.arange(0, BLOCK_N))[:, None] * svn + offs_d[None, :]
        SPAN_ROW = SPAN + row64 * ssb + k_start
        SPAN_LAST_ROW = SPAN_LAST + row64 * ssb + k_start
        KVALID_ROW = KVALID + row64 * skvb + k_start
        span_q = offs_m * 0
        if MASK_KIND == 2:
            qpos = offs_m + off
            span_q = tl.load(SPAN_ROW + qpos, mask=m_ok & (qpos >= 0), other=0)
        full_hi, kv_hi = _kv_range(m0, q_len, k_len, off, SPAN_LAST_ROW, MASK_KIND, HAS_KPAD,
                                   BLOCK_M, BLOCK_N)
        qk_scale = tl.load(SCALE)  # scale * log2(e), in the accumulator dtype
        dq = tl.zeros([BLOCK_M, BLOCK_D], dtype=ACC)
        for n0 in range(0, full_hi, BLOCK_N):
            dq = _dq_tile(dq, q, do, lse, delta, offs_m, n0, k_ptrs, v_ptrs, skn, svn, q_len, k_len,
                          off, span_q, SPAN_ROW, KVALID_ROW, qk_scale, d_ok,
                          False, MASK_KIND, HAS_KPAD, BLOCK_N, ACC)
        for n0 in range(full_hi, kv_hi, BLOCK_N):
            dq = _dq_tile(dq, q, do, lse, delta, offs_m, n0, k_ptrs, v_ptrs, skn, svn, q_len, k_len,
                          off, span_q, SPAN_ROW, KVALID_ROW, qk_scale, d_ok,
                          True, MASK_KIND, HAS_KPAD, BLOCK_N, ACC)
        dq = dq * tl.load(SCALE + 1)
        tl.store(DQ + row64 * sdqb + h * sdqh + (q_start + offs_m)[:, None] * sdqm + offs_d[None, :],
                 dq.to(DQ.dtype.element_ty), mask=ld)


# --------------------------------------------------------------------------- host side
def _configs(pairs):
    return [triton.Config({"BLOCK_M": bm, "BLOCK_N": bn}, num_warps=w, num_stages=s) for bm, bn, w, s in pairs]


_TUNE_KEY = ["SEQ_BUCKET", "BLOCK_D", "MASK_KIND", "HAS_KPAD", "IS_VARLEN", "IS_FP64"]
# A handful of configs that cover H100/A100 for D in 64..128; tuning runs once per key.
_FWD_CONFIGS = [(128, 64, 4, 3), (128, 64, 8, 3), (128, 128, 8, 3), (64, 64, 4, 4), (128, 32, 4, 4)]
_DKDV_CONFIGS = [(32, 128, 4, 3), (32, 128, 8, 3), (64, 64, 4, 3), (64, 128, 8, 2), (32, 64, 4, 4)]
_DQ_CONFIGS = [(128, 32, 4, 3), (128, 32, 8, 3), (64, 64, 4, 3), (128, 64, 8, 2), (64, 32, 4, 4)]
_TUNED: dict = {}


def _kernel(name: str, tune: bool):
    """The raw JIT kernel, or (on CUDA) its autotuned wrapper, built once."""
    raw = {"fwd": _fwd_kernel, "dkdv": _bwd_dkdv_kernel, "dq": _bwd_dq_kernel}[name]
    if not tune:
        return raw
    if name not in _TUNED:
        pairs = {"fwd": _FWD_CONFIGS, "dkdv": _DKDV_CONFIGS, "dq": _DQ_CONFIGS}[name]
        _TUNED[name] = triton.autotune(configs=_configs(pairs), key=_TUNE_KEY)(raw)
    return _TUNED[name]


def _span_bounds(span: torch.Tensor, cu_k: torch.Tensor | None):
    """First and last local key position of each token's span (``Int32[R, T]`` each).

    Text tokens (id 0) map to their own position. Ids are matched per row and per packed
    sequence, so the same id in two packed sequences does not widen the tile ranges.
    Sorting by (sequence, id) keeps this free of device syncs (it runs once per layer).
    """
    R, T = span.shape
    dev = span.device
    pos = torch.arange(T, device=dev)
    if cu_k is not None:
        seq = torch.searchsorted(cu_k[1:].long(), pos, right=True)  # [T]
        local = pos - cu_k.long()[seq]
    else:
        seq = torch.zeros_like(pos)
        local = pos
    ids = span.long()
    seq, local = seq.expand(R, T), local.expand(R, T)
    # stable two-pass sort: tokens grouped by (sequence, id), positions ascending
    o1 = torch.argsort(ids, dim=1, stable=True)
    o2 = torch.argsort(seq.gather(1, o1), dim=1, stable=True)
    order = o1.gather(1, o2)  # [R, T]
    sid, sseq = ids.gather(1, order), seq.gather(1, order)
    new = torch.ones_like(sid, dtype=torch.bool)
    new[:, 1:] = (sid[:, 1:] != sid[:, :-1]) | (sseq[:, 1:] != sseq[:, :-1])
    group = torch.cumsum(new.long(), dim=1) - 1  # [R, T] group index in sorted order
    lp = local.gather(1, order)
    last = torch.full((R, T), -1, device=dev, dtype=torch.long).scatter_reduce(1, group, lp, "amax")
    first = torch.full((R, T), T, device=dev, dtype=torch.long).scatter_reduce(1, group, lp, "amin")
    group_tok = torch.empty_like(group).scatter_(1, order, group)  # back to token order
    is_span = ids != 0
    span_last = torch.where(is_span, last.gather(1, group_tok), local)
    span_first = torch.where(is_span, first.gather(1, group_tok), local)
    return span_first.to(torch.int32).contiguous(), span_last.to(torch.int32).contiguous()


_SCALES: dict = {}


def _scales(scale: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``[scale * log2(e), scale]`` on ``device``, cached: one tiny H2D copy per setting."""
    key = (scale, dtype, str(device))
    if key not in _SCALES:
        if len(_SCALES) > 64:
            _SCALES.clear()
        _SCALES[key] = torch.tensor([scale * LOG2E, scale], device=device, dtype=dtype)
    return _SCALES[key]


def _next_pow2(x: int) -> int:
    return 1 << max(int(x) - 1, 0).bit_length()


class _Meta:
    """Non-tensor launch parameters plus the int side tensors shared by all kernels."""

    def __init__(self, q, k, mask_kind, span_ids, kv_padding, cu_q, cu_k, max_q, max_k, scale,
                 block_m, block_n):
        self.mask = MASK_CODES[mask_kind]
        dev = q.device
        self.varlen = cu_q is not None
        B, Hq, Lq, D = q.shape
        self.Hq, self.Hkv, self.D = Hq, k.shape[1], D
        self.Lq, self.Lk = Lq, k.shape[2]
        self.nseq = (cu_q.numel() - 1) if self.varlen else B
        self.cu_q = (cu_q.to(dev, torch.int32).contiguous() if self.varlen
                     else torch.zeros(1, dtype=torch.int32, device=dev))
        self.cu_k = cu_k.to(dev, torch.int32).contiguous() if self.varlen else self.cu_q
        if self.varlen:
            max_q = max_q or int((self.cu_q[1:] - self.cu_q[:-1]).max())
            max_k = max_k or int((self.cu_k[1:] - self.cu_k[:-1]).max())
        self.max_q, self.max_k = (max_q or Lq), (max_k or self.Lk)
        self.scale = float(scale) if scale is not None else 1.0 / math.sqrt(D)
        # passed by pointer: a float argument would be rounded to fp32, spoiling fp64 tests
        self.scales = _scales(self.scale, torch.float64 if q.dtype == torch.float64 else torch.float32, dev)
        if self.mask == 2:
            if span_ids is None:
                raise ValueError("causal_spans needs span_ids")
            self.span = span_ids.to(dev, torch.int32).contiguous()  # [B, Lk]
            self.span_first, self.span_last = _span_bounds(self.span, self.cu_k if self.varlen else None)
        else:
            self.span = self.span_first = self.span_last = torch.zeros(1, 1, dtype=torch.int32, device=dev)
        self.kpad = kv_padding is not None
        self.kvalid = (kv_padding.to(dev).to(torch.int8).contiguous() if self.kpad
                       else torch.zeros(1, 1, dtype=torch.int8, device=dev))
        self.fp64 = q.dtype == torch.float64
        self.block_d = max(16, _next_pow2(D))
        self.tune = q.is_cuda and block_m is None
        self.blocks = {} if self.tune else {"BLOCK_M": block_m or 16, "BLOCK_N": block_n or 16}
        self.bucket = _next_pow2(max(self.max_q, self.max_k))

    def consts(self):
        return dict(MASK_KIND=self.mask, IS_VARLEN=self.varlen, HAS_KPAD=self.kpad, IS_FP64=self.fp64,
                    BLOCK_D=self.block_d, **self.blocks)


class _FlashAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, meta: _Meta):
        o = torch.empty_like(q)  # [B, Hq, Lq, D]
        lse = torch.empty(q.shape[:3], device=q.device, dtype=torch.float64 if meta.fp64 else torch.float32)
        grid = lambda M: (triton.cdiv(meta.max_q, M["BLOCK_M"]), meta.nseq * meta.Hq)  # noqa: E731
        _kernel("fwd", meta.tune)[grid](
            q, k, v, o, lse, meta.span, meta.span_last, meta.kvalid, meta.cu_q, meta.cu_k,
            q.stride(0), q.stride(1), q.stride(2), k.stride(0), k.stride(1), k.stride(2),
            v.stride(0), v.stride(1), v.stride(2), o.stride(0), o.stride(1), o.stride(2),
            lse.stride(0), lse.stride(1), meta.span.stride(0), meta.kvalid.stride(0),
            meta.scales, meta.Lq, meta.Lk, meta.Hq, meta.Hq // meta.Hkv, meta.D, meta.bucket,
            **meta.consts(),
        )
        ctx.save_for_backward(q, k, v, o, lse)
        ctx.meta = meta
        return o

    @staticmethod
    def backward(ctx, do):
        q, k, v, o, lse = ctx.saved_tensors
        meta: _Meta = ctx.meta
        do = do.contiguous()
        delta = torch.empty_like(lse)  # [B, Hq, Lq]
        bd = meta.block_d
        _bwd_delta_kernel[(triton.cdiv(meta.Lq, 64), q.shape[0] * meta.Hq)](
            o, do, delta, o.stride(0), o.stride(1), o.stride(2), do.stride(0), do.stride(1), do.stride(2),
            delta.stride(0), delta.stride(1), meta.Hq, meta.Lq, meta.D,
            IS_FP64=meta.fp64, BLOCK_M=64, BLOCK_D=bd,
        )
        dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
        common = (meta.scales, meta.Lq, meta.Lk)
        grid_kv = lambda M: (triton.cdiv(meta.max_k, M["BLOCK_N"]), meta.nseq * meta.Hkv)  # noqa: E731
        _kernel("dkdv", meta.tune)[grid_kv](
            q, k, v, do, dk, dv, lse, delta, meta.span, meta.span_first, meta.kvalid, meta.cu_q, meta.cu_k,
            q.stride(0), q.stride(1), q.stride(2), k.stride(0), k.stride(1), k.stride(2),
            v.stride(0), v.stride(1), v.stride(2), do.stride(0), do.stride(1), do.stride(2),
            dk.stride(0), dk.stride(1), dk.stride(2), dv.stride(0), dv.stride(1), dv.stride(2),
            lse.stride(0), lse.stride(1), meta.span.stride(0), meta.kvalid.stride(0),
            *common, meta.Hkv, meta.Hq // meta.Hkv, meta.D, meta.bucket, **meta.consts(),
        )
        grid_q = lambda M: (triton.cdiv(meta.max_q, M["BLOCK_M"]), meta.nseq * meta.Hq)  # noqa: E731
        _kernel("dq", meta.tune)[grid_q](
            q, k, v, do, dq, lse, delta, meta.span, meta.span_last, meta.kvalid, meta.cu_q, meta.cu_k,
            q.stride(0), q.stride(1), q.stride(2), k.stride(0), k.stride(1), k.stride(2),
            v.stride(0), v.stride(1), v.stride(2), do.stride(0), do.stride(1), do.stride(2),
            dq.stride(0), dq.stride(1), dq.stride(2), lse.stride(0), lse.stride(1),
            meta.span.stride(0), meta.kvalid.stride(0),
            *common, meta.Hq, meta.Hq // meta.Hkv, meta.D, meta.bucket, **meta.consts(),
        )
        return dq, dk, dv, None


def flash_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    mask_kind: str = "causal_spans",
    span_ids: torch.Tensor | None = None,
    scale: float | None = None,
    kv_padding: torch.Tensor | None = None,
    cu_seqlens_q: torch.Tensor | None = None,
    cu_seqlens_k: torch.Tensor | None = None,
    max_seqlen_q: int | None = None,
    max_seqlen_k: int | None = None,
    block_m: int | None = None,
    block_n: int | None = None,
) -> torch.Tensor:
    """Fused attention (forward and backward) with the MedAny masks.

    Args:
        q: ``[B, Hq, Lq, D]``; k, v: ``[B, Hkv, Lk, D]`` with ``Hq % Hkv == 0``. For packed
            sequences B == 1 and Lq, Lk are the total token counts.
        mask_kind: ``"full"``, ``"causal"`` or ``"causal_spans"`` (bottom-right aligned).
        span_ids: ``Int[B, Lk]`` span id per key token (0 = text), for ``causal_spans``.
        scale: softmax scale, default ``D ** -0.5``.
        kv_padding: optional ``Bool[B, Lk]``, True where the key is a real token.
        cu_seqlens_q, cu_seqlens_k: ``Int[N + 1]`` packed-sequence offsets (k defaults to q).
        max_seqlen_q, max_seqlen_k: longest packed sequence (saves a device sync).
        block_m, block_n: fixed tile sizes (default: autotuned on CUDA, 16 elsewhere).

    Returns:
        ``[B, Hq, Lq, D]`` in the input dtype; queries with no allowed key give 0. On CUDA the
        inputs must be fp16/bf16 (fp32 runs with TF32 dots); fp64 only in the interpreter.
    """
    if mask_kind not in MASK_CODES:
        raise ValueError(f"mask_kind must be one of {tuple(MASK_CODES)}, got {mask_kind!r}")
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError("q, k, v must be [B, H, L, D]")
    if k.shape != v.shape or q.shape[-1] != k.shape[-1] or q.shape[0] != k.shape[0]:
        raise ValueError(f"incompatible shapes q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}")
    if q.shape[1] % k.shape[1]:
        raise ValueError(f"query heads ({q.shape[1]}) must be a multiple of key/value heads ({k.shape[1]})")
    if q.shape[-1] > 256:
        raise ValueError(f"head dim {q.shape[-1]} > 256 is not supported")
    if not (q.dtype == k.dtype == v.dtype):
        raise ValueError("q, k, v must share a dtype")
    if q.dtype == torch.float64 and q.is_cuda:
        raise ValueError("float64 runs only under the Triton interpreter (no fp64 MMA in Triton on GPU)")
    if cu_seqlens_q is not None and q.shape[0] != 1:
        raise ValueError("packed sequences (cu_seqlens) need B == 1")
    q, k, v = (t if t.stride(-1) == 1 else t.contiguous() for t in (q, k, v))
    cu_k = cu_seqlens_q if cu_seqlens_k is None else cu_seqlens_k
    meta = _Meta(q, k, mask_kind, span_ids, kv_padding, cu_seqlens_q, cu_k if cu_seqlens_q is not None else None,
                 max_seqlen_q, max_seqlen_k, scale, block_m, block_n)
    return _FlashAttention.apply(q, k, v, meta)
