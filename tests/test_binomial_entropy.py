"""The binomial entropy, a sum over the counts (``binomial.entropy``), against scipy's ``binom.entropy`` (an
exact sum over all n + 1 counts).

Tolerances: float64 1e-10 relative (scipy's pmf at y = 0 is ``(1 - p)^n`` of a rounded ``1 - p``, which costs it
eps / p relative in the entropy at p = 6e-6, n = 1); float32 32 eps (4e-6): the sum of 1024 terms of relative
error eps each. The lattice of every h-th count (n >= 1024 with sd > 12) is covered by n = 1e5.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from scipy.special import expit

import mle_jax as mj

NS = [0, 1, 10, 100, 1023, 1024, 5000, 1e5]
ZS = [-12.0, -3.0, 0.0, 2.0]
TOL = {np.float64: 1e-10, np.float32: 32 * np.finfo(np.float32).eps}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_binomial_entropy_matches_scipy(dtype):
    n, z = (np.array(v, float) for v in zip(*[(n, z) for n in NS for z in ZS]))
    with jax.enable_x64(dtype == np.float64):
        got = np.asarray(jax.jit(mj.entropy)(mj.Binomial(jnp.asarray(n, dtype), jnp.asarray(z, dtype))), np.float64)
    # the reference at the parameters as the dtype holds them
    want = np.array([stats.binom(int(a), expit(float(np.asarray(b, dtype)))).entropy() for a, b in zip(n, z)])
    np.testing.assert_allclose(got, want, rtol=TOL[dtype], atol=0)
    assert got[0] == 0.0  # n = 0: one count, no uncertainty
