#!/usr/bin/env bash
# The fair experiment of issue 16 (EXPERIMENTS.md), continued across machines and sessions.
#
# Every run here is 20 epochs on 4000 UltraMNIST images at 256 px; a PatchGD run is about 2 hours of one core, so the
# experiment outlives any one machine. This script keeps its state in the repository instead of /tmp:
#   pretrain.safetensors   the tiny encoder every run starts from (pipelines/ultramnist-pretrained-head.yaml's
#                          pretrain stage, made once on 2026-12-06; rerunning it on another CPU gives other weights)
#   queue                  the runs, one a line: NAME OPTIONS... (added to the common options below)
#   state/NAME/            each run's options.json, metrics.jsonl and metrics.csv (tracked), and its last checkpoint
#                          with optimizer state (checkpoints/, not tracked: the repository takes no file over 2 MiB),
#                          so a run resumes on the machine that holds state/, and starts again on a new one
#
# usage: experiments/issue16/run.sh [--hours H] [--lanes N] [--work DIR] [--queue FILE] [--state DIR] [--save]
#   Regenerates the data (seeded; checked against data.sha256), then runs the queue in N lanes (default 2, one core
#   each), unfinished runs first in queue order, each under --time-limit so it stops at an epoch boundary before the
#   deadline (H hours from now, default 2.5). After every run's exit its state is copied into state/NAME; commit
#   state/ (and EXPERIMENTS.md) before the machine goes. `summary.py` prints the results so far.
#   --save only copies every queued run's committed state from the work folder into state/ (after its lanes were
#   stopped: a killed run keeps its last committed epoch).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
hours=2.5 lanes=2 work=/tmp/e16 queue="$here/queue" state="$here/state" only_save=0
while [ $# -gt 0 ]; do
    case "$1" in
        --hours) hours="$2"; shift 2 ;;
        --lanes) lanes="$2"; shift 2 ;;
        --work) work="$2"; shift 2 ;;
        --queue) queue="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"; shift 2 ;;
        --state) mkdir -p "$2"; state="$(cd "$2" && pwd)"; shift 2 ;;
        --save) only_save=1; shift ;;
        *) echo "usage: $0 [--hours H] [--lanes N] [--work DIR] [--queue FILE] [--state DIR] [--save]" >&2; exit 2 ;;
    esac
done
bin="$repo/.build/release"
for tool in gigapatch-ultramnist gigapatch-ingest gigapatch-train; do
    [ -x "$bin/$tool" ] || { echo "$bin/$tool: not built; run 'swift build -c release' in $repo first" >&2; exit 1; }
done
mnist="${GIGAPATCH_MNIST:-$repo/../shared/data/mnist}"
[ -f "$mnist/train-images-idx3-ubyte" ] || [ -f "$mnist/train-images-idx3-ubyte.gz" ] || [ -f "$mnist/train-images.idx3-ubyte" ] ||
    { echo "$mnist: no MNIST files; set GIGAPATCH_MNIST to the folder of the four IDX files" >&2; exit 1; }
deadline=$(( $(date +%s) + $(awk -v h="$hours" 'BEGIN { printf "%d", h * 3600 }') ))
mkdir -p "$work"

epochs_done() { if [ -f "$1/metrics.jsonl" ]; then grep -c '"epoch"' "$1/metrics.jsonl" || true; else echo 0; fi; }

# Copies a run's committed state (the files --resume reads) into state/NAME, replacing the previous copy whole.
save() {
    local name="$1" run="$work/$1" dest="$state/$1"
    [ -f "$run/checkpoints/last.safetensors" ] || return 0
    # Never replace a copy that holds more epochs (a work folder started again on another machine).
    [ "$(epochs_done "$run")" -ge "$(epochs_done "$dest")" ] || return 0
    local optimizer
    optimizer=$(python3 -c "import json,struct,sys; f=open(sys.argv[1],'rb'); n=struct.unpack('<Q',f.read(8))[0]; print(json.loads(f.read(n))['__metadata__']['optimizer_file'])" "$run/checkpoints/last.safetensors")
    rm -rf "$dest.tmp" && mkdir -p "$dest.tmp/checkpoints"
    cp "$run/options.json" "$run/metrics.jsonl" "$run/metrics.csv" "$dest.tmp/"
    cp "$run/checkpoints/last.safetensors" "$dest.tmp/checkpoints/"
    # A finished run never resumes: its final weights are kept, its optimizer state (twice their size) is not.
    [ "$(epochs_done "$run")" -ge 20 ] || cp "$run/checkpoints/$optimizer" "$dest.tmp/checkpoints/"
    rm -rf "$dest" && mv "$dest.tmp" "$dest"
}

# Restores state/NAME into the work folder when the work folder has less (a new machine).
restore() {
    local name="$1" run="$work/$1" src="$state/$1"
    [ -f "$src/checkpoints/last.safetensors" ] || return 0
    if [ "$(epochs_done "$src")" -gt "$(epochs_done "$run")" ]; then
        rm -rf "$run" && mkdir -p "$run" && cp -r "$src/." "$run/"
    fi
}

if [ "$only_save" = 1 ]; then
    while read -r name _; do
        [ -z "$name" ] || [ "${name:0:1}" = "#" ] || save "$name"
    done < "$queue"
    python3 "$here/summary.py" "$state"
    exit 0
fi

# The data of pipelines/ultramnist-pretrained-head.yaml's generate and ingest stages (seed 1: 4000 / 300 images);
# both skip work already done, so a second call costs seconds.
"$bin/gigapatch-ultramnist" --mnist "$mnist" --out "$work/data" --preset patchgd --scale 1...4 --seed 1 --size 256 \
    --test 0 --train 400 --val 30 > "$work/generate.log" 2>&1
"$bin/gigapatch-ingest" --dataset ultramnist --db "$work/index.sqlite" --manifest "$work/data/manifest.csv" \
    --patch-size 64 --preset ultramnist > "$work/ingest.log" 2>&1
# The images, their digits, scales, places and labels must be the ones every earlier run saw.
data_hash() { (cd "$work/data" && { cat manifest.csv; find images -type f | sort | xargs sha256sum; } | sha256sum | cut -d' ' -f1); }
[ "$(data_hash)" = "$(cat "$here/data.sha256")" ] ||
    { echo "$work/data differs from the experiment's data (data.sha256): the generator or MNIST changed; do not mix these runs" >&2; exit 1; }

common=(--db "$work/index.sqlite" --init "$here/pretrain.safetensors" --backbone tiny --normalization mnist --epochs 20
        --batch-size 16 --lr 0.002 --warmup 1 --no-augment --select-by accuracy --bn-recalibration 10 --workers 1)

# One lane: claims queued runs in order (a folder per claim), runs each to the end or to the deadline.
lane() {
    local id="$1"
    while read -r name options; do
        [ -z "$name" ] || [ "${name:0:1}" = "#" ] && continue
        mkdir "$work/.claim-$name" 2>/dev/null || continue
        restore "$name"
        [ "$(epochs_done "$work/$name")" -ge 20 ] && { save "$name"; continue; }
        local left=$(( deadline - $(date +%s) ))
        [ "$left" -gt 600 ] || { rmdir "$work/.claim-$name"; break; }
        local resume=()
        [ -f "$work/$name/checkpoints/last.safetensors" ] && resume=(--resume)
        # shellcheck disable=SC2086
        echo "lane $id: $name ($(epochs_done "$work/$name") of 20 epochs done), time limit ${left}s" >&2
        local status=0
        nice -n 5 "$bin/gigapatch-train" "${common[@]}" $options --out "$work/$name" --time-limit "${left}s" "${resume[@]}" \
            >> "$work/$name.log" 2>&1 || status=$?
        save "$name"
        echo "lane $id: $name exit $status, $(epochs_done "$work/$name") of 20 epochs" >&2
        [ "$status" -eq 0 ] || break
    done < "$queue"
}

rm -rf "$work"/.claim-*
for i in $(seq 1 "$lanes"); do lane "$i" & done
wait
rm -rf "$work"/.claim-*
python3 "$here/summary.py" "$state"
