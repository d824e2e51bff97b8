"""The Plackett-Luce chain (``plackett_luce.ranked_log_prob``: one exp, one log1p and one division per item,
its derivative written) against an independent reference: the reverse cumulative logsumexp in float64
NumPy (``np.logaddexp.accumulate``) and autodiff of that formula in jax; float32 and float64, the unrolled
form (K <= SMALL_K) and the rolled scan above it, near-ties and logits 1e4 apart."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mle_jax as mj
from mle_jax.distributions import plackett_luce as pl


def _reference(o):
    """``sum_j o_j - logsumexp(o_j..o_K)`` in float64 NumPy, row by row."""
    o = np.asarray(o, np.float64)
    tails = np.logaddexp.accumulate(o[..., ::-1], axis=-1)[..., ::-1]
    return np.sum(o - tails, axis=-1)


def _jax_reference(o):
    return jnp.sum(o - jax.lax.cumlogsumexp(o, axis=o.ndim - 1, reverse=True), axis=-1)


@jax.jit
def _derivatives(o):
    """Value, gradient and, on the first three rows (where the reference's own autodiff is accurate), the
    Hessian, of the chain and of the reference."""
    mid = o[:3]
    return (jax.vmap(pl.ranked_log_prob)(o), jax.vmap(jax.grad(pl.ranked_log_prob))(o),
            jax.vmap(jax.grad(_jax_reference))(o), jax.vmap(jax.hessian(pl.ranked_log_prob))(mid),
            jax.vmap(jax.hessian(_jax_reference))(mid))


def _rows(k, rng):
    spread = [rng.normal(size=k), 30 * rng.normal(size=k), np.full(k, 0.7),       # ordinary, wide, all tied
              np.sort(rng.normal(size=k))[::-1] * 50, np.sort(rng.normal(size=k)) * 50]  # confident, hopeless
    extreme = np.linspace(1e4, -1e4, k)                                            # 1e4 apart: no overflow
    return np.stack(spread + [extreme, extreme[::-1]])


@pytest.mark.parametrize("k", [2, 5, pytest.param(pl.SMALL_K + 3, marks=pytest.mark.deep)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_value_gradient_and_hessian_against_the_cumulative_logsumexp(k, dtype):
    rng = np.random.default_rng(k)
    rows = _rows(k, rng)
    with jax.enable_x64(dtype == "float64"):
        value, grad, want_grad, hess, want_hess = _derivatives(jnp.asarray(rows, dtype))
    tol = 2e-6 if dtype == "float32" else 1e-13
    want = _reference(rows.astype(dtype))
    scale = np.abs(rows.astype(dtype)).max(axis=1).clip(1)  # round-off of the logits themselves
    assert np.all(np.abs(np.asarray(value, np.float64) - want) <= tol * k * (np.abs(want) + scale)), (value, want)
    np.testing.assert_allclose(grad, want_grad, rtol=50 * tol, atol=50 * tol * k)
    np.testing.assert_allclose(hess, want_hess, rtol=100 * tol, atol=100 * tol * k)
    # the derivative sums to 0: adding a constant to every logit changes nothing
    np.testing.assert_allclose(np.sum(np.asarray(grad, np.float64), axis=-1), 0.0, atol=100 * tol * k)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_confident_rankings_keep_their_tiny_loss(dtype):
    """A ranking in the logits' own order with gaps of 30: the log probability is about -sum exp(-30 m),
    far below round-off of 1; it is computed, not rounded to 0 (a log of a product of (1 + e) would lose it)."""
    k = 6
    o = -30.0 * np.arange(k)
    want = -sum(np.log1p(np.sum(np.exp(o[j + 1:] - o[j]))) for j in range(k))
    with jax.enable_x64(dtype == "float64"):
        got = float(pl.ranked_log_prob(jnp.asarray(o, dtype)))
    np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == "float32" else 1e-13)
    assert got < 0


@pytest.mark.parametrize("k", [4, pl.SMALL_K + 2])
def test_permutation_check_counts_and_sorts_alike(k):
    """``is_permutation`` (counting each item for K <= SMALL_K, sorting above) against NumPy's sorted row."""
    rng = np.random.default_rng(0)
    rows = [rng.permutation(k) for _ in range(20)] + [rng.integers(0, k, size=k) for _ in range(20)]
    rows += [np.r_[np.arange(k - 1), k], np.r_[-1, np.arange(1, k)]]
    rows = np.stack(rows)
    want = np.all(np.sort(rows, axis=1) == np.arange(k), axis=1)
    np.testing.assert_array_equal(pl.is_permutation(jnp.asarray(rows), k), want)
    floats = rows.astype(np.float32)
    floats[0, 0] += 0.5  # a whole float ranking is one; 0.5 is none
    want_f = want.copy()
    want_f[0] = False
    np.testing.assert_array_equal(pl.is_permutation(jnp.asarray(floats), k), want_f)


@pytest.mark.deep
def test_family_gradient_at_scale_matches_the_reference():
    """The recipe's summed NLL and its gradient at N = 1e5 (vmap over examples, linear memory) against the
    reference formula batched in jax, float32."""
    k, n = 5, 100_000
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, k)).astype(np.float32)
    y = np.argsort(-(x + rng.gumbel(size=(n, k))), axis=1).astype(np.int32)
    r = mj.recipe(lambda b, x_i: x_i + b, mj.plackett_luce(k))
    b = jnp.asarray(rng.normal(size=k) * 0.1, jnp.float32)
    value, grad = jax.value_and_grad(lambda b: r.nll(mj.Params(b, {}), x, y))(b)

    def ref(b):
        return -jnp.sum(_jax_reference(jnp.take_along_axis(x + b[None, :], y, axis=1)))
    want_value, want_grad = jax.value_and_grad(ref)(b)
    np.testing.assert_allclose(value, want_value, rtol=1e-5)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-3, atol=1e-2)
