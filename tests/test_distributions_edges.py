"""The edge cases of docs/reliability.md that are not a log density on a grid (tests/cases.py covers
those): KL / CE at extreme scales and concentrations, zero rates and infinite logits, float counts,
gradients at tiny scales and in the CDFs' parameters, errors that name the fix."""

import math

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest
from scipy import special, stats

import mle_jax as mj

f32 = jnp.float32


@pytest.mark.parametrize("pair, expected", [
    ((mj.Normal(f32(0), f32(1e-30)), mj.Normal(f32(0), f32(1e30))), math.log(1e60) - 0.5),
    ((mj.Laplace(f32(0), f32(1e-20)), mj.Laplace(f32(0), f32(1e20))), math.log(1e40) - 1),
    ((mj.Poisson(f32(-np.inf)), mj.Poisson(f32(0))), 1.0),
    ((mj.Bernoulli(f32(-100)), mj.Bernoulli(f32(-np.inf))), np.inf),
    ((mj.Categorical(jnp.array([np.inf, 0, 0], f32)), mj.Categorical(jnp.array([0.0, 0, 0], f32))), math.log(3)),
])
def test_kl_at_extremes(pair, expected):
    got = float(mj.kl(*pair))
    assert got == expected if np.isinf(expected) else got == pytest.approx(expected, rel=1e-6)


def test_kl_large_concentrations_against_mpmath():
    """KL of Beta(1e5, 1e5) and Gamma(1e5, 1) pairs: never negative, right to 1e-4 in float32."""
    mp.mp.dps = 40
    a, b, c = mp.mpf(1e5), mp.mpf(1e5), mp.mpf(1.001e5)
    beta_ref = (mp.log(mp.beta(c, b)) - mp.log(mp.beta(a, b)) + (a - c) * mp.digamma(a)
                + (c - a) * mp.digamma(a + b))
    got = mj.kl(mj.Beta(f32(1e5), f32(1e5)), mj.Beta(f32(1.001e5), f32(1e5)))
    np.testing.assert_allclose(got, float(beta_ref), rtol=1e-4)
    got = mj.kl(mj.Gamma(f32(1e5), f32(1)), mj.Gamma(f32(1.001e5), f32(2)))
    # (a_p - a_q) psi(a_p) - lnG(a_p) + lnG(a_q) + a_q (log b_p - log b_q) + a_p (b_q - b_p) / b_p
    gamma_ref = (a - c) * mp.digamma(a) - mp.loggamma(a) + mp.loggamma(c) - c * mp.log(2) + a
    np.testing.assert_allclose(got, float(gamma_ref), rtol=1e-5)


def test_cross_entropy_at_huge_scales_and_of_independent_thetas():
    np.testing.assert_allclose(mj.cross_entropy(mj.Normal(f32(0), f32(1e20)), mj.Normal(f32(0), f32(1e20))),
                               stats.norm(0, 1e20).entropy(), rtol=1e-6)
    for kind in (mj.Laplace, mj.Gamma, mj.Beta):
        p = mj.Independent(kind(jnp.array([1.0, 2.0], f32), jnp.array([1.0, 3.0], f32)))
        q = mj.Independent(kind(jnp.array([2.0, 2.0], f32), jnp.array([1.5, 1.0], f32)))
        np.testing.assert_allclose(mj.cross_entropy(p, q), mj.entropy(p) + mj.kl(p, q), rtol=1e-6)
    laplace_p, laplace_q = stats.laplace(1.0, 1.0), stats.laplace(2.0, 1.5)
    ce = mp.quad(lambda y: -mp.exp(float(laplace_p.logpdf(float(y)))) * float(laplace_q.logpdf(float(y))),
                 [-40, 1, 2, 40])
    got = mj.cross_entropy(mj.Independent(mj.Laplace(jnp.array([1.0], f32), jnp.array([1.0], f32))),
                           mj.Independent(mj.Laplace(jnp.array([2.0], f32), jnp.array([1.5], f32))))
    np.testing.assert_allclose(got, float(ce), rtol=1e-5)


def test_counts_are_float_and_do_not_saturate():
    theta = mj.Poisson(f32(25.0))
    assert mj.mode(theta).dtype == jnp.float32
    np.testing.assert_allclose(mj.mode(theta), math.floor(math.exp(25.0)), rtol=1e-6)
    with jax.enable_x64(True):
        np.testing.assert_allclose(mj.mode(mj.Poisson(jnp.float64(25.0))), math.floor(math.exp(25.0)), rtol=1e-15)
    draw = mj.sample(jax.random.PRNGKey(0), theta)
    assert abs(float(draw) - math.exp(25.0)) < 6 * math.exp(12.5)
    nb = mj.NegativeBinomial(f32(3.0), f32(20.0))
    assert mj.mode(nb).dtype == jnp.float32 and float(mj.mode(nb)) == pytest.approx(2 * math.exp(20.0), rel=1e-6)


@pytest.mark.parametrize("make, grad_ref", [
    # d/ds log p(y | 0, s) at y = 3e-30, s = 1e-30: z^2/s - 1/s (Normal), |z|/s - 1/s (Laplace)
    (lambda s: mj.log_prob(mj.Normal(f32(0), s), f32(3e-30)), 8e30),
    (lambda s: mj.log_prob(mj.Laplace(f32(0), s), f32(3e-30)), 2e30),
    (lambda s: mj.log_prob(mj.StudentT(f32(3), f32(0), s), f32(3e-30)), (4 * 9 / 3 / (1 + 9 / 3) - 1) / 1e-30),
    (lambda s: mj.log_prob(mj.MixtureNormal(jnp.zeros(2, f32), jnp.zeros(2, f32), jnp.stack([s, s])),
                           f32(3e-30)), 8e30),
    (lambda s: mj.log_cdf(mj.Normal(f32(0), s), f32(3e-30)),
     -stats.norm.pdf(3.0) / stats.norm.cdf(3.0) * 3.0 / 1e-30),
])
def test_gradients_at_tiny_scales(make, grad_ref):
    np.testing.assert_allclose(jax.jit(jax.grad(make))(f32(1e-30)), grad_ref, rtol=1e-5)  # one program, not op by op


def _mp_log_betainc(a, b, x):
    return mp.log(mp.betainc(a, b, 0, x, regularized=True))


@pytest.mark.parametrize("a, b, y", [(2.0, 3.0, 0.3), (0.5, 4.0, 0.9), (40.0, 7.5, 0.8)])
@pytest.mark.deep
def test_beta_cdf_gradients_in_both_concentrations(a, b, y):
    mp.mp.dps = 30
    with jax.enable_x64(True):
        got = jax.grad(lambda a, b: mj.log_cdf(mj.Beta(a, b), jnp.float64(y)), argnums=(0, 1))(a, b)
        got_sf = jax.grad(lambda a, b: mj.log_sf(mj.Beta(a, b), jnp.float64(y)), argnums=(0, 1))(a, b)
    ref = (mp.diff(lambda v: _mp_log_betainc(v, b, y), a), mp.diff(lambda v: _mp_log_betainc(a, v, y), b))
    np.testing.assert_allclose(got, [float(r) for r in ref], rtol=1e-8)
    ref_sf = (mp.diff(lambda v: _mp_log_betainc(b, v, 1 - y), a), mp.diff(lambda v: _mp_log_betainc(v, a, 1 - y), b))
    np.testing.assert_allclose(got_sf, [float(r) for r in ref_sf], rtol=1e-8)


@pytest.mark.deep
def test_student_t_cdf_gradient_in_df_and_hessian():
    mp.mp.dps = 30

    def ref(nu):
        return mp.log(mp.betainc(nu / 2, mp.mpf(0.5), 0, nu / (nu + 4), regularized=True) / 2)

    with jax.enable_x64(True):
        fn = lambda nu: mj.log_cdf(mj.StudentT(nu, jnp.float64(0), jnp.float64(1)), jnp.float64(-2.0))  # noqa: E731
        at_zero = lambda m: mj.log_cdf(mj.StudentT(jnp.float64(3.0), m, jnp.float64(1)), jnp.float64(0.0))  # noqa: E731
        # one program for the three derivatives (compiled once, not op by op)
        grad, hessian, grad_at_zero = jax.jit(lambda nu, m: (jax.grad(fn)(nu), jax.hessian(fn)(nu),
                                                              jax.grad(at_zero)(m)))(3.0, 0.0)
    np.testing.assert_allclose(grad, float(mp.diff(ref, 3)), rtol=1e-8)
    np.testing.assert_allclose(hessian, float(mp.diff(ref, 3, 2)), rtol=1e-5)
    np.testing.assert_allclose(grad_at_zero, -stats.t(3).pdf(0) / 0.5, rtol=1e-12)


@pytest.mark.deep  # 4-10 s of compiling: CI's deep phase, for README's 5-minute suite
def test_gamma_cdf_gradient_in_concentration():
    mp.mp.dps = 30
    with jax.enable_x64(True):
        got = jax.grad(lambda a: mj.log_sf(mj.Gamma(a, jnp.float64(1)), jnp.float64(5.0)))(2.0)
    np.testing.assert_allclose(got, float(mp.diff(lambda a: mp.log(mp.gammainc(a, 5, regularized=True)), 2)),
                               rtol=1e-8)


@pytest.mark.deep
def test_kl_mc_with_draws_that_underflow():
    p, q = mj.Gamma(f32(0.01), f32(1)), mj.Gamma(f32(0.02), f32(1))
    estimate, se = mj.kl_mc(jax.random.PRNGKey(0), p, q, 20_000)
    assert np.isfinite(estimate) and np.isfinite(se)
    assert abs(float(estimate) - float(mj.kl(p, q))) < 4 * float(se)
    bp, bq = mj.Beta(f32(0.02), f32(0.03)), mj.Beta(f32(0.05), f32(0.03))
    estimate, se = mj.kl_mc(jax.random.PRNGKey(1), bp, bq, 20_000)
    assert abs(float(estimate) - float(mj.kl(bp, bq))) < 4 * float(se)


@pytest.mark.parametrize("base", [-2, 0, 1, float("inf"), "2"])
def test_entropy_base_must_be_a_valid_logarithm_base(base):
    with pytest.raises(ValueError, match="base must be a finite number > 0 other than 1"):
        mj.entropy(mj.Normal(f32(0), f32(1)), base=base)


def test_probs_through_the_registry_and_errors_that_name_the_fix():
    np.testing.assert_allclose(mj.probs(mj.Bernoulli(f32(0.3))), [special.expit(-0.3), special.expit(0.3)], rtol=1e-6)
    np.testing.assert_allclose(mj.probs(mj.Categorical(jnp.array([np.inf, 0.0], f32))), [1.0, 0.0])
    with pytest.raises(TypeError, match="discrete thetas"):
        mj.probs(mj.Normal(f32(0), f32(1)))
    with pytest.raises(NotImplementedError, match="Poisson has no closed-form entropy"):
        mj.entropy(mj.Poisson(f32(0)))


def test_foreign_distributions_name_the_converter():
    tfd = pytest.importorskip("tensorflow_probability.substrates.jax").distributions
    foreign = tfd.Normal(0.0, 1.0)
    for call in (lambda: mj.log_prob(foreign, 0.0), lambda: mj.kl(foreign, foreign),
                 lambda: mj.kl(mj.Normal(f32(0), f32(1)), foreign), lambda: mj.entropy(foreign)):
        with pytest.raises(TypeError, match=r"mj\.from_tfp\(dist\)"):
            call()


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_zero_rate_puts_all_mass_on_zero_exactly(dtype):
    # log 0! = 0 and -log B(r, 1) - log r = 0 exactly: no float32 gammaln / betaln error at y = 0
    with jax.enable_x64(dtype == jnp.float64):
        zero = jnp.asarray(0.0, dtype)
        assert float(mj.log_prob(mj.Poisson(jnp.asarray(-jnp.inf, dtype)), zero)) == 0.0
        assert float(mj.log_prob(mj.NegativeBinomial(jnp.asarray(10.0, dtype), jnp.asarray(-jnp.inf, dtype)), zero)) == 0.0
        np.testing.assert_allclose(mj.log_prob(mj.NegativeBinomial(jnp.asarray(3.0, dtype), jnp.asarray(0.2, dtype)), zero),
                                   stats.nbinom(3.0, 1 - special.expit(0.2)).logpmf(0), rtol=1e-6)


@pytest.mark.parametrize("kind, ref, params", [
    (mj.Beta, lambda a, b: stats.beta(a, b), (2.5, 4.0)),
    (mj.StudentT, lambda df, loc, scale: stats.t(df, loc, scale), (3.5, 0.4, 1.7)),
    (mj.Gamma, lambda a, rate: stats.gamma(a, scale=1 / rate), (2.2, 1.5)),
    (mj.Normal, lambda loc, scale: stats.norm(loc, scale), (0.3, 2.0)),
    (mj.Poisson, lambda z: stats.poisson(np.exp(z)), (1.2,)),
    (mj.NegativeBinomial, lambda r, z: stats.nbinom(r, special.expit(-z)), (3.5, 0.3)),
])
@pytest.mark.deep
def test_log_tail_is_the_survival_where_upper_and_the_cdf_elsewhere(kind, ref, params):
    """One evaluation for both sides of a censored observation: scipy's logsf / logcdf per side, and
    its gradient in every parameter against central differences of scipy's functions."""
    y = ref(*params).ppf(np.array([0.01, 0.2, 0.5, 0.8, 0.99, 0.3]))
    upper = np.array([True, False, True, False, True, False])

    def scipy_side(*p):
        return np.where(upper, ref(*p).logsf(y), ref(*p).logcdf(y))

    with jax.enable_x64(True):
        theta = kind(*(jnp.float64(p) for p in params))
        tail = lambda th: mj.log_tail(th, jnp.asarray(y), jnp.asarray(upper))  # noqa: E731
        values, grads = jax.jit(lambda th: (tail(th), jax.grad(lambda t: tail(t).sum())(th)))(theta)
    np.testing.assert_allclose(values, scipy_side(*params), rtol=1e-10)
    for k, got in enumerate(grads):
        step = 1e-6 * max(1.0, abs(params[k]))
        up, down = list(params), list(params)
        up[k] += step
        down[k] -= step
        want = (scipy_side(*up).sum() - scipy_side(*down).sum()) / (2 * step)
        np.testing.assert_allclose(float(got), want, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_beta_upper_tail_at_targets_below_epsilon(dtype):
    """log_sf (and log_tail's upper side) at y below the dtype's epsilon: 1 - y rounds to 1, so the
    survival is taken from log y and log1p(-y) directly, never from 1 - y (it was 0 for y = 1e-9)."""
    with jax.enable_x64(dtype == "float64"):
        cast = getattr(jnp, dtype)
        for a, b, y in [(0.05, 2.0, 1e-9), (1e-3, 1e-3, 1e-30), (0.5, 0.5, 1e-20)]:
            theta = mj.Beta(cast(a), cast(b))
            want = stats.beta(a, b).logsf(float(cast(y)))
            np.testing.assert_allclose(mj.log_sf(theta, cast(y)), want, rtol=2e-5)
            np.testing.assert_allclose(mj.log_tail(theta, cast(y), True), want, rtol=2e-5)
            np.testing.assert_allclose(mj.log_cdf(theta, cast(y)), stats.beta(a, b).logcdf(float(cast(y))), rtol=2e-5)
