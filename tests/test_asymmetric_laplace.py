"""The asymmetric Laplace (check-loss form) and its family: against scipy.stats.laplace_asymmetric, the
direct formula, numerical integration (CRPS, KL, Fisher information) and, for the family's fit, statsmodels'
QuantReg and the exact linear program (scipy's HiGHS)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

import mle_jax as mj
from mle_jax.distributions import isf

THETAS = [(0.5, 2.0, 0.25), (-1.0, 0.7, 0.6), (3.0, 1e-3, 0.05), (0.0, 5.0, 0.97)]
YS = np.array([-40.0, -3.0, -1.0, 0.0, 0.5, 1.2, 3.0, 60.0])
PS = np.array([1e-12, 1e-3, 0.05, 0.3, 0.5, 0.7, 0.97, 1 - 1e-9])


def scipy_of(loc, scale, q):
    """scipy's laplace_asymmetric with kappa = sqrt(q / (1 - q)), scale b / sqrt(q (1 - q))."""
    return stats.laplace_asymmetric(math.sqrt(q / (1 - q)), loc, scale / math.sqrt(q * (1 - q)))


def check_loss(u, q):
    return u * (q - (u < 0))


@jax.jit
def _all(theta, ys, ps):
    one = jax.vmap(lambda y: (mj.log_prob(theta, y), mj.log_cdf(theta, y), mj.log_sf(theta, y), mj.crps(theta, y)))
    return one(ys), mj.quantile(theta, ps), isf(theta, ps), (mj.mean(theta), mj.variance(theta), mj.entropy(theta),
                                                             mj.mode(theta))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_against_scipy_and_the_direct_formula(dtype):
    rtol = 2e-5 if dtype == "float32" else 1e-11
    with jax.enable_x64(dtype == "float64"):
        for loc, scale, q in THETAS:
            theta = mj.AsymmetricLaplace(*(jnp.asarray(v, dtype) for v in (loc, scale, q)))
            loc, scale, q = (float(v) for v in theta)  # the reference at the rounded parameters
            ref = scipy_of(loc, scale, q)
            ys = np.asarray(jnp.asarray(loc + scale * YS / 3, dtype), np.float64)
            (lp, lc, ls, _), quant, upper, (mean, var, ent, mode) = _all(theta, jnp.asarray(ys, dtype),
                                                                         jnp.asarray(PS, dtype))
            assert lp.dtype == jnp.dtype(dtype)
            direct = math.log(q * (1 - q) / scale) - check_loss((ys - loc) / scale, q)
            np.testing.assert_allclose(lp, direct, rtol=rtol, atol=rtol)
            np.testing.assert_allclose(lp, ref.logpdf(ys), rtol=rtol, atol=rtol)
            np.testing.assert_allclose(lc, ref.logcdf(ys), rtol=10 * rtol, atol=rtol)
            np.testing.assert_allclose(ls, ref.logsf(ys), rtol=10 * rtol, atol=rtol)
            ps = np.asarray(jnp.asarray(PS, dtype), np.float64)
            inner = (ps > 1e-6) & (ps < 1 - 1e-6) if dtype == "float32" else ps < 1
            np.testing.assert_allclose(np.asarray(quant)[inner], ref.ppf(ps[inner]), rtol=10 * rtol,
                                       atol=10 * rtol * scale)
            np.testing.assert_allclose(upper[:-1], ref.isf(ps[:-1]), rtol=10 * rtol, atol=10 * rtol * scale)
            np.testing.assert_allclose([mean, var, ent], [ref.mean(), ref.var(), ref.entropy()], rtol=rtol,
                                       atol=rtol)
            assert float(mode) == loc
            assert float(mj.quantile(theta, theta.q)) == pytest.approx(loc, abs=10 * rtol * scale)


def test_isf_is_exact_where_one_minus_p_rounds_to_one():
    theta = mj.AsymmetricLaplace(jnp.float32(0.0), jnp.float32(1.0), jnp.float32(0.3))
    got = float(isf(theta, jnp.float32(1e-20)))
    assert got == pytest.approx(-math.log(1e-20 / 0.7) / 0.3, rel=1e-6)  # 1 - 1e-20 is 1 in float32


def test_crps_closed_form_against_integration_and_the_laplace(x64):
    for loc, scale, q in THETAS[:2] + THETAS[3:]:
        theta = mj.AsymmetricLaplace(jnp.float64(loc), jnp.float64(scale), jnp.float64(q))
        ref = scipy_of(loc, scale, q)
        crps = _all(theta, jnp.asarray(loc + scale * YS / 3), jnp.asarray(PS))[0][3]
        for y, got in zip(loc + scale * YS / 3, np.asarray(crps)):
            with np.errstate(all="ignore"):  # scipy's cdf overflows exp in its unused branch
                num = sum(integrate.quad(lambda x: (ref.cdf(x) - (x >= y)) ** 2, a, b, limit=200)[0]
                          for a, b in [(-np.inf, y), (y, np.inf)])
            assert got == pytest.approx(num, rel=1e-7, abs=1e-9), (loc, scale, q, y)
    # q = 1/2 is the Laplace with scale 2b
    theta, lap = mj.AsymmetricLaplace(0.3, 0.5, 0.5), mj.Laplace(0.3, 1.0)
    for y in [-2.0, 0.3, 1.0, 9.0]:
        assert float(mj.crps(theta, y)) == pytest.approx(float(mj.crps(lap, y)), rel=1e-12)
        assert float(mj.log_prob(theta, y)) == pytest.approx(float(mj.log_prob(lap, y)), rel=1e-12)


def test_kl_closed_form_against_integration(x64):
    pairs = [((0.5, 2.0, 0.25), (-1.0, 0.7, 0.6)), ((-1.0, 0.7, 0.6), (0.5, 2.0, 0.25)),
             ((0.0, 1.0, 0.1), (0.2, 1.3, 0.1)), ((1.0, 1.0, 0.9), (0.0, 3.0, 0.5))]
    for a, b in pairs:
        p, r = scipy_of(*a), scipy_of(*b)
        lo, hi = p.ppf(1e-15), p.isf(1e-15)
        num = integrate.quad(lambda x: p.pdf(x) * (p.logpdf(x) - r.logpdf(x)), lo, hi,
                             points=sorted({a[0], b[0]}), limit=400)[0]
        got = float(mj.kl(mj.AsymmetricLaplace(*a), mj.AsymmetricLaplace(*b)))
        assert got == pytest.approx(num, rel=1e-7), (a, b)
        assert float(mj.kl(mj.AsymmetricLaplace(*a), mj.AsymmetricLaplace(*a))) == pytest.approx(0.0, abs=1e-14)
    # q = 1/2: the Laplace's KL at scale 2b
    kl = mj.kl(mj.AsymmetricLaplace(0.2, 0.5, 0.5), mj.AsymmetricLaplace(-0.4, 1.5, 0.5))
    assert float(kl) == pytest.approx(float(mj.kl(mj.Laplace(0.2, 1.0), mj.Laplace(-0.4, 3.0))), rel=1e-12)


@pytest.mark.deep
def test_fisher_is_the_covariance_of_the_score(x64):
    """E[s s'] by numerical integration of the score's products (the score from jax.grad of log_prob)."""
    loc, scale, q = 0.5, 2.0, 0.25
    theta = mj.AsymmetricLaplace(jnp.float64(loc), jnp.float64(scale), jnp.float64(q))
    score = jax.jit(jax.grad(lambda t, y: mj.log_prob(t, y)))
    ref = scipy_of(loc, scale, q)
    info = np.zeros((3, 3))
    for i in range(3):
        for j in range(i, 3):
            def integrand(y):
                s = np.asarray(jax.tree.leaves(score(theta, jnp.float64(y))))
                return ref.pdf(y) * s[i] * s[j]
            info[i, j] = info[j, i] = sum(integrate.quad(integrand, a, b, limit=200)[0]
                                          for a, b in [(-np.inf, loc), (loc, np.inf)])
    np.testing.assert_allclose(mj.distributions.registry.function(theta, "fisher")(theta), info, rtol=1e-7,
                               atol=1e-10)


@pytest.mark.deep
def test_samples_pass_a_ks_test():
    theta = mj.AsymmetricLaplace(jnp.float32(-1.0), jnp.float32(0.3), jnp.float32(0.8))
    keys = jax.random.split(jax.random.PRNGKey(4), 4000)
    draws = np.asarray(jax.jit(jax.vmap(mj.sample, in_axes=(0, None)))(keys, theta), np.float64)
    assert stats.kstest(draws, scipy_of(-1.0, 0.3, 0.8).cdf).pvalue > 1e-3
    assert abs(np.mean(draws < -1.0) - 0.8) < 5 * math.sqrt(0.8 * 0.2 / 4000)  # loc is the 0.8-quantile


def test_no_library_twin():
    with pytest.raises(TypeError, match="AsymmetricLaplace"):
        mj.to_tfp(mj.AsymmetricLaplace(0.0, 1.0, 0.5))


# ----------------------------------------------------------------------------- the family

def test_family_forms_against_the_theta_and_the_check_loss():
    mu = jnp.array([0.0, 1.0, -2.0, 0.5], jnp.float32)
    y = jnp.array([1.0, 0.2, -2.0, 3.0], jnp.float32)
    q = 0.9
    got = mj.losses.asymmetric_laplace(mu, y, q)  # scale 1: the check loss less log(q (1 - q))
    u = np.asarray(y, np.float64) - np.asarray(mu, np.float64)
    np.testing.assert_allclose(got, check_loss(u, q) - math.log(q * (1 - q)), rtol=1e-6)
    np.testing.assert_allclose(mj.losses.asymmetric_laplace(mu, y, q, scale=2.0),
                               -scipy_of(0.0, 2.0, q).logpdf(np.asarray(y, np.float64) - np.asarray(mu)), rtol=1e-6)
    raw = jnp.stack([mu, jnp.array([0.3, -1.0, 2.0, 0.0])], axis=1)
    b = np.log1p(np.exp(np.asarray(raw[:, 1], np.float64))) + np.finfo(np.float32).eps
    np.testing.assert_allclose(mj.losses.asymmetric_laplace(raw, y, 0.2, scale="softplus"),
                               -np.array([scipy_of(float(m), s, 0.2).logpdf(float(v))
                                          for m, s, v in zip(mu, b, y)]), rtol=1e-5)
    family = mj.asymmetric_laplace(0.2, "learned", init_scale=1.5)
    theta = family.theta(family.init(jnp.float32), jnp.float32(0.4))
    assert isinstance(theta, mj.AsymmetricLaplace) and float(theta.q) == pytest.approx(0.2)
    assert float(theta.scale) == pytest.approx(1.5, rel=1e-5)
    assert family.name == "asymmetric_laplace(0.2, scale='learned')"


@pytest.mark.parametrize("q", [0.0, 1.0, -0.1, 1.5, "0.5", True, float("nan")])
def test_bad_quantile_levels_are_named(q):
    with pytest.raises(ValueError, match="quantile level"):
        mj.asymmetric_laplace(q)


def _quantile_data(n=120):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 2))
    y = 1 + x @ np.array([0.8, -0.5]) + (1 + 0.5 * np.abs(x[:, 0])) * rng.standard_t(5, size=n)
    return np.column_stack([np.ones(n), x]), y


def _linear_program(X, y, q):
    """The exact regression quantile: min q 1'u + (1 - q) 1'v subject to X b + u - v = y, u, v >= 0."""
    from scipy.optimize import linprog
    n, p = X.shape
    cost = np.concatenate([np.zeros(p), q * np.ones(n), (1 - q) * np.ones(n)])
    lp = linprog(cost, A_eq=np.hstack([X, np.eye(n), -np.eye(n)]), b_eq=y,
                 bounds=[(None, None)] * p + [(0, None)] * (2 * n), method="highs")
    assert lp.status == 0
    return lp.x[:p]


@pytest.mark.deep
@pytest.mark.parametrize("q,scale", [(0.75, 1.0), (0.25, "learned")])
def test_linear_fit_is_quantile_regression(q, scale, x64):
    """The location MLE of a linear model is statsmodels' QuantReg(y, X).fit(q=q) (IRLS) and the exact
    LP solution: the check loss within 1e-6 relative of the LP's minimum (a unique vertex on these data),
    coefficients within 1e-3; a learned scale ends at its MLE, the mean check loss."""
    from statsmodels.regression.quantile_regression import QuantReg
    import optax

    X, y = _quantile_data()
    exact = _linear_program(X, y, q)
    ref = QuantReg(y, X).fit(q=q)

    def loss(b):
        return float(np.sum(check_loss(y - X @ b, q)))
    assert loss(ref.params) == pytest.approx(loss(exact), rel=1e-6)  # the references agree
    r = mj.recipe(lambda p, x_i: p @ x_i, mj.asymmetric_laplace(q, scale))
    res = mj.fit(r, r.init(jnp.zeros(3)), jnp.asarray(X), jnp.asarray(y),
                 optax.adam(optax.exponential_decay(0.05, 500, 0.5)), steps=6000)
    w = np.asarray(res.params.model)
    assert loss(exact) <= loss(w) <= loss(exact) * (1 + 1e-6)
    np.testing.assert_allclose(w, exact, atol=1e-3)
    np.testing.assert_allclose(w, ref.params, atol=1e-3)
    if scale == "learned":
        b = float(r.family.theta(res.params.family, jnp.float64(0.0)).scale)
        assert b == pytest.approx(loss(w) / len(y), rel=1e-4)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_family_kernel_and_its_written_derivative_at_the_kink_and_at_infinity(dtype, request):
    """The fixed-scale kernel ``-max(q z, (q - 1) z)`` and its custom derivative: against scipy's logpdf at
    finite z, -inf at y = +-inf (not inf - inf), NaN at NaN; d/dmu = q - 1{y < mu} (1 - q below, -q above
    written as d/dz), q - 1/2 at the kink y = mu; second derivative 0; the softplus-scale family's gradient
    equals autodiff of the theta's log_prob away from the kink."""
    if dtype == "float32":
        dt = jnp.float32
    else:
        request.getfixturevalue("x64")
        dt = jnp.float64
    q = 0.9
    family = mj.asymmetric_laplace(q)
    mu = np.array([0.0, 1.0, -2.0, 0.5, 0.3, 0.3, 0.3])
    y = np.array([1.0, 0.2, -2.0, 3.0, np.inf, -np.inf, np.nan])
    # each check in one compiled program (op by op: about 100 compiles a dtype)
    lp = jax.jit(jax.vmap(family.log_prob, in_axes=(None, 0, 0)))
    got = np.asarray(lp({}, jnp.asarray(mu, dt), jnp.asarray(y, dt)), np.float64)
    with np.errstate(invalid="ignore"):
        expected = scipy_of(0.0, 1.0, q).logpdf(y - mu)
    assert np.isnan(got[-1]) and got[4] == got[5] == -np.inf
    np.testing.assert_allclose(got[:6], expected[:6], rtol=1e-6)
    one = lambda m, t: family.log_prob({}, m, t)  # noqa: E731
    finite = slice(0, 4)
    d1 = jax.jit(jax.vmap(jax.grad(one)))(jnp.asarray(mu[finite], dt), jnp.asarray(y[finite], dt))
    u = y[finite] - mu[finite]
    np.testing.assert_allclose(np.asarray(d1, np.float64), np.where(u > 0, q, np.where(u < 0, q - 1, q - 0.5)),
                               rtol=1e-6)
    d2 = jax.jit(jax.vmap(jax.grad(jax.grad(one))))(jnp.asarray(mu[finite], dt), jnp.asarray(y[finite], dt))
    assert (np.asarray(d2) == 0).all()
    linked = mj.asymmetric_laplace(0.3, "softplus")
    raw = jnp.asarray([[0.4, -0.2], [-1.0, 0.7], [2.0, 1.5]], dt)
    ys = jnp.asarray([1.1, -3.0, 0.5], dt)
    fused = jax.jit(jax.vmap(jax.grad(lambda r, t: linked.log_prob({}, r, t))))(raw, ys)
    via_theta = jax.jit(jax.vmap(jax.grad(lambda r, t: mj.log_prob(linked.theta({}, r), t))))(raw, ys)
    np.testing.assert_allclose(fused, via_theta, rtol=1e-5 if dtype == "float32" else 1e-12)
