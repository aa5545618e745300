#!/usr/bin/env bash
# PatchGD benchmark (issue: trainer): one training step on one large image, batch 1, resnet18, 128 px patches.
# 1. Speed at 4096 x 4096 (32 x 32 patches, k = m*n/8 = 128, one sweep of 8 inner iterations): Gigapatch and PyTorch
#    CPU in the same run, same step, same thread count.
# 2. Memory with a fixed k = 64 (two inner iterations, no warm-up): 8192 x 8192 (target < 1.5 GiB peak) and
#    32768 x 32768 (target < 2.5 GiB). Each measurement is its own process, so each peak is its own.
# Usage: benchmarks/patchgd.sh [speed|memory|all]   (memory at 32768 px takes several minutes: 65536 patches)
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"
threads="$(nproc)"
venv="${GIGAPATCH_TORCH_VENV:-.build-torch-venv}"
source benchmarks/common.sh
bench_build gigapatch-bench
bench=$bin/gigapatch-bench
echo "# $(date -u +%Y-%m-%d) $(uname -m), $threads cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
if [ "$what" = speed ] || [ "$what" = all ]; then
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet torch torchvision safetensors
    fi
    for precision in fp32 bf16; do   # bf16: Gigapatch's --precision bf16 against PyTorch under torch.autocast bf16
        $bench patchgd --size 4096 --backbone resnet18 --sampling 0.125 --threads "$threads" --precision $precision
        "$venv/bin/python" benchmarks/pytorch_patchgd.py 4096 128 128 8 "$threads" 1 $precision
    done
fi
if [ "$what" = memory ] || [ "$what" = all ]; then
    for size in 8192 32768; do
        $bench patchgd --size $size --backbone resnet18 --k 64 --inner-iterations 2 --no-warmup --threads "$threads"
    done
fi
