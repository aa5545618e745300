#!/usr/bin/env bash
# Stain normalisation and H&E augmentation against none, in the same run (issue: stain normalisation): one PatchGD
# training step (tiny backbone, 64 px patches, s = 1/8) on a real H&E slide read through PatchReader, with and
# without Macenko / Reinhard normalisation and the he augmentation preset. Each configuration runs twice, alternating,
# so drift of the machine is seen; the ratio is patches/s against the plain read of the same round.
# --cache 0 makes every read decode, normalise and augment again (fill pass and recomputation both), the worst case;
# --cache 4096 is training's default, where a patch is decoded and normalised once while it stays cached.
# First the per-patch costs alone (gigapatch-bench stain: microseconds per patch on patches held in memory), then the
# training step end to end. Usage: benchmarks/stain.sh [SLIDE] [ROUNDS] [CACHES]
# (defaults: ../shared/data's TCGA H&E slide, 3567 px square: 55 x 55 patches; 3 rounds; caches "4096", add 0 for
# the worst case)
set -euo pipefail
cd "$(dirname "$0")/.."
slide="${1:-../shared/data/slides/openslide/tcga-cr-7395-01a-01-ts1.svs}"
rounds="${2:-3}"
caches="${3:-4096}"
[ -f "$slide" ] || { echo "benchmarks/stain.sh: no slide at $slide; give an H&E slide" >&2; exit 1; }
source benchmarks/common.sh
bench_build gigapatch-bench gigapatch-stain
bench=$bin/gigapatch-bench
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$bin/gigapatch-stain fit --slide "$slide" --method macenko --out "$work/macenko.json" >/dev/null
$bin/gigapatch-stain fit --slide "$slide" --method reinhard --out "$work/reinhard.json" >/dev/null
echo "# $(date -u +%Y-%m-%d) $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
$bench stain --slide "$slide" --patch 64 --count 1024
$bench patchgd --size 3520 --patch 64 --backbone tiny --sampling 0.125
for cache in $caches; do
    for round in $(seq "$rounds"); do
        common=(patchgd --slide "$slide" --patch 64 --backbone tiny --sampling 0.125 --cache "$cache")
        $bench "${common[@]}"
        $bench "${common[@]}" --stain "$work/macenko.json"
        $bench "${common[@]}" --stain "$work/reinhard.json"
        $bench "${common[@]}" --augmentation he
        $bench "${common[@]}" --stain "$work/macenko.json" --augmentation he
    done
done
