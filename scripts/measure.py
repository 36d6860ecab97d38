#!/usr/bin/env python3
"""Run a command; print its wall time and peak resident memory as one JSON line.

    measure.py -- CMD ARGS...

Peak memory is the child's maximum resident set size (getrusage RUSAGE_CHILDREN), the
number an operator sees in `time -v` or a container's memory limit.
"""
import json, resource, subprocess, sys, time

cmd = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]
start = time.monotonic()
proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
seconds = time.monotonic() - start
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
if proc.returncode != 0:
    sys.stderr.write(proc.stdout + proc.stderr)
    sys.exit(f"command failed with exit code {proc.returncode}: {' '.join(cmd)}")
print(json.dumps({"seconds": round(seconds, 3), "peak_rss_mib": round(peak_kib / 1024, 1),
                  "stdout": proc.stdout.strip()[-2000:]}))
