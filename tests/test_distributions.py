"""Each theta type against scipy.stats and closed forms, under jit and vmap, with gradients."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy import integrate, special, stats

import mle_jax as mj
from cases import CASES, CDF_TOL, OFF_SUPPORT, TOL, evaluate_many, groups, padded, stack


def _f32(theta):
    return jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), theta)


def _cast(case, dtype):
    """The case's theta and grid in ``dtype``, and the theta rounded back to float64 for the reference."""
    theta = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), case.theta)
    grid = jnp.asarray(padded(case.grid), dtype)
    rounded = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), theta)
    return theta, grid, rounded, np.asarray(grid, np.float64)


def _check(got, ref, tol, atol_extra=0.0):
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    same_inf = np.isinf(ref) & (got == ref)
    np.testing.assert_allclose(np.where(same_inf, 0, got), np.where(same_inf, 0, ref), rtol=tol[0],
                               atol=tol[1] + atol_extra)


# the float64 sweeps of the types added in wave 4 and of the incomplete-function and Stirling types run in
# CI's deep phase (float32, the harder dtype, runs in README's suite), to keep README's suite within its
# 5-minute budget
_DEEP_FLOAT64 = {"AsymmetricLaplace", "Beta", "Binomial", "Dirichlet", "Exponential", "Gamma", "LogNormal",
                 "NegativeBinomial", "PlackettLuce", "Poisson", "StudentT", "VonMises", "Weibull", "ZeroInflated"}


_GROUPS = groups(CASES)


@pytest.mark.parametrize("group, dtype", [
    pytest.param(group, dtype, marks=pytest.mark.deep)
    if dtype == "float64" and type(CASES[names[0]].theta).__name__ in _DEEP_FLOAT64 else (group, dtype)
    for group, names in sorted(_GROUPS.items()) for dtype in ("float32", "float64")])
def test_case_table_against_references(group, dtype):
    """log_prob, log_cdf, log_sf and entropy of every case, on its grid, within the dtype's tolerance: the
    cases of one type in one compiled program (``cases.evaluate_many``), each case checked on its own."""
    names = _GROUPS[group]
    with jax.enable_x64(dtype == "float64"):
        cast = [_cast(CASES[name], getattr(jnp, dtype)) for name in names]
        batch = evaluate_many(stack([c[0] for c in cast]), jnp.stack([c[1] for c in cast]))
        for k, (name, (theta, grid, rounded, ys)) in enumerate(zip(names, cast)):
            case = CASES[name]
            values = jax.tree_util.tree_map(lambda v: v[k], batch)
            got = values["log_prob"]
            assert got.dtype == getattr(jnp, dtype), name
            extra = case.atol32 if dtype == "float32" else 0.0
            try:
                _check(got, case.logpdf(rounded)(ys), TOL[dtype], extra)
                if case.logcdf is not None:
                    _check(values["log_cdf"], case.logcdf(rounded)(ys), CDF_TOL[dtype], extra)
                    _check(values["log_sf"], case.logsf(rounded)(ys), CDF_TOL[dtype], extra)
                if case.entropy is not None:
                    _check(values["entropy"], case.entropy(rounded), TOL[dtype])
                    _check(mj.entropy(theta, base=2), case.entropy(rounded) / math.log(2), TOL[dtype])
                eager = np.array([mj.log_prob(theta, y) for y in grid[:2]])
                np.testing.assert_allclose(eager, np.asarray(got)[:2], rtol=TOL[dtype][0], atol=TOL[dtype][1])
            except AssertionError as error:
                raise AssertionError(f"case {name!r} ({dtype}): {error}") from None


@pytest.mark.parametrize("name", sorted(OFF_SUPPORT))
def test_off_support_is_minus_inf(name):
    theta, ys = OFF_SUPPORT[name]
    theta = _f32(theta)
    for y in ys:
        assert mj.log_prob(theta, jnp.float32(y)) == -jnp.inf, (name, y)


def test_normal_gradients_and_extreme_z():
    theta = mj.Normal(jnp.float32(0.5), jnp.float32(1.5))
    # jitted: check_grads differentiates and evaluates the same function, in 14 compiles instead of 90 op by op
    check_grads(jax.jit(lambda l, s, y: mj.log_prob(mj.Normal(l, s), y)), (0.5, 1.5, 2.0), order=2,
                modes=["fwd", "rev"])
    for z in [1e2, 1e3, 1e4]:
        y = jnp.float32(0.5 + 1.5 * z)
        np.testing.assert_allclose(mj.log_prob(theta, y), stats.norm(0.5, 1.5).logpdf(float(y)), rtol=1e-6)
        g = jax.grad(lambda t: mj.log_prob(t, y))(theta)
        assert np.isfinite(g.loc) and np.isfinite(g.scale)


@pytest.mark.parametrize("logit", [-np.inf, -1e4, -100.0, 0.0, 100.0, 1e4, np.inf])
@pytest.mark.parametrize("y", [0, 1])
def test_bernoulli_exact_at_extreme_logits(logit, y):
    z = jnp.float32(logit)
    lp = mj.log_prob(mj.Bernoulli(z), jnp.int32(y))
    expected = -np.logaddexp(0.0, -(2 * y - 1) * logit)  # log sigmoid((2y-1) z) in float64
    assert float(lp) == pytest.approx(expected, rel=1e-7, abs=1e-37) if np.isfinite(expected) else lp == expected
    grad = jax.grad(lambda z: mj.log_prob(mj.Bernoulli(z), jnp.int32(y)))(z)
    # d/dz log Pr(y | z) = y - sigmoid(z), exactly, never NaN
    assert float(grad) == pytest.approx(y - special.expit(logit), abs=1e-7)


def test_bernoulli_soft_labels_and_float_labels():
    for z in [-3.0, 0.0, 2.0]:
        for y in [0.0, 0.25, 1.0]:
            ref = y * np.log(special.expit(z)) + (1 - y) * np.log(special.expit(-z))
            np.testing.assert_allclose(mj.log_prob(mj.Bernoulli(jnp.float32(z)), jnp.float32(y)), ref, rtol=1e-6)
    assert float(mj.log_prob(mj.Bernoulli(jnp.float32(np.inf)), jnp.float32(1.0))) == 0.0


def test_categorical_extreme_and_masked_logits():
    logits = jnp.array([1e4, -1e4, 0.0, 3.0], jnp.float32)
    ref = np.asarray(logits, np.float64) - special.logsumexp(np.asarray(logits, np.float64))
    for y in range(4):
        np.testing.assert_allclose(mj.log_prob(mj.Categorical(logits), jnp.int32(y)), ref[y], rtol=1e-6)
    masked = jnp.array([0.5, -jnp.inf, 1.0], jnp.float32)
    lp = mj.log_prob(mj.Categorical(masked), jnp.int32(0))
    np.testing.assert_allclose(lp, 0.5 - np.logaddexp(0.5, 1.0), rtol=1e-6)
    g = jax.grad(lambda z: mj.log_prob(mj.Categorical(z), jnp.int32(0)))(masked)
    assert g[1] == 0.0 and np.all(np.isfinite(g))
    assert mj.log_prob(mj.Categorical(masked), jnp.int32(1)) == -jnp.inf


def test_categorical_derivatives_closed_form():
    # d log p_y / dz = onehot(y) - softmax(z); d^2 = -(diag p - p p^T), for batched labels too
    z = jnp.array([[1.0, -jnp.inf, 3.0, 0.5], [2.0, 1.0, 0.0, -1.0]], jnp.float32)
    y = jnp.array([2, 0])
    # each derivative in one compiled program (op by op: 123 compiles, 3.7 s of CPU against 0.4 s)
    grad = jax.jit(jax.grad(lambda z: jnp.sum(mj.log_prob(mj.Categorical(z), y))))(z)
    p = special.softmax(np.asarray(z, np.float64), axis=-1)
    np.testing.assert_allclose(grad, np.eye(4)[np.asarray(y)] - p, rtol=1e-5, atol=1e-7)
    hess = jax.jit(jax.hessian(lambda z: mj.log_prob(mj.Categorical(z), jnp.int32(1))))(z[1])
    np.testing.assert_allclose(hess, -(np.diag(p[1]) - np.outer(p[1], p[1])), rtol=1e-5, atol=1e-7)


def test_uniform_huge_logits_entropy():
    for v in [1e9, -1e9]:
        theta = mj.Categorical(jnp.full((11,), v, jnp.float32))
        np.testing.assert_allclose(mj.entropy(theta), math.log(11), rtol=1e-6)


def test_masked_entropy_kl_ce_are_finite():
    p = mj.Categorical(jnp.array([0.0, -jnp.inf, 1.0], jnp.float32))
    q = mj.Categorical(jnp.array([0.3, 0.1, -0.2], jnp.float32))
    probs = special.softmax([0.0, -np.inf, 1.0])
    qp = special.softmax([0.3, 0.1, -0.2])
    np.testing.assert_allclose(mj.entropy(p), stats.entropy(probs), rtol=1e-6)
    np.testing.assert_allclose(mj.kl(p, q), stats.entropy(probs, qp), rtol=1e-5)
    np.testing.assert_allclose(mj.cross_entropy(p, q), -np.sum(probs * np.log(qp)), rtol=1e-6)
    assert float(mj.kl(p, p)) >= -1e-6 and abs(float(mj.kl(p, p))) < 1e-6
    for fn in (mj.entropy, lambda t: mj.kl(t, q), lambda t: mj.cross_entropy(t, q)):
        g = jax.grad(lambda z: fn(mj.Categorical(z)))(p.logits)
        assert np.all(np.isfinite(g)), g
    b = mj.Bernoulli(jnp.float32(np.inf))
    assert float(mj.entropy(b)) == 0.0 and float(mj.kl(b, b)) == 0.0


def test_normal_kl_and_ce_against_integration():
    p, q = mj.Normal(0.0, 1.0), mj.Normal(1.0, 2.0)
    # smooth Gaussian-tailed integrands: the trapezoid rule at h = 0.01 is exact far below 1e-10 and cannot warn
    ys = np.linspace(-30, 30, 6001)
    log_p, log_q = stats.norm(0, 1).logpdf(ys), stats.norm(1, 2).logpdf(ys)
    ref = integrate.trapezoid(np.exp(log_p) * (log_p - log_q), ys)
    np.testing.assert_allclose(mj.kl(_f32(p), _f32(q)), ref, rtol=1e-6)
    ce = integrate.trapezoid(-np.exp(log_p) * log_q, ys)
    np.testing.assert_allclose(mj.cross_entropy(_f32(p), _f32(q)), ce, rtol=1e-6)
    np.testing.assert_allclose(mj.cross_entropy(_f32(p), _f32(q)), mj.entropy(_f32(p)) + mj.kl(_f32(p), _f32(q)),
                               rtol=1e-6)


@pytest.mark.parametrize("pair", [
    (mj.Bernoulli(0.3), mj.Bernoulli(-1.2)),
    (mj.Categorical(np.array([0.1, 2.0, -1.0])), mj.Categorical(np.array([1.0, 0.0, 0.5]))),
])
def test_discrete_kl_ce_identities(pair):
    p, q = (_f32(t) for t in pair)
    pp, qq = np.asarray(mj.probs(p), np.float64), np.asarray(mj.probs(q), np.float64)
    np.testing.assert_allclose(mj.kl(p, q), stats.entropy(pp, qq), rtol=1e-5)
    np.testing.assert_allclose(mj.cross_entropy(p, q), mj.entropy(p) + mj.kl(p, q), rtol=1e-6)
    assert abs(float(mj.kl(p, p))) < 1e-6


def test_mode_mean_sample_quantile():
    n = mj.Normal(jnp.float32(1.0), jnp.float32(2.0))
    assert mj.mode(n) == 1.0 and mj.mean(n) == 1.0
    np.testing.assert_allclose(mj.quantile(n, 0.975), stats.norm(1, 2).ppf(0.975), rtol=1e-6)
    lo, hi = mj.interval(n, 0.9)
    np.testing.assert_allclose([lo, hi], stats.norm(1, 2).interval(0.9), rtol=1e-6)
    np.testing.assert_allclose(mj.log_cdf(n, jnp.float32(-40.0)), stats.norm(1, 2).logcdf(-40.0), rtol=1e-5)
    keys = jax.random.split(jax.random.PRNGKey(0), 20000)
    draw_all = jax.jit(jax.vmap(mj.sample, in_axes=(0, None)))  # one program a type, not op by op
    draws = draw_all(keys, n)
    assert abs(float(draws.mean()) - 1.0) < 4 * 2.0 / math.sqrt(20000)
    b = mj.Bernoulli(jnp.float32(0.4))
    assert mj.mode(b) == 1 and mj.mode(mj.Bernoulli(jnp.float32(-0.1))) == 0
    np.testing.assert_allclose(mj.mean(b), special.expit(0.4), rtol=1e-6)
    bd = draw_all(keys, b)
    assert abs(float(bd.mean()) - special.expit(0.4)) < 4 * 0.5 / math.sqrt(20000)
    c = mj.Categorical(jnp.array([0.0, 2.0, 1.0], jnp.float32))
    assert mj.mode(c) == 1
    cd = draw_all(keys, c)
    freq = np.bincount(np.asarray(cd), minlength=3) / len(cd)
    np.testing.assert_allclose(freq, special.softmax([0.0, 2.0, 1.0]), atol=0.02)
    np.testing.assert_allclose(mj.mean(c), np.dot(np.arange(3), special.softmax([0.0, 2.0, 1.0])), rtol=1e-6)


def test_no_broadcasting_of_targets():
    with pytest.raises(ValueError, match=r"shape \(3,\).*expects shape \(\)"):
        mj.log_prob(mj.Normal(jnp.float32(0.0), jnp.float32(1.0)), jnp.zeros(3))
    with pytest.raises(ValueError, match="shape"):
        mj.log_prob(mj.Categorical(jnp.zeros(4)), jnp.zeros(2, jnp.int32))


def test_independent_sums_over_outputs():
    theta = mj.Independent(mj.Normal(jnp.array([0.0, 10.0]), jnp.array([1.0, 3.0])))
    y = jnp.array([0.5, 4.0])
    ref = stats.norm([0, 10], [1, 3]).logpdf([0.5, 4.0]).sum()
    np.testing.assert_allclose(mj.log_prob(theta, y), ref, rtol=1e-6)
    np.testing.assert_allclose(mj.entropy(theta), stats.norm([0, 10], [1, 3]).entropy().sum(), rtol=1e-6)
    q = mj.Independent(mj.Normal(jnp.array([1.0, 10.0]), jnp.array([1.0, 1.0])))
    np.testing.assert_allclose(mj.kl(theta, q), mj.kl(theta.base, q.base).sum(), rtol=1e-6)
    np.testing.assert_array_equal(mj.mode(theta), theta.base.loc)


def test_unknown_theta_type_is_a_type_error():
    with pytest.raises(TypeError, match="not a theta type"):
        mj.log_prob((1.0, 2.0), 0.0)
