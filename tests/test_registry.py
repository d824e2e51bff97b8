"""mj.register: a user's theta type joins the registry the built-ins use, and gets what a built-in gets
(log_prob, the scores, target checks), with the one documented fallback per missing entry."""

import inspect
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

import mle_jax as mj
from mle_jax import scores
from mle_jax.distributions import _support, registry


class Exponential(NamedTuple):
    """A user's theta: the exponential distribution with ``rate``."""

    rate: Any


def _log_prob(theta, y):
    return jnp.where(y >= 0, jnp.log(theta.rate) - theta.rate * y, -jnp.inf)


def _log_cdf(theta, y):
    y = jnp.maximum(y, 0.0)
    return jnp.log(-jnp.expm1(-theta.rate * y))


def _quantile(theta, q):
    return -jnp.log1p(-q) / theta.rate


def _sample(key, theta):
    return jax.random.exponential(key, jnp.shape(theta.rate), jnp.result_type(theta.rate)) / theta.rate


def _crps(theta, y):
    """``y + (2 e^{-r y} - 3/2) / r`` (scoringrules' ``crps_exponential``)."""
    return y + (2.0 * jnp.exp(-theta.rate * y) - 1.5) / theta.rate


ENTRIES = dict(log_prob=_log_prob, mode=lambda t: jnp.zeros_like(t.rate), mean=lambda t: 1.0 / t.rate,
               sample=_sample, log_cdf=_log_cdf, quantile=_quantile)


@pytest.fixture
def exponential():
    """Register the user type for one test only (the registry is otherwise fixed at import)."""
    mj.register(Exponential, **ENTRIES)
    yield
    registry._OPS.pop(Exponential, None)


def _reference_crps(rate, y):
    """``int (F(t) - 1{y <= t})^2 dt`` by quadrature, F the exponential cdf."""
    cdf = stats.expon(scale=1 / rate).cdf
    below = integrate.quad(lambda t: cdf(t) ** 2, 0, y)[0]
    above = integrate.quad(lambda t: (1 - cdf(t)) ** 2, y, np.inf)[0]
    return below + above


RATE, Y = np.array([0.5, 2.0, 1.0]), np.array([0.3, 0.1, 4.0])


def test_a_registered_type_works_with_the_generic_functions(exponential, x64):
    theta = Exponential(jnp.asarray(RATE))
    np.testing.assert_allclose(mj.log_prob(theta, jnp.asarray(Y)), stats.expon(scale=1 / RATE).logpdf(Y), rtol=1e-12)
    np.testing.assert_allclose(mj.pit(theta, jnp.asarray(Y)), stats.expon(scale=1 / RATE).cdf(Y), rtol=1e-12)
    lo, hi = stats.expon(scale=1 / RATE).ppf(0.05), stats.expon(scale=1 / RATE).ppf(0.95)
    np.testing.assert_array_equal(mj.coverage(theta, jnp.asarray(Y), 0.9), (lo <= Y) & (Y <= hi))
    # no closed-form CRPS: the sampled estimate with its standard error, within 4 of them of the integral
    est = mj.crps(theta, jnp.asarray(Y), key=jax.random.PRNGKey(0), num_samples=400)
    exact = np.array([_reference_crps(r, y) for r, y in zip(RATE, Y)])
    assert np.all(np.abs(np.asarray(est.estimate) - exact) < 4 * np.asarray(est.standard_error))
    with pytest.raises(ValueError, match="no closed form for Exponential; pass key="):
        mj.crps(theta, jnp.asarray(Y))


def test_a_registered_closed_form_crps_is_used(exponential, x64):
    mj.register(Exponential, **ENTRIES, crps=_crps)
    exact = np.array([_reference_crps(r, y) for r, y in zip(RATE, Y)])
    np.testing.assert_allclose(mj.crps(Exponential(jnp.asarray(RATE)), jnp.asarray(Y)), exact, rtol=1e-8)
    assert float(mj.crps(Exponential(2.0), 0.1)) == pytest.approx(_reference_crps(2.0, 0.1), rel=1e-6)


def test_missing_entries_have_the_documented_fallbacks(x64):
    mj.register(Exponential, log_prob=_log_prob, mean=ENTRIES["mean"])
    try:
        theta, y = Exponential(jnp.asarray(RATE)), jnp.asarray(Y)
        with pytest.raises(TypeError, match="pit: not available for Exponential: it has no log_cdf"):
            mj.pit(theta, y)
        with pytest.raises(TypeError, match="coverage: not available for Exponential: it has no quantile"):
            mj.coverage(theta, y)
        with pytest.raises(TypeError, match="brier: not available for Exponential: it has no probs"):
            mj.brier(theta, y)
        with pytest.raises(TypeError, match="crps_sample: not available for Exponential: it has no sample"):
            mj.crps(theta, y, key=jax.random.PRNGKey(0))
        with pytest.raises(NotImplementedError, match="Exponential has no closed-form entropy"):
            mj.entropy(theta)
        # no support registered: the real line (shape still checked exactly)
        with pytest.raises(ValueError, match=r"y has shape \(2,\) but Exponential predicts targets of shape \(3,\)"):
            scores.check_targets("crps", theta, jnp.zeros(2))
        scores.check_targets("crps", theta, jnp.asarray([-1.0, 0.0, 1.0]))
    finally:
        registry._OPS.pop(Exponential, None)


def test_a_registered_support_is_checked(x64):
    mj.register(Exponential, **ENTRIES, support=lambda theta: _support.positive)
    try:
        with pytest.raises(ValueError, match="> 0"):
            mj.pit(Exponential(jnp.asarray(RATE)), jnp.asarray([1.0, -1.0, 2.0]))
    finally:
        registry._OPS.pop(Exponential, None)


@pytest.mark.parametrize("call, message", [
    (lambda: mj.register(Exponential, log_prob=_log_prob, cdf=_log_cdf), r"unknown entries \['cdf'\]"),
    (lambda: mj.register(Exponential, mean=lambda t: t.rate), "Exponential needs log_prob"),
    (lambda: mj.register(Exponential, log_prob=_log_prob, quantile=0.5), "quantile must be a function"),
    (lambda: mj.register("Exponential", log_prob=_log_prob), "must be a class"),
])
def test_register_refuses_what_it_cannot_use(call, message):
    with pytest.raises(TypeError, match=message):
        call()
    assert Exponential not in registry._OPS


def test_scores_dispatch_through_the_registry_only():
    """No isinstance on theta types and no per-type table in scores.py: a new type changes its own module only."""
    source = inspect.getsource(scores)
    assert "isinstance(theta" not in source
    for name in mj.distributions.__all__:
        if name[0].isupper() and name != "Ops":
            assert f"dist.{name}" not in source and f"mj.{name}" not in source, name
