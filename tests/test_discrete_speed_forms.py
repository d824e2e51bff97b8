"""The fused family kernels with written derivatives (issue 22): the MVN Cholesky's unrolled forward
substitution, the ordinal's interval at the observed class, the zero-inflated count's two cases.
Each against scipy (or a brute-force sum) for the value, and against jax autodiff of a plain reference
formula for the gradient (and the Hessian, since the rules must themselves be differentiable), at the
branch edges, in float32 and float64."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from jax.scipy.linalg import solve_triangular
from scipy import stats

import mle_jax as mj

DTYPES = [jnp.float32, jnp.float64]
# float64 in the deep phase where a test compiles Hessians (the README suite stays within its budget)
DTYPES_DEEP64 = [jnp.float32, pytest.param(jnp.float64, marks=pytest.mark.deep)]


def _tol(dtype):
    return dict(rtol=2e-5, atol=2e-5) if dtype == jnp.float32 else dict(rtol=1e-11, atol=1e-11)


def _summed(family, fp, raw, y):
    return jnp.sum(jax.vmap(lambda r, t: family.kernel(fp, r, t))(raw, y))


# ----------------------------------------------------------------------------- MVN Cholesky

def _mvn_reference(d):
    """The plain formula: build L, one triangular solve (the theta's form before the unrolled kernel)."""
    rows, cols = np.tril_indices(d)
    diag = rows == cols

    def one(raw, y):
        entries = raw[d:]
        entries = jnp.where(diag, mj.links.softplus.forward(entries), entries)
        tril = jnp.zeros((d, d), raw.dtype).at[rows, cols].set(entries)
        z = solve_triangular(tril, y - raw[:d], lower=True)
        return -0.5 * jnp.sum(z * z) - jnp.sum(jnp.log(jnp.diagonal(tril))) - d * 0.5 * np.log(2 * np.pi)
    return one


@pytest.mark.parametrize("dtype", DTYPES_DEEP64)
@pytest.mark.parametrize("d", [3])
def test_mvn_cholesky_kernel_value_gradient_hessian(dtype, d):
    with jax.enable_x64(dtype == jnp.float64):
        family = mj.mvn_cholesky(d)
        rng = np.random.default_rng(d)
        p = d + d * (d + 1) // 2
        raw = rng.normal(size=(6, p)) * 0.7
        raw[0, d:] = -4.0  # small diagonals (softplus 0.018), off-diagonals -4
        raw[1, d:] = 25.0  # large diagonals (softplus = identity) and off-diagonals
        y = rng.normal(size=(6, d))
        raw_j, y_j = jnp.asarray(raw, dtype), jnp.asarray(y, dtype)
        value = jax.jit(jax.vmap(lambda r, t: family.kernel({}, r, t)))(raw_j, y_j)
        theta = jax.jit(jax.vmap(lambda r: family.theta({}, r)))(raw_j)
        loc, tril = np.asarray(theta.loc, np.float64), np.asarray(theta.scale_tril, np.float64)
        # the closed form in float64 by scipy's triangular solve at every row (row 0's covariance is too
        # ill-conditioned for scipy.stats' eigendecomposition), scipy.stats at the others
        z = [scipy.linalg.solve_triangular(tril[i], y[i] - loc[i], lower=True) for i in range(len(raw))]
        closed = [-0.5 * zi @ zi - np.sum(np.log(np.diag(li))) - d * 0.5 * np.log(2 * np.pi) for zi, li in zip(z, tril)]
        rtol = 1e-4 if dtype == jnp.float32 else 1e-9
        np.testing.assert_allclose(value, closed, rtol=rtol)
        scipy_value = [stats.multivariate_normal(loc[i], tril[i] @ tril[i].T).logpdf(y[i]) for i in range(2, len(raw))]
        np.testing.assert_allclose(value[2:], scipy_value, rtol=rtol)
        ref = _mvn_reference(d)
        np.testing.assert_allclose(value, jax.vmap(ref)(raw_j, y_j), **_tol(dtype))
        got = jax.jit(jax.grad(lambda r, t: _summed(family, {}, r, t), argnums=(0, 1)))(raw_j, y_j)
        want = jax.jit(jax.grad(lambda r, t: jnp.sum(jax.vmap(ref)(r, t)), argnums=(0, 1)))(raw_j, y_j)
        for a, b in zip(got, want):
            scale = max(1.0, float(jnp.max(jnp.abs(b))))
            np.testing.assert_allclose(np.asarray(a) / scale, np.asarray(b) / scale, **_tol(dtype))
        i = 3
        h_got = jax.jit(jax.hessian(lambda r: family.kernel({}, r, y_j[i])))(raw_j[i])
        h_want = jax.jit(jax.hessian(lambda r: ref(r, y_j[i])))(raw_j[i])
        np.testing.assert_allclose(h_got, h_want, rtol=1e-3 if dtype == jnp.float32 else 1e-9,
                                   atol=1e-3 if dtype == jnp.float32 else 1e-9)


# ----------------------------------------------------------------------------- ordinal

def _ordinal_reference(k):
    """All K interval log-probabilities by ``interval_log_probs`` (log-sigmoids, the theta's form), picked at
    the label by a one-hot sum; -inf off the labels."""
    from mle_jax.families.classification import interval_log_probs

    def one(fp, f, y):
        gaps = mj.links.softplus.forward(fp["gaps"])
        cuts = fp["first_cut"] + jnp.concatenate([jnp.zeros((1,), gaps.dtype), jnp.cumsum(gaps)])
        log_p = interval_log_probs(cuts, gaps, f)
        inside = (y >= 0) & (y < k) & (y == jnp.floor(y))
        picked = jnp.sum(jnp.where(jnp.arange(k) == y, log_p, 0.0))
        return jnp.where(inside, picked, -jnp.inf)
    return one


@pytest.mark.parametrize("dtype, k", [(jnp.float32, 5), (jnp.float64, 5),
                                      pytest.param(jnp.float64, 20, marks=pytest.mark.deep)])
def test_ordinal_kernel_value_gradient_hessian(dtype, k):
    """k = 5 picks the class's cutpoints by the select chain, k = 20 by the gather (above SELECT_MAX_CLASSES)."""
    from mle_jax.families.classification import SELECT_MAX_CLASSES
    assert (k <= SELECT_MAX_CLASSES) == (k == 5)
    with jax.enable_x64(dtype == jnp.float64):
        family = mj.ordinal(k)
        rng = np.random.default_rng(k)
        fp = {"first_cut": jnp.asarray(-1.3, dtype), "gaps": jnp.asarray(rng.normal(size=k - 2), dtype)}
        labels = np.concatenate([np.arange(k), np.arange(k), [0, k - 1, k // 2, 1]]).astype(np.float64)
        scores = np.concatenate([rng.normal(size=k) * 2, rng.normal(size=k) * 2 + 1, [-100.0, 100.0, -60.0, 40.0]])
        f, y = jnp.asarray(scores, dtype), jnp.asarray(labels, dtype)
        ref = _ordinal_reference(k)
        value = jax.jit(jax.vmap(lambda r, t: family.kernel(fp, r, t)))(f, y)
        want = jax.jit(jax.vmap(lambda r, t: ref(fp, r, t)))(f, y)
        np.testing.assert_allclose(value, want, **_tol(dtype))
        # scipy's logistic CDF in float64 where the difference of CDFs does not cancel
        gaps = np.log1p(np.exp(np.asarray(fp["gaps"], np.float64))) + np.finfo(np.dtype(dtype)).tiny
        cuts = np.concatenate([[-1.3], -1.3 + np.cumsum(gaps)])
        upper = np.concatenate([cuts, [np.inf]])[labels[:2 * k].astype(int)] - scores[:2 * k]
        lower = np.concatenate([[-np.inf], cuts])[labels[:2 * k].astype(int)] - scores[:2 * k]
        direct = np.log(stats.logistic.cdf(upper) - stats.logistic.cdf(lower))
        np.testing.assert_allclose(value[:2 * k], direct, rtol=2e-5 if dtype == jnp.float32 else 1e-10)
        assert np.all(np.isfinite(value))
        g_got = jax.jit(jax.grad(lambda p, r: _summed(family, p, r, y), argnums=(0, 1)))(fp, f)
        g_want = jax.jit(jax.grad(lambda p, r: jnp.sum(jax.vmap(lambda a, t: ref(p, a, t))(r, y)), argnums=(0, 1)))(fp, f)
        for a, b in zip(jax.tree_util.tree_leaves(g_got), jax.tree_util.tree_leaves(g_want)):
            np.testing.assert_allclose(a, b, **_tol(dtype))
        h_got = jax.jit(jax.hessian(lambda p: _summed(family, p, f[:k], y[:k])))(fp)
        h_want = jax.jit(jax.hessian(lambda p: jnp.sum(jax.vmap(lambda a, t: ref(p, a, t))(f[:k], y[:k]))))(fp)
        for a, b in zip(jax.tree_util.tree_leaves(h_got), jax.tree_util.tree_leaves(h_want)):
            np.testing.assert_allclose(a, b, rtol=1e-4 if dtype == jnp.float32 else 1e-9, atol=1e-4 if dtype == jnp.float32 else 1e-9)
        d2f = jax.jit(jax.vmap(jax.grad(jax.grad(lambda r, t: family.kernel(fp, r, t)))))(f, y)
        d2f_want = jax.jit(jax.vmap(jax.grad(jax.grad(lambda r, t: ref(fp, r, t)))))(f, y)
        np.testing.assert_allclose(d2f, d2f_want, rtol=1e-4 if dtype == jnp.float32 else 1e-9, atol=1e-6 if dtype == jnp.float32 else 1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_ordinal_kernel_off_the_labels(dtype):
    """-inf (and a zero gradient, never NaN) for labels -1, K, 1.5 and NaN, next to valid labels 0 and K - 1."""
    with jax.enable_x64(dtype == jnp.float64):
        k = 5
        family = mj.ordinal(k)
        fp = family.init(dtype)
        y = jnp.asarray([-1.0, k, 1.5, np.nan, 0.0, k - 1.0], dtype)
        f = jnp.asarray([0.3, -0.2, 1.0, 0.0, 0.5, -0.5], dtype)
        value = jax.jit(jax.vmap(lambda r, t: family.kernel(fp, r, t)))(f, y)
        assert np.all(np.isneginf(np.asarray(value[:4]))) and np.all(np.isfinite(np.asarray(value[4:])))
        per_example = jax.jit(jax.vmap(jax.grad(lambda a, t: family.kernel(fp, a, t))))(f, y)
        np.testing.assert_array_equal(np.asarray(per_example[:4]), 0.0)
        cut_grads = jax.jit(jax.vmap(jax.grad(lambda p, a, t: family.kernel(p, a, t)), in_axes=(None, 0, 0)))(fp, f, y)
        for leaf in jax.tree_util.tree_leaves(cut_grads):
            np.testing.assert_array_equal(np.asarray(leaf[:4]), 0.0)
        ref = _ordinal_reference(k)
        np.testing.assert_allclose(per_example[4:], jax.jit(jax.vmap(jax.grad(lambda a, t: ref(fp, a, t))))(f[4:], y[4:]),
                                   **_tol(dtype))


def _ordinal_mpmath(first, raw_gaps, f, label):
    """log Pr(y = label | f) in 60-digit arithmetic from the family's raw parameters (softplus gaps plus the
    dtype's tiny, as the family rounds them), and its derivatives in f, first_cut and each raw gap (mpmath.diff)."""
    import mpmath as mp
    mp.mp.dps = 60

    def log_p(f, first, *raw):
        cuts = [first]
        for r in raw:
            cuts.append(cuts[-1] + mp.log1p(mp.exp(r)))
        upper = cuts[label] - f if label < len(cuts) else mp.inf
        lower = cuts[label - 1] - f if label > 0 else -mp.inf
        sig = lambda t: 1 / (1 + mp.exp(-t)) if t != mp.inf else mp.mpf(1)  # noqa: E731
        return mp.log(sig(upper) - (sig(lower) if lower != -mp.inf else 0))
    point = [mp.mpf(float(f)), mp.mpf(float(first))] + [mp.mpf(float(r)) for r in raw_gaps]
    grads = [float(mp.diff(log_p, point, tuple(int(i == j) for j in range(len(point))))) for i in range(len(point))]
    return float(log_p(*point)), grads


@pytest.mark.parametrize("dtype", DTYPES)
def test_ordinal_kernel_edges_against_mpmath(dtype):
    """Every class of K = 5 at scores +-100, +-60, 0.3 against mpmath (value, d/df, d/dfirst_cut, d/dgaps),
    at f = +-inf the limits (value 0 or -inf, d/df in {-1, 0, 1}, finite cutpoint gradients), and a NaN score:
    NaN on a label, -inf with exactly zero gradients off the labels."""
    with jax.enable_x64(dtype == jnp.float64):
        k = 5
        family = mj.ordinal(k)
        fp = {"first_cut": jnp.asarray(-0.7, dtype), "gaps": jnp.asarray([0.2, -1.5, 2.0], dtype)}
        program = jax.jit(jax.vmap(jax.value_and_grad(lambda p, r, t: family.kernel(p, r, t), argnums=(0, 1)),
                                   in_axes=(None, 0, 0)))
        finite = [-100.0, -60.0, 0.3, 60.0, 100.0]
        f = np.repeat(finite + [-np.inf, np.inf, np.nan], k + 1)
        y = np.tile(np.arange(-1, k), len(finite) + 3).astype(np.float64)  # label -1 (off) and 0..K-1
        value, (g_fp, g_f) = program(fp, jnp.asarray(f, dtype), jnp.asarray(y, dtype))
        value, g_f = np.asarray(value, np.float64), np.asarray(g_f, np.float64)
        g_first, g_gaps = np.asarray(g_fp["first_cut"], np.float64), np.asarray(g_fp["gaps"], np.float64)
        tiny = float(np.finfo(np.dtype(dtype)).tiny)
        raw_gaps = np.log(np.expm1(np.log1p(np.exp(np.asarray(fp["gaps"], np.float64))) + tiny))
        rtol = 2e-5 if dtype == jnp.float32 else 1e-11
        off = y < 0
        np.testing.assert_array_equal(value[off], -np.inf)
        np.testing.assert_array_equal(np.stack([g_f[off], g_first[off]]), 0.0)
        np.testing.assert_array_equal(g_gaps[off], 0.0)
        for i in np.flatnonzero(~off & np.isfinite(f)):
            want, grads = _ordinal_mpmath(float(fp["first_cut"]), raw_gaps, f[i], int(y[i]))
            got = [g_f[i], g_first[i], *g_gaps[i]]
            np.testing.assert_allclose(value[i], want, rtol=rtol, atol=rtol)
            np.testing.assert_allclose(got, grads, rtol=rtol, atol=rtol)
        for i in np.flatnonzero(~off & np.isinf(f)):
            end = 0 if f[i] < 0 else k - 1   # the class whose probability tends to 1
            assert value[i] == (0.0 if y[i] == end else -np.inf)
            assert g_f[i] == (0.0 if y[i] == end else np.sign(-f[i]))
            assert np.isfinite(g_first[i]) and np.all(np.isfinite(g_gaps[i]))
        nan_on = ~off & np.isnan(f)
        assert np.all(np.isnan(value[nan_on])) and np.all(np.isnan(g_f[nan_on]))


# ----------------------------------------------------------------------------- zero-inflated counts

def _zero_inflated_reference(g, base, y):
    """The plain formula: two log-sigmoids and a logaddexp, differentiated by autodiff."""
    at_zero = jnp.logaddexp(jax.nn.log_sigmoid(g), jax.nn.log_sigmoid(-g) + base)
    return jnp.where(y == 0, at_zero, jax.nn.log_sigmoid(-g) + base)


@pytest.mark.parametrize("dtype", DTYPES_DEEP64)
def test_zero_inflated_poisson_value_gradient_hessian(dtype):
    """Against scipy's mixture ``g [y = 0] + (1 - g) poisson.pmf`` (float64) and autodiff of the plain formula,
    at gates of +-30 and +-inf (w and 1 - w each from its own exp), rates 0 and inf, y = 0 and y > 0."""
    with jax.enable_x64(dtype == jnp.float64):
        g = np.array([-3.0, 0.0, 2.0, 30.0, -30.0, 0.5, 1.0, 0.0, 12.0, -12.0, np.inf, -np.inf, 0.5])
        z = np.array([1.0, 0.5, -1.0, 2.0, 0.0, np.inf, -np.inf, 0.3, 0.2, 3.0, 1.0, 1.0, -np.inf])
        y = np.array([0.0, 0.0, 3.0, 0.0, 2.0, 0.0, 0.0, 5.0, 0.0, 0.0, 0.0, 0.0, 2.0])
        gj, zj, yj = (jnp.asarray(v, dtype) for v in (g, z, y))

        def ours(a, b, t):
            return mj.log_prob(mj.ZeroInflated(a, mj.Poisson(b)), t)

        def ref(a, b, t):
            return _zero_inflated_reference(a, mj.log_prob(mj.Poisson(b), t), t)
        value = jax.jit(ours)(gj, zj, yj)
        np.testing.assert_allclose(value, jax.jit(ref)(gj, zj, yj), **_tol(dtype))
        with np.errstate(over="ignore", divide="ignore"):
            gate = 1 / (1 + np.exp(-g))
            expected = np.log(gate * (y == 0) + (1 - gate) * stats.poisson.pmf(y, np.exp(z)))
        finite = np.abs(g) < 20  # scipy's 1 - gate loses the tail there; the autodiff reference covers it
        # rtol 1e-10: scipy's log of a probability near 1 (g = 12, log Pr = -4e-6) keeps 11 digits
        np.testing.assert_allclose(np.asarray(value)[finite], expected[finite], rtol=2e-6 if dtype == jnp.float32 else 1e-10)
        grad = jax.jit(jax.vmap(jax.grad(ours, argnums=(0, 1))))(gj, zj, yj)
        want = jax.jit(jax.vmap(jax.grad(ref, argnums=(0, 1))))(gj, zj, yj)
        for a, b in zip(grad, want):
            np.testing.assert_allclose(a, b, rtol=_tol(dtype)["rtol"], atol=1e-6 if dtype == jnp.float32 else 1e-15)
        inner = np.isfinite(g) & np.isfinite(z)
        hess = jax.jit(jax.vmap(jax.hessian(ours, argnums=(0, 1))))(gj[inner], zj[inner], yj[inner])
        hess_want = jax.jit(jax.vmap(jax.hessian(ref, argnums=(0, 1))))(gj[inner], zj[inner], yj[inner])
        for a, b in zip(jax.tree_util.tree_leaves(hess), jax.tree_util.tree_leaves(hess_want)):
            np.testing.assert_allclose(a, b, rtol=1e-4 if dtype == jnp.float32 else 1e-9, atol=1e-6 if dtype == jnp.float32 else 1e-13)


@pytest.mark.parametrize("dtype", DTYPES_DEEP64)
def test_zero_inflated_negative_binomial_family_gradient(dtype):
    """The family around the learned-dispersion negative binomial: the gate's written derivative composes with the
    base's (d/dr through ``1 - w``); against autodiff of the plain formula on the base's log_prob."""
    with jax.enable_x64(dtype == jnp.float64):
        family = mj.zero_inflated(mj.negative_binomial())
        fp = family.init(dtype)
        raw = jnp.asarray([[0.3, -1.0], [1.2, 2.0], [-0.5, 0.0], [2.0, 25.0]], dtype)
        y = jnp.asarray([0.0, 0.0, 4.0, 0.0], dtype)

        def ref_one(p, r, t):
            theta = family.theta(p, r)
            return _zero_inflated_reference(theta.gate_logits, mj.log_prob(theta.base, t), t)
        got = jax.jit(jax.grad(lambda p, r: _summed(family, p, r, y), argnums=(0, 1)))(fp, raw)
        want = jax.jit(jax.grad(lambda p, r: jnp.sum(jax.vmap(lambda a, t: ref_one(p, a, t))(r, y)), argnums=(0, 1)))(fp, raw)
        for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
            np.testing.assert_allclose(a, b, rtol=_tol(dtype)["rtol"], atol=1e-6 if dtype == jnp.float32 else 1e-14)
