#!/usr/bin/env bash
# Ingest benchmark: index a PANDA-sized synthetic slide (30000 x 40000, 3 levels at 1/4/16, JPEG) at 256 px / level 0,
# then read every indexed patch back, against a plain C openslide_read_region loop over the same coordinates (same run).
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
source benchmarks/common.sh
bench_build gigapatch-synthetic gigapatch-ingest gigapatch-bench
cc -O2 benchmarks/openslide_read_loop.c $(pkg-config --cflags --libs openslide) -o "$work/read_loop"
echo "# $(date -u +%Y-%m-%d) $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
mkdir -p "$work/slides"
$bin/gigapatch-synthetic --preset panda --width 30000 --height 40000 --blobs 10 --seed 3 "$work/slides/panda-like.tiff"
python3 benchmarks/measure.py "index 1 PANDA-sized slide, 256 px level 0 (whole process)" -- \
    $bin/gigapatch-ingest --slides "$work/slides" --db "$work/index.sqlite" --level 0 --workers 1
$bin/gigapatch-ingest --slides "$work/slides" --db "$work/index.sqlite" --level 0 --workers 1 2>/dev/null | tail -3
# Cold reads first for both, then each measured after a warm-up pass over the same file.
$bin/gigapatch-bench read-patches --db "$work/index.sqlite" --threads 1 --export "$work/patches.txt" >/dev/null
"$work/read_loop" "$work/patches.txt"
$bin/gigapatch-bench read-patches --db "$work/index.sqlite" --threads 1
"$work/read_loop" "$work/patches.txt"
$bin/gigapatch-bench read-patches --db "$work/index.sqlite" --threads 1
$bin/gigapatch-bench read-patches --db "$work/index.sqlite" --threads 2
