#!/usr/bin/env python3
"""Data-parallel speed-up on paper, from measured step times and gradient sizes (issue: scale-out on MPI).

Each rank is one 2-core machine (1 rank x 2 threads) with its own share of 16 images per mini-batch (global batch
16 N); a step is the rank's compute plus one ring all-reduce of the gradients, not overlapped:
    T_allreduce(N) = 2 (N - 1) / N * bytes / bandwidth + 2 (N - 1) * latency
    speed-up(N)    = N * T_compute / (T_compute + T_allreduce(N))
Usage: mpi_projection.py IMAGES_PER_S_RESNET18 IMAGES_PER_S_RESNET50 (measured with 1 rank x 2 threads)
"""
import json
import sys

PARAMS = {"resnet18": 11.2e6, "resnet50": 23.5e6}   # backbone parameters (+ the head's, under 0.1 M)
NETWORKS = {"10 Gbit/s": (10e9 / 8, 20e-6), "100 Gbit/s": (100e9 / 8, 5e-6)}   # bytes/s, per-message latency
SHARE = 16   # images per rank per step

rates = {"resnet18": float(sys.argv[1]), "resnet50": float(sys.argv[2])}
for model, rate in rates.items():
    compute = SHARE / rate
    grad_bytes = 4 * PARAMS[model]
    for net, (bandwidth, latency) in NETWORKS.items():
        for n in (8, 32, 128):
            allreduce = 2 * (n - 1) / n * grad_bytes / bandwidth + 2 * (n - 1) * latency
            print(json.dumps({"mode": "mpi-projection", "backbone": model, "network": net, "ranks": n,
                              "compute_s": round(compute, 2), "allreduce_s": round(allreduce, 4),
                              "allreduce_share": round(allreduce / (compute + allreduce), 4),
                              "speedup": round(n * compute / (compute + allreduce), 1)}))
