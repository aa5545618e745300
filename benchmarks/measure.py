#!/usr/bin/env python3
"""Runs a command and prints one JSON line: wall seconds and the peak resident memory of the command (MiB).

Usage: measure.py LABEL -- COMMAND [ARGS...]
"""
import json
import resource
import subprocess
import sys
import time

label = sys.argv[1]
command = sys.argv[sys.argv.index("--") + 1:]
start = time.perf_counter()
result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
seconds = time.perf_counter() - start
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
if result.returncode != 0:
    sys.stderr.write(result.stderr)
    sys.exit(f"{label}: command failed with status {result.returncode}")
print(json.dumps({"label": label, "seconds": round(seconds, 3), "peak_rss_mib": round(peak_kib / 1024, 1)}))
