"""The families benchmark's workloads timed in interleaved blocks, for rows where single calls are too
short or too noisy for ``families.run``'s one-call repetitions (N = 1e2 on a shared machine, where the
thread pool's wake-up swings a call between ~13 and ~60 us).

    python -m experiments.benchmarks.interleaved --family exponential --dtype float32 --n 1000000
    python -m experiments.benchmarks.interleaved --all          # every family, float32 and float64, 1e2 / 1e4 / 1e6

Each block runs every contender ``k`` times back to back (``k`` chosen so that a block takes ~20 ms of
mle_jax), the contenders in a fresh random order per block; a block's time is the median of its ``k``
calls. Printed: the medians over blocks, the fastest anchor, and the median over blocks of the
per-block ratio mle_jax / fastest anchor (with its minimum), which load that comes and goes between
blocks disturbs less than a ratio of medians; and the same ratio of CPU time (``time.process_time`` over a
block's calls, all threads of this process): on a machine shared with other jobs a call's wall time includes
the waits for a core, its CPU time does not (nor the thread pool's wake-up latency, which the wall ratio
sees): a second reading of the same blocks, not a replacement for the wall ratio.

torch's OpenMP workers keep their cores busy for a while after a torch call: on the 2-core machine the JAX
contender that runs right after torch in a block took 2.3x its time after any other contender (exponential,
float32, N = 1e6: 3.65 ms against 1.56 ms, medians of 12 and 48 blocks, load 7). Both mle_jax and the JAX
anchors draw that seat at random, so it widens the per-block ratios without biasing them; where the
fastest anchor is a JAX one, ``--no-torch`` measures the same ratio with less noise (with torch in the
process the CPU ratio also counts torch's spinning workers).

At N = 1e2 a program's time can be mostly how XLA's CPU client runs it: a compiled program whose cost analysis
counts under 1,000 flops runs inline in the calling thread, any other is handed to the client's thread pool
(a wake-up of ~10-60 us on this machine), so a kernel whose support checks add a few operations per example
can cross that line where the hand-written loss, without them, does not (the exponential: 2,255 counted flops
at N = 100 against jnp's 855). ``--sync-dispatch`` sets ``jax_cpu_enable_async_dispatch`` off before JAX creates
its CPU client (set after that, it changes nothing), so that every program runs inline: the ratio it prints is the
programs' own, the default one what a caller pays.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from . import families
from .timing import _block


def measure(name: str, dtype_name: str, n: int, *, blocks: int = 15, torch: bool = True,
            block_s: float = 0.02) -> dict:
    """Medians (s) per contender, the fastest anchor, and the per-block ratio's median and minimum."""
    with jax.enable_x64(dtype_name == "float64"):
        dtype = jnp.float32 if dtype_name == "float32" else jnp.float64
        w = families.WORKLOADS[name](n, np.random.default_rng(0))
        fns = {k: f for k, f in families.contenders(w, dtype).items() if torch or k != "torch"}
        for f in fns.values():
            for _ in range(3):
                _block(f())
        t0 = time.perf_counter()
        _block(fns["mle_jax"]())
        k = max(1, min(2000, int(block_s / max(time.perf_counter() - t0, 1e-7))))
        rng = np.random.default_rng(0)
        per_block = {m: [] for m in fns}
        cpu_block = {m: [] for m in fns}
        ratios, cpu_ratios = [], []
        for _ in range(blocks):
            block, cpu = {}, {}
            for m in rng.permutation(list(fns)):
                ts = []
                c0 = time.process_time()
                for _ in range(k):
                    t0 = time.perf_counter()
                    _block(fns[m]())
                    ts.append(time.perf_counter() - t0)
                cpu[m] = (time.process_time() - c0) / k
                block[m] = float(np.median(ts))
                per_block[m].append(block[m])
                cpu_block[m].append(cpu[m])
            ratios.append(block["mle_jax"] / min(v for m, v in block.items() if m != "mle_jax"))
            cpu_ratios.append(cpu["mle_jax"] / min(v for m, v in cpu.items() if m != "mle_jax"))
    medians = {m: float(np.median(v)) for m, v in per_block.items()}
    best = min((m for m in medians if m != "mle_jax"), key=medians.__getitem__)
    cpu_medians = {m: float(np.median(v)) for m, v in cpu_block.items()}
    return {"medians_s": medians, "fastest_anchor": best, "ratio": float(np.median(ratios)),
            "ratio_min": float(min(ratios)), "cpu_medians_s": cpu_medians, "cpu_ratio": float(np.median(cpu_ratios)),
            "calls_per_block": k, "blocks": blocks}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m experiments.benchmarks.interleaved", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", action="append", choices=list(families.WORKLOADS))
    parser.add_argument("--all", action="store_true", help="every family")
    parser.add_argument("--dtype", action="append", choices=["float32", "float64"])
    parser.add_argument("--n", action="append", type=lambda s: int(float(s)))
    parser.add_argument("--blocks", type=int, default=15)
    parser.add_argument("--no-torch", action="store_true", help="JAX contenders only")
    parser.add_argument("--sync-dispatch", action="store_true",
                        help="run every JAX program inline (jax_cpu_enable_async_dispatch off)")
    args = parser.parse_args(argv)
    if args.sync_dispatch:
        jax.config.update("jax_cpu_enable_async_dispatch", False)
    if not args.family and not args.all:
        parser.error("name a --family, or --all")
    if not args.no_torch:
        import os

        import torch
        torch.set_num_threads(os.cpu_count() or 1)
    for name in (list(families.WORKLOADS) if args.all else args.family):
        for dtype_name in args.dtype or ("float32", "float64"):
            for n in args.n or (100, 10_000, 1_000_000):
                r = measure(name, dtype_name, n, blocks=args.blocks, torch=not args.no_torch)
                b = r["fastest_anchor"]
                print(f"{name:<28} {dtype_name} N={n:>9,}: mle_jax {r['medians_s']['mle_jax'] * 1e6:10.1f} us  "
                      f"{b} {r['medians_s'][b] * 1e6:10.1f} us  ratio {r['ratio']:.2f} (min {r['ratio_min']:.2f})  "
                      f"cpu ratio {r['cpu_ratio']:.2f}",
                      flush=True)


if __name__ == "__main__":
    main()
