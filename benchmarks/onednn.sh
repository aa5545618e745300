#!/usr/bin/env bash
# oneDNN's bf16 matmul against Gigapatch's bf16 kernel and OpenBLAS's sgemm, one thread, on the same shapes, in one run
# (the kernel choice of issue 21). Installs libdnnl-dev (Debian 12: oneDNN 2.6.3) when missing.
# Usage: benchmarks/onednn.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f /usr/include/oneapi/dnnl/dnnl.h ] || { apt-get update -q >/dev/null && apt-get install -y -q libdnnl-dev >/dev/null; }
source benchmarks/common.sh
bench_build gigapatch-bench
mkdir -p .build/benchmarks
cc -O2 -o .build/benchmarks/onednn_matmul benchmarks/onednn_matmul.c -ldnnl
echo "# $(date -u +%Y-%m-%d) $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), one thread"
OMP_NUM_THREADS=1 .build/benchmarks/onednn_matmul
$bin/gigapatch-bench gemm
