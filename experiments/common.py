"""What every experiment shares: checks against references, outcomes, figure saving, data."""

from __future__ import annotations

import ctypes
import gc
import math
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, NamedTuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


@dataclass
class Check:
    """One number the experiment reports, its independent reference, and whether it holds."""

    name: str
    value: Any
    reference: Any
    tolerance: str
    passed: bool


def close(name: str, value, reference, *, rtol: float = 0.0, atol: float = 0.0) -> Check:
    """``|value - reference| <= atol + rtol |reference|`` (elementwise for arrays)."""
    v, r = np.asarray(value, np.float64), np.asarray(reference, np.float64)
    passed = bool(np.all(np.abs(v - r) <= atol + rtol * np.abs(r)))
    return Check(name, _plain(v), _plain(r), f"rtol={rtol:g}, atol={atol:g}", passed)


def holds(name: str, passed, value, reference: str) -> Check:
    """A check stated as a condition (``reference`` says what it compares against)."""
    return Check(name, _plain(np.asarray(value, np.float64)), reference, "condition", bool(passed))


def _plain(a):
    return a.item() if a.ndim == 0 else a.tolist()


@dataclass
class Outcome:
    """What one experiment did: the lecture's claim, the fit, its figures, checks and metrics."""

    name: str
    title: str
    claim: str
    fitted: str
    figures: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def as_json(self) -> dict:
        return {"title": self.title, "claim": self.claim, "fitted": self.fitted, "figures": self.figures,
                "metrics": self.metrics, "passed": self.passed,
                "checks": [{**asdict(c), "status": "PASS" if c.passed else "FAIL"} for c in self.checks]}


class Experiment(NamedTuple):
    name: str
    title: str
    run: Callable[[Path, bool], Outcome]


def save(fig, out: Path, name: str) -> str:
    """Write a figure as PNG and return its file name."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path.name


def release() -> None:
    """Free what one experiment leaves behind before the next starts: open figures, JAX's caches of
    compiled programs and traces (``jax.clear_caches``; each experiment compiles its own), Python's
    garbage, and the heap pages glibc keeps after they are freed (``malloc_trim``; glibc only)."""
    import jax

    plt.close("all")
    jax.clear_caches()
    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # another C library (musl): its pages stay with the process
            pass


def resident_mb() -> float:
    """This process's resident memory now, in MB (Linux: /proc/self/statm; elsewhere the peak so far)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource  # not on Windows, which has no /proc either: never reached there
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def regression_data(n: int, seed: int = 0, noise: Callable | float = 0.3):
    """The lecture's 1-D regression data: x in [0, 4], a smooth curve plus Normal noise."""
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(0.0, 4.0, size=n))
    sd = noise(x) if callable(noise) else np.full(n, noise)
    y = true_curve(x) + sd * rng.normal(size=n)
    return x.astype(np.float32), y.astype(np.float32)


def true_curve(x):
    return np.sin(1.6 * x) + 0.4 * x - 0.5


HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
