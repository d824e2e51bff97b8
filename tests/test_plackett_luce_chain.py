"""The Plackett-Luce chain (``plackett_luce.ranked_log_prob``: a running maximum, one exp and one division per
item, one log1p per ranking, its derivative written) against an independent reference: the reverse cumulative
logsumexp in float64 NumPy (``np.logaddexp.accumulate``) and autodiff of that formula in jax; float32 and
float64, the unrolled form (K <= SMALL_K) and the rolled scan above it, near-ties and logits 1e4 apart; and
``mj.log_prob`` with its item-order gradient against mpmath from the definition."""

import math

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


def _mp_log_prob_and_grad(s, pi):
    """mpmath at 60 digits, from the definition: ``sum_j o_j - L_j`` (``L_j = log sum_{i >= j} exp(o_i)``) and
    the item-order derivative ``d/ds_k = 1 - sum_{j <= r} exp(s_k - L_j)`` (``r`` the rank of item k)."""
    import mpmath as mp
    with mp.workdps(60):
        o = [mp.mpf(float(s[p])) for p in pi]
        tails = [mp.log(mp.fsum(mp.exp(v) for v in o[j:])) for j in range(len(o))]
        value = mp.fsum(o[j] - tails[j] for j in range(len(o)))
        grad = [0.0] * len(o)
        for r, item in enumerate(pi):
            grad[item] = float(1 - mp.fsum(mp.exp(o[r] - tails[j]) for j in range(r + 1)))
        return float(value), grad


def _extreme_rows(k, rng):
    """Logits (rows) and rankings: ordinary, 1e4 apart in and against the ranking's order, all tied, two ties
    among others, near-ties 1e-6 apart, a large common offset, a confident ranking (gaps of 30)."""
    base = [rng.normal(size=k), np.linspace(1e4, -1e4, k), np.linspace(-1e4, 1e4, k), np.full(k, 0.7),
            np.r_[np.full(2, 1.5), rng.normal(size=k - 2)], 1e-6 * np.arange(k), 1e3 + rng.normal(size=k),
            -30.0 * np.arange(k)]
    rankings = [rng.permutation(k), np.arange(k), np.arange(k), rng.permutation(k), rng.permutation(k),
                rng.permutation(k), rng.permutation(k), np.arange(k)]
    return np.stack(base), np.stack(rankings).astype(np.int32)


@pytest.mark.parametrize("k", [pytest.param(2, marks=pytest.mark.deep), 5])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_log_prob_and_item_order_gradient_against_mpmath_at_extreme_logits(k, dtype):
    """``mj.log_prob`` and its gradient in the logits (the ranked-order derivative mapped back to the items by
    compares) against mpmath from the definition, on the logits as rounded to the dtype."""
    rng = np.random.default_rng(10 + k)
    logits, rankings = _extreme_rows(k, rng)
    with jax.enable_x64(dtype == "float64"):
        s = jnp.asarray(logits, dtype)
        fn = jax.jit(jax.vmap(jax.value_and_grad(lambda s, y: mj.log_prob(mj.PlackettLuce(s), y))))
        value, grad = fn(s, jnp.asarray(rankings))
        s64 = np.asarray(s, np.float64)
    tol = 4e-7 if dtype == "float32" else 1e-15
    for i in range(len(s64)):
        want, want_grad = _mp_log_prob_and_grad(s64[i], rankings[i])
        spread = np.ptp(s64[i])  # round-off of the differences o_j - M_{j+1}
        assert abs(float(value[i]) - want) <= 8 * tol * (abs(want) + spread), (i, float(value[i]), want)
        np.testing.assert_allclose(np.asarray(grad[i], np.float64), want_grad, rtol=0, atol=8 * k * tol,
                                   err_msg=f"row {i}")
    # the confident ranking's tiny loss (about -exp(-30)) to relative precision, not rounded to 0
    want_tiny = _mp_log_prob_and_grad(s64[-1], rankings[-1])[0]
    assert want_tiny < 0
    np.testing.assert_allclose(float(value[-1]), want_tiny, rtol=8 * k * tol)


@pytest.mark.deep
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_non_permutations_have_no_gradient_and_hessians_match_the_reference(dtype):
    """A row that is not a ranking: -inf with a zero gradient (NaN where it holds a NaN); the Hessian of
    ``mj.log_prob`` in the logits (forward over the written derivative) against autodiff of the cumulative
    logsumexp formula, with ties."""
    k = 4
    with jax.enable_x64(dtype == "float64"):
        s = jnp.asarray([0.3, -1.2, 2.0, 0.5], dtype)

        def lp(s, y):
            return mj.log_prob(mj.PlackettLuce(s), y)
        value, grad = jax.jit(jax.vmap(jax.value_and_grad(lp), in_axes=(None, 0)))(
            s, jnp.asarray([[0, 0, 1, 2], [0, 1, 2, 4], [-1, 0, 1, 2]]))
        np.testing.assert_array_equal(value, -np.inf)
        np.testing.assert_array_equal(grad, 0.0)
        assert np.isnan(float(jax.jit(lp)(s, jnp.asarray([np.nan, 1.0, 2.0, 3.0], dtype))))
        y = jnp.asarray([2, 0, 3, 1])
        logits = jnp.stack([s, jnp.asarray([0.7, 0.7, 0.7, -0.2], dtype), jnp.full(k, 1.5, dtype)])
        got = jax.jit(jax.vmap(jax.hessian(lp), in_axes=(0, None)))(logits, y)
        want = jax.jit(jax.vmap(jax.hessian(lambda s: _jax_reference(s[y]))))(logits)
        np.testing.assert_allclose(got, want, rtol=1e-4 if dtype == "float32" else 1e-12,
                                   atol=1e-5 if dtype == "float32" else 1e-13)


@pytest.mark.deep
def test_one_item_and_the_product_bound():
    """K = 1: log probability 0, derivative 0. ``_value`` sums ``log1p(D_j)`` as one ``log1p`` of the product
    ``prod(1 + D_j) - 1`` only where ``K!`` (its bound) fits the dtype: float16 past 8 items sums item by item,
    and both agree with the per-item sum."""
    value, grad = jax.jit(jax.value_and_grad(lambda s: mj.log_prob(mj.PlackettLuce(s), jnp.asarray([0]))))(
        jnp.asarray([3.0]))
    assert float(value) == 0.0 and float(grad[0]) == 0.0

    @jax.jit
    def both(o):
        d, _, _, rest, excess = pl._chain(o)
        return pl._value(d, rest, excess), jnp.sum(jnp.minimum(d, 0.0) - jnp.log1p(rest))
    rng = np.random.default_rng(3)
    for k, dtype in ((9, jnp.float16), (9, jnp.float32), (5, jnp.float16)):
        tied = jnp.asarray(np.full(k, 0.25), dtype)  # 1 + D_j = K - j: the product is K! exactly
        got, _ = both(tied)
        np.testing.assert_allclose(float(got), -sum(math.log(k - j) for j in range(k - 1)), rtol=2e-3)
        got, per_item = both(jnp.asarray(rng.normal(size=k), dtype))
        np.testing.assert_allclose(float(got), float(per_item), rtol=5e-3)


def _mp_gradient_terms(s, pi):
    """mpmath at 60 digits: the item-order derivative ``d/ds_k = b_r - sum_{j < r} exp(s_k - L_j)`` (``r`` the rank
    of item k, ``b_r = exp(L_{r+1} - L_r)`` the chance that it does not win among r..K, 0 for the last) and the
    size of its two terms, ``b_r + sum_{j < r} exp(s_k - L_j)`` (the scale of its round-off)."""
    import mpmath as mp
    with mp.workdps(60):
        o = [mp.mpf(float(s[p])) for p in pi]
        tails = [mp.log(mp.fsum(mp.exp(v) for v in o[j:])) for j in range(len(o))] + [mp.mpf("-inf")]
        grad, scale = [0.0] * len(o), [0.0] * len(o)
        for r, item in enumerate(pi):
            lose = mp.exp(tails[r + 1] - tails[r])
            beaten = mp.fsum(mp.exp(o[r] - tails[j]) for j in range(r))
            grad[item], scale[item] = float(lose - beaten), float(lose + beaten)
        return np.asarray(grad), np.asarray(scale)


@pytest.mark.parametrize("k", [pytest.param(2, marks=pytest.mark.deep), 5])
@pytest.mark.parametrize("dtype", ["float32", pytest.param("float64", marks=pytest.mark.deep)])
def test_confident_rankings_keep_their_tiny_gradient(k, dtype):
    """The derivative of a confident ranking's log probability is tiny (the chance ``e^-gap`` that an item does
    not win): each item's entry to relative precision of its terms against mpmath, not ``1 - (1 - e^-gap)``
    rounded to 0 (float32 gaps of 12 lost ~1% and gaps over 17 all of it)."""
    rng = np.random.default_rng(20 + k)
    gap = 12.0 if dtype == "float32" else 30.0
    rows = [-gap * np.arange(k), -gap * np.arange(k) + rng.normal(size=k), rng.normal(size=k)]
    rankings = [np.arange(k), np.arange(k), rng.permutation(k)]
    with jax.enable_x64(dtype == "float64"):
        s = jnp.asarray(np.stack(rows), dtype)
        grad = jax.jit(jax.vmap(jax.grad(lambda s, y: mj.log_prob(mj.PlackettLuce(s), y))))(
            s, jnp.asarray(np.stack(rankings), jnp.int32))
        s64 = np.asarray(s, np.float64)
    eps = np.finfo(dtype).eps
    for i in range(len(rows)):
        want, scale = _mp_gradient_terms(s64[i], rankings[i])
        err = np.abs(np.asarray(grad[i], np.float64) - want)
        assert np.all(err <= 8 * k * eps * scale), (i, np.asarray(grad[i]), want, err / (eps * scale))


@pytest.mark.parametrize("logits, y", [(np.zeros(0), np.zeros(0, np.int32)), (np.float32(0.0), np.int32(0)),
                                       (np.zeros(2), np.array([True, False])),
                                       (np.zeros(2), np.array([1 + 0j, 0j]))])
def test_malformed_logits_and_targets_raise_a_clear_error(logits, y):
    """No items, a scalar logit, a boolean or complex ranking: a ValueError naming the problem (it was an
    IndexError, or a TypeError from inside jnp.arange, or a complex ranking silently read as its real part)."""
    with pytest.raises(ValueError, match="PlackettLuce"):
        mj.log_prob(mj.PlackettLuce(jnp.asarray(logits)), jnp.asarray(y))


@pytest.mark.deep
@pytest.mark.parametrize("k", [4, pl.SMALL_K + 2])
def test_a_non_ranking_has_a_zero_gradient_whatever_its_logits(k):
    """A row that is not a ranking is -inf with a zero derivative even where its logits hold a NaN or infinities
    (a masked-out example): the compare path (K <= SMALL_K) and the gather path above alike (the gather path
    multiplied a zero cotangent by the NaN derivative of the chain)."""
    bad = jnp.arange(k).at[0].set(1)
    for s in (jnp.zeros(k).at[1].set(jnp.nan), jnp.zeros(k).at[1].set(-jnp.inf).at[2].set(-jnp.inf),
              jnp.zeros(k).at[1].set(jnp.inf).at[2].set(jnp.inf)):
        value, grad = jax.value_and_grad(lambda s: mj.log_prob(mj.PlackettLuce(s), bad))(s)
        assert float(value) == -np.inf
        np.testing.assert_array_equal(grad, 0.0)
        np.testing.assert_array_equal(jax.hessian(lambda s: mj.log_prob(mj.PlackettLuce(s), bad))(s), 0.0)
