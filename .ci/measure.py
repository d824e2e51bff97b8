"""Run a command; report its wall and CPU time and its peak resident memory, summed over all of its
processes (pytest and its xdist workers together) and for its largest single process.

    python .ci/measure.py LABEL MAX_MB COMMAND...

The sum is sampled from /proc every 0.2 s (a peak shorter than that can be missed; the largest
single process is exact, from the kernel's accounting). Exits with the command's status; a command
that succeeded but whose summed peak went above MAX_MB (0: no limit) exits 3, so a suite that
outgrows the memory budget fails CI instead of drifting.
"""

import os
import resource
import subprocess
import sys
import threading
import time

PAGE = os.sysconf("SC_PAGE_SIZE")


def _tree_rss_bytes(root: int) -> int:
    """The resident bytes of ``root`` and every process descended from it."""
    parents, rss = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/statm") as f:
                resident = int(f.read().split()[1]) * PAGE
        except OSError:  # the process ended while we looked
            continue
        pid = int(entry)
        parents[pid] = int(stat.rsplit(")", 1)[1].split()[1])
        rss[pid] = resident
    total, frontier = 0, [root]
    while frontier:
        pid = frontier.pop()
        total += rss.get(pid, 0)
        frontier += [child for child, parent in parents.items() if parent == pid]
    return total


label, max_mb, command = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
start = time.perf_counter()
process = subprocess.Popen(command)
peak_sum = 0
done = threading.Event()


def _sample():
    global peak_sum
    while not done.wait(0.2):
        peak_sum = max(peak_sum, _tree_rss_bytes(process.pid))


sampler = threading.Thread(target=_sample, daemon=True)
sampler.start()
rc = process.wait()
done.set()
sampler.join()
seconds = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
largest_mb = usage.ru_maxrss / 1024  # Linux reports KiB
sum_mb = max(peak_sum / 2**20, largest_mb)
cpu = usage.ru_utime + usage.ru_stime  # on a shared machine the CPU time says more than the wall time
print(f"{label}: {seconds:.0f} s wall, {cpu:.0f} s CPU, peak RSS {sum_mb:.0f} MB summed over its processes "
      f"(largest process {largest_mb:.0f} MB), exit status {rc}", flush=True)
if rc == 0 and max_mb and sum_mb > max_mb:
    print(f"{label}: peak RSS {sum_mb:.0f} MB is over the {max_mb:.0f} MB budget", flush=True)
    rc = 3
sys.exit(rc)
