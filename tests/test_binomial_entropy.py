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
