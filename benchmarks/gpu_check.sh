#!/usr/bin/env bash
# The GPU checks in one command, for a CUDA machine whose python3 has torch and triton:
#   bash benchmarks/gpu_check.sh [OUT_DIR]          (default out/gpu; the device tool's $OUT if set)
# 1. the device line; 2. the kernel's tests compiled on CUDA (tests/multimodal/kernels, TRITON_INTERPRET=0);
# 3. benchmarks/attention.py in bf16, head dim 128, 1k-16k tokens with image spans, forward and
#    forward+backward: ours vs FlexAttention (same mask) vs SDPA (dense mask, and plain causal).
# Paste attention.md into docs/attention.md ("GPU") and the README with the device line.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-out/gpu}}"
mkdir -p "$out"
export PYTHONPATH=. PYTHONUNBUFFERED=1 TRITON_INTERPRET=0 HF_HUB_OFFLINE=1
python3 -c "import torch, triton; p = torch.cuda.get_device_properties(0); \
print(f'device: {p.name}, {p.multi_processor_count} SMs, torch {torch.__version__}, triton {triton.__version__}, CUDA {torch.version.cuda}')" \
  | tee "$out/device.txt"
python3 -m pytest -q -p no:cacheprovider tests/multimodal/kernels 2>&1 | tee "$out/kernel-tests.txt"
python3 benchmarks/attention.py --dtype bf16 --head-dims 128 --lengths 1024 2048 4096 8192 16384 --images 1 4 \
  --markdown 2>&1 | tee "$out/attention.md"
