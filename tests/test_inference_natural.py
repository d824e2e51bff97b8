"""``InferenceResult.natural()`` and ``.mean_interval()`` (the delta method) against statsmodels and closed forms.

Every fit starts from statsmodels' own maximum (its gradient checked ~0 under our NLL), so no test
depends on an optimiser's last digits.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mle_jax as mj
from mle_jax import links
from mle_jax.inference import inference, ravel_trained

sm = pytest.importorskip("statsmodels.api")


def _linear(p, x):
    return x @ p["b"]


def _at_maximum(r, params, x, y, weights=None):
    v, unravel = ravel_trained(params)
    grad = jax.grad(lambda u: r.nll(unravel(u), x, y, weights))(v)
    assert float(jnp.max(jnp.abs(grad))) < 1e-6, grad
    return params


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _design(n, seed, d=2):
    rng = np.random.default_rng(seed)
    return np.c_[np.ones(n), rng.normal(size=(n, d))], rng


def test_normal_sigma_natural_scale_against_ols(x64):
    """sigma_hat = sqrt(SSR / n) from statsmodels' OLS; its delta-method SE is sigma_hat / sqrt(2 n) (the
    observed information of sigma at the MLE is 2 n / sigma^2, block-diagonal with beta's); the same SE
    from a finite-difference derivative of the link times the raw SE; the summary's natural block."""
    X, rng = _design(150, 0)
    y = X @ np.array([1.0, -0.5, 2.0]) + rng.normal(0.0, 0.7, 150)
    ols = _quiet(sm.OLS(y, X).fit)
    sigma = np.sqrt(ols.ssr / 150)
    r = mj.recipe(_linear, mj.normal(scale="learned"))
    params = r.init({"b": jnp.asarray(ols.params)})._replace(
        family={"scale": links.softplus_inverse(jnp.asarray(sigma))})
    s = inference(r, _at_maximum(r, params, X, y), X, y)
    value, se = s.natural()["scale"]
    np.testing.assert_allclose(value, sigma, rtol=1e-12)
    np.testing.assert_allclose(se, sigma / np.sqrt(2 * 150), rtol=1e-6)
    raw, h = float(s.params.family["scale"]), 1e-6  # a central difference of softplus, not jax.grad
    slope = (np.logaddexp(0.0, raw + h) - np.logaddexp(0.0, raw - h)) / (2 * h)
    np.testing.assert_allclose(se, slope * float(s.se.family["scale"]), rtol=1e-7)
    table = s.summary()
    assert "natural scale" in table and f"{sigma:.4f}" in table and f"{se:.4f}" in table
    fixed = mj.recipe(_linear, mj.normal(scale=1.0))
    assert inference(fixed, fixed.init({"b": jnp.asarray(ols.params)}), X, y).natural() == {}


@pytest.mark.deep
def test_negative_binomial_alpha_se_against_statsmodels(x64):
    """statsmodels' NegativeBinomial (NB2) estimates alpha = 1 / total_count with its observed-information
    SE; ours is the delta method from the raw (softplus) parameter: se(alpha) = se(r) / r^2."""
    X, rng = _design(400, 1)
    mu = np.exp(X @ np.array([0.8, 0.4, -0.3]))
    y = rng.negative_binomial(2.5, 2.5 / (2.5 + mu))
    ref = _quiet(sm.NegativeBinomial(y, X).fit, disp=0, method="newton", tol=1e-14, maxiter=100)
    assert ref.mle_retvals["converged"]
    alpha = ref.params[-1]
    r = mj.recipe(_linear, mj.negative_binomial())
    params = r.init({"b": jnp.asarray(ref.params[:-1])})._replace(
        family={"total_count": links.softplus_inverse(jnp.asarray(1.0 / alpha))})
    s = inference(r, _at_maximum(r, params, X, y), X, y)
    total, se = s.natural()["total_count"]
    np.testing.assert_allclose(1.0 / total, alpha, rtol=1e-10)
    np.testing.assert_allclose(se / total**2, ref.bse[-1], rtol=1e-4)
    np.testing.assert_allclose(s.se.model["b"], ref.bse[:-1], rtol=1e-4)


@pytest.mark.deep
def test_natural_ordinal_cutpoints(x64):
    """An ordinal family's cutpoints c = first_cut + cumsum([0, softplus(gaps) + eps]); their SEs from the
    covariance of (first_cut, gaps) by an independent finite-difference Jacobian."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(120, 1))
    y = np.digitize(x[:, 0] + rng.logistic(size=120), [-1.0, 0.2, 1.5])
    r = mj.recipe(lambda p, x: x @ p["b"], mj.ordinal(4))
    params = mj.fit(r, r.init({"b": jnp.zeros(1)}), x, y, __import__("optax").lbfgs(), steps=200,
                    objective=mj.Objective(reduction="sum")).params
    s = inference(r, params, x, y)
    cuts, se = s.natural()["cutpoints"]
    v = s.estimate.copy()
    names = list(s.names)
    first, gaps = names.index("family.first_cut"), [i for i, n in enumerate(names) if n.startswith("family.gaps")]

    def cutpoints(u):
        g = np.logaddexp(0.0, u[gaps]) + np.finfo(np.float64).eps
        return u[first] + np.concatenate([[0.0], np.cumsum(g)])
    jac = np.stack([(cutpoints(v + h) - cutpoints(v - h)) / 2e-6 for h in 1e-6 * np.eye(v.size)], 1)
    np.testing.assert_allclose(cuts, cutpoints(v), rtol=1e-12)
    np.testing.assert_allclose(se, np.sqrt(np.diag(jac @ s.cov @ jac.T)), rtol=1e-6)


def _glm_case(kind, rng):
    X = np.c_[np.ones(80), rng.normal(size=(80, 2))]
    eta = X @ np.array([0.3, 0.8, -0.6])
    if kind == "logistic":
        return X, rng.binomial(1, 1 / (1 + np.exp(-eta))).astype(float), sm.families.Binomial(), mj.bernoulli()
    if kind == "poisson":
        return X, rng.poisson(np.exp(eta)).astype(float), sm.families.Poisson(), mj.poisson()
    return X, eta + rng.normal(0.0, 0.5, 80), sm.families.Gaussian(), mj.normal(scale="learned")


@pytest.mark.parametrize("kind", [pytest.param("logistic", marks=pytest.mark.deep),
                                  pytest.param("poisson", marks=pytest.mark.deep), "gaussian"])
def test_mean_interval_against_statsmodels_get_prediction(kind, x64):
    """``mean_interval`` is statsmodels' ``get_prediction(x_new)``: predicted_mean, conf_int() (the linear
    predictor's interval through the inverse link: summary_frame's mean_ci_lower / upper) and
    conf_int(method="delta"). The Gaussian GLM at our MLE sigma^2 (statsmodels' scale= argument)."""
    rng = np.random.default_rng(3)
    X, y, sm_family, family = _glm_case(kind, rng)
    ref = _quiet(sm.GLM(y, X, family=sm_family).fit, tol=1e-13)
    r = mj.recipe(_linear, family)
    params = r.init({"b": jnp.asarray(ref.params)})
    if kind == "gaussian":
        sigma = np.sqrt(np.mean((y - X @ ref.params) ** 2))
        params = params._replace(family={"scale": links.softplus_inverse(jnp.asarray(sigma))})
        ref = _quiet(sm.GLM(y, X, family=sm_family).fit, tol=1e-13, scale=sigma**2)
    s = inference(r, _at_maximum(r, params, X, y), X, y)
    x_new = np.c_[np.ones(7), np.linspace(-2.5, 2.5, 7), np.linspace(1.0, -1.0, 7)]
    pred = ref.get_prediction(x_new)
    frame = pred.summary_frame(alpha=0.1)
    mean, lower, upper = s.mean_interval(x_new, 0.9)
    np.testing.assert_allclose(mean, pred.predicted_mean, rtol=1e-9)
    np.testing.assert_allclose(np.c_[lower, upper], frame[["mean_ci_lower", "mean_ci_upper"]].to_numpy(), rtol=1e-5)
    _, lower, upper = s.mean_interval(x_new, 0.95, method="delta")
    np.testing.assert_allclose(np.c_[lower, upper], pred.conf_int(method="delta", alpha=0.05), rtol=1e-5)
    if kind == "logistic":  # the endpoint interval stays inside (0, 1); y's own interval is {0, 1}
        mean, lower, upper = s.mean_interval(x_new, 0.999)
        assert np.all((0 < lower) & (lower < mean) & (mean < upper) & (upper < 1))


def test_mean_interval_and_natural_refuse_bad_input(x64):
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(30, 1)), rng.normal(size=30)
    r = mj.recipe(lambda p, x: jnp.stack([x[0] * p["a"], p["s"]]), mj.normal(scale="softplus"))
    s = inference(r, r.init({"a": jnp.asarray(0.1), "s": jnp.asarray(0.5)}), x, y)
    with pytest.raises(ValueError, match="method='delta'"):
        s.mean_interval(x, 0.9)
    mean, lower, upper = s.mean_interval(x[:3], 0.9, method="delta")
    assert mean.shape == lower.shape == (3,) and np.all(lower < mean) and np.all(mean < upper)
    with pytest.raises(ValueError, match="level"):
        s.mean_interval(x, 1.5)
    with pytest.raises(ValueError, match="method"):
        s.mean_interval(x, 0.9, method="wald")
