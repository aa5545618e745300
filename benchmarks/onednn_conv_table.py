"""Reads benchmarks/onednn.sh conv's JSON lines from stdin and prints BENCHMARKS.md's table. Per shape: oneDNN's bf16
primitives alone (tensors already in its layouts), the same inside Gigapatch (Conv2d with its conversions from and to
float32 NCHW; only where Conv2d uses oneDNN), and the faster of Gigapatch's own algorithms; then per model the sums
over its convolutions (times their count) of what Conv2d runs (oneDNN where it applies, else the own kernels)."""
import json
import sys

rows, totals = [], {}
for line in sys.stdin:
    d = json.loads(line)
    if "model" in d:
        rows.append({"model": d["model"], "count": d["count"], "own": None, "inside": None})
        continue
    r = rows[-1]
    if d.get("bench") == "onednn_conv":
        r["raw"] = d
    elif d["algorithm"].startswith("onednn"):
        r["inside"] = d
    elif r["own"] is None or d["forward_ms"] + d["backward_ms"] < r["own"]["forward_ms"] + r["own"]["backward_ms"]:
        r["own"] = d


def ms(d):
    return f"{d['forward_ms']:.2f} / {d['backward_ms']:.2f}" if d else "-"


def total(d):
    return d["forward_ms"] + d["backward_ms"]


print("| model | convolution (in -> out, side, kernel/stride) | count | oneDNN alone, fwd / bwd ms | oneDNN in Gigapatch | "
      "Gigapatch's own (algorithm) | own / oneDNN in Gigapatch |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    raw, inside, own = r["raw"], r["inside"], r["own"]
    used = inside or own
    t = totals.setdefault(r["model"], [0.0, 0.0, 0.0])
    t[0] += r["count"] * total(raw)
    t[1] += r["count"] * total(used)
    t[2] += r["count"] * total(own)
    ratio = f"{total(own) / total(inside):.2f}x" if inside else "(own kernels)"
    print(f"| {r['model']} | {raw['in']} -> {raw['out']}, {raw['size']} px, {raw['kernel']}/{raw['stride']} | {r['count']} | "
          f"{ms(raw)} | {ms(inside)} | {ms(own)} ({own['algorithm']}) | {ratio} |")
for m, (raw, used, own) in totals.items():
    print(f"| {m} | all convolutions, forward + backward | | {raw:.1f} ms | {used:.1f} ms (as Conv2d runs them) | {own:.1f} ms | "
          f"**{own / used:.2f}x** |")
