#!/usr/bin/env bash
# Engine benchmark: Gigapatch against PyTorch CPU, same models, step (forward, cross-entropy, backward, AdamW) and
# thread count, measured in the same run. Installs torch + torchvision into a virtual environment on first use.
# Both precisions: fp32, and bf16 (Gigapatch's --precision bf16 against PyTorch's torch.autocast("cpu", bfloat16)).
# Usage: benchmarks/engine.sh [STEPS] [PRECISIONS] [ROUNDS] [MODELS]
#   default 20 timed steps after 3 warm-up steps; "fp32 bf16"; 1 round; "resnet18 mobilenet_v2 tiny"
# With ROUNDS > 1 each row is measured that many times, Gigapatch and PyTorch alternating, and its summary line gives
# the medians (images/s of each, and of the per-round ratios): on a shared virtual machine one measurement of either
# framework can be off by a third.
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${1:-20}"
precisions="${2:-fp32 bf16}"
rounds="${3:-1}"
models="${4:-resnet18 mobilenet_v2 tiny}"
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
for model in $models; do
    batch=16; [ "$model" = tiny ] && batch=32
    for mode in train infer; do
        for precision in $precisions; do
            lines=()
            for _ in $(seq 1 "$rounds"); do
                ours="$($bench $mode --model "$model" --size 128 --batch "$batch" --steps "$steps" --warmup 3 --threads "$threads" --precision "$precision")"
                theirs="$("$venv/bin/python" benchmarks/pytorch_engine.py $mode "$model" 128 "$batch" "$steps" 3 "$threads" 1000 "$precision")"
                echo "$ours"
                echo "$theirs"
                lines+=("$ours" "$theirs")
            done
            # One summary line: precision, images/s of both, the ratio, and both peaks (medians over the rounds).
            "$venv/bin/python" -c 'import json, statistics, sys
rows = [json.loads(a) for a in sys.argv[1:]]
g, t = rows[0::2], rows[1::2]
m = lambda xs, key: statistics.median(x[key] for x in xs)
ratio = statistics.median(a["images_per_s"] / b["images_per_s"] for a, b in zip(g, t))
spread = "" if len(g) == 1 else " (rounds: %s)" % " ".join("%.2f" % (a["images_per_s"] / b["images_per_s"]) for a, b in zip(g, t))
print("%s %s %s batch %d: gigapatch %.1f images/s (peak %.0f MB), pytorch %.1f images/s (peak %.0f MB), ratio %.2fx%s" % (
    g[0]["model"], g[0]["mode"], g[0]["precision"], g[0]["batch"], m(g, "images_per_s"), m(g, "peak_rss_mb"), m(t, "images_per_s"),
    m(t, "peak_rss_mb"), ratio, spread))' "${lines[@]}"
        done
    done
done
