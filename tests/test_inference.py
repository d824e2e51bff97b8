"""Fit statistics against statsmodels (to 1e-4 relative in float64): SEs, robust SEs, AIC, BIC, LR tests.

Every fit starts from statsmodels' own maximum (its gradient checked to be ~0 under our NLL), so no
test depends on an optimiser's last digits.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import mle_jax as mj
from mle_jax import links
from mle_jax.inference import inference, lr_test, ravel_trained

sm = pytest.importorskip("statsmodels.api")
RTOL = 1e-4


def _close(a, b, rtol=RTOL):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=rtol)


def _linear(p, x):
    return x @ p["b"]


def _at_maximum(r, params, x, y):
    """The statsmodels estimate is a maximum of our likelihood too: the gradient is ~0."""
    v, unravel = ravel_trained(params)
    grad = jax.grad(lambda u: r.nll(unravel(u), x, y))(v)
    assert float(jnp.max(jnp.abs(grad))) < 1e-5, grad
    return params


def _design(n, seed, d=2):
    rng = np.random.default_rng(seed)
    return sm.add_constant(rng.normal(size=(n, d))), rng


def _against(model, family, X, yv, fn=_linear, expected=True, **fit):
    """statsmodels' fit (plain and HC0), our recipe at its maximum, and the checks every model shares."""
    ref = model(yv, X).fit(disp=0, tol=1e-12, **fit)
    rob = model(yv, X).fit(disp=0, tol=1e-12, cov_type="HC0", **fit)
    r = mj.recipe(fn, family)
    x, y = jnp.asarray(X), jnp.asarray(yv)
    params = _at_maximum(r, r.init({"b": jnp.asarray(ref.params)}), x, y)
    s = inference(r, params, x, y)
    _close(s.se.model["b"], ref.bse)
    _close([s.loglik, s.aic, s.bic], [ref.llf, ref.aic, ref.bic], 1e-10)
    if expected:  # canonical links: H = I
        _close(inference(r, params, x, y, cov="expected").se.model["b"], ref.bse)
    _close(inference(r, params, x, y, cov="robust").se.model["b"], rob.bse)
    return ref, r, x, y, params, s


def test_logistic_observed_expected_robust_aic_bic_against_statsmodels(x64):
    data = sm.datasets.spector.load_pandas()
    X, yv = sm.add_constant(data.exog.values.astype(float)), data.endog.values.astype(int)
    ref, r, x, y, params, s = _against(sm.Logit, mj.bernoulli(), X, yv, expected=False)  # probit test: Bernoulli
    assert (s.nobs, s.num_params) == (32, 4)
    _close(s.cov, ref.cov_params())
    lo, hi = s.conf_int(0.95)
    _close(np.stack([lo.model["b"], hi.model["b"]], 1), ref.conf_int(0.05))
    _close(s.pvalues, ref.pvalues)
    table = s.summary()
    assert "model.b[3]" in table and f"{ref.llf:.4f}" in table and "bernoulli()" in table

    # likelihood-ratio test: drop TUCE (column 2)
    restricted = sm.Logit(yv, X[:, [0, 1, 3]]).fit(disp=0, tol=1e-12)
    x_r = jnp.asarray(X[:, [0, 1, 3]])
    s_r = inference(r, r.init({"b": jnp.asarray(restricted.params)}), x_r, y)
    stat, df, p = lr_test(s_r, s)
    _close(stat, 2 * (ref.llf - restricted.llf), 1e-8)
    assert df == 1
    _close(p, stats.chi2.sf(stat, 1), 1e-8)
    _close(stat, ref.compare_lr_test(restricted)[0] if hasattr(ref, "compare_lr_test") else stat, 1e-8)
    with pytest.raises(ValueError, match="more parameters"):
        lr_test(s, s_r)


@pytest.mark.deep
def test_poisson_against_statsmodels(x64):
    X, rng = _design(200, 1)
    yv = rng.poisson(np.exp(X @ np.array([0.3, 0.5, -0.4])))
    _against(sm.Poisson, mj.poisson(), X, yv, method="newton")


@pytest.mark.deep
def test_negative_binomial_nb2_against_statsmodels(x64):
    """mj.negative_binomial(): mean exp(x b), total_count r = 1 / alpha: statsmodels' NB2."""
    X, rng = _design(300, 2)
    mu = np.exp(X @ np.array([1.0, 0.4, -0.3]))
    yv = rng.negative_binomial(2.0, 2.0 / (2.0 + mu))
    ref = sm.NegativeBinomial(yv, X, loglike_method="nb2").fit(disp=0, method="newton", tol=1e-12, maxiter=200)
    rob = sm.NegativeBinomial(yv, X, loglike_method="nb2").fit(disp=0, method="newton", tol=1e-12, maxiter=200,
                                                               cov_type="HC0")
    alpha = ref.params[-1]
    r = mj.recipe(_linear, mj.negative_binomial())
    x, y = jnp.asarray(X), jnp.asarray(yv)
    raw_r = links.softplus.inverse(jnp.float64(1.0 / alpha))
    params = _at_maximum(r, mj.Params({"b": jnp.asarray(ref.params[:-1])}, {"total_count": raw_r}), x, y)
    s = inference(r, params, x, y)
    _close(s.se.model["b"], ref.bse[:-1])
    _close([s.loglik, s.aic, s.bic], [ref.llf, ref.aic, ref.bic], 1e-9)
    # alpha = 1 / softplus(s): the delta method carries the SE of s to alpha's
    dalpha = jax.grad(lambda t: 1.0 / links.softplus.forward(t))(raw_r)
    _close(abs(float(dalpha)) * s.se.family["total_count"], ref.bse[-1])
    _close(inference(r, params, x, y, cov="robust").se.model["b"], rob.bse[:-1])
    with pytest.raises(NotImplementedError, match="no closed-form expected"):
        inference(r, params, x, y, cov="expected")


def _multinomial(p, x):
    """Class 0's logit fixed at 0: the identified softmax (statsmodels' MNLogit)."""
    return jnp.concatenate([jnp.zeros(1, x.dtype), x @ p["b"]])


@pytest.mark.deep
def test_multinomial_against_statsmodels_mnlogit(x64):
    X, rng = _design(300, 3)
    logits = np.concatenate([np.zeros((300, 1)), X @ np.array([[0.5, -0.5], [1.0, 0.2], [-0.3, 0.8]])], 1)
    yv = np.array([rng.choice(3, p=np.exp(z) / np.exp(z).sum()) for z in logits])
    ref, r, x, y, params, s = _against(sm.MNLogit, mj.categorical(3), X, yv, _multinomial, method="newton")
    assert s.se.model["b"].shape == (3, 2)  # covariate x class
    # K free logit rows are not identified: the Hessian is singular, and inference says so
    full = mj.recipe(lambda p, x: x @ p["b"], mj.categorical(3))
    b_full = jnp.concatenate([jnp.zeros((3, 1)), jnp.asarray(ref.params)], 1)
    with pytest.warns(RuntimeWarning, match="singular.*pseudo-inverse"):
        s_full = inference(full, full.init({"b": b_full}), x, y)
    assert np.all(np.isfinite(s_full.variance))


def test_gaussian_against_statsmodels_ols(x64):
    """OLS reports SEs with sigma^2 = SSR / (N - p); the MLE's is SSR / N: scale by sqrt(N / (N - p)).
    OLS's AIC counts only the p coefficients; ours also counts sigma (+2)."""
    data = sm.datasets.stackloss.load_pandas()
    X, yv = sm.add_constant(data.exog.values.astype(float)), data.endog.values.astype(float)
    ref = sm.OLS(yv, X).fit()
    rob = sm.OLS(yv, X).fit(cov_type="HC0")
    n, p = X.shape
    sigma = np.sqrt(ref.ssr / n)
    r = mj.recipe(_linear, mj.normal(scale="learned"))
    x, y = jnp.asarray(X), jnp.asarray(yv)
    params = _at_maximum(r, mj.Params({"b": jnp.asarray(ref.params)},
                                      {"scale": links.softplus.inverse(jnp.float64(sigma))}), x, y)
    s = inference(r, params, x, y)
    _close(s.se.model["b"] * np.sqrt(n / (n - p)), ref.bse)
    _close([s.loglik, s.aic, s.bic], [ref.llf, ref.aic + 2, ref.bic + np.log(n)], 1e-10)
    _close(inference(r, params, x, y, cov="robust").se.model["b"], rob.bse)
    np.testing.assert_allclose(inference(r, params, x, y, cov="expected").cov, s.cov, rtol=1e-8, atol=1e-12)


@pytest.mark.deep
def test_probit_expected_and_observed_against_statsmodels_glm(x64):
    """A non-canonical link: IRLS's SEs are the expected information's, Newton's the observed's."""
    X, rng = _design(200, 4)
    yv = (rng.uniform(size=200) < stats.norm.cdf(X @ np.array([0.2, 0.8, -0.5]))).astype(int)
    glm = sm.GLM(yv, X, family=sm.families.Binomial(link=sm.families.links.Probit()))
    irls, newton = glm.fit(tol=1e-12), glm.fit(method="newton", tol=1e-12)

    def probit_logit(p, x):  # logit(Phi(x b))
        z = x @ p["b"]
        return jax.scipy.special.log_ndtr(z) - jax.scipy.special.log_ndtr(-z)

    r = mj.recipe(probit_logit, mj.bernoulli())
    x, y = jnp.asarray(X), jnp.asarray(yv)
    params = _at_maximum(r, r.init({"b": jnp.asarray(irls.params)}), x, y)
    _close(inference(r, params, x, y, cov="expected").se.model["b"], irls.bse)
    _close(inference(r, params, x, y, cov="observed").se.model["b"], newton.bse)


def _small_logistic():
    X, rng = _design(60, 5)
    yv = (rng.uniform(size=60) < 1 / (1 + np.exp(-X @ np.array([0.3, 1.0, -1.0])))).astype(int)
    ref = sm.Logit(yv, X).fit(disp=0, tol=1e-12)
    r = mj.recipe(_linear, mj.bernoulli())
    return X, yv, r, r.init({"b": jnp.asarray(ref.params)})


def test_weights_are_repeated_rows_and_mask_is_a_subset(x64):
    X, yv, r, params = _small_logistic()
    w = np.arange(60) % 3
    dup = np.repeat(np.arange(60), w)
    weighted = inference(r, params, jnp.asarray(X), jnp.asarray(yv), weights=jnp.asarray(w, jnp.float64))
    repeated = inference(r, params, jnp.asarray(X[dup]), jnp.asarray(yv[dup]))
    _close([weighted.loglik, weighted.nobs, weighted.bic], [repeated.loglik, repeated.nobs, repeated.bic], 1e-10)
    _close(weighted.cov, repeated.cov, 1e-10)
    keep = np.arange(60) % 4 != 0
    masked = inference(r, params, jnp.asarray(X), jnp.asarray(yv), mask=jnp.asarray(keep), cov="robust")
    subset = inference(r, params, jnp.asarray(X[keep]), jnp.asarray(yv[keep]), cov="robust")
    _close([masked.loglik, masked.nobs], [subset.loglik, subset.nobs], 1e-10)
    _close(masked.cov, subset.cov, 1e-10)


def test_diagonal_and_hvp_without_a_dense_hessian(x64):
    X, yv, r, params = _small_logistic()
    x, y = jnp.asarray(X), jnp.asarray(yv)
    dense = inference(r, params, x, y)
    hessian = np.linalg.inv(dense.cov)
    with pytest.raises(ValueError, match="cov='diagonal'.*cov='hvp'"):
        inference(r, params, x, y, max_params=2)
    diag = inference(r, params, x, y, cov="diagonal", max_params=2)
    _close(diag.variance, 1 / np.diag(hessian), 1e-8)
    assert diag.cov is None and np.all(diag.variance <= dense.variance)  # a lower bound
    hvp = inference(r, params, x, y, cov="hvp", index=[0, 2], max_params=2)
    _close(hvp.variance[[0, 2]], dense.variance[[0, 2]], 1e-8)
    assert np.isnan(hvp.variance[1])


def test_untrained_leaves_are_carried_and_not_counted(x64):
    X, yv, _, params = _small_logistic()
    r = mj.recipe(lambda p, x: x @ p["b"] * p["sign"], mj.bernoulli())
    s = inference(r, mj.Params({"b": params.model["b"], "sign": 1}, {}), jnp.asarray(X), jnp.asarray(yv))
    assert s.num_params == 3 and s.se.model["sign"] == 1 and s.se.model["b"].shape == (3,)
    # a Python float is static in a fit (never trained), so it is not a parameter here either
    s = inference(r, mj.Params({"b": params.model["b"], "sign": 1.0}, {}), jnp.asarray(X), jnp.asarray(yv))
    assert s.num_params == 3 and s.se.model["sign"] == 1.0 and "model.sign" not in s.names
    _close(s.se.model["b"], inference(*_small_logistic()[2:3], params, jnp.asarray(X), jnp.asarray(yv)).se.model["b"])


def test_float32_params_are_inferred_in_float64_and_bad_calls_fail():
    X, yv, r, params = _small_logistic()
    p32 = mj.Params({"b": np.asarray(params.model["b"], np.float32)}, {})
    s = inference(r, p32, X.astype(np.float32), yv)
    with jax.enable_x64(True):
        ref = inference(r, params, jnp.asarray(X), jnp.asarray(yv))
    assert s.cov.dtype == np.float64
    _close(s.se.model["b"], ref.se.model["b"], 1e-5)  # float32 estimates, float64 arithmetic
    with pytest.raises(ValueError, match="cov must be one of"):
        inference(r, params, X, yv, cov="sandwich")
    with pytest.raises(ValueError, match="level must lie"):
        s.conf_int(1.5)
