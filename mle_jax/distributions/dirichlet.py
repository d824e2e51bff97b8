"""The Dirichlet distribution: compositions, targets on the probability simplex.

    Pr(y | a) = prod_k y_k^(a_k - 1) / B(a),   B(a) = prod_k Gamma(a_k) / Gamma(a_0),   a_0 = sum_k a_k,
    y_k > 0, sum_k y_k = 1

``concentration`` a has shape (K,), K >= 2, every a_k > 0. The target is a vector of K shares: one
example's event shape is (K,) (``event_ndims`` 1: a vector target, so no CDF, quantile or CRPS, like the
multivariate Normal). ``log B`` is a sum of ``lgamma`` (never a product of Gamma functions); ``(a_k - 1)
log y_k`` is ``xlogy``, so a share of exactly 0 gives the density's limit (see ``log_prob``). A target is
on the simplex when its entries lie in [0, 1] and sum to 1 within ``sum_tolerance(K, dtype)`` (1e-4,
or ``4 K eps`` where that is larger); elsewhere the log density is ``-inf``. The families' eager check
(`Simplex`) asks more: every share strictly inside (0, 1).

Draws are formed from log-gamma draws, ``log y_k = g_k - logsumexp(g)`` with ``g_k = log Gamma(a_k, 1)``:
exact for tiny concentrations (a = 0.01), where a gamma draw underflows to 0.

scipy equivalent: ``scipy.stats.dirichlet(concentration)`` (``logpdf``, ``entropy``, ``mean``, ``var``).
Reference: Bishop, *Pattern Recognition and Machine Learning*, section 2.2.1 and appendix B;
Prince, *Understanding Deep Learning*, chapter 5 (the table of output domains).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import digamma, polygamma, xlogy

from . import _support, _twins, registry
from .._checks import check_event_shape
from .registry import Param
from .special import nonnegative, lgamma_bregman, lgamma_digamma

#: the least tolerance on ``|sum(y) - 1|`` (a float32 vector normalised in float32 is off by ~K eps)
SUM_TOLERANCE = 1e-4


class Dirichlet(NamedTuple):
    """Parameters of one example's Dirichlet: ``concentration`` of shape (K,), every entry > 0."""

    concentration: Param


def sum_tolerance(k: int, dtype) -> float:
    """How far from 1 the sum of a target's K shares may be: ``max(1e-4, 4 K eps)`` with eps that of
    float32 or of ``dtype``, whichever is coarser (the eager check uses float32's, so whatever it accepts
    the log density accepts too)."""
    eps = max(float(jnp.finfo(jnp.float32).eps), float(jnp.finfo(dtype).eps))
    return max(SUM_TOLERANCE, 4.0 * k * eps)


@dataclasses.dataclass(frozen=True)
class Simplex(_support.Support):
    """The open simplex of K shares: every entry in (0, 1), the entries of a row summing to 1 within
    ``sum_tolerance(K, float32)``. ``off`` flags a whole row where its sum is off; a row of another
    shape is left to the shape check. (``lower`` / ``upper`` state the entries' closed hull; the open
    ends and the sum are ``off``'s own.)"""

    size: int = 2

    def off(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y)
        if y.ndim != 2 or y.shape[1] != self.size:
            return np.zeros(y.shape, bool)
        tol = sum_tolerance(self.size, jnp.float32)
        with np.errstate(invalid="ignore", over="ignore"):
            entries = (y <= 0) | (y >= 1)
            row = np.abs(np.sum(y, axis=1) - 1.0) > tol
        return entries | row[:, None]

    def holds(self, y):
        y = jnp.asarray(y)
        entries = ((y > 0) & (y < 1)).all(axis=-1)
        return entries & (jnp.abs(jnp.sum(y, axis=-1) - 1) <= sum_tolerance(self.size, jnp.float32))

    def inside(self) -> float:
        return 1.0 / self.size

    def outside(self) -> tuple[float, ...]:
        return (0.0, 1.0, -0.5, 2.0)


def simplex(k: int) -> Simplex:
    """The support of a Dirichlet over K shares."""
    tol = sum_tolerance(k, jnp.float32)
    return Simplex(f"simplex({k})", f"a point of the simplex: {k} shares in (0, 1) summing to 1 (within {tol:.3g})",
                   frozenset({"float"}), lower=0.0, upper=1.0, what="y", size=k)


@jax.custom_jvp
def log_beta(a):
    """``log B(a) = sum_k lgamma(a_k) - lgamma(a_0)`` over the last axis, each ``lgamma`` and its ``psi`` from
    ``special.lgamma_digamma`` (two logs, no XLA ``lgamma``); its derivative written, ``psi(a_k) - psi(a_0)``,
    from an evaluation of its own (``_log_beta_jvp``)."""
    return _log_beta_and_score(a)[0]


def _log_beta_and_score(a):
    lg, psi = lgamma_digamma(jnp.concatenate([a, jnp.sum(a, axis=-1, keepdims=True)], axis=-1))
    return jnp.sum(lg[..., :-1], axis=-1) - lg[..., -1], psi[..., :-1] - psi[..., -1:]


@log_beta.defjvp
def _log_beta_jvp(primals, tangents):
    (a,), (da,) = primals, tangents
    total = jnp.sum(a, axis=-1)
    value = jnp.sum(lgamma_digamma(a)[0], axis=-1) - lgamma_digamma(total)[0]
    # psi from an evaluation of its own (the barrier keeps XLA from merging it with the value's): the value's
    # logs then have one reader each and fuse into their sums, where a shared evaluation stored about ten
    # (N, K + 1) arrays (530 MB of temporaries at N = 1e6, K = 4, float64)
    b, b_total = jax.lax.optimization_barrier((a, total))
    score = lgamma_digamma(b)[1] - lgamma_digamma(b_total)[1][..., None]
    return value, jnp.sum(score * da, axis=-1)


def on_simplex(y, k: int):
    """True where the row ``y`` (last axis) has entries in [0, 1] summing to 1 within the tolerance."""
    tol = sum_tolerance(k, y.dtype)
    inside = jnp.all((y >= 0) & (y <= 1), axis=-1)
    return inside & (jnp.abs(jnp.sum(y, axis=-1) - 1) <= tol)


def log_prob(theta: Dirichlet, y):
    """``sum_k (a_k - 1) log y_k - log B(a)``; ``dirichlet.logpdf``. ``-inf`` off the simplex, NaN for a
    NaN share. On the boundary (a share of exactly 0) the density's limit: 0 (``-inf``) where a zero share
    has a_k > 1, even if another zero share with a_k < 1 would drive it to ``+inf`` (no limit there),
    ``+inf`` where only shares with a_k < 1 vanish, and the ``a_k = 1`` shares contribute 0."""
    a = theta.concentration
    check_event_shape("Dirichlet", y, jnp.shape(a))
    y = jnp.asarray(y, jnp.result_type(a, float))
    a = jnp.asarray(a, y.dtype)
    inside = on_simplex(y, a.shape[-1])
    safe = jnp.where(inside[..., None], y, jnp.full_like(y, 1.0 / a.shape[-1]))
    terms = xlogy(a - 1, safe)
    vanishes = jnp.any(jnp.isneginf(terms), axis=-1)  # a zero share whose a_k > 1: the density is 0 there
    value = jnp.where(vanishes, -jnp.inf, jnp.sum(terms, axis=-1) - log_beta(a))
    nan = jnp.any(jnp.isnan(y), axis=-1)
    return jnp.where(inside, value, jnp.where(nan, jnp.nan, -jnp.inf))


def mean(theta: Dirichlet):
    """``a_k / a_0``."""
    a = theta.concentration
    return a / jnp.sum(a, axis=-1, keepdims=True)


def mode(theta: Dirichlet):
    """``(a_k - 1) / (a_0 - K)`` where every a_k > 1; NaN otherwise (a concentration <= 1 puts the
    density's supremum on the boundary of the simplex, where it is unbounded below 1 or not unique
    at 1: no interior mode; TFP's ``allow_nan_stats`` gives the same NaN)."""
    a = theta.concentration
    k = a.shape[-1]
    interior = (a - 1) / (jnp.sum(a, axis=-1, keepdims=True) - k)
    return jnp.where(jnp.all(a > 1, axis=-1, keepdims=True), interior, jnp.nan)


def variance(theta: Dirichlet):
    """``m_k (1 - m_k) / (a_0 + 1)`` with ``m = a / a_0`` (the marginals are Beta(a_k, a_0 - a_k))."""
    a = theta.concentration
    total = jnp.sum(a, axis=-1, keepdims=True)
    m = a / total
    return m * (1 - m) / (total + 1)


def sample_log(key, theta: Dirichlet):
    """``log y`` of a draw: ``g - logsumexp(g)`` with ``g_k`` log-gamma draws of shape a_k (finite where
    ``y_k`` underflows to 0)."""
    a = theta.concentration
    g = jax.random.loggamma(key, a, dtype=jnp.result_type(a, float))
    return g - jax.nn.logsumexp(g, axis=-1, keepdims=True)


def sample(key, theta: Dirichlet):
    """One draw on the simplex per example: ``exp(sample_log)``."""
    return jnp.exp(sample_log(key, theta))


def log_prob_log(theta: Dirichlet, logs):
    """``log_prob`` at the draw whose logs are ``logs``: ``sum_k (a_k - 1) log y_k - log B(a)``."""
    a = theta.concentration
    return jnp.sum((a - 1) * logs, axis=-1) - log_beta(a)


def entropy(theta: Dirichlet):
    """``log B(a) + (a_0 - K) psi(a_0) - sum_k (a_k - 1) psi(a_k)``; ``dirichlet.entropy``."""
    a = theta.concentration
    k = a.shape[-1]
    total = jnp.sum(a, axis=-1)
    return log_beta(a) + (total - k) * digamma(total) - jnp.sum((a - 1) * digamma(a), axis=-1)


def kl(p: Dirichlet, q: Dirichlet):
    """``KL(Dir(a) || Dir(b)) = log B(b) - log B(a) + sum_k (a_k - b_k)(psi(a_k) - psi(a_0))``.

    Two groupings, the one with the smaller terms used (as the Beta's): Bregman terms of lgamma,
    ``sum_k D(b_k - a_k, a_k) - D(b_0 - a_0, a_0)`` with ``D(d, x) = lgamma(x + d) - lgamma(x) - d psi(x)``
    (``special.lgamma_bregman``: large concentrations cancel nothing), or the direct sum above.
    Clamped at 0. Reference: Penny (2001), *KL divergences of Normal, Gamma, Dirichlet and Wishart densities*.
    """
    a, b = p.concentration, q.concentration
    a0, b0 = jnp.sum(a, axis=-1), jnp.sum(b, axis=-1)
    parts = lgamma_bregman(b - a, a, b)
    whole = lgamma_bregman(b0 - a0, a0, b0)
    bregman = jnp.sum(parts, axis=-1) - whole
    bregman_size = jnp.sum(jnp.abs(parts), axis=-1) + jnp.abs(whole)
    direct_terms = (log_beta(b), -log_beta(a), jnp.sum((a - b) * (digamma(a) - digamma(a0)[..., None]), axis=-1))
    direct = sum(direct_terms)
    direct_size = sum(jnp.abs(t) for t in direct_terms)
    return nonnegative(jnp.where(bregman_size <= direct_size, bregman, direct))


def event_shape(theta: Dirichlet):
    return jnp.shape(theta.concentration)


def batch_shape(theta):
    """The examples' axes: every axis of the concentration but the last (one example's shares)."""
    return jnp.shape(theta.concentration)[:-1]


def fisher(theta: Dirichlet):
    """The expected information in the K concentrations, ``diag(psi'(a_k)) - psi'(a_0) 1 1'`` (free of y:
    the Dirichlet is an exponential family in ``log y``)."""
    a = theta.concentration
    return jnp.diag(polygamma(1, a)) - polygamma(1, jnp.sum(a)) * jnp.ones((a.shape[-1],) * 2, a.dtype)


def to_tfp(theta: Dirichlet):
    """TFP's twin: ``tfd.Dirichlet(concentration)``."""
    return _twins.tfd().Dirichlet(theta.concentration)


def to_distrax(theta: Dirichlet):
    """distrax's twin: ``distrax.Dirichlet(concentration)``."""
    return _twins.distrax().Dirichlet(theta.concentration)


def from_tfp(dist) -> Dirichlet:
    c = dist.concentration
    return Dirichlet(_twins.full(dist)(c, c.shape[-1:]))


registry.register(Dirichlet, registry.Ops(
    domain={"concentration": "positive"},
    log_prob=log_prob,
    mode=mode,
    mean=mean,
    variance=variance,
    sample=sample,
    sample_log=sample_log,
    log_prob_log=log_prob_log,
    entropy=entropy,
    event_shape=event_shape,
    batch_shape=batch_shape,
    fisher=fisher,
    to_tfp=to_tfp,
    to_distrax=to_distrax,
    tfp_names=("Dirichlet",),
    from_tfp=from_tfp,
    component_axes=1,  # the concentration's last axis holds one example's K shares
    support=lambda theta: simplex(int(jnp.shape(theta.concentration)[-1])),
    event_ndims=lambda theta: 1,  # a vector target: no CDF, quantile or CRPS
    missing="the Dirichlet's target is a vector on the simplex: no CDF, quantile or CRPS",
))
registry.register_kl(Dirichlet, Dirichlet, kl)
