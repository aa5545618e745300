#!/usr/bin/env bash
# Data-parallel scaling (issue: scale-out on MPI). PatchGD training on UltraMNIST, one epoch of a few mini-batches of
# 16 images, s = 1/4, in these layouts of this machine's 2 cores, each measured in this run (best of `repeats`):
#   1 rank x 1 thread, 1 rank x 2 threads, 2 ranks x 1 thread (mpirun's default on one machine: shared memory),
#   and 2 ranks x 1 thread over TCP on loopback (the network path several machines use).
# Then the all-reduce alone on resnet18's and resnet50's gradient sizes (gigapatch-bench allreduce), both transports.
# Two settings: tiny at 64 px patches (256 px images, 4 x 4 grids) and resnet18 at 128 px patches (512 px images).
# Prints one JSON line per run: images/s (mini-batch images / epoch seconds, no validation), the all-reduce seconds
# (rank 0's time inside the gradient sums, waiting for the slower rank included) and the ratios to 1 rank x 1 thread.
# Usage: benchmarks/mpi.sh [batches] [repeats]   (default 6 mini-batches per run, 2 repeats; the first batch includes
# start-up reads). Pause other work first: on 2 cores any other process changes the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
batches="${1:-6}"
repeats="${2:-2}"
source benchmarks/common.sh
bench_build
work="${GIGAPATCH_BENCH_DIR:-/tmp/gigapatch-mpi-bench}"
mkdir -p "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi=(mpirun -np 2 --bind-to core)
tcp=(mpirun -np 2 --bind-to core --mca btl tcp,self --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo)
echo "# $(date -u +%Y-%m-%d) $(uname -m), $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(lscpu | sed -n 's/^CPU family: *//p' | head -1 | sed 's/^/family /'), Open MPI $(mpirun --version | head -1 | awk '{print $NF}')"

dataset() {   # name size patch
    local name=$1 size=$2 patch=$3 images=$((16 * batches))
    if [ ! -f "$work/$name.sqlite" ]; then
        $bin/gigapatch-ultramnist --mnist "$mnist" --out "$work/$name" --preset patchgd --size "$size" --scale 1...4 \
            --train "$images" --val 0 --test 0 --total --seed 1 >/dev/null
        $bin/gigapatch-ingest --manifest "$work/$name/manifest.csv" --db "$work/$name.sqlite" --dataset d --preset ultramnist \
            --patch-size "$patch" >/dev/null 2>&1
    fi
}

measure() {   # label backbone db workers [launcher...]: one JSON line, the fastest of the repeats
    local label=$1 backbone=$2 db=$3 workers=$4; shift 4
    local out="$work/run-$label-$backbone"
    for r in $(seq 1 "$repeats"); do
        rm -rf "$out-$r"
        "$@" $bin/gigapatch-train --db "$db" --out "$out-$r" --method patchgd --backbone "$backbone" --sampling 0.25 --head-features 64 \
            --batch-size 16 --epochs 1 --limit-batches "$batches" --val-split none --no-augment --normalization mnist --workers "$workers" \
            --seed 1 >/dev/null 2>"$out-$r.log" || { echo "failed: $label $backbone (see $out-$r.log)" >&2; return 1; }
    done
    python3 - "$out" "$repeats" "$label" "$backbone" "$((16 * batches))" <<'PY'
import json, sys
out, repeats, label, backbone, images = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
runs = [json.loads(open(f"{out}-{r}/metrics.jsonl").read().splitlines()[-1]) for r in range(1, repeats + 1)]
m = min(runs, key=lambda x: x["seconds"])
print(json.dumps({"mode": "mpi-scaling", "layout": label, "backbone": backbone, "images": images,
                  "seconds": round(m["seconds"], 2), "all_seconds": [round(x["seconds"], 2) for x in runs],
                  "images_per_s": round(images / m["seconds"], 2),
                  "allreduce_seconds": round(m.get("allreduce_seconds", 0.0), 3), "peak_rss_mb_rank0": round(m["peak_rss_mb"])}))
PY
}

dataset tiny64 256 64
dataset resnet128 512 128
for setting in "tiny $work/tiny64.sqlite" "resnet18 $work/resnet128.sqlite"; do
    set -- $setting
    backbone=$1 db=$2
    one=$(measure 1x1 "$backbone" "$db" 1)
    two_threads=$(measure 1x2 "$backbone" "$db" 2)
    two_ranks=$(measure 2x1 "$backbone" "$db" 1 "${mpi[@]}")
    two_tcp=$(measure 2x1-tcp "$backbone" "$db" 1 "${tcp[@]}")
    printf '%s\n%s\n%s\n%s\n' "$one" "$two_threads" "$two_ranks" "$two_tcp"
    python3 - "$one" "$two_threads" "$two_ranks" "$two_tcp" <<'PY'
import json, sys
a, b, c, d = (json.loads(x) for x in sys.argv[1:5])
r = lambda x, y: round(x["images_per_s"] / y["images_per_s"], 3)
print(json.dumps({"mode": "mpi-ratios", "backbone": a["backbone"], "1x2_over_1x1": r(b, a), "2x1_over_1x1": r(c, a), "2x1_over_1x2": r(c, b),
                  "2x1_tcp_over_1x1": r(d, a), "2x1_tcp_over_1x2": r(d, b),
                  "allreduce_share": round(c["allreduce_seconds"] / c["seconds"], 4), "allreduce_share_tcp": round(d["allreduce_seconds"] / d["seconds"], 4)}))
PY
done
for floats in 11200000 23500000; do   # resnet18, resnet50 parameters
    "${mpi[@]}" $bin/gigapatch-bench allreduce --floats $floats
    "${tcp[@]}" $bin/gigapatch-bench allreduce --floats $floats
done
