"""Zero-inflated counts: the ZeroInflated theta against the direct formula
``g [y = 0] + (1 - g) p(y)`` with scipy's Poisson / negative binomial, and ``mj.zero_inflated`` fits against
statsmodels' ``ZeroInflatedPoisson`` and ``ZeroInflatedNegativeBinomialP`` (p = 2)."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import stats
from scipy.special import expit

import mle_jax as mj

Y = np.array([0, 1, 2, 5, 40, -1, 2.5], np.float32)


def _reference(gate, base):
    """log of ``g [y = 0] + (1 - g) p(y)`` in float64 (scipy's pmf; 0 off the support)."""
    g = expit(np.float64(gate))
    pmf = base.pmf(Y.astype(np.float64))
    with np.errstate(divide="ignore"):
        return np.log(np.where(Y == 0, g, 0.0) + (1 - g) * pmf)


@jax.jit
def _moments(theta, y):
    d = mj.distributions
    return d.log_prob(theta, y), d.mean(theta), d.variance(theta), d.mode(theta)


@pytest.mark.parametrize("which", ["poisson", "negative_binomial"])
def test_zero_inflated_log_prob_and_moments(which):
    gate, n = np.float32(0.4), len(Y)
    if which == "poisson":
        base, ref = mj.Poisson(jnp.full(n, 1.2, jnp.float32)), stats.poisson(np.exp(np.float64(np.float32(1.2))))
    else:
        r, z = np.float32(2.5), np.float32(0.7)
        base, ref = mj.NegativeBinomial(jnp.full(n, r), jnp.full(n, z)), stats.nbinom(np.float64(r), expit(-np.float64(z)))
    theta = mj.ZeroInflated(jnp.full(n, gate), base)
    lp, mean, var, mode = (np.asarray(v, np.float64) for v in _moments(theta, jnp.asarray(Y)))
    np.testing.assert_allclose(lp, _reference(gate, ref), rtol=1e-5, atol=1e-6)
    g = expit(np.float64(gate))
    # the moments of the mixture from the base's: E[y] = (1 - g) mu, E[y^2] = (1 - g)(sigma^2 + mu^2)
    np.testing.assert_allclose(mean, (1 - g) * ref.mean(), rtol=1e-5)
    np.testing.assert_allclose(var, (1 - g) * (ref.var() + ref.mean() ** 2) - ((1 - g) * ref.mean()) ** 2, rtol=1e-5)
    k = np.arange(60)
    mass = np.where(k == 0, g, 0.0) + (1 - g) * ref.pmf(k)
    assert mode[0] == np.argmax(mass)


@pytest.mark.deep
def test_zero_inflated_tails(x64):
    g, lam = 0.3, 2.5
    theta = mj.ZeroInflated(jnp.full(5, g), mj.Poisson(jnp.full(5, np.log(lam))))
    y = jnp.array([-1.0, 0, 1, 4, 30])
    ref = stats.poisson(lam)
    gate = expit(g)
    cdf = np.where(np.asarray(y) >= 0, gate + (1 - gate) * ref.cdf(np.asarray(y)), 0.0)
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(mj.log_cdf(theta, y), np.log(cdf), rtol=1e-10)
        sf = np.where(np.asarray(y) >= 0, (1 - gate) * ref.sf(np.asarray(y)), 1.0)
        np.testing.assert_allclose(mj.log_sf(theta, y), np.log(sf), rtol=1e-10)


@pytest.mark.deep
def test_zero_inflated_family_loss_and_refused_targets():
    family = mj.zero_inflated(mj.poisson())
    assert family.raw_shape == (2,) and mj.zero_inflated(mj.negative_binomial("per_example")).raw_shape == (3,)
    raw = jnp.array([[0.3, -0.5], [1.0, 2.0]])
    y = np.array([0.0, 3.0], np.float32)
    g = expit(np.asarray(raw[:, 1], np.float64))
    lam = np.exp(np.asarray(raw[:, 0], np.float64))
    ref = np.log(np.where(y == 0, g, 0) + (1 - g) * stats.poisson.pmf(y, lam))
    np.testing.assert_allclose(mj.losses.zero_inflated(raw, y, family=mj.poisson()), -ref, rtol=2e-6)
    for bad in ([1.5, 0.0], [-1.0, 0.0]):
        with pytest.raises(ValueError, match="count"):
            mj.losses.zero_inflated(raw, np.array(bad, np.float32), family=mj.poisson())
    with pytest.raises(ValueError, match="poisson"):
        mj.zero_inflated(mj.normal())


def _simulated(seed=21, n=1500):
    rng = np.random.default_rng(seed)
    x = np.column_stack([np.ones(n), rng.normal(size=n)])
    z = np.column_stack([np.ones(n), rng.normal(size=n)])
    return rng, x, z


def _fit(family, x, z, y, start):
    xz = jnp.asarray(np.concatenate([x, z], axis=1))

    def model(p, row):
        return jnp.stack([row[:2] @ p["b"], row[2:] @ p["g"]])
    r = mj.recipe(model, family)
    res = mj.fit(r, r.init(start), xz, jnp.asarray(y), optax.lbfgs(), steps=1000,
                 objective=mj.Objective(tol=1e-9))
    return r, res, -float(r.nll(res.params, xz, jnp.asarray(y)))


@pytest.mark.deep
def test_zero_inflated_poisson_matches_statsmodels(x64):
    from statsmodels.discrete.count_model import ZeroInflatedPoisson
    rng, x, z = _simulated()
    zero = rng.random(len(x)) < expit(z @ np.array([-0.5, 1.0]))
    y = np.where(zero, 0, rng.poisson(np.exp(x @ np.array([0.8, 0.5])))).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = ZeroInflatedPoisson(y, x, exog_infl=z, inflation="logit").fit(method="bfgs", maxiter=5000, gtol=1e-10,
                                                                             disp=0)
    _, res, llf = _fit(mj.zero_inflated(mj.poisson()), x, z, y, {"b": jnp.zeros(2), "g": jnp.zeros(2)})
    np.testing.assert_allclose(llf, ref.llf, rtol=1e-9)
    # statsmodels orders the inflation coefficients first
    np.testing.assert_allclose(np.concatenate([res.params.model["g"], res.params.model["b"]]), ref.params,
                               rtol=1e-4, atol=1e-5)


@pytest.mark.deep
def test_zero_inflated_negative_binomial_matches_statsmodels(x64):
    from statsmodels.discrete.count_model import ZeroInflatedNegativeBinomialP
    rng, x, z = _simulated(seed=22)
    zero = rng.random(len(x)) < expit(z @ np.array([-0.7, 0.8]))
    mu, r = np.exp(x @ np.array([1.0, 0.4])), 2.0
    y = np.where(zero, 0, rng.negative_binomial(r, r / (r + mu))).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = ZeroInflatedNegativeBinomialP(y, x, exog_infl=z, inflation="logit", p=2).fit(
            method="bfgs", maxiter=5000, gtol=1e-10, disp=0)
    family = mj.zero_inflated(mj.negative_binomial())
    r_, res, llf = _fit(family, x, z, y, {"b": jnp.zeros(2), "g": jnp.zeros(2)})
    np.testing.assert_allclose(llf, ref.llf, rtol=1e-9)
    total_count = float(jax.nn.softplus(res.params.family["total_count"]) + jnp.finfo(jnp.float64).eps)
    ours = np.concatenate([res.params.model["g"], res.params.model["b"], [1 / total_count]])  # alpha = 1 / r
    np.testing.assert_allclose(ours, ref.params, rtol=1e-4, atol=1e-5)
