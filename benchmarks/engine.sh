#!/usr/bin/env bash
# Engine benchmark: Gigapatch against PyTorch CPU, same models, step (forward, cross-entropy, backward, AdamW) and
# thread count, measured in the same run. Installs torch + torchvision into a virtual environment on first use.
# Both precisions: fp32, and bf16 (Gigapatch's --precision bf16 against PyTorch's torch.autocast("cpu", bfloat16)).
# Usage: benchmarks/engine.sh [STEPS] [PRECISIONS]   (default 20 timed steps after 3 warm-up steps; "fp32 bf16")
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${1:-20}"
precisions="${2:-fp32 bf16}"
threads="$(nproc)"
venv="${GIGAPATCH_TORCH_VENV:-.build-torch-venv}"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet torch torchvision safetensors
fi
source benchmarks/common.sh
bench_build gigapatch-bench
bench=$bin/gigapatch-bench
bf16="$(grep -qw avx512_bf16 /proc/cpuinfo && echo yes || echo no)"
echo "# $(date -u +%Y-%m-%d) $(uname -m), $threads cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), AVX512_BF16: $bf16; OPENBLAS_CORETYPE in environment: ${OPENBLAS_CORETYPE:-unset}"
for config in "resnet18 16" "mobilenet_v2 16" "tiny 32"; do
    set -- $config
    for mode in train infer; do
        for precision in $precisions; do
            ours="$($bench $mode --model "$1" --size 128 --batch "$2" --steps "$steps" --warmup 3 --threads "$threads" --precision "$precision")"
            theirs="$("$venv/bin/python" benchmarks/pytorch_engine.py $mode "$1" 128 "$2" "$steps" 3 "$threads" 1000 "$precision")"
            echo "$ours"
            echo "$theirs"
            # One summary line: precision, images/s of both, the ratio, and both peaks.
            "$venv/bin/python" -c 'import json, sys
g, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print("%s %s %s batch %d: gigapatch %.1f images/s (peak %.0f MB), pytorch %.1f images/s (peak %.0f MB), ratio %.2fx" % (
    g["model"], g["mode"], g["precision"], g["batch"], g["images_per_s"], g["peak_rss_mb"], t["images_per_s"], t["peak_rss_mb"],
    g["images_per_s"] / t["images_per_s"]))' "$ours" "$theirs"
        done
    done
done
