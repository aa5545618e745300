#!/usr/bin/env python3
"""Builds the PyTorch cross-check fixtures for Tests/NNTests (run from the repository root with torch installed):

    swift build -c release --product gigapatch-bench
    python3 Tests/NNTests/Fixtures/make_fixtures.py .build/release/gigapatch-bench

For resnet18, mobilenet_v2 and the PatchGD head it fills torchvision's own models with the closed-form weights of
Sources/NN/Models/FormulaWeights.swift, runs them on the formula input and records:
- torchvision's state_dict names, shapes and dtypes (Gigapatch must match them exactly);
- the outputs (evaluation mode; resnet18 also in training mode, i.e. with batch statistics);
- both directions of weight exchange, checked here with the real binaries: a Gigapatch-written checkpoint loads
  into PyTorch with load_state_dict(strict=True) and gives the same outputs, and a PyTorch-written safetensors
  file loads into Gigapatch and gives the same outputs.
The PatchGD head's PyTorch-written file is small and is committed for the tests to load.
"""
import json
import math
import os
import subprocess
import sys
import tempfile

import torch
import torch.nn as nn
import torchvision
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = sys.argv[1]


def key(name):
    return 0.01 * sum(name.encode())


def value(name, shape, i):
    k = key(name)
    if name.endswith("running_var") or (name.endswith(".weight") and len(shape) == 1):
        return 1 + 0.5 * abs(math.cos(0.3 * i + k))
    if len(shape) <= 1:
        return 0.1 * math.sin(0.3 * i + k)
    fan_in = math.prod(shape[1:])
    return 0.5 * math.sin(0.7 * i + k) / math.sqrt(fan_in)


def fill(model):
    state = {}
    for name, t in model.state_dict().items():
        if t.dtype == torch.int64:
            state[name] = torch.zeros_like(t)
        else:
            shape = list(t.shape)
            state[name] = torch.tensor([value(name, shape, i) for i in range(t.numel())], dtype=torch.float64).float().reshape(t.shape)
    model.load_state_dict(state, strict=True)


def formula_input(shape):
    n = math.prod(shape)
    return torch.tensor([math.sin(0.013 * i) for i in range(n)], dtype=torch.float64).float().reshape(shape)


class Head(nn.Module):
    """The PatchGD reference head, with Gigapatch's names (blocks.i.{0 conv, 2 bn}, fc)."""

    def __init__(self, latent, features, classes):
        super().__init__()
        blocks = []
        for b in range(4):
            blocks.append(nn.Sequential(nn.Conv2d(latent if b == 0 else features, features, 3, 1 if b == 0 else 2, 1), nn.ReLU(),
                                        nn.BatchNorm2d(features), nn.Dropout2d(0.2)))
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(4 * features, classes)

    def forward(self, z):
        return self.fc(torch.flatten(self.pool(self.blocks(z)), 1))


def gigapatch(args):
    out = subprocess.run([BENCH, "crosscheck"] + args, check=True, capture_output=True, text=True).stdout
    return json.loads(out)["values"]


def max_rel(a, b):
    """Largest absolute difference relative to the reference's largest magnitude."""
    a, b = torch.tensor(a), torch.tensor(b).flatten()
    return float((a - b).abs().max() / b.abs().max())


def main():
    torch.set_num_threads(2)
    cases = [
        ("resnet18", lambda: torchvision.models.resnet18(num_classes=256), ["--outputs", "256"], [2, 3, 64, 64], True),
        ("mobilenet_v2", lambda: torchvision.models.mobilenet_v2(num_classes=256), ["--outputs", "256"], [2, 3, 64, 64], False),
        ("patchgd_head", lambda: Head(8, 16, 6), ["--outputs", "6", "--latent", "8", "--features", "16"], [2, 8, 16, 16], True),
    ]
    fixture = {"torch": torch.__version__, "torchvision": torchvision.__version__, "models": {}}
    tmp = tempfile.mkdtemp()
    for name, build, args, shape, also_train in cases:
        model = build()
        fill(model)
        model.eval()
        x = formula_input(shape)
        with torch.no_grad():
            y_eval = model(x).flatten().tolist()
        entry = {"input_shape": shape, "eval": y_eval,
                 "state_dict": [[k, list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in model.state_dict().items()]}
        if also_train:
            model.train()
            if name == "patchgd_head":
                for m in model.modules():
                    if isinstance(m, nn.Dropout2d):
                        m.eval()
            with torch.no_grad():
                entry["train"] = model(x).flatten().tolist()
            fill(model)   # training mode moved the running statistics; restore the formula
        shape_arg = ["--model", name, "--input", ",".join(map(str, shape))] + args
        # Gigapatch -> PyTorch: a Gigapatch checkpoint loads strictly and gives the same outputs.
        ours = os.path.join(tmp, f"{name}-gigapatch.safetensors")
        gigapatch(shape_arg + ["--export", ours])
        from safetensors.torch import load_file
        reloaded = build()
        reloaded.load_state_dict(load_file(ours), strict=True)
        reloaded.eval()
        with torch.no_grad():
            entry["gigapatch_to_pytorch_max_rel"] = max_rel(reloaded(x).flatten().tolist(), y_eval)
        # PyTorch -> Gigapatch: PyTorch's safetensors file loads into Gigapatch and gives the same outputs.
        theirs = os.path.join(HERE if name == "patchgd_head" else tmp, f"{name}-pytorch.safetensors")
        model.eval()
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, theirs, metadata={"format": "pt"})
        entry["pytorch_to_gigapatch_max_rel"] = max_rel(gigapatch(shape_arg + ["--weights", theirs]), y_eval)
        entry["gigapatch_formula_max_rel"] = max_rel(gigapatch(shape_arg), y_eval)
        print(name, {k: v for k, v in entry.items() if k.endswith("max_rel")})
        fixture["models"][name] = entry
    with open(os.path.join(HERE, "pytorch_fixtures.json"), "w") as f:
        json.dump(fixture, f)


if __name__ == "__main__":
    main()
