"""mle_jax.families.regression: normal, laplace, student_t, mixture_normal, gamma, beta as families
(the theta types themselves are tested in test_distributions*.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import stats

import mle_jax as mj
from family_fits import fit_constant


def test_laplace_learned_scale_fit_is_median_and_mean_absolute_deviation():
    v = np.random.default_rng(0).laplace(1.0, 2.0, size=4000).astype(np.float32)
    r, res = fit_constant(mj.laplace("learned"), jnp.float32(0.0), v, lr=0.02)
    theta = r.predict(res.params, jnp.zeros((1, 1)))
    np.testing.assert_allclose(theta.loc[0], np.median(v), atol=0.02)
    np.testing.assert_allclose(theta.scale[0], np.mean(np.abs(v - np.median(v))), rtol=0.01)


@pytest.mark.deep
def test_gamma_and_beta_fits_match_scipy_maximum_likelihood():
    rng = np.random.default_rng(1)
    g = rng.gamma(3.0, 1 / 2.0, size=4000).astype(np.float32)
    r, res = fit_constant(mj.gamma(), jnp.zeros(2), g)
    theta = r.predict(res.params, jnp.zeros((1, 1)))
    a, _, scale = stats.gamma.fit(g, floc=0)
    np.testing.assert_allclose([theta.concentration[0], theta.rate[0]], [a, 1 / scale], rtol=1e-2)
    b = rng.beta(2.0, 5.0, size=4000).astype(np.float32)
    r, res = fit_constant(mj.beta(), jnp.zeros(2), b)
    theta = r.predict(res.params, jnp.zeros((1, 1)))
    a1, a0, _, _ = stats.beta.fit(b, floc=0, fscale=1)
    np.testing.assert_allclose([theta.concentration1[0], theta.concentration0[0]], [a1, a0], rtol=1e-2)


def test_student_t_is_robust_to_outliers():
    rng = np.random.default_rng(1)
    x = rng.uniform(-2, 2, size=300).astype(np.float32)
    y = (2.0 * x + 0.1 * rng.normal(size=300)).astype(np.float32)
    y[:15] += 30.0  # gross outliers
    model = lambda p, x_i: p[0] * x_i + p[1]
    fits = {}
    for name, family in {"normal": mj.normal("learned"), "t": mj.student_t(2.0, "learned")}.items():
        r = mj.recipe(model, family)
        fits[name] = mj.fit(r, r.init(jnp.zeros(2)), x, y, optax.adam(0.05), steps=3000).params.model
    assert abs(float(fits["t"][0]) - 2.0) < 0.05
    assert abs(float(fits["normal"][0]) - 2.0) > abs(float(fits["t"][0]) - 2.0)


@pytest.mark.deep  # a few seconds of compiling: CI's deep phase, for README's 5-minute suite
def test_mixture_normal_fit_recovers_components():
    rng = np.random.default_rng(3)
    data = np.where(rng.uniform(size=4000) < 0.3, rng.normal(-2, 0.5, 4000), rng.normal(1.5, 0.8, 4000))
    rec, res = fit_constant(mj.mixture_normal(2), jnp.array([0.0, 0.0, -1.0, 1.0, 0.0, 0.0]),
                            data.astype(np.float32))
    t = rec.predict(res.params, jnp.zeros((1, 1)))
    order = np.argsort(np.asarray(t.loc[0]))
    np.testing.assert_allclose(np.asarray(t.loc[0])[order], [-2, 1.5], atol=0.1)
    np.testing.assert_allclose(np.asarray(t.scale[0])[order], [0.5, 0.8], atol=0.1)
    np.testing.assert_allclose(np.asarray(jax.nn.softmax(t.logits[0]))[order], [0.3, 0.7], atol=0.03)


@pytest.mark.parametrize("make, kind, options", [
    (lambda: mj.normal(0.5), "normal", {"scale": 0.5}),
    (lambda: mj.normal("learned"), "normal", {"scale": "learned"}),
    (lambda: mj.normal("exp"), "normal", {"scale": "exp"}),
    (lambda: mj.laplace(2), "laplace", {"scale": 2.0}),
    (lambda: mj.student_t("learned", "square"), "student_t", {"df": "learned", "scale": "square"}),
    (lambda: mj.student_t(3, 1.5), "student_t", {"df": 3.0, "scale": 1.5}),
])
def test_spec_records_the_scale_spec(make, kind, options):
    family = make()
    assert family.spec.kind == kind and dict(family.spec.options) == options
    assert family.name == f"{kind}({', '.join(f'{k}={v!r}' for k, v in options.items())})"


def test_beta_nll_is_a_training_option_with_the_stop_gradient_weight():
    plain, weighted = mj.normal("softplus"), mj.normal("softplus", beta=0.5)
    assert weighted.spec == plain.spec and weighted.training.options == (("beta", 0.5),)
    raw, y = jnp.array([0.3, 1.2]), jnp.float32(1.1)
    sigma = float(np.log1p(np.exp(1.2)) + np.finfo(np.float32).eps)
    nll = -stats.norm(0.3, sigma).logpdf(1.1)
    np.testing.assert_allclose(weighted.log_prob({}, raw, y), -nll, rtol=1e-5)  # the density is untouched
    np.testing.assert_allclose(weighted.training.term({}, raw, y), sigma ** 1.0 * nll, rtol=1e-5)
    # the weight is held constant: d loss / d raw = sigma^(2 beta) d NLL / d raw
    grad_loss = jax.grad(weighted.training.term, argnums=1)({}, raw, y)
    grad_nll = jax.grad(lambda r: -plain.log_prob({}, r, y))(raw)
    np.testing.assert_allclose(grad_loss, sigma * grad_nll, rtol=1e-5)


@pytest.mark.parametrize("sigma", [1e-20, 1e-16, 1e16, 1e20])
def test_normal_fixed_extreme_sigma_in_float32(sigma):
    # 1 / (2 sigma^2) overflows (or underflows) float32 here: the kernel standardises first
    family = mj.normal(sigma)
    for residual in (0.0, 0.5, 3.0):
        y = np.float32(residual * sigma)
        got = float(family.log_prob({}, jnp.float32(0.0), jnp.float32(y)))
        np.testing.assert_allclose(got, stats.norm(0.0, sigma).logpdf(float(y)), rtol=1e-6)
