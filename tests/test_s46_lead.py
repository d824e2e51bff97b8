"""Session 46: the direct functions on concrete arrays run as one compiled program (``registry._compiled``), each
domain check made once per call, and ``from_tfp`` refusing a probability outside [0, 1] or a negative rate."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import mle_jax as mj
from mle_jax.distributions import registry


def test_a_concrete_call_compiles_once_and_equals_the_traced_program_and_scipy():
    """``log_tail`` of a Weibull batch called twice eagerly with new values of the same shapes reuses one compiled
    program (no second trace), and equals the same function traced inside a user's ``jit`` and scipy's
    ``weibull_min.logsf`` / ``logcdf``."""
    n = registry.COMPILE_MIN_SIZE // 3 + 1  # a call this large runs compiled
    k, s = np.tile([0.5, 2.0, 7.5], n), np.tile([1.0, 0.3, 2.0], n)
    y, upper = np.tile([0.2, 0.5, 1.5], n), np.tile([True, False, True], n)
    got = mj.log_tail(mj.Weibull(jnp.asarray(k), jnp.asarray(s)), jnp.asarray(y), jnp.asarray(upper))
    fn = registry.entries(mj.Weibull(1.0, 1.0))
    program = registry._COMPILED[fn.log_tail if fn.log_tail is not None else fn.log_sf]
    traces = program._cache_size()
    again = mj.log_tail(mj.Weibull(jnp.asarray(k + 1.0), jnp.asarray(s)), jnp.asarray(y), jnp.asarray(upper))
    assert program._cache_size() == traces  # the same shapes and dtypes: no new program
    traced = jax.jit(lambda k, s, y, u: mj.log_tail(mj.Weibull(k, s), y, u))(jnp.asarray(k), jnp.asarray(s),
                                                                             jnp.asarray(y), jnp.asarray(upper))
    np.testing.assert_array_equal(np.asarray(got), np.asarray(traced))
    for shape, out in ((k, got), (k + 1.0, again)):
        ref = np.where(upper, stats.weibull_min.logsf(y, shape, scale=s), stats.weibull_min.logcdf(y, shape, scale=s))
        np.testing.assert_allclose(np.asarray(out, np.float64), ref, rtol=2e-5)


def test_a_users_registered_function_runs_as_given_and_the_check_stays_outside_the_program():
    """A user's type whose ``log_prob`` reads a value with ``float`` (which a jit could not) runs eagerly as
    written; a built-in theta (a log-normal) outside its domain is still a ValueError naming the function (the check is made on
    the concrete values, before the compiled program), once per ``interval`` (its two ends share it)."""
    from typing import NamedTuple

    class Shifted(NamedTuple):
        loc: jax.Array

    def log_prob(theta, y):
        return -0.5 * (y - float(theta.loc)) ** 2 - 0.5 * np.log(2 * np.pi)

    mj.register(Shifted, log_prob=log_prob, mode=lambda t: t.loc, mean=lambda t: t.loc,
                sample=lambda key, t: t.loc + jax.random.normal(key, jnp.shape(t.loc)))
    try:
        np.testing.assert_allclose(float(mj.log_prob(Shifted(jnp.float32(0.5)), jnp.float32(1.5))),
                                   stats.norm.logpdf(1.5, 0.5), rtol=1e-6)
    finally:
        registry._OPS.pop(Shifted, None)  # other tests read every registered type
    with pytest.raises(ValueError, match=r"interval: LogNormal's scale must be > 0; got -1.0 at index 1"):
        mj.interval(mj.LogNormal(jnp.zeros(2), jnp.asarray([2.0, -1.0])), 0.9)
    calls = []
    inside = registry._inside
    try:
        registry._inside = lambda *args: calls.append(args[1]) or inside(*args)
        lo, hi = mj.interval(mj.LogNormal(jnp.zeros(2), jnp.asarray([2.0, jnp.nan])), 0.9)
    finally:
        registry._inside = inside
    assert calls == ["interval"]
    np.testing.assert_allclose(float(lo[0]), stats.lognorm.ppf(0.05, 2.0), rtol=2e-5)
    np.testing.assert_allclose(float(hi[0]), stats.lognorm.isf(0.05, 2.0), rtol=2e-5)
    assert np.isnan(float(lo[1])) and np.isnan(float(hi[1]))  # a NaN field: NaN ends, not an error


def test_from_tfp_refuses_a_probability_outside_the_unit_interval_and_a_negative_rate():
    """A TFP distribution built (without ``validate_args``) from a probability outside [0, 1] or a negative rate
    converted to a NaN logit or log-rate, read downstream as a missing value; now a ValueError naming the class,
    the parameter, the first bad entry and the count. Valid probabilities convert to scipy's log masses."""
    tfd = pytest.importorskip("tensorflow_probability.substrates.jax").distributions
    cases = [(tfd.Bernoulli(probs=1.5), r"Bernoulli's probs must be in \[0, 1\]; got 1.5 \(1 of 1"),
             (tfd.Binomial(3.0, probs=jnp.asarray([0.2, -0.5])), r"Binomial's probs .* got -0.5 at index \(1,\)"),
             (tfd.Categorical(probs=jnp.asarray([[0.2, 0.8], [1.25, 0.1]])), r"Categorical's probs .* \(1, 0\)"),
             (tfd.NegativeBinomial(2.0, probs=jnp.asarray([0.3, 2.0])), r"NegativeBinomial's probs"),
             (tfd.Poisson(rate=-1.0), r"Poisson's rate must be >= 0; got -1.0")]
    for dist, message in cases:
        with pytest.raises(ValueError, match=message):
            mj.from_tfp(dist)
    theta = mj.from_tfp(tfd.Binomial(3.0, probs=jnp.asarray([0.0, 0.25, 1.0])))
    got = mj.log_prob(theta, jnp.asarray([0.0, 1.0, 3.0]))
    np.testing.assert_allclose(np.asarray(got, np.float64), stats.binom.logpmf([0, 1, 3], 3, [0.0, 0.25, 1.0]),
                               rtol=1e-5)
    assert np.isnan(np.asarray(mj.from_tfp(tfd.Poisson(rate=jnp.asarray([1.0, jnp.nan]))).log_rate)[1])
