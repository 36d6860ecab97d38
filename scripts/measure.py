#!/usr/bin/env python3
"""Run a command; print its wall time and peak resident memory as one JSON line.

    measure.py -- CMD ARGS...

Peak memory is the child's maximum resident set size (getrusage RUSAGE_CHILDREN), the
number an operator sees in `time -v` or a container's memory limit. `peak_rss_mib_by_quarter`
is the highest resident size sampled (every 100 ms, from /proc) in each quarter of the run:
memory that grows with the work done shows as quarters that keep rising, memory bounded
by a budget as quarters that level off.
"""
import json, resource, subprocess, sys, threading, time

SAMPLE_SECONDS = 0.1


def resident_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


cmd = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]
start = time.monotonic()
proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
samples = []  # (seconds since start, resident MiB)
done = threading.Event()


def sample():
    while not done.wait(SAMPLE_SECONDS):
        mib = resident_mib(proc.pid)
        if mib is not None:
            samples.append((time.monotonic() - start, mib))


sampler = threading.Thread(target=sample, daemon=True)
sampler.start()
stdout, stderr = proc.communicate()
seconds = time.monotonic() - start
done.set()
sampler.join()
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
if proc.returncode != 0:
    sys.stderr.write(stdout + stderr)
    sys.exit(f"command failed with exit code {proc.returncode}: {' '.join(cmd)}")
quarters = [0.0] * 4
for at, mib in samples:
    quarter = min(int(at / seconds * 4), 3)
    quarters[quarter] = max(quarters[quarter], mib)
print(json.dumps({"seconds": round(seconds, 3), "peak_rss_mib": round(peak_kib / 1024, 1),
                  "peak_rss_mib_by_quarter": [round(q, 1) for q in quarters],
                  "stdout": stdout.strip()[-2000:]}))
