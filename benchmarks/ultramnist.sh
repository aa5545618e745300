#!/usr/bin/env bash
# UltraMNIST generation benchmark: time and peak memory per image, Gigapatch (tile by tile, pyramidal TIFF)
# against the same recipe in NumPy/SciPy holding whole images (benchmarks/ultramnist_reference.py), same run.
# Usage: benchmarks/ultramnist.sh [MNIST_DIR]   (default ../shared/data/mnist)
set -euo pipefail
cd "$(dirname "$0")/.."
mnist="${1:-../shared/data/mnist}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
source benchmarks/common.sh
bench_build gigapatch-ultramnist
ultramnist=$bin/gigapatch-ultramnist
python3 -c "import numpy, scipy" 2>/dev/null || pip install --quiet numpy scipy
python3 -c "import PIL" 2>/dev/null || pip install --quiet pillow
m=benchmarks/measure.py
echo "# $(date -u +%Y-%m-%d) $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
python3 $m "gigapatch kaggle 4000px x8, 1 worker" -- $ultramnist --preset kaggle --mnist "$mnist" -o "$work/a" --train 8 --val 0 --test 0 --total --workers 1
python3 $m "gigapatch kaggle 4000px x8, 2 workers" -- $ultramnist --preset kaggle --mnist "$mnist" -o "$work/b" --train 8 --val 0 --test 0 --total --workers 2
python3 $m "gigapatch kaggle 4000px x1 (MNIST load only + 1 image)" -- $ultramnist --preset kaggle --mnist "$mnist" -o "$work/c" --train 1 --val 0 --test 0 --total --workers 1
python3 $m "gigapatch kaggle 32768px x1" -- $ultramnist --preset kaggle --size 32768 --mnist "$mnist" -o "$work/d" --train 1 --val 0 --test 0 --total --workers 1
python3 $m "gigapatch patchgd 512px x280, 2 workers" -- $ultramnist --preset patchgd --mnist "$mnist" -o "$work/e" --train 28 --val 0 --test 0 --workers 2
python3 $m "numpy reference kaggle 4000px x8" -- python3 benchmarks/ultramnist_reference.py "$mnist" "$work/r" 8
python3 $m "numpy reference kaggle 4000px x1" -- python3 benchmarks/ultramnist_reference.py "$mnist" "$work/s" 1
