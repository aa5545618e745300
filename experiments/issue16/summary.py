#!/usr/bin/env python3
"""Results of the issue-16 runs so far, from each run's metrics.jsonl under state/ (or the folder given).

Per run: epochs done, final and best validation accuracy (with its epoch), final kappa, final training accuracy,
median seconds per epoch and peak RSS. Per arm (the run name without its -sN seed suffix), over the runs that
finished all their epochs: mean and sample standard deviation of final and best accuracy and of final kappa.
"""
import json
import os
import re
import statistics
import sys

EPOCHS = 20


def runs(folder):
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name, "metrics.jsonl")
        if os.path.isfile(path):
            with open(path) as f:
                epochs = [json.loads(line) for line in f if line.strip()]
            if epochs:
                yield name, epochs


def spread(values):
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "state")
    arms = {}
    print(f"{'run':30} {'epochs':>6} {'final acc':>9} {'best acc (ep)':>13} {'kappa':>6} {'train acc':>9} {'s/epoch':>8} {'peak MiB':>8}")
    for name, epochs in runs(folder):
        last = epochs[-1]
        best = max(epochs, key=lambda e: (e.get("val_accuracy") or 0, -e["epoch"]))
        seconds = statistics.median(e["seconds"] for e in epochs)
        peak = max(e.get("peak_rss_mb") or 0 for e in epochs)
        print(f"{name:30} {len(epochs):>6} {last.get('val_accuracy', 0):>9.3f} {best.get('val_accuracy', 0):>8.3f} ({best['epoch']:>2})"
              f" {last.get('val_kappa', 0):>6.3f} {last.get('train_accuracy', 0):>9.3f} {seconds:>8.0f} {peak:>8.0f}")
        if len(epochs) >= EPOCHS:
            arm = re.sub(r"-s\d+$", "", name)
            arms.setdefault(arm, []).append((last.get("val_accuracy", 0), best.get("val_accuracy", 0), last.get("val_kappa", 0)))
    if arms:
        print(f"\n{'arm (finished runs)':30} {'n':>2} {'final acc':>15} {'best acc':>15} {'final kappa':>15}")
        for arm, rows in sorted(arms.items()):
            print(f"{arm:30} {len(rows):>2} {spread([r[0] for r in rows]):>15} {spread([r[1] for r in rows]):>15} {spread([r[2] for r in rows]):>15}")


if __name__ == "__main__":
    main()
