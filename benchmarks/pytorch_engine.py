#!/usr/bin/env python3
"""PyTorch CPU reference for gigapatch-bench train/infer: the same models, step and thread count, one JSON line.

Usage: pytorch_engine.py train|infer MODEL SIZE BATCH STEPS WARMUP THREADS [OUTPUTS [PRECISION]]
A training step is forward, cross-entropy, backward and an AdamW update, as in gigapatch-bench.
PRECISION fp32 (default) or bf16: the forward pass (and the loss) under torch.autocast("cpu", dtype=torch.bfloat16),
float32 weights, gradients and optimizer, as a PyTorch user turns mixed precision on.
"""
import contextlib
import json
import resource
import sys
import time

import torch
import torch.nn as nn
import torchvision


class BasicBlock(nn.Module):
    def __init__(self, i, o, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(i, o, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(o)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(o, o, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(o)
        self.downsample = nn.Sequential(nn.Conv2d(i, o, 1, stride, bias=False), nn.BatchNorm2d(o)) if stride != 1 or i != o else None

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + (self.downsample(x) if self.downsample is not None else x))


class Tiny(nn.Module):
    """Gigapatch's `tiny` backbone, layer for layer and name for name."""

    def __init__(self, outputs):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(BasicBlock(32, 32, 1))
        self.layer2 = nn.Sequential(BasicBlock(32, 64, 2))
        self.layer3 = nn.Sequential(BasicBlock(64, 128, 2))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(128, outputs)

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(self.relu(self.bn1(self.conv1(x))))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def build(name, outputs):
    if name == "tiny":
        return Tiny(outputs)
    if name == "mobilenet_v2":
        return torchvision.models.mobilenet_v2(num_classes=outputs)
    return getattr(torchvision.models, name)(num_classes=outputs)


def main():
    mode, name = sys.argv[1], sys.argv[2]
    size, batch, steps, warmup, threads = map(int, sys.argv[3:8])
    outputs = int(sys.argv[8]) if len(sys.argv) > 8 else 1000
    precision = sys.argv[9] if len(sys.argv) > 9 else "fp32"
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if precision == "bf16" else contextlib.nullcontext
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    model = build(name, outputs)
    x = torch.rand(batch, 3, size, size) * 2 - 1
    y = torch.arange(batch) % outputs
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-2)
    loss_fn = nn.CrossEntropyLoss()
    if mode == "train":
        model.train()
    else:
        model.eval()

    def step():
        if mode == "train":
            opt.zero_grad(set_to_none=False)
            with autocast():
                loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
        else:
            with torch.no_grad(), autocast():
                model(x)

    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - start
    print(json.dumps({"model": name, "mode": mode, "size": size, "batch": batch, "threads": threads, "steps": steps,
                      "images_per_s": batch * steps / seconds, "seconds_per_step": seconds / steps,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "torch": torch.__version__, "precision": precision}))


if __name__ == "__main__":
    main()
