"""Session 47: mj.register's checks (``check_registration``) run each registered function over its grid as one
compiled program, and as given where the function does not trace (a user's function that reads numbers into
NumPy); a wrong entry is still found either way. References: scipy.stats' logistic distribution."""

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import mle_jax as mj
from mle_jax.distributions import registry


class Logistic(NamedTuple):
    """scipy's ``logistic(loc, scale)``."""

    loc: Any
    scale: Any


def _z(t, y):
    return (y - t.loc) / t.scale


def _log_prob(t, y):
    z = _z(t, y)
    return -z - jnp.log(t.scale) - 2.0 * jax.nn.softplus(-z)


def _host_mean(t):
    """The mean through NumPy: a float of a JAX result, which no compiled program can give."""
    return jnp.asarray(float(np.asarray(jnp.asarray(t.loc) * 1.0)))


def _host_log_cdf(t, y):
    """``-softplus(-z)`` whose scale is read into NumPy first (untraceable under ``jit``, fine under ``vmap``)."""
    scale = float(np.asarray(jnp.asarray(t.scale) + 0.0))
    return -jax.nn.softplus(-(y - t.loc) / scale)


LOGISTIC = dict(
    log_prob=_log_prob,
    sample=lambda key, t: t.loc + t.scale * jax.random.logistic(key, jnp.shape(t.loc), jnp.result_type(t.loc)),
    mode=lambda t: t.loc, variance=lambda t: (math.pi * t.scale) ** 2 / 3,
    log_sf=lambda t, y: -jax.nn.softplus(_z(t, y)),
    quantile=lambda t, q: t.loc + t.scale * (jnp.log(q) - jnp.log1p(-q)))


@pytest.fixture(autouse=True)
def unregister():
    yield
    registry._OPS.pop(Logistic, None)


def test_the_references_agree_with_scipy():
    t = Logistic(0.7, 1.3)
    y = np.array([-3.0, 0.2, 0.7, 4.0])
    ref = stats.logistic(0.7, 1.3)
    np.testing.assert_allclose(jax.vmap(lambda v: _log_prob(t, v))(jnp.asarray(y)), ref.logpdf(y), rtol=1e-5)
    np.testing.assert_allclose(jax.vmap(lambda v: _host_log_cdf(t, v))(jnp.asarray(y)), ref.logcdf(y), rtol=1e-5)
    assert float(_host_mean(t)) == pytest.approx(ref.mean())


def test_functions_that_read_numbers_into_numpy_are_checked_as_given():
    """``mean`` and ``log_cdf`` convert a JAX result to NumPy: no false alarm, and the checks still compare them."""
    mj.register(Logistic, example=Logistic(0.7, 1.3), mean=_host_mean, log_cdf=_host_log_cdf, **LOGISTIC)
    assert registry._OPS[Logistic].mean is _host_mean


@pytest.mark.parametrize("entry, wrong, message", [
    ("mean", lambda t: jnp.asarray(float(np.asarray(jnp.asarray(t.loc) + 0.5))), r"mean is 1\.2"),
    ("log_cdf", lambda t, y: -jax.nn.softplus(-(y - t.loc) / float(np.asarray(jnp.asarray(t.scale) * 2.0))),
     "log_cdf at y"),
    ("log_sf", lambda t, y: -jax.nn.softplus(_z(t, y) * 1.1), "log_sf at y"),
    ("quantile", lambda t, q: t.loc + t.scale * (jnp.log(q) - jnp.log1p(-q)) + 0.2, "quantile at q"),
])
def test_a_wrong_entry_is_found_compiled_or_as_given(entry, wrong, message):
    """The wrong functions that read into NumPy go through the fallback, the others through the compiled path."""
    table = {**LOGISTIC, "mean": _host_mean, "log_cdf": _host_log_cdf, entry: wrong}
    with pytest.raises(ValueError, match=rf"register\(Logistic\): {message}"):
        mj.register(Logistic, example=Logistic(0.7, 1.3), **table)
    assert Logistic not in registry._OPS
