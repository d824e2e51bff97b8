"""Round-robin timing: every contender runs once per repetition, in a fresh random order, so that
drift on a shared machine, and whatever one contender leaves behind for the next (torch's OpenMP
threads spin for a while after each call), hits them all alike. Medians, never means."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np


def _block(out):
    try:
        import jax
        jax.block_until_ready(out)
    except Exception:  # torch tensors and plain numbers
        pass
    return out


def round_robin(contenders: dict[str, Callable[[], object]], reps: int = 30, warmup: int = 3,
                budget_s: float | None = None) -> dict[str, dict]:
    """Time each zero-argument callable ``reps`` times, interleaved. Returns medians and spreads (seconds)."""
    for fn in contenders.values():
        for _ in range(warmup):
            _block(fn())
    names = list(contenders)
    times = {name: [] for name in names}
    order_rng = np.random.default_rng(0)
    start = time.perf_counter()
    for rep in range(reps):
        for name in order_rng.permutation(names):
            t0 = time.perf_counter()
            _block(contenders[name]())
            times[name].append(time.perf_counter() - t0)
        if budget_s is not None and time.perf_counter() - start > budget_s and rep >= 4:
            break
    return {name: {"median_s": float(np.median(t)), "q25_s": float(np.percentile(t, 25)),
                   "q75_s": float(np.percentile(t, 75)), "reps": len(t), "times_s": [float(v) for v in t]}
            for name, t in times.items()}


def paired_ratio(timings: dict, a: str, b: str) -> float:
    """The median over repetitions of ``time(a) / time(b)`` within the same repetition: the two ran
    back to back, so drift between repetitions cancels (steadier than a ratio of medians)."""
    return float(np.median(np.asarray(timings[a]["times_s"]) / np.asarray(timings[b]["times_s"])))
