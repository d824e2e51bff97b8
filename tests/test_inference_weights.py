"""``inference(..., weight_kind=)`` against statsmodels' GLM ``freq_weights`` / ``var_weights`` (WLS), and
``trained=`` (a frozen leaf is no parameter) against a model without that leaf.

statsmodels estimates a GLM's dispersion by Pearson's chi^2 over the residual degrees of freedom
(``df_resid = nobs - p``, nobs the summed frequencies or the number of rows); our sigma is the MLE
(divisor nobs), so its SEs are statsmodels' times ``sqrt((nobs - p) / nobs)``: the check is then
exact, and it tells the two kinds apart (nobs 159.3 against 59 rows here).
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mle_jax as mj
from mle_jax import links
from mle_jax.inference import inference, parameter_names

sm = pytest.importorskip("statsmodels.api")


def _linear(p, x):
    return x @ p["b"]


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _data(seed, n=60):
    rng = np.random.default_rng(seed)
    X = np.c_[np.ones(n), rng.normal(size=(n, 2))]
    w = rng.uniform(0.5, 5.0, n)
    w[7] = 0.0  # a row of weight 0: no row at all, for either kind
    return X, w, rng


@pytest.mark.deep
def test_normal_learned_sigma_frequency_against_analytic_weights(x64):
    """One weighted Normal fit, two readings. Frequency: sigma^2 = sum w r^2 / sum w, nobs = sum w, SEs as
    statsmodels' GLM(freq_weights=w). Analytic: sigma^2 = sum w r^2 / N (re-fitted by inference from the
    frequency fit's sigma), nobs = N rows with w > 0, SEs as GLM(var_weights=w) (WLS), robust as its HC0."""
    X, w, rng = _data(0)
    y = X @ np.array([1.0, 0.5, -1.0]) + rng.normal(size=60) / np.sqrt(np.maximum(w, 0.5))
    keep = w > 0
    Xk, yk, wk = X[keep], y[keep], w[keep]
    freq = _quiet(sm.GLM(yk, Xk, family=sm.families.Gaussian(), freq_weights=wk).fit)
    var = _quiet(sm.GLM(yk, Xk, family=sm.families.Gaussian(), var_weights=wk).fit)
    var_hc0 = _quiet(sm.GLM(yk, Xk, family=sm.families.Gaussian(), var_weights=wk).fit, cov_type="HC0")
    swr, total, rows, p = np.sum(wk * (yk - Xk @ freq.params) ** 2), wk.sum(), keep.sum(), 3
    r = mj.recipe(_linear, mj.normal(scale="learned"))
    params = r.init({"b": jnp.asarray(freq.params)})._replace(
        family={"scale": links.softplus_inverse(jnp.asarray(np.sqrt(swr / total)))})  # the fit's (frequency) MLE
    f = inference(r, params, X, y, weights=w)
    a = inference(r, params, X, y, weights=w, weight_kind="analytic")
    assert f.nobs == pytest.approx(total, rel=1e-12) and a.nobs == rows == 59
    np.testing.assert_allclose(f.se.model["b"], freq.bse * np.sqrt((total - p) / total), rtol=1e-6)
    np.testing.assert_allclose(a.se.model["b"], var.bse * np.sqrt((rows - p) / rows), rtol=1e-6)
    np.testing.assert_allclose(a.params.model["b"], var.params, rtol=1e-8)
    sigma_f, se_f = f.natural()["scale"]
    sigma_a, se_a = a.natural()["scale"]
    np.testing.assert_allclose([sigma_f, se_f], [np.sqrt(swr / total), np.sqrt(swr / total / (2 * total))], rtol=1e-7)
    np.testing.assert_allclose([sigma_a, se_a], [np.sqrt(swr / rows), np.sqrt(swr / rows / (2 * rows))], rtol=1e-7)
    robust = inference(r, params, X, y, "robust", weights=w, weight_kind="analytic")
    np.testing.assert_allclose(robust.se.model["b"], var_hc0.bse, rtol=1e-6)
    assert "analytic weights" in a.summary() and a.bic == pytest.approx(4 * np.log(59) - 2 * a.loglik)


@pytest.mark.deep
def test_poisson_weights_share_covariance_and_differ_in_nobs(x64):
    """Without a dispersion of its own, a Poisson's two kinds give the same estimates and SEs (statsmodels'
    freq_weights and var_weights agree); nobs differs (sum w against the rows), and the analytic HC0 is
    statsmodels' var_weights HC0."""
    X, w, rng = _data(1)
    y = rng.poisson(np.exp(X @ np.array([0.3, 0.4, -0.2])))
    keep = w > 0
    var = _quiet(sm.GLM(y[keep], X[keep], family=sm.families.Poisson(), var_weights=w[keep]).fit, tol=1e-13)
    var_hc0 = _quiet(sm.GLM(y[keep], X[keep], family=sm.families.Poisson(), var_weights=w[keep]).fit, tol=1e-13,
                     cov_type="HC0")
    freq = _quiet(sm.GLM(y[keep], X[keep], family=sm.families.Poisson(), freq_weights=w[keep]).fit, tol=1e-13)
    r = mj.recipe(_linear, mj.poisson())
    params = r.init({"b": jnp.asarray(var.params)})
    f = inference(r, params, X, y, weights=w)
    a = inference(r, params, X, y, weights=w, weight_kind="analytic")
    np.testing.assert_allclose(f.se.model["b"], freq.bse, rtol=1e-6)
    np.testing.assert_allclose(a.se.model["b"], var.bse, rtol=1e-6)
    assert f.nobs == pytest.approx(w.sum()) and a.nobs == 59
    np.testing.assert_allclose(f.loglik, a.loglik, rtol=1e-12)
    robust = inference(r, params, X, y, "robust", weights=w, weight_kind="analytic")
    np.testing.assert_allclose(robust.se.model["b"], var_hc0.bse, rtol=1e-6)
    expected = inference(r, params, X, y, "expected", weights=w, weight_kind="analytic")
    np.testing.assert_allclose(expected.se.model["b"], var.bse, rtol=1e-6)


def test_frozen_leaf_is_not_a_parameter(x64):
    """A Poisson whose offset c is frozen at 0.3 (``trained=`` as a prefix pytree, and as a function of
    params): num_params, AIC, BIC and the SEs of b are those of statsmodels' GLM with offset 0.3 and no c."""
    X, _, rng = _data(2)
    y = rng.poisson(np.exp(X @ np.array([0.3, 0.4, -0.2]) + 0.3))
    ref = _quiet(sm.GLM(y, X, family=sm.families.Poisson(), offset=np.full(60, 0.3)).fit, tol=1e-13)
    r = mj.recipe(lambda p, x: x @ p["b"] + p["c"], mj.poisson())
    params = r.init({"b": jnp.asarray(ref.params), "c": jnp.asarray(0.3)})
    for trained in (mj.Params(model={"b": True, "c": False}, family=True),
                    lambda p: jax.tree_util.tree_map(lambda a: a.ndim > 0, p)):
        s = inference(r, params, X, y, trained=trained)
        assert s.num_params == 3 and s.names == ("model.b[0]", "model.b[1]", "model.b[2]")
        np.testing.assert_allclose([s.loglik, s.aic, s.bic], [ref.llf, ref.aic, ref.bic_llf], rtol=1e-10)
        np.testing.assert_allclose(s.se.model["b"], ref.bse, rtol=1e-6)
        assert float(s.params.model["c"]) == 0.3
    assert len(parameter_names(params)) == 4  # unfrozen, c is a parameter (collinear with b[0] here)


def test_weight_options_refuse_bad_input(x64):
    X, w, rng = _data(3, n=20)
    y = rng.poisson(1.0, 20)
    r = mj.recipe(lambda p, x: x @ p["b"] + p["c"], mj.poisson())
    params = r.init({"b": jnp.zeros(3), "c": jnp.asarray(0.0)})
    with pytest.raises(ValueError, match="weight_kind"):
        inference(r, params, X, y, weights=w, weight_kind="precision")
    with pytest.raises(ValueError, match="trained="):
        inference(r, params, X, y, trained={"b": True})
    with pytest.raises(ValueError, match="True / False"):
        inference(r, params, X, y, trained=mj.Params(model={"b": 1.0, "c": True}, family=True))
    with pytest.raises(ValueError, match="every one fixed"):
        inference(r, params, X, y, trained=mj.Params(model=False, family=False))
    gauss = mj.recipe(_linear, mj.normal(scale="learned"))
    with pytest.raises(ValueError, match="expected"):
        inference(gauss, gauss.init({"b": jnp.zeros(3)}), X, rng.normal(size=20), "expected", weights=w,
                  weight_kind="analytic")


@pytest.mark.deep
def test_gamma_mean_analytic_weights_likelihood_is_the_documented_form(x64):
    """``gamma("mean")`` with analytic weights: the log-likelihood at the re-fitted params is
    ``sum_i [w_i (log Gamma(y_i; a, mu_i) - b(a)) + b(a)]`` over the rows with w_i > 0, ``b(a) = a log a - a -
    lgamma(a)`` (the shape's normaliser once per row; inference's docstring), from scipy's density; the
    coefficients are statsmodels' ``var_weights`` Gamma GLM's (the shape does not enter their score)."""
    from scipy import special, stats
    X, w, rng = _data(2)
    mu = np.exp(X @ np.array([0.5, 0.3, -0.4]))
    y = rng.gamma(3.0, mu / 3.0)
    keep = w > 0
    var = _quiet(sm.GLM(y[keep], X[keep], family=sm.families.Gamma(sm.families.links.Log()),
                        var_weights=w[keep]).fit, tol=1e-13)
    r = mj.recipe(_linear, mj.gamma(parameterization="mean"))
    params = r.init({"b": jnp.asarray(var.params)})
    a = inference(r, params, X, y, weights=w, weight_kind="analytic")
    np.testing.assert_allclose(a.params.model["b"], var.params, rtol=1e-7)
    shape = float(links.softplus.forward(a.params.family["shape"]))
    mu_hat = np.exp(X[keep] @ np.asarray(a.params.model["b"]))
    logpdf = stats.gamma.logpdf(y[keep], shape, scale=mu_hat / shape)
    b = shape * np.log(shape) - shape - special.gammaln(shape)
    np.testing.assert_allclose(a.loglik, np.sum(w[keep] * (logpdf - b) + b), rtol=1e-10)
    # the shape maximises that likelihood: its derivative in a vanishes there
    def documented(s):
        lp = stats.gamma.logpdf(y[keep], s, scale=mu_hat / s)
        bs = s * np.log(s) - s - special.gammaln(s)
        return np.sum(w[keep] * (lp - bs) + bs)
    h = 1e-5 * shape
    assert abs(documented(shape + h) - documented(shape - h)) / (2 * h) < 1e-5 * abs(a.loglik)
