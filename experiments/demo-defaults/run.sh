#!/usr/bin/env bash
# A/B of the PatchGD settings the demo first overrode (commit 8b03be1) against the trainer's defaults (issue 16,
# "Defaults that learn"; results in EXPERIMENTS.md). For each seed: the demo pipeline (its data, pretrained encoder,
# PatchGD and GD-64 runs), then PatchGD on the demo's data with 8b03be1's settings (F = 64, fill with batch
# statistics, one epoch of warm-up, lr 2e-3, head lr 1e-3) and with one of them put back to the trainer's default:
#   f64      8b03be1's settings themselves (the baseline of the A/B; the demo's own train stage until 841a2bc)
#   f256     --head-features 256        (the default; the demo uses it since 841a2bc)
#   running  --fill-statistics running  (the default)
#   warmup0  --warmup 0                 (the default without --init)
#   lr1e-3   --lr 0.001                 (the default; the head's stays 0.001)
#   f256-bf16  f256 with --precision bf16 (issue 21's end-to-end check: bf16 within fp32's seed-to-seed spread)
# usage: experiments/demo-defaults/run.sh [--work DIR (/tmp/demo-defaults)] [--seeds "1 2 3"] [--lanes 2] [--variants "..."]
# Every training run uses one compute thread (--workers 1), lanes side by side; finished runs are skipped.
# experiments/demo-defaults/summary.py WORK prints final and best validation accuracy per variant.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
work=/tmp/demo-defaults seeds="1 2 3" lanes=2 variants="f64 f256 running warmup0 lr1e-3"
while [ $# -gt 0 ]; do
    case "$1" in
        --work) work="$2"; shift 2 ;;
        --seeds) seeds="$2"; shift 2 ;;
        --lanes) lanes="$2"; shift 2 ;;
        --variants) variants="$2"; shift 2 ;;
        *) echo "usage: $0 [--work DIR] [--seeds \"1 2 3\"] [--lanes N] [--variants \"f64 f256 running warmup0 lr1e-3\"]" >&2; exit 2 ;;
    esac
done
bin="$repo/.build/release"
mnist="${GIGAPATCH_MNIST:-$repo/../shared/data/mnist}"
mkdir -p "$work"

# The demo itself per seed (skipped once its comparison.json exists), one seed per lane.
demo() {
    local seed="$1" out="$work/demo-s$1"
    [ -f "$out/comparison.json" ] && return 0
    "$bin/gigapatch" run "$repo/pipelines/ultramnist-demo.yaml" --set mnist="$mnist" work="$out" seed="$seed" \
        > "$out.log" 2>&1 || { echo "demo seed $seed failed: $out.log" >&2; return 1; }
}
export -f demo; export bin repo mnist work
# shellcheck disable=SC2086
printf '%s\n' $seeds | xargs -P "$lanes" -I{} bash -c 'demo {}'

# 8b03be1's PatchGD options (the demo's train stage then), with one variant's override.
variant() {
    local seed="$1" name="$2" out="$work/demo-s$1"
    local dest="$work/$name-s$seed"
    [ -f "$dest/metrics.jsonl" ] && [ "$(grep -c '"epoch"' "$dest/metrics.jsonl")" -ge 3 ] && return 0
    local features=64 fill=batch lr=0.002 warmup=1 precision=fp32
    case "$name" in
        f64) ;;
        f256) features=256 ;;
        f256-bf16) features=256 precision=bf16 ;;
        running) fill=running ;;
        warmup0) warmup=0 ;;
        lr1e-3) lr=0.001 ;;
        *) echo "unknown variant $name" >&2; return 1 ;;
    esac
    local options=(--db "$out/index.sqlite" --init "$out/pretrain/checkpoints/last.safetensors" --backbone tiny
                   --normalization mnist --epochs 3 --batch-size 16 --sampling 0.0625 --head-features "$features"
                   --fill-statistics "$fill" --lr "$lr" --head-lr 0.001 --warmup "$warmup" --no-augment
                   --select-by accuracy --seed "$seed" --workers 1 --precision "$precision")
    rm -rf "$dest"
    "$bin/gigapatch-train" "${options[@]}" --out "$dest" > "$dest.log" 2>&1 ||
        { echo "$name seed $seed failed: $dest.log" >&2; return 1; }
}
export -f variant
for seed in $seeds; do for v in $variants; do echo "$seed $v"; done; done |
    xargs -P "$lanes" -L1 bash -c 'variant "$0" "$1"'
python3 "$here/summary.py" "$work"
