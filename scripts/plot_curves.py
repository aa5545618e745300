#!/usr/bin/env python3
"""Validation accuracy against wall time for training runs, as an SVG (no dependencies).

Usage: plot_curves.py OUT.svg LABEL=RUNDIR [LABEL=RUNDIR ...]
Reads RUNDIR/metrics.jsonl (cumulative `seconds`, `val_accuracy`).
"""
import json
import sys


def main():
    out, runs = sys.argv[1], [a.rsplit("=", 1) for a in sys.argv[2:]]
    series = []
    for label, run in runs:
        t, points = 0.0, [(0.0, None)]
        points = []
        with open(f"{run}/metrics.jsonl") as f:
            for line in f:
                m = json.loads(line)
                t += m["seconds"]
                points.append((t / 60, m["val_accuracy"]))
        series.append((label, points))
    w, h, left, bottom, top, right = 640, 400, 60, 50, 20, 150
    tmax = max(p[0] for _, pts in series for p in pts) * 1.05
    amax = max(0.3, max(p[1] for _, pts in series for p in pts) * 1.1)
    x = lambda v: left + (w - left - right) * v / tmax
    y = lambda v: h - bottom - (h - bottom - top) * v / amax
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<line x1="{left}" y1="{h-bottom}" x2="{w-right}" y2="{h-bottom}" stroke="black"/>',
           f'<line x1="{left}" y1="{top}" x2="{left}" y2="{h-bottom}" stroke="black"/>',
           f'<text x="{(left + w - right) / 2}" y="{h - 12}" text-anchor="middle">wall time (minutes)</text>',
           f'<text x="15" y="{(top + h - bottom) / 2}" transform="rotate(-90 15 {(top + h - bottom) / 2})" text-anchor="middle">validation accuracy</text>']
    for i in range(6):
        tv, av = tmax * i / 5, amax * i / 5
        svg.append(f'<text x="{x(tv)}" y="{h-bottom+16}" text-anchor="middle">{tv:.1f}</text>')
        svg.append(f'<text x="{left-6}" y="{y(av)+4}" text-anchor="end">{av:.2f}</text>')
        svg.append(f'<line x1="{left}" y1="{y(av)}" x2="{w-right}" y2="{y(av)}" stroke="#ddd"/>')
    svg.append(f'<line x1="{left}" y1="{y(0.1)}" x2="{w-right}" y2="{y(0.1)}" stroke="#999" stroke-dasharray="4 3"/>')
    svg.append(f'<text x="{w-right+4}" y="{y(0.1)+4}" fill="#666">chance</text>')
    for i, (label, pts) in enumerate(series):
        c = colours[i % len(colours)]
        path = " ".join(f"{x(t):.1f},{y(a):.1f}" for t, a in pts)
        svg.append(f'<polyline points="{path}" fill="none" stroke="{c}" stroke-width="2"/>')
        svg += [f'<circle cx="{x(t):.1f}" cy="{y(a):.1f}" r="3" fill="{c}"/>' for t, a in pts]
        svg.append(f'<text x="{w-right+4}" y="{top + 16 * (i + 1)}" fill="{c}">{label}</text>')
    svg.append("</svg>")
    with open(out, "w") as f:
        f.write("\n".join(svg) + "\n")


if __name__ == "__main__":
    main()
