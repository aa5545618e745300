#!/usr/bin/env bash
# The kernel choice of issue 21, measured in one run, one thread:
#   matmul  oneDNN's bf16 matmul against Gigapatch's bf16 kernel and OpenBLAS's sgemm on the same shapes
#   conv    on every convolution shape of tiny (batch 32) and resnet18 (batch 16) at 128 px, forward and backward:
#           oneDNN's direct bf16 primitives alone (onednn_conv.c: tensors already in its bfloat16 layouts, its best
#           case), the same inside Gigapatch (`gigapatch-bench conv --precision bf16`: Conv2d with the conversions
#           from and to float32 NCHW, where Conv2d uses oneDNN) and Gigapatch's own kernels (the faster of Winograd
#           and unrolling); `onednn_conv_table.py` makes the table.
# Installs libdnnl-dev (Debian 12: oneDNN 2.6.3) when missing.
# Usage: benchmarks/onednn.sh [matmul] [conv]     (both by default)
set -euo pipefail
cd "$(dirname "$0")/.."
parts=("$@"); [ ${#parts[@]} -gt 0 ] || parts=(matmul conv)
[ -f /usr/include/oneapi/dnnl/dnnl.h ] || { apt-get update -q >/dev/null && apt-get install -y -q libdnnl-dev >/dev/null; }
source benchmarks/common.sh
bench_build gigapatch-bench
mkdir -p .build/benchmarks
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), one thread, commit $(git rev-parse --short HEAD)"
for part in "${parts[@]}"; do
    case "$part" in
    matmul)
        cc -O2 -o .build/benchmarks/onednn_matmul benchmarks/onednn_matmul.c -ldnnl
        OMP_NUM_THREADS=1 .build/benchmarks/onednn_matmul
        $bin/gigapatch-bench gemm ;;
    conv)
        cc -O2 -Wall -o .build/benchmarks/onednn_conv benchmarks/onednn_conv.c -ldnnl
        # model, count in the model, in, out, input side, batch, kernel, stride
        shapes=("tiny 1 3 32 128 32 3 2" "tiny 2 32 32 64 32 3 1" "tiny 1 32 64 64 32 3 2" "tiny 1 64 64 32 32 3 1"
                "tiny 1 32 64 64 32 1 2" "tiny 1 64 128 32 32 3 2" "tiny 1 128 128 16 32 3 1" "tiny 1 64 128 32 32 1 2"
                "resnet18 1 3 64 128 16 7 2" "resnet18 4 64 64 32 16 3 1" "resnet18 1 64 128 32 16 3 2"
                "resnet18 3 128 128 16 16 3 1" "resnet18 1 64 128 32 16 1 2" "resnet18 1 128 256 16 16 3 2"
                "resnet18 3 256 256 8 16 3 1" "resnet18 1 128 256 16 16 1 2" "resnet18 1 256 512 8 16 3 2"
                "resnet18 3 512 512 4 16 3 1" "resnet18 1 256 512 8 16 1 2")
        for shape in "${shapes[@]}"; do
            read -r model count c o h n k s <<< "$shape"
            echo "{\"model\": \"$model\", \"count\": $count}"
            OMP_NUM_THREADS=1 .build/benchmarks/onednn_conv "$c" "$o" "$h" "$n" "$k" "$s" 10
            $bin/gigapatch-bench conv --in "$c" --out "$o" --size "$h" --batch "$n" --kernel "$k" --stride "$s" --threads 1 \
                --precision bf16 --steps 10
        done | python3 benchmarks/onednn_conv_table.py ;;
    *) echo "unknown part '$part' (matmul or conv)" >&2; exit 2 ;;
    esac
done
