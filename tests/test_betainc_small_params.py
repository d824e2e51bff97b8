"""Beta CDFs with one concentration small (1e-8 .. 1e-3): ``log_cdf``, ``log_sf`` and their slopes in both
concentrations against mpmath (``betainc`` at 40 digits, ``mp.diff`` of its log), one jitted program per dtype.

On the continued fraction the prefix cancelled ``log p + log B(p, q)`` (terms of size ``log(1/p)``) and the
complement ``1 - I_(1-x)(q, p)`` lost every digit of a value of the size of ``p``: Beta(0.5, 1e-8)'s ``log_cdf`` at
0.99 read ``-inf`` in float32 (mpmath -16.63), Beta(1e-3, 3)'s ``log_sf`` at 0.0997 was 2.7e-4 relative off, Beta(3000,
1e-4) at 0.9999 1.4% (the a >> b form), and float64 kept only 1e-7 of ``log_cdf`` = -1e-8 at a = 1e-8."""
import functools

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

from mle_jax.distributions import beta

# (concentration1, concentration0, y)
CASES = ((0.5, 1e-8, 0.99), (0.1, 1e-8, 0.7), (1e-3, 3.0, 0.0997), (1e-8, 1e-3, 0.5), (1e-8, 3.0, 0.1),
         (1e-8, 3000.0, 1e-4), (1.0, 1e-8, 0.7), (3000.0, 1e-4, 0.9999), (1e-5, 0.5, 1e-12), (30.0, 1e-5, 0.99),
         (1e-3, 1e-8, 0.999), (1e-3, 1e6, 1e-7))


@functools.lru_cache(maxsize=None)
def _reference(dtype):
    """Rows ``(a, b, y, log_cdf, log_sf, d log_cdf/da, d/db, d log_sf/da, d/db)`` at ``y`` as the dtype holds it."""
    rows = []
    with mp.workdps(40):
        for a, b, y in CASES:
            yy = mp.mpf(float(np.asarray(y, dtype)))

            def cdf(a_, b_):
                return mp.log(mp.betainc(a_, b_, 0, yy, regularized=True))

            def sf(a_, b_):
                return mp.log(mp.betainc(a_, b_, yy, 1, regularized=True))
            am, bm = mp.mpf(a), mp.mpf(b)
            row = [a, b, float(yy), cdf(am, bm), sf(am, bm)]
            for f in (cdf, sf):
                row += [mp.diff(lambda v: f(v, bm), am), mp.diff(lambda v: f(am, v), bm)]
            rows.append([float(v) for v in row])
    return np.array(rows)


def _evaluate(a, b, y, upper):
    """``log_tail`` (``log_sf`` where ``upper``, else ``log_cdf``: one incomplete beta) and its slopes in (a, b)."""
    def tail(a_, b_, y_, upper_):
        return beta.log_tail(beta.Beta(a_, b_), y_, upper_)
    return jax.vmap(jax.value_and_grad(tail, argnums=(0, 1)))(a, b, y, upper)


@pytest.mark.deep
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_beta_cdfs_with_a_small_concentration_match_mpmath(dtype):
    """Each value within 2e-6 relative (float32; 1e-12 in float64), each slope within 1e-4 (float32; 1e-9)."""
    ref = _reference(dtype)
    with jax.enable_x64(dtype == np.float64):
        args = [jnp.asarray(np.tile(ref[:, k], 2), dtype) for k in range(3)]
        upper = jnp.repeat(jnp.asarray([False, True]), len(ref))
        value, (d_a, d_b) = jax.jit(_evaluate)(*args, upper)
        got = np.stack([np.asarray(v, np.float64).reshape(2, -1) for v in (value, d_a, d_b)], -1)  # (side, case, 3)
        got = np.concatenate([got[:, :, 0].T, got[0, :, 1:], got[1, :, 1:]], 1)
    want = ref[:, 3:]
    f32 = dtype == np.float32
    tol = np.array([2e-6] * 2 + [1e-4] * 4) if f32 else np.array([1e-12] * 2 + [1e-9] * 4)
    assert np.all(np.isfinite(got))
    rel = np.abs(got - want) / np.abs(want)
    worst = np.unravel_index(np.argmax(rel / tol), rel.shape)
    assert np.all(rel < tol), (CASES[worst[0]], worst[1], got[worst], want[worst])
