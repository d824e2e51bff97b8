"""The main job: every lecture experiment, figures, metrics.json and report.md.

    python -m experiments --out runs/demo            # everything, embedded defaults
    python -m experiments --out runs/demo --only entropy
    python -m experiments --out runs/quick --quick   # smaller fits (what the tests run)

Between experiments the driver lets go of what the last one left behind (``common.release``): its
figures, JAX's compiled programs and traces, and the heap pages they freed, so that the process's
peak is the largest single experiment's, not the sum of all of them (.ci/run fails a main job that
peaks over 2 GB).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import ALL
from .common import release, resident_mb
from .report import write_outputs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder")
    parser.add_argument("--only", action="append", choices=[e.name for e in ALL],
                        help="run only this experiment (repeatable)")
    parser.add_argument("--quick", action="store_true", help="small data and few steps")
    args = parser.parse_args(argv)
    chosen = [e for e in ALL if not args.only or e.name in args.only]
    args.out.mkdir(parents=True, exist_ok=True)
    outcomes, start = [], time.perf_counter()
    for i, experiment in enumerate(chosen, 1):
        t0 = time.perf_counter()
        print(f"[{i}/{len(chosen)}] {experiment.title} ...", end=" ", flush=True)
        outcome = experiment.run(args.out, args.quick)
        outcome.metrics["seconds"] = round(time.perf_counter() - t0, 2)
        outcomes.append(outcome)
        failed = [c.name for c in outcome.checks if not c.passed]
        held = resident_mb()
        release()
        print(f"{'PASS' if not failed else 'FAIL'} ({len(outcome.checks)} checks, "
              f"{outcome.metrics['seconds']:.1f} s, {held:.0f} -> {resident_mb():.0f} MB resident)", flush=True)
        for name in failed:
            print(f"    FAIL: {name}", flush=True)
    write_outputs(args.out, outcomes)
    n_checks = sum(len(o.checks) for o in outcomes)
    n_failed = sum(not c.passed for o in outcomes for c in o.checks)
    print(f"{n_checks - n_failed} passed, {n_failed} failed; "
          f"{time.perf_counter() - start:.1f} s; wrote {args.out}/report.md and metrics.json")
    return 1 if n_failed else 0


if __name__ == "__main__":
    sys.exit(main())
