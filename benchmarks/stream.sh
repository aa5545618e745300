#!/usr/bin/env bash
# Does the patch stream keep up with the engine? (issue: PatchGD earns its place). The same PatchGD step, batch 1,
# s = 1/8, latent 256, head F = 256, measured in this run two ways:
#   compute-only: gigapatch-bench patchgd on generated patches (no I/O, no decoding, no bookkeeping), after a warm-up;
#   through the index: gigapatch-train on UltraMNIST images of the same size, ingested into a patch index, every
#   patch read from its pyramidal TIFF (decode, normalise, scatter into Z, the trainer's bookkeeping), one epoch,
#   no validation and no BatchNorm recalibration (neither is in the step).
# Trainer patches/s count every patch twice (fill and recomputation); the ratio halves them to the bench's count.
# Target: through the index >= 0.9x of compute-only. Usage: benchmarks/stream.sh [images]   (default 12)
set -euo pipefail
cd "$(dirname "$0")/.."
images="${1:-12}"
threads="$(nproc)"
source benchmarks/common.sh
bench_build
work="${GIGAPATCH_BENCH_DIR:-/tmp/gigapatch-stream-bench}"
mkdir -p "$work"
echo "# $(date -u +%Y-%m-%d) $(uname -m), $threads cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1), family $(lscpu | sed -n 's/^CPU family: *//p' | head -1)"
for setting in "tiny 64 1024" "resnet18 128 1024"; do
    set -- $setting
    backbone=$1 patch=$2 size=$3 name="$1-$2-$3"
    if [ ! -f "$work/$name.sqlite" ]; then
        $bin/gigapatch-ultramnist --mnist "$mnist" --out "$work/$name" --preset patchgd --size "$size" --train "$images" --val 0 --test 0 \
            --total --seed 1 >/dev/null 2>&1
        $bin/gigapatch-ingest --manifest "$work/$name/manifest.csv" --db "$work/$name.sqlite" --dataset d --preset ultramnist \
            --patch-size "$patch" >/dev/null 2>&1
    fi
    compute=$($bin/gigapatch-bench patchgd --size "$size" --patch "$patch" --backbone "$backbone" --sampling 0.125 --steps 3 --threads "$threads")
    rm -rf "$work/run-$name"
    $bin/gigapatch-train --db "$work/$name.sqlite" --out "$work/run-$name" --method patchgd --backbone "$backbone" --sampling 0.125 \
        --batch-size 1 --epochs 1 --val-split none --bn-recalibration 0 --workers "$threads" --seed 1 >/dev/null 2>"$work/run-$name.log"
    python3 - "$compute" "$work/run-$name/metrics.jsonl" "$backbone" "$patch" "$size" "$images" <<'PY'
import json, sys
bench = json.loads(sys.argv[1])
m = json.loads(open(sys.argv[2]).read().splitlines()[-1])
stream = m["patches_per_s"] / 2
print(json.dumps({"mode": "stream-vs-compute", "backbone": sys.argv[3], "patch": int(sys.argv[4]), "size": int(sys.argv[5]),
                  "images": int(sys.argv[6]), "compute_only_patches_per_s": round(bench["patches_per_s"], 1),
                  "through_index_patches_per_s": round(stream, 1), "ratio": round(stream / bench["patches_per_s"], 3),
                  "epoch_seconds": round(m["seconds"], 2), "peak_rss_mb_train": round(m["peak_rss_mb"])}))
PY
done
