#!/usr/bin/env python3
"""Per variant of experiments/demo-defaults/run.sh: final and best validation accuracy and final kappa, mean ± sample
standard deviation over finished runs. `demo` is the demo's own PatchGD run, `gd64` its GD-64 run.
usage: summary.py WORK"""
import json, pathlib, re, statistics, sys

def metrics(folder):
    path = folder / "metrics.jsonl"
    if not path.exists():
        return None
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "epoch" in r]
    options = folder / "options.json"
    planned = json.loads(options.read_text()).get("epochs") if options.exists() else None
    return rows if rows and (planned is None or len(rows) >= planned) else None  # finished runs only

def spread(values):
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"

work = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/demo-defaults")
runs = {}
for demo in sorted(work.glob("demo-s*")):
    if not demo.is_dir():
        continue
    seed = int(demo.name.split("-s")[1])
    runs.setdefault("demo", {})[seed] = metrics(demo / "train")
    runs.setdefault("gd64", {})[seed] = metrics(demo / "train-gd")
for folder in sorted(work.iterdir()):
    m = re.fullmatch(r"(.+)-s(\d+)", folder.name)
    if folder.is_dir() and m and m.group(1) != "demo":
        runs.setdefault(m.group(1), {})[int(m.group(2))] = metrics(folder)

print(f"{'variant':10} {'seeds':8} {'final acc':>15} {'best acc':>15} {'final kappa':>15}   per seed (final)")
for name, by_seed in runs.items():
    done = {s: r for s, r in sorted(by_seed.items()) if r}
    if not done:
        continue
    final = [r[-1]["val_accuracy"] for r in done.values()]
    best = [max(x["val_accuracy"] for x in r) for r in done.values()]
    kappa = [r[-1]["val_kappa"] for r in done.values()]
    seeds = ",".join(str(s) for s in done)
    print(f"{name:10} {seeds:8} {spread(final):>15} {spread(best):>15} {spread(kappa):>15}   "
          + ", ".join(f"{v:.3f}" for v in final))
