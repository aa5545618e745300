#!/usr/bin/env python3
"""PyTorch CPU reference for `gigapatch-bench patchgd`: one PatchGD training step on one image, one JSON line.

Usage: pytorch_patchgd.py SIZE PATCH K INNER THREADS [STEPS [PRECISION]]
PRECISION fp32 (default) or bf16: every backbone and head pass under torch.autocast("cpu", dtype=torch.bfloat16).
Batch 1, torchvision resnet18 with its fc replaced by Linear(512, 256), the PatchGD head of the reference
implementation (10 classes), Adam. The step is the reference's: fill Z without gradients (evaluation-mode
BatchNorm, chunks of 64 patches), then INNER iterations that each recompute K random patches with gradients,
write them into a copy of Z, run the head and back-propagate loss / INNER; one optimizer step at the end.
Patches are generated (uniform noise), as with gigapatch-bench patchgd's default source.
"""
import contextlib
import json
import math
import resource
import sys
import time

import torch
import torch.nn as nn
import torchvision


def head(latent=256, features=256, classes=10):
    layers = []
    for b in range(4):
        layers += [nn.Conv2d(latent if b == 0 else features, features, 3, 1 if b == 0 else 2, 1), nn.ReLU(),
                   nn.BatchNorm2d(features), nn.Dropout2d(0.2)]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(4 * features, classes))


def main():
    size, patch, k, inner, threads = (int(a) for a in sys.argv[1:6])
    steps = int(sys.argv[6]) if len(sys.argv) > 6 else 1
    precision = sys.argv[7] if len(sys.argv) > 7 else "fp32"
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if precision == "bf16" else contextlib.nullcontext
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    backbone = torchvision.models.resnet18()
    backbone.fc = nn.Linear(512, 256)
    classifier = head()
    optimizer = torch.optim.Adam(list(backbone.parameters()) + list(classifier.parameters()), lr=1e-4)
    n = size // patch
    cells = n * n
    label = torch.tensor([3])

    def patches(idx):
        g = torch.Generator().manual_seed(int(idx[0]))
        return torch.rand(len(idx), 3, patch, patch, generator=g) - 0.5

    def step():
        backbone.eval()
        z = torch.zeros(1, 256, n, n)
        with torch.no_grad(), autocast():
            for start in range(0, cells, 64):
                idx = list(range(start, min(cells, start + 64)))
                f = backbone(patches(idx))
                for i, c in enumerate(idx):
                    z[0, :, c // n, c % n] = f[i]
        backbone.train()
        classifier.train()
        optimizer.zero_grad()
        order = torch.randperm(cells).tolist()
        for j in range(inner):
            idx = order[j * k:(j + 1) * k]
            if not idx:
                break
            zj = z.clone()
            with autocast():
                f = backbone(patches(idx))
            rows = torch.tensor([c // n for c in idx])
            cols = torch.tensor([c % n for c in idx])
            zj[0, :, rows, cols] = f.t().float()
            with autocast():
                loss = nn.functional.cross_entropy(classifier(zj), label) / inner
            loss.backward()
        optimizer.step()

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - start) / steps
    print(json.dumps({"bench": "patchgd", "impl": "pytorch", "torch": torch.__version__, "size": n * patch, "patch": patch,
                      "grid": n, "k": k, "inner_iterations": inner, "threads": threads, "seconds_per_step": seconds,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "precision": precision},
                     sort_keys=True))


if __name__ == "__main__":
    main()
