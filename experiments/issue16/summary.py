#!/usr/bin/env python3
"""Results of the issue-16 runs so far, from each run's metrics.jsonl under state/ (or the folder given).

Per run: epochs done, final and best validation accuracy (with its epoch), final kappa, final training accuracy,
median seconds per epoch and peak RSS. Per arm (the run name without its -sN seed suffix), over the runs that
finished all their epochs: mean and sample standard deviation of final and best accuracy and of final kappa; and for
each arm with two or more such runs, Welch's t-test of it against GD-64 (t, Welch-Satterthwaite degrees of freedom,
two-sided p) on each of the three.
"""
import json
import math
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


def incomplete_beta(a, b, x):
    """The regularised incomplete beta function I_x(a, b), by its continued fraction (Lentz's method)."""
    if x <= 0 or x >= 1:
        return 0.0 if x <= 0 else 1.0
    if x > (a + 1) / (a + b + 2):
        return 1 - incomplete_beta(b, a, 1 - x)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1 - x)) / a
    tiny, f, c, d = 1e-300, 1.0, 1.0, 0.0
    for i in range(400):
        m = i // 2
        if i == 0:
            term = 1.0
        elif i % 2 == 0:
            term = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        else:
            term = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1 + term * d
        d = 1 / (d if abs(d) > tiny else tiny)
        c = 1 + term / c
        c = c if abs(c) > tiny else tiny
        f *= c * d
        if abs(1 - c * d) < 1e-12:
            break
    return front * (f - 1)


def welch(a, b):
    """Welch's t-test of samples a and b: (t, degrees of freedom, two-sided p)."""
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    t = (statistics.mean(a) - statistics.mean(b)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return t, df, incomplete_beta(df / 2, 0.5, df / (df + t * t))


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
        base = arms.get("gd64", [])
        tested = [(arm, rows) for arm, rows in sorted(arms.items()) if arm != "gd64" and len(rows) >= 2 and len(base) >= 2]
        if tested:
            print(f"\n{'Welch against gd64':30}    {'final acc':>22} {'best acc':>22} {'final kappa':>22}")
            for arm, rows in tested:
                cells = []
                for i in range(3):
                    t, df, p = welch([r[i] for r in rows], [r[i] for r in base])
                    cells.append(f"t {t:5.2f} df {df:4.1f} p {p:5.3f}")
                print(f"{arm:30}    {cells[0]:>22} {cells[1]:>22} {cells[2]:>22}")


if __name__ == "__main__":
    main()
