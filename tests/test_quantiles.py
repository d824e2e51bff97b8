"""Every scalar theta type has ``log_cdf``, ``log_sf``, ``quantile`` and ``isf``, exact in both tails.

The types without a closed-form quantile (Student t, Gamma, Beta, the Normal mixture, zero inflation, a
user's type) get the registry's one fallback, bisection of their tails on the floats' order
(``distributions._invert``); the von Mises has its own CDF (quadrature of the tail) and the same inversion.
References: scipy.stats' ``ppf`` / ``isf`` (Student t, Gamma, Beta, Gumbel), the definition by brute
force over the counts with scipy's Poisson ``cdf`` / ``sf`` (zero inflation), a bracketed root of scipy's
``norm.logcdf`` mixture (``brentq`` to 1e-300; the mixture) and mpmath quadrature (the von Mises).
Tolerances (relative, in y): 1000 eps in float64 and 64 eps ... see ``_RTOL``.
"""

import functools
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
# Relative tolerances in y: the bisection ends within one float of the crossing of the type's own tail, whose
# relative error (a few hundred eps at most for the incomplete-function loops) is divided by
# |d log F / d log y| (>= 0.5 for these parameters): 2000 eps in float64 (4.4e-13), 200 eps in float32 (2.4e-5).
_RTOL = {np.float64: 2000 * np.finfo(np.float64).eps, np.float32: 200 * np.finfo(np.float32).eps}
W = np.array([0.2, 0.8])


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


def _von_mises_lower(k, a):
    """mpmath's ``Pr(X <= -a)`` for the centred von Mises, by quadrature split where the density falls."""
    k, a = mp.mpf(k), mp.mpf(a)
    width = 1 / (k * mp.sin(a) + mp.sqrt(k) + 1)
    cuts = [a] + [a + width * j for j in (0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128) if a + width * j < mp.pi] + [mp.pi]
    return mp.quad(lambda t: mp.exp(-2 * k * mp.sin(t / 2) ** 2), cuts) / (2 * mp.pi * mp.besseli(0, k) * mp.exp(-k))


class _VonMisesDefinition(NamedTuple):
    """The von Mises quantile checked by its definition: the true quantile lies in ``[y - bound, y + bound]`` where
    mpmath's quadrature CDF at the two ends brackets p (scipy's vonmises.cdf is its normal approximation from
    k = 50, exact to 1e-7 there, and its ppf a root of that)."""

    loc: float
    k: float

    def brackets(self, p, upper, y, bound):
        with mp.workdps(30):
            def tail_beyond(x):  # Pr(X <= x) (Pr(X > x) where upper) of the centred angle x
                x = mp.mpf(x) - self.loc
                if x <= -mp.pi or x >= mp.pi:
                    return mp.mpf(int((x >= mp.pi) != upper))
                below = _von_mises_lower(self.k, abs(x))
                return below if (x <= 0) != upper else 1 - below
            lo, hi = tail_beyond(y - bound), tail_beyond(y + bound)
            return (lo <= p <= hi) if not upper else (hi <= p <= lo)

    def density(self, y):
        return stats.vonmises(self.k, loc=self.loc).pdf(y)


def _mixture(m, s):
    return lambda p, upper: _mixture_reference(W, np.array(m), np.array(s), p, upper)


def _zero_inflated(g, rate):
    return lambda p, upper: _zero_inflated_reference(special.expit(g), rate, p, upper)


# (theta type, two parameter sets, their references): both sets and every p in one compiled program
CASES = {
    "StudentT": (mj.StudentT, [(3.0, 1.0, 2.0), (1.0, 0.0, 1.0)], [stats.t(3.0, 1.0, 2.0), stats.t(1.0)]),
    "Gamma": (mj.Gamma, [(0.5, 2.0), (40.0, 0.1)], [stats.gamma(0.5, scale=0.5), stats.gamma(40.0, scale=10.0)]),
    "Beta": (mj.Beta, [(2.0, 0.5), (0.7, 3.0)], [stats.beta(2.0, 0.5), stats.beta(0.7, 3.0)]),
    "MixtureNormal": (lambda logits, loc, scale: mj.MixtureNormal(logits, loc, scale),
                      [(np.log(W), [-2.0, 3.0], [1.0, 0.5]), (np.log(W), [0.0, 1e-3], [1e-4, 1e3])],
                      [_mixture([-2.0, 3.0], [1.0, 0.5]), _mixture([0.0, 1e-3], [1e-4, 1e3])]),
    "ZeroInflated": (lambda g, rate: mj.ZeroInflated(g, mj.Poisson(np.log(rate))), [(0.3, 2.5), (-2.0, 40.0)],
                     [_zero_inflated(0.3, 2.5), _zero_inflated(-2.0, 40.0)]),
    "VonMises": (mj.VonMises, [(0.5, 2.0), (-3.0, 300.0)], [_VonMisesDefinition(0.5, 2.0),
                                                             _VonMisesDefinition(-3.0, 300.0)]),
}
# compiled in the default phase in both dtypes (a second or two each); the incomplete-function loops of the
# others cost 8 s a program: float64 by default, float32 in the deep phase
CHEAP = {"MixtureNormal", "VonMises"}


def _reference(ref, p, upper):
    if hasattr(ref, "ppf"):
        return float(ref.isf(p) if upper else ref.ppf(p))
    return ref(p, upper)


def _batch(name, dtype):
    """One theta holding every (parameter set, p) pair, the p's, and the references' rows."""
    make, params, refs = CASES[name]
    rows = [(j, p) for j in range(len(params)) for p in PS]
    fields = [np.array([params[j][i] for j, _ in rows], np.float64) for i in range(len(params[0]))]
    theta = make(*(jnp.asarray(f, dtype) for f in fields))
    return theta, jnp.asarray([p for _, p in rows], dtype), [(refs[j], p) for j, p in rows]


def _spread(ref, p, side, want):
    """How far the quantile moves from p to 1.1 p: 0.1 p / f(y) from the density where the reference has one."""
    if hasattr(ref, "density"):
        return 0.1 * min(p, 1 - p) / ref.density(want)
    return abs(_reference(ref, 1.1 * p, side) - want)


def ps_of(refs):
    return np.array([p for _, p in refs])


def _check_against_references(name, dtype):
    with jax.enable_x64(dtype == np.float64):
        theta, ps, refs = _batch(name, dtype)
        lower, upper = (np.asarray(v, np.float64) for v in _both(theta, ps))
    for got, side in ((lower, False), (upper, True)):
        if name == "VonMises":  # the definition, at the tolerance's ends
            for (ref, p), y in zip(refs, got):
                bound = _RTOL[dtype] * (abs(y) + 10 * _spread(ref, p, side, y))
                assert ref.brackets(p, side, y, bound), (name, dtype, p, side, y)
            continue
        want = np.array([_reference(ref, p, side) for ref, p in refs])
        # the conditioning: a relative error of the tail probability p moves y by about p / f(y), here the
        # quantile's spread from p to 1.1 p (near a median at 0 the relative error in y means nothing)
        spread = np.array([_spread(ref, p, side, w) for (ref, p), w in zip(refs, want)])
        # only where the answer is a normal float of the dtype (Gamma(1/2)'s 1e-30 point is 4e-61)
        keep = (np.abs(want) >= np.finfo(dtype).tiny) | (spread > 0)
        bound = _RTOL[dtype] * (np.abs(want) + 10 * spread)
        bad = keep & ~(np.abs(got - want) <= bound)
        assert not bad.any(), (f"{name} {'isf' if side else 'ppf'} ({dtype.__name__}) at p = {ps_of(refs)[bad]}: "
                               f"{got[bad]} against {want[bad]}")


@pytest.mark.parametrize("name", list(CASES))
def test_quantile_and_isf_match_scipy_in_both_tails_float64(name):
    _check_against_references(name, np.float64)


@pytest.mark.parametrize("name", sorted(CHEAP))
def test_quantile_and_isf_match_scipy_in_both_tails_float32(name):
    _check_against_references(name, np.float32)


@pytest.mark.deep
@pytest.mark.parametrize("name", sorted(set(CASES) - CHEAP))
def test_quantile_and_isf_of_the_looped_tails_in_float32(name):
    _check_against_references(name, np.float32)
