"""The saddle-point masses of the negative binomial and binomial where the total count is far from the count (r or
n - y up to 1e20 against a count of 1e10, and the reverse): ``dev(k, n pi)`` is given ``n pi - k`` as
``+-(y (1 - pi) - k pi)``, not through ``n = k + y``, whose rounding kept ``eps n`` of it (float32, r = 1e20,
y = 3e13: -4e5 for -16.4). Against mpmath at 60 digits at each dtype's own inputs, within 16 roundings of the
value plus its condition in the parameters (``|z d/dz| + |r d/dr|``)."""

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

from mle_jax.distributions import binomial, negative_binomial

# (total count, mean): the count is the mean's floor
NB_CASES = [(1e20, 3e13), (2.7e8, 3.9e15), (1e16, 3e9), (9e19, 2.8e10), (7e19, 2e15), (3.5e12, 6e19), (1e12, 50.0)]
BIN_CASES = [(1.2e17, 9.4e10), (9.9e19, 6.3e13), (6.6e19, 2.4e11), (1e17, 1e17 - 9e10), (4e12, 2e12)]


def _nb(r, z, y):
    """``(log Pr(y), |z d/dz| + |r d/dr|)`` of ``nbinom(r, sig(-z))``."""
    lp, ln = -mp.log1p(mp.exp(-z)), -mp.log1p(mp.exp(z))
    value = mp.loggamma(y + r) - mp.loggamma(r) - mp.loggamma(y + 1) + r * ln + y * lp
    d_z = y * mp.exp(ln) - r * mp.exp(lp)
    d_r = mp.digamma(y + r) - mp.digamma(r) + ln
    return value, abs(z * d_z) + abs(r * d_r)


def _binom(n, z, y):
    lp, ln = -mp.log1p(mp.exp(-z)), -mp.log1p(mp.exp(z))
    value = mp.loggamma(n + 1) - mp.loggamma(y + 1) - mp.loggamma(n - y + 1) + y * lp + (n - y) * ln
    d_z = y * mp.exp(ln) - (n - y) * mp.exp(lp)
    d_n = mp.digamma(n + 1) - mp.digamma(n - y + 1) + ln
    return value, abs(z * d_z) + abs(n * d_n)


def _check(log_prob, reference, k, z, y, dtype):
    with jax.enable_x64(dtype == "float64"):
        got = np.asarray(jax.jit(log_prob)(*(jnp.asarray(v, dtype) for v in (k, z, y))))
    eps = np.finfo(dtype).eps
    with mp.workdps(60):
        for i in range(len(k)):
            args = [mp.mpf(float(np.asarray(v[i], dtype))) for v in (k, z, y)]
            want, condition = reference(*args)
            assert abs(got[i] - float(want)) <= 16 * eps * float(abs(want) + condition), (dtype, i, got[i], want)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_negative_binomial_total_count_far_from_count(dtype):
    r, mean = (np.array(c) for c in zip(*NB_CASES))
    z = np.log(mean / r).astype(dtype)
    y = np.floor(r.astype(dtype).astype(float) * np.exp(z.astype(float))).astype(dtype)
    _check(lambda r, z, y: negative_binomial.log_prob(negative_binomial.NegativeBinomial(r, z), y), _nb, r, z, y,
           dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_binomial_trials_far_from_count(dtype):
    n, mean = (np.array(c) for c in zip(*BIN_CASES))
    n = n.astype(dtype).astype(float)
    p = mean / n
    z = (np.log(p) - np.log1p(-p)).astype(dtype)
    y = np.minimum(np.floor(n / (1 + np.exp(-z.astype(float)))), n).astype(dtype)
    _check(lambda n, z, y: binomial.log_prob(binomial.Binomial(n, z), y), _binom, n, z, y, dtype)
