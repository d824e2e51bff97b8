"""Profile-likelihood intervals (``conf_int(level, method="profile")``) against closed forms and a
brute-force profile computed with scipy (a grid to bracket each crossing, then brentq on a profile
re-fitted by scipy.optimize at every trial point)."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize, stats

import mle_jax as mj
from mle_jax import links
from mle_jax.inference import inference

sm = pytest.importorskip("statsmodels.api")


def _intercept(p, x):
    return p["b"] + 0.0 * x


@pytest.mark.deep
def test_poisson_rate_exact_profile(x64):
    """An intercept-only Poisson: l(b) = S b - n e^b (+ const), b_hat = log(S / n); the interval solves
    2 (l(b_hat) - l(b)) = chi2_1(level) (brentq on each side). Few counts: far from Wald's symmetry."""
    y = np.array([0, 1, 0, 2, 0, 0, 1])
    n, total = y.size, y.sum()
    r = mj.recipe(_intercept, mj.poisson())
    s = inference(r, r.init({"b": jnp.asarray(np.log(total / n))}), np.zeros(n), y)
    lower, upper = s.conf_int(0.9, method="profile")
    b_hat, c = np.log(total / n), stats.chi2.ppf(0.9, 1)

    def drop(b):
        return 2 * ((total * b_hat - n * np.exp(b_hat)) - (total * b - n * np.exp(b))) - c
    np.testing.assert_allclose([float(lower.model["b"]), float(upper.model["b"])],
                               [optimize.brentq(drop, b_hat - 10, b_hat, xtol=1e-14),
                                optimize.brentq(drop, b_hat, b_hat + 10, xtol=1e-14)], rtol=1e-8)
    wald_lower, wald_upper = s.conf_int(0.9)  # Wald is symmetric; the profile follows the likelihood's skew
    assert float(upper.model["b"]) - b_hat < b_hat - float(lower.model["b"])
    assert float(lower.model["b"]) < float(wald_lower.model["b"]) - 0.1 and float(upper.model["b"]) < float(wald_upper.model["b"])


@pytest.mark.deep
def test_normal_mean_with_sigma_profiled_closed_form(x64):
    """With sigma profiled out, l_p(mu) = -n/2 log(s^2 + (ybar - mu)^2) (+ const), so the interval is
    ybar -+ s sqrt(exp(chi2_1(level) / n) - 1), s the MLE sigma; sigma's own interval: l_p(sigma) =
    -n log sigma - n s^2 / (2 sigma^2), solved by brentq (profile intervals are invariant under the link:
    the raw bound maps to sigma's through softplus)."""
    n = 12
    y = np.random.default_rng(3).normal(1.0, 2.0, n)
    r = mj.recipe(_intercept, mj.normal(scale="learned"))
    params = r.init({"b": jnp.asarray(y.mean())})._replace(
        family={"scale": links.softplus_inverse(jnp.asarray(y.std()))})
    s = inference(r, params, np.zeros(n), y)
    lower, upper = s.conf_int(0.95, method="profile")
    c = stats.chi2.ppf(0.95, 1)
    half = y.std() * np.sqrt(np.expm1(c / n))
    np.testing.assert_allclose([float(lower.model["b"]), float(upper.model["b"])],
                               [y.mean() - half, y.mean() + half], rtol=1e-8)

    def drop(sigma):
        return 2 * n * (np.log(sigma / y.std()) + y.std() ** 2 / (2 * sigma**2) - 0.5) - c
    sigma_bounds = [optimize.brentq(drop, 1e-3, y.std(), xtol=1e-14), optimize.brentq(drop, y.std(), 100, xtol=1e-14)]
    to_sigma = lambda raw: float(links.softplus.forward(jnp.asarray(raw)))  # noqa: E731
    np.testing.assert_allclose([to_sigma(lower.family["scale"]), to_sigma(upper.family["scale"])], sigma_bounds,
                               rtol=1e-8)


def _logistic_case():
    rng = np.random.default_rng(5)
    x = np.c_[np.ones(40), rng.normal(size=40)]
    y = rng.binomial(1, 1 / (1 + np.exp(-(0.4 + 1.5 * x[:, 1]))))
    return x, y


@pytest.mark.deep
def test_logistic_profile_against_brute_force(x64):
    """A 40-row logistic regression: for each coefficient, scipy re-fits the other on a grid of 401
    fixed values to bracket where 2 (l_max - l_p) crosses chi2_1(0.95), then brentq refines the crossing
    on the same scipy profile; ours agrees to 1e-6."""
    x, y = _logistic_case()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sm.GLM(y, x, family=sm.families.Binomial()).fit(tol=1e-14)
    r = mj.recipe(lambda p, x: x @ p["b"], mj.bernoulli())
    s = inference(r, r.init({"b": jnp.asarray(ref.params)}), x, y)
    lower, upper = s.conf_int(0.95, method="profile", index=["model.b[0]", 1])

    def nll(b):
        eta = x @ b
        return float(np.sum(np.logaddexp(0.0, eta) - y * eta))
    nll_min, c = nll(ref.params), stats.chi2.ppf(0.95, 1)

    def profile(j, t):
        other = 1 - j
        def at(u):
            b = np.empty(2)
            b[j], b[other] = t, u
            return nll(b)
        return optimize.minimize_scalar(at, bracket=(ref.params[other] - 1, ref.params[other] + 1),
                                        options={"xtol": 1e-12}).fun
    for j in range(2):
        se = ref.bse[j]
        grid = ref.params[j] + np.linspace(-5 * se, 5 * se, 401)
        drop = np.array([2 * (profile(j, t) - nll_min) - c for t in grid])
        crossings = np.flatnonzero(np.diff(np.sign(drop)))
        assert crossings.size == 2
        bounds = [optimize.brentq(lambda t: 2 * (profile(j, t) - nll_min) - c, grid[i], grid[i + 1], xtol=1e-12)
                  for i in crossings]
        np.testing.assert_allclose([lower.model["b"][j], upper.model["b"][j]], bounds, rtol=1e-6, atol=1e-6)


@pytest.mark.deep
def test_flat_profile_gives_an_infinite_bound_with_a_warning(x64):
    """eta = a + tanh(c) x: the slope cannot pass 1, so when the data ask for a slope near 1 the profile of
    c flattens to the right and never falls by chi2_1(0.95) / 2: the upper bound is inf, with a warning;
    the lower bound is finite and below the MLE."""
    rng = np.random.default_rng(6)
    x = rng.normal(size=(25, 1))
    y = rng.binomial(1, 1 / (1 + np.exp(-0.9 * x[:, 0])))
    r = mj.recipe(lambda p, x: p["a"] + jnp.tanh(p["c"]) * x[0], mj.bernoulli())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sm.GLM(y, np.c_[np.ones(25), x], family=sm.families.Binomial()).fit(tol=1e-14)
    assert 0.2 < ref.params[1] < 0.99  # the MLE exists inside tanh's range
    params = r.init({"a": jnp.asarray(ref.params[0]), "c": jnp.arctanh(jnp.asarray(ref.params[1]))})
    s = inference(r, params, x, y)
    with pytest.warns(RuntimeWarning, match="infinite"):
        lower, upper = s.conf_int(0.95, method="profile", index=["model.c"])
    assert np.isinf(upper.model["c"]) and np.isfinite(lower.model["c"]) and lower.model["c"] < params.model["c"]
    assert np.isnan(lower.model["a"]) and np.isnan(upper.model["a"])


def test_conf_int_refuses_bad_options(x64):
    y = np.array([0, 1, 0, 2, 0])
    r = mj.recipe(_intercept, mj.poisson())
    s = inference(r, r.init({"b": jnp.asarray(np.log(0.6))}), np.zeros(5), y)
    with pytest.raises(ValueError, match="method"):
        s.conf_int(0.95, method="bootstrap")
    with pytest.raises(ValueError, match="index"):
        s.conf_int(0.95, index=[0])
    with pytest.raises(ValueError, match="no parameter named"):
        s.conf_int(0.95, method="profile", index=["model.c"])
    with pytest.raises(ValueError, match="index"):
        s.conf_int(0.95, method="profile", index=[3])
    with pytest.raises(ValueError, match="level"):
        s.conf_int(1.0, method="profile")
