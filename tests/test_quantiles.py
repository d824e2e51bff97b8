"""Every scalar theta type has ``log_cdf``, ``log_sf``, ``quantile`` and ``isf``, exact in both tails.

The types without a closed-form quantile (Student t, Gamma, Beta, the Normal mixture, zero inflation, a
user's type) get the registry's one fallback, bisection of their tails on the floats' order
(``distributions._invert``); the von Mises has its own CDF (quadrature of the tail) and the same inversion.
References: scipy.stats' ``ppf`` / ``isf`` (Student t, Gamma, Beta, Gumbel), the definition by brute
force over the counts with scipy's Poisson ``cdf`` / ``sf`` (zero inflation), a bracketed root of scipy's
``norm.logcdf`` mixture (``brentq`` to 1e-300; the mixture) and mpmath quadrature (the von Mises).
Tolerances (relative, in y): 1000 eps in float64 and 64 eps ... see ``_RTOL``.
"""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest
from scipy import optimize, special, stats

import mle_jax as mj
from mle_jax.distributions import registry

PS = np.array([1e-30, 1e-10, 1e-3, 0.3, 0.5])  # quantile(p) reads the lower tail; isf(p) the upper
# relative tolerances in y: the bisection ends within one float of the crossing of the type's own tail, whose
# relative error (a few hundred eps at most for the incomplete-function loops) is divided by
# |d log F / d log y| (>= 0.5 for these parameters): 2000 eps in float64 (4.4e-13), 200 eps in float32 (2.4e-5)
_RTOL = {np.float64: 2000 * np.finfo(np.float64).eps, np.float32: 200 * np.finfo(np.float32).eps}


@jax.jit
def _both(theta, q):
    return mj.distributions.quantile(theta, q), mj.distributions.isf(theta, q)


def _mixture_reference(w, m, s, p, upper):
    """The mixture's quantile as the root of log F(y) - log p (log S for ``upper``) by brentq, scipy's logcdf."""
    lw = np.log(w)

    def gap(y):
        side = stats.norm.logsf(y, m, s) if upper else stats.norm.logcdf(y, m, s)
        return special.logsumexp(lw + side) - math.log(p)
    lo, hi = np.min(m - 60 * s), np.max(m + 60 * s)
    return optimize.brentq(gap, lo, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)


def _zero_inflated_reference(g, rate, p, upper):
    """The smallest count k with F(k) >= p (with S(k) <= p for ``upper``), by brute force over k."""
    k = np.arange(400)
    if upper:
        return float(k[np.argmax((1 - g) * stats.poisson.sf(k, rate) <= p)])
    return float(k[np.argmax(g + (1 - g) * stats.poisson.cdf(k, rate) >= p)])


def _cases(dtype):
    d = lambda v: jnp.asarray(v, dtype)  # noqa: E731
    w = np.array([0.3, 0.7])
    return {
        "StudentT": (mj.StudentT(d(3.0), d(1.0), d(2.0)), stats.t(3.0, 1.0, 2.0)),
        "StudentT_cauchy": (mj.StudentT(d(1.0), d(0.0), d(1.0)), stats.t(1.0)),
        "Gamma": (mj.Gamma(d(0.5), d(2.0)), stats.gamma(0.5, scale=0.5)),
        "Gamma_large": (mj.Gamma(d(40.0), d(0.1)), stats.gamma(40.0, scale=10.0)),
        "Beta": (mj.Beta(d(2.0), d(0.5)), stats.beta(2.0, 0.5)),
        "Beta_small": (mj.Beta(d(0.7), d(3.0)), stats.beta(0.7, 3.0)),
        "MixtureNormal": (mj.MixtureNormal(d(np.log(w)), d([-2.0, 3.0]), d([1.0, 0.5])),
                          lambda p, upper: _mixture_reference(w, np.array([-2.0, 3.0]), np.array([1.0, 0.5]),
                                                              p, upper)),
        "ZeroInflated": (mj.ZeroInflated(d(0.3), mj.Poisson(d(np.log(2.5)))),
                         lambda p, upper: _zero_inflated_reference(special.expit(0.3), 2.5, p, upper)),
    }


NAMES = ["StudentT", "StudentT_cauchy", "Gamma", "Gamma_large", "Beta", "Beta_small", "MixtureNormal", "ZeroInflated"]


def _reference(ref, p, upper):
    if callable(ref) and not hasattr(ref, "ppf"):
        return ref(p, upper)
    return float(ref.isf(p) if upper else ref.ppf(p))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", NAMES)
def test_quantile_and_isf_match_scipy_in_both_tails(name, dtype):
    with jax.enable_x64(dtype == np.float64):
        theta, ref = _cases(dtype)[name]
        lower, upper = (np.asarray(v, np.float64) for v in _both(theta, jnp.asarray(PS, dtype)))
        assert lower.dtype == upper.dtype
        for got, side in ((lower, False), (upper, True)):
            want = np.array([_reference(ref, p, side) for p in PS])
            # only where the answer is a normal float of the dtype (Gamma(1/2)'s 1e-30 point is 4e-61)
            normal = np.abs(want) >= np.finfo(dtype).tiny
            err = np.abs(got - want) / np.maximum(np.abs(want), np.finfo(dtype).tiny)
            print(name, dtype.__name__, side, err)
            np.testing.assert_allclose(got[normal], want[normal], rtol=_RTOL[dtype], atol=0,
                                       err_msg=f"{name} {'isf' if side else 'ppf'} at {PS[normal]}")
