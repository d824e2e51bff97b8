"""Run a command; report its wall and CPU time and the peak resident memory of its largest process.

    python .ci/measure.py LABEL MAX_MB COMMAND...

Exits with the command's status; a command that succeeded but peaked above MAX_MB (0: no limit)
exits 3, so a suite that outgrows the memory budget fails CI instead of drifting.
"""

import resource
import subprocess
import sys
import time

label, max_mb, command = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
start = time.perf_counter()
rc = subprocess.call(command)
seconds = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
peak_mb = usage.ru_maxrss / 1024  # Linux reports KiB
cpu = usage.ru_utime + usage.ru_stime  # on a shared machine the CPU time says more than the wall time
print(f"{label}: {seconds:.0f} s wall, {cpu:.0f} s CPU, peak RSS {peak_mb:.0f} MB, exit status {rc}", flush=True)
if rc == 0 and max_mb and peak_mb > max_mb:
    print(f"{label}: peak RSS {peak_mb:.0f} MB is over the {max_mb:.0f} MB budget", flush=True)
    rc = 3
sys.exit(rc)
