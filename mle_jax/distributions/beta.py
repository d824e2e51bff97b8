"""The Beta distribution: data on the unit interval (proportions, rates).

    Pr(y | a, b) = y^(a-1) (1 - y)^(b-1) / B(a, b),   0 <= y <= 1

``log B`` and the score's ``psi(a + b) - psi(a)`` are ``special.betaln_digamma_gaps`` (Lanczos's rational form
below 10, Stirling's series above: no XLA ``lgamma``/``digamma`` per example, float64 round-off); entropy and KL are written so
that concentrations of 1e5 cancel nothing large (KL through ``special.lgamma_bregman``, never a
difference of two ``log B`` of size 1e5). The CDFs are ``log I_y(a, b)`` in log space
(``incomplete.log_betainc``): exact in the far tails and differentiable in a and b.

scipy equivalent: ``scipy.stats.beta(concentration1, concentration0)``.
Reference: Prince, *Understanding Deep Learning*, section 5.6.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
from jax.custom_derivatives import SymbolicZero
from .registry import Param
import jax.numpy as jnp
from jax.scipy.special import polygamma, xlogy

from . import _support, _twins, registry
from .._checks import check_event_shape
from .incomplete import log_betainc
from .special import (nonnegative, HALF_LOG_2PI, STIRLING_MIN, aligned, safe_where, betaln, betaln_digamma_gaps, digamma_gap,
                      digamma_minus_log, lgamma_bregman, log1p, log1pmx_series, poly, stirling_corr)


class Beta(NamedTuple):
    """Parameters of one example's Beta: ``concentration1`` (a > 0) and ``concentration0`` (b > 0)."""

    concentration1: Param
    concentration0: Param


def log_prob(theta: Beta, y):
    """``(a - 1) log y + (b - 1) log(1 - y) - log B(a, b)``; ``beta.logpdf``.

    ``-inf`` outside [0, 1]; on the boundary the density's limit (``xlogy``: Beta(1, 2) at 0 is
    ``log 2``, Beta(0.5, 2) at 0 is ``+inf``, Beta(2, 2) at 0 is ``-inf``).
    """
    check_event_shape("Beta", y, registry.batch_shape(theta))
    return _log_density_fast(*aligned(theta.concentration1, theta.concentration0, y=y))


def _log_density_jvp(primals, tangents):
    """``d/da = log y + psi(a + b) - psi(a)``, ``d/db = log(1 - y) + psi(a + b) - psi(b)`` (``special.digamma_gap``:
    no cancellation at large a + b), ``d/dy = (a - 1)/y - (b - 1)/(1 - y)`` on [0, 1] (0 outside): written
    out, where autodiff would differentiate every branch of ``betaln``; a symbolic-zero tangent costs nothing."""
    a, b, y = primals
    da, db, dy = tangents
    value = _log_density(a, b, y)
    inside = (y >= 0) & (y <= 1)
    safe = safe_where(inside, y, 0.5)
    zero = jnp.zeros_like(value)
    tangent = zero
    if not (isinstance(da, SymbolicZero) and isinstance(db, SymbolicZero)):
        gap_a, gap_b = _digamma_gaps(a, b)
        if not isinstance(da, SymbolicZero):
            tangent = tangent + jnp.where(inside, jnp.log(safe) + gap_a, zero) * da
        if not isinstance(db, SymbolicZero):
            tangent = tangent + jnp.where(inside, log1p(-safe) + gap_b, zero) * db
    if not isinstance(dy, SymbolicZero):
        d_y = (jnp.where(a == 1, zero, (a - 1) / safe) - jnp.where(b == 1, zero, (b - 1) / (1 - safe)))
        tangent = tangent + jnp.where(inside, d_y, zero) * dy
    return value, tangent




def _log_density(a, b, y):
    y = jnp.asarray(y, jnp.result_type(a, b))
    inside = (y >= 0) & (y <= 1)
    safe = safe_where(inside, y, 0.5)
    # (b - 1) log(1 - y), 0 at b = 1 (xlog1py's convention); special.log1p (XLA's float64 log1p: 128 ulps at y = 0.41)
    value = xlogy(a - 1, safe) + jnp.where(b == 1, 0.0, (b - 1) * log1p(-safe)) - betaln_digamma_gaps(a, b)[0]
    return jnp.where(inside, value, jnp.where(jnp.isnan(y), jnp.nan, -jnp.inf))


_log_density_fast = jax.custom_jvp(_log_density)
_log_density_fast.defjvp(_log_density_jvp, symbolic_zeros=True)


def _digamma_gaps(a, b):
    """``(psi(a + b) - psi(a), psi(a + b) - psi(b))`` from ``special.betaln_digamma_gaps`` (the Lanczos form where
    both are below 10, ``digamma_gap_large`` elsewhere; no XLA ``digamma`` per example)."""
    return betaln_digamma_gaps(a, b)[1:]


def entropy(theta: Beta):
    """``log B(a, b) - (a - 1) psi(a) - (b - 1) psi(b) + (a + b - 2) psi(a + b)``; ``beta.entropy``.

    For a, b >= 10 Stirling's series cancels the terms of size ``a log a`` analytically:
    ``log(2 pi)/2 + log(p (1 - p)/(a + b))/2 + corr(a) + corr(b) - corr(a + b) - (a - 1) D(a)
    - (b - 1) D(b) + (a + b - 2) D(a + b)`` with ``p = a/(a + b)``, ``D = psi - log``; otherwise
    ``log B(a, b) + (a - 1)(psi(a + b) - psi(a)) + (b - 1)(psi(a + b) - psi(b))``.
    """
    a, b = theta.concentration1, theta.concentration0
    both = jnp.minimum(a, b) >= STIRLING_MIN
    ab, bb = safe_where(both, a, STIRLING_MIN), safe_where(both, b, STIRLING_MIN)
    sb = ab + bb
    stirling = (HALF_LOG_2PI + 0.5 * (jnp.log(ab / sb) + jnp.log(bb / sb) - jnp.log(sb))
                + stirling_corr(ab) + stirling_corr(bb) - stirling_corr(sb)
                - (ab - 1) * digamma_minus_log(ab) - (bb - 1) * digamma_minus_log(bb)
                + (sb - 2) * digamma_minus_log(sb))
    near = (jnp.abs(a - 1) <= 0.25) & (jnp.abs(b - 1) <= 0.25)
    as_, bs = safe_where(~both & ~near, a, 2.0), safe_where(~both & ~near, b, 2.0)
    direct = betaln(as_, bs) + (as_ - 1) * digamma_gap(as_, bs) + (bs - 1) * digamma_gap(bs, as_)
    u, v = safe_where(near, a - 1, 0.0), safe_where(near, b - 1, 0.0)
    return jnp.where(both, stirling, jnp.where(near, _entropy_near_uniform(u, v), direct))


def _zeta_minus_one(k):
    """``zeta(k) - 1`` for an integer ``k >= 2`` in float64 (Euler-Maclaurin from n = 1000: its first omitted term
    is below 1e-20 of the sum)."""
    n = 1000
    return math.fsum([j ** -float(k) for j in range(2, n)] + [n ** (1.0 - k) / (k - 1), 0.5 * n ** -float(k),
                                                               k * n ** (-k - 1.0) / 12])


# g(u) = lnG(1 + u) - u psi(1 + u) = -sum_{k >= 2} (-u)^k (1 - 1/k) zeta(k) (Taylor, |u| < 1): the part in zeta(k) - 1
# (of order 2^-k) as a polynomial, the rest in closed form, u^2/(1 + u) + log1pmx(u); 28 terms leave (1/4)^30 at |u| = 1/2
_G_SERIES = tuple((1.0 - 1.0 / k) * _zeta_minus_one(k) for k in range(2, 30))


def _entropy_near_uniform(u, v):
    """The entropy at ``a = 1 + u``, ``b = 1 + v``, ``|u|, |v| <= 1/4``, where it is ``-O(u^2 + v^2)`` and the direct
    form's terms are ``O(u)`` (its relative error was unbounded: float32 read +9e-7 at Beta(1, 1), whose entropy is
    0, and at Beta(1, 1 - 1e-6), whose is -5e-13): with ``s = u + v`` and ``g(u) = lnG(1 + u) - u psi(1 + u)``,
    ``H = g(u) + g(v) - g(s) - log1pmx(s) - s^2/(1 + s)``, each term ``O(u^2)`` and ``g`` by its Taylor series
    (``_G_SERIES``): 0 exactly at Beta(1, 1)."""
    def g(t):
        return -(jnp.square(t) * poly(_G_SERIES, -t) + jnp.square(t) / (1.0 + t) + log1pmx_series(t))

    s = u + v
    return g(u) + g(v) - g(s) - log1pmx_series(s) - jnp.square(s) / (1.0 + s)


def kl(p: Beta, q: Beta):
    """``log B(a_q, b_q) - log B(a_p, b_p) + (a_p - a_q) psi(a_p) + (b_p - b_q) psi(b_p)
    + (a_q - a_p + b_q - b_p) psi(a_p + b_p)``; ``scipy.stats`` has no Beta KL.

    Two groupings, each exact where the other cancels; the one whose terms are smaller is used (the
    rounding error is eps times their size):
    Bregman terms ``B(a_q - a_p, a_p) + B(b_q - b_p, b_p) - B(a_q + b_q - a_p - b_p, a_p + b_p)``,
    ``B(d, x) = lnG(x + d) - lnG(x) - d psi(x)`` (``special.lgamma_bregman``: Beta(1e5, 1e5) against
    Beta(1.001e5, 1e5), where each ``log B`` is -1.4e5), or gaps
    ``log B(a_q, b_q) - log B(a_p, b_p) + (a_q - a_p) G(a_p, b_p) + (b_q - b_p) G(b_p, a_p)``,
    ``G(x, d) = psi(x + d) - psi(x)`` (Beta(0.001, 1e4) against Beta(0.001, 2), where each Bregman
    term is 1e4 and the KL 0.0078)."""
    ap, bp, aq, bq = p.concentration1, p.concentration0, q.concentration1, q.concentration0
    bregman = (lgamma_bregman(aq - ap, ap, aq), lgamma_bregman(bq - bp, bp, bq),
               -lgamma_bregman((aq - ap) + (bq - bp), ap + bp, aq + bq))
    gaps = (betaln(aq, bq), -betaln(ap, bp), (aq - ap) * digamma_gap(ap, bp), (bq - bp) * digamma_gap(bp, ap))
    size = sum(jnp.abs(t) for t in bregman) <= sum(jnp.abs(t) for t in gaps)
    return nonnegative(jnp.where(size, sum(bregman), sum(gaps)))  # >= 0 exactly


def mode(theta: Beta):
    """``(a - 1)/(a + b - 2)`` for a, b > 1; the boundary (0 or 1) or NaN (bimodal) otherwise."""
    a, b = theta.concentration1, theta.concentration0
    interior = (a - 1) / (a + b - 2)
    return jnp.where((a > 1) & (b > 1), interior,
                     jnp.where((a <= 1) & (b > 1), 0.0, jnp.where((a > 1) & (b <= 1), 1.0, jnp.nan)))


def _log_tail_at(a, b, y, upper):
    """``log I_{1-y}(b, a)`` (the survival) where ``upper``, ``log I_y(a, b)`` (the CDF) elsewhere.

    ``log y`` and ``log(1 - y)`` are both taken from ``y`` itself: forming ``1 - y`` first would
    round to 1 for ``y < eps`` and lose the upper tail (``log_sf`` at ``y = 1e-9`` would be 0)."""
    y = jnp.asarray(y, jnp.result_type(a, b))
    inside = (y > 0) & (y < 1)
    safe = safe_where(inside, y, 0.5)
    log_y, log_1my = jnp.log(safe), log1p(-safe)
    value = log_betainc(jnp.where(upper, b, a), jnp.where(upper, a, b),
                        jnp.where(upper, log_1my, log_y), jnp.where(upper, log_y, log_1my))
    below = jnp.where(upper, 0.0, -jnp.inf)   # y <= 0: all the mass is above y
    above = jnp.where(upper, -jnp.inf, 0.0)   # y >= 1: none of it is
    edge = jnp.where(y <= 0, below, jnp.where(jnp.isnan(y), jnp.nan, above))
    return jnp.where(inside, value, edge)


def log_cdf(theta: Beta, y):
    """``log I_y(a, b)`` (the regularised incomplete beta) in log space; ``beta.logcdf``."""
    return _log_tail_at(theta.concentration1, theta.concentration0, y, False)


def log_sf(theta: Beta, y):
    """``log I_{1-y}(b, a)``; ``beta.logsf``."""
    return _log_tail_at(theta.concentration1, theta.concentration0, y, True)


def log_tail(theta: Beta, y, upper):
    """``log_sf`` where ``upper``, ``log_cdf`` elsewhere, in one incomplete beta: ``I_{1-y}(b, a)``
    is ``I_y(a, b)`` with the concentrations swapped and the roles of ``y`` and ``1 - y`` exchanged."""
    return _log_tail_at(theta.concentration1, theta.concentration0, y, upper)


def mean(theta: Beta):
    return theta.concentration1 / (theta.concentration1 + theta.concentration0)


def variance(theta: Beta):
    """``p (1 - p) / (a + b + 1)`` with ``p = a / (a + b)`` (``(a + b)^2`` overflows float32 at 1e20)."""
    a, b = theta.concentration1, theta.concentration0
    return (a / (a + b)) * (b / (a + b)) / (a + b + 1)


def sample(key, theta: Beta):
    return jax.random.beta(key, theta.concentration1, theta.concentration0,
                           dtype=jnp.result_type(theta.concentration1))


def sample_log(key, theta: Beta):
    """``(log y, log(1 - y))`` of a draw ``y = G1 / (G1 + G0)``, from log-gamma draws: exact where
    ``y`` rounds to 0 or 1 (concentrations of 0.01)."""
    k1, k0 = jax.random.split(key)
    dtype = jnp.result_type(theta.concentration1)
    g1 = jax.random.loggamma(k1, theta.concentration1, dtype=dtype)
    g0 = jax.random.loggamma(k0, theta.concentration0, dtype=dtype)
    total = jnp.logaddexp(g1, g0)
    return jnp.stack([g1 - total, g0 - total])


def log_prob_log(theta: Beta, logs):
    """``log_prob`` at the draw whose ``(log y, log(1 - y))`` is ``logs``."""
    a, b = theta.concentration1, theta.concentration0
    return (a - 1) * logs[0] + (b - 1) * logs[1] - betaln(a, b)


def event_shape(theta: Beta):
    return jnp.shape(theta.concentration1)


def fisher(theta: Beta):
    """The expected information in ``(concentration1 a, concentration0 b)``:
    ``[[psi'(a) - psi'(a+b), -psi'(a+b)], [-psi'(a+b), psi'(b) - psi'(a+b)]]`` (free of y)."""
    a, b = theta.concentration1, theta.concentration0
    both = polygamma(1, a + b)
    return jnp.array([[polygamma(1, a) - both, -both], [-both, polygamma(1, b) - both]])


def to_tfp(theta: Beta):
    """TFP's twin: ``tfd.Beta(concentration1, concentration0)``."""
    return _twins.tfd().Beta(theta.concentration1, theta.concentration0)


def to_distrax(theta: Beta):
    """distrax's twin: ``distrax.Beta(alpha=concentration1, beta=concentration0)``."""
    return _twins.distrax().Beta(theta.concentration1, theta.concentration0)


def from_tfp(dist) -> Beta:
    full = _twins.full(dist)
    return Beta(full(dist.concentration1), full(dist.concentration0))


registry.register(Beta, registry.Ops(
    domain={"concentration1": "positive", "concentration0": "positive"},
    log_prob=log_prob,
    mode=mode,
    mean=mean,
    variance=variance,
    sample=sample,
    entropy=entropy,
    log_cdf=log_cdf,
    log_sf=log_sf,
    log_tail=log_tail,
    event_shape=event_shape,
    sample_log=sample_log,
    log_prob_log=log_prob_log,
    fisher=fisher,
    to_tfp=to_tfp,
    to_distrax=to_distrax,
    tfp_names=('Beta',),
    from_tfp=from_tfp,
    support=lambda theta: _support.unit_interval,
))
registry.register_kl(Beta, Beta, kl)
