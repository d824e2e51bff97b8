"""The binomial entropy, a sum over the counts (``binomial.entropy``), against the exact sum over the counts
(scipy's ``binom.logpmf`` for n < 1024, mpmath above; not ``binom.entropy``, whose series warns on some scipy
releases).

Tolerances: float64 1e-10 relative (scipy's pmf at y = 0 is ``(1 - p)^n`` of a rounded ``1 - p``, which costs it
eps / p relative in the entropy at p = 6e-6, n = 1); float32 32 eps (4e-6): the sum of 1024 terms of relative
error eps each. The lattice of every h-th count (n >= 1024 with sd > 12) is covered by n = 1e5.
"""

import math

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
from scipy import stats
from scipy.special import expit

import mle_jax as mj

NS = [0, 1, 10, 100, 1023, 1024, 5000, 1e5]
ZS = [-12.0, -3.0, 0.0, 2.0]
TOL = {np.float64: 1e-10, np.float32: 32 * np.finfo(np.float32).eps}


def _entropy(n: int, p: float) -> float:
    """-sum_k P(k) log P(k): over k = 0..n from scipy's logpmf for n < 1024; above, in mpmath (scipy's logpmf
    loses 1e-10 relative at n = 1e5) over the counts within 40 standard deviations of the mean."""
    if n < 1024:
        log_p = stats.binom.logpmf(np.arange(n + 1), n, p)
        return float(-np.sum(np.exp(log_p) * log_p, where=np.isfinite(log_p)))
    with mpmath.workdps(30):
        sd = math.sqrt(n * p * (1 - p))
        lo, hi = max(0, int(n * p - 40 * sd) - 5), min(n, int(n * p + 40 * sd) + 5)
        head = mpmath.loggamma(n + 1) + n * mpmath.log1p(-mpmath.mpf(p))
        odds = mpmath.log(mpmath.mpf(p)) - mpmath.log1p(-mpmath.mpf(p))
        terms = (head - mpmath.loggamma(k + 1) - mpmath.loggamma(n - k + 1) + k * odds for k in range(lo, hi + 1))
        return float(-mpmath.fsum(mpmath.exp(t) * t for t in terms))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_binomial_entropy_matches_scipy(dtype):
    n, z = (np.array(v, float) for v in zip(*[(n, z) for n in NS for z in ZS]))
    with jax.enable_x64(dtype == np.float64):
        got = np.asarray(jax.jit(mj.entropy)(mj.Binomial(jnp.asarray(n, dtype), jnp.asarray(z, dtype))), np.float64)
    # the reference at the parameters as the dtype holds them
    want = np.array([_entropy(int(a), expit(float(np.asarray(b, dtype)))) for a, b in zip(n, z)])
    np.testing.assert_allclose(got, want, rtol=TOL[dtype], atol=0)
    assert got[0] == 0.0  # n = 0: one count, no uncertainty


def _entropy_lattice(n: float, z: float) -> float:
    """-sum_k P(k) log P(k) in mpmath at 50 digits by the trapezoid rule on every h-th count, ``h = floor(sd/6)``,
    within 12 standard deviations of the mean (a Gaussian-like mass on a lattice of step sd/6: the rule's error is
    about exp(-2 pi^2 36) ~ 1e-309, the truncation exp(-72)); independent of mle_jax's series."""
    with mpmath.workdps(50):
        n, z = mpmath.mpf(n), mpmath.mpf(z)
        p = 1 / (1 + mpmath.exp(-z))
        sd = mpmath.sqrt(n * p * (1 - p))
        h = max(1, int(mpmath.floor(sd / 6)))
        centre = int(mpmath.floor(n * p))
        span = int(mpmath.ceil(12 * sd / h)) + 1
        log_p, log_q = mpmath.log(p), mpmath.log(1 - p)
        head = mpmath.loggamma(n + 1)
        total = mpmath.mpf(0)
        for i in range(-span, span + 1):
            k = centre + i * h
            if 0 <= k <= n:
                t = head - mpmath.loggamma(k + 1) - mpmath.loggamma(n - k + 1) + k * log_p + (n - k) * log_q
                total += mpmath.exp(t) * t
        return float(-h * total)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_binomial_entropy_at_huge_counts(dtype):
    """Float32 n = 1e9, z = 0 was 1.4e-5 relative off: the lattice's counts near 5e8 were multiples of 32 for a step
    of 1318 (unequal steps), and at n = 1e12 and beyond (z = -8: 0.36 relative; 1e17: 20 times) the counts were not
    representable at all. Now the less likely outcome's count (small, exact) and, from a variance of 1e4 (float32) /
    1e8 (float64) on, the asymptotic series; both sides of that switch, and z of either sign."""
    cases = [(1e9, 0.0), (1e9, 3.0), (1e12, -8.0), (1e12, 8.0), (1e20, 3.0), (4e4, 0.0), (3.99e4, 0.0),
             (4.01e4, 0.0), (4e8, 0.0), (3.99e8, 0.0), (4.01e8, 0.0), (1e12, -22.0), (1e12, 22.0), (1e17, -30.0)]
    n, z = (np.array(v, dtype) for v in zip(*cases))
    with jax.enable_x64(dtype == np.float64):
        got = np.asarray(jax.jit(mj.entropy)(mj.Binomial(jnp.asarray(n), jnp.asarray(z))), np.float64)
    want = np.array([_entropy_lattice(float(a), float(b)) for a, b in zip(n, z)])
    np.testing.assert_allclose(got, want, rtol=TOL[dtype], atol=0)
