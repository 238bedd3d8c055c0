"""The machine MedAny runs on, as benchmark tables and ``medany info`` name it: cores, CPU, SIMD flags."""

from __future__ import annotations

import os
import platform


def cpu() -> str:
    """``"AMD EPYC; avx2, avx512f"`` (the model name and the vector extensions llama.cpp and torch use)."""
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
    except OSError:
        return platform.processor() or platform.machine()
    name = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), "?")
    flags = set(next((ln.split(":", 1)[1].split() for ln in info.splitlines() if ln.startswith("flags")), []))
    shown = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile") if f in flags]
    return f"{name}; {', '.join(shown) or 'no AVX2'}"


def machine() -> str:
    """``"2 cores (AMD EPYC; avx2, avx512f)"``."""
    return f"{os.cpu_count()} cores ({cpu()})"
