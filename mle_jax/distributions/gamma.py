"""The Gamma distribution: positive data (durations, amounts).

    Pr(y | a, b) = b^a y^(a-1) exp(-b y) / Gamma(a),   y > 0

The density is ``P(a, b y) - log y`` with ``P(a, x) = a log x - x - lgamma(a)`` computed without
cancelling huge terms (``_prefix``: Stirling's series from a = 10, Lanczos's rational ``lgamma`` below, no XLA
``lgamma`` or ``digamma`` per example); entropy and KL go through Stirling-series
differences (``special``), and the CDFs through log-space incomplete gamma functions, exact in the
far tails (``log_sf(200)`` of Gamma(2, 1) is -194.70 in float32, not ``log 0``).

scipy equivalent: ``scipy.stats.gamma(a=concentration, scale=1/rate)``.
Reference: Prince, *Understanding Deep Learning*, section 5.6 (choosing the distribution).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
from jax.custom_derivatives import SymbolicZero
from .registry import Param
import jax.numpy as jnp
from jax.scipy.special import gammaln, polygamma

from . import _support, _twins, registry
from .._checks import check_event_shape, check_side_shape
from .incomplete import gamma_prefix_branches, log_gammainc_tail
from .special import (nonnegative, HALF_LOG_2PI, log_ratio, STIRLING_MIN, aligned, safe_where, digamma_minus_log, digamma_minus_log_series,
                      expm1mx, corr_bregman, lgamma_bregman, lgamma_diff, lgamma_digamma_lanczos, one_minus_x_digamma_minus_log,
                      stirling_corr,
                      stirling_corr_small, _step_coeffs, log1pmx, poly, _PSI)


class Gamma(NamedTuple):
    """Parameters of one example's Gamma: ``concentration`` (a > 0) and ``rate`` (b > 0)."""

    concentration: Param
    rate: Param


def log_prob(theta: Gamma, y):
    """``a log b + (a - 1) log y - b y - log Gamma(a)``; ``gamma.logpdf``.

    ``-inf`` for y < 0; at y = 0 the density's limit: ``log b`` for a = 1, ``+inf`` for a < 1,
    ``-inf`` for a > 1.
    """
    check_event_shape("Gamma", y, registry.batch_shape(theta))
    return _log_density_fast(*aligned(theta.concentration, theta.rate, y=y))


def _log_density_jvp(primals, tangents):
    """``d/da = log(b y / a) - D(a)`` for a >= 10 (``D = psi - log`` by its series: no cancellation of ``log(b y)``
    against ``psi(a)`` at large a), ``log b + log y - psi(a)`` below (``special.lgamma_digamma_lanczos``, whose
    reciprocals the value's ``lgamma`` shares), ``d/db = a/b - y``, ``d/dy = (a - 1)/y - b`` for ``0 < y < inf``
    (0 elsewhere; ``d/db = a/b`` at y = 0): written out, where autodiff would differentiate both branches of the
    value; a symbolic-zero tangent costs nothing."""
    a, b, y = primals
    da, db, dy = tangents
    value = _log_density(a, b, y)
    pos = (y > 0) & (y < jnp.inf)
    safe = safe_where(pos, y, 1.0)
    zero = jnp.zeros_like(value)
    tangent = zero
    if not isinstance(da, SymbolicZero):
        big = a >= STIRLING_MIN
        ab, as_ = safe_where(big, a, STIRLING_MIN), safe_where(~big, a, 1.0)
        psi_rest = jnp.where(big, jnp.log(ab) + digamma_minus_log_series(ab), lgamma_digamma_lanczos(as_)[1])
        d_a = jnp.log(b) + jnp.log(safe) - psi_rest
        tangent = tangent + jnp.where(pos, d_a, zero) * da
    if not isinstance(db, SymbolicZero):  # at y = 0 (``log b`` where a = 1) the slope is a/b
        tangent = tangent + jnp.where(pos | (y == 0), a / b - jnp.where(pos, safe, 0.0), zero) * db
    if not isinstance(dy, SymbolicZero):
        tangent = tangent + jnp.where(pos, (a - 1) / safe - b, zero) * dy
    return value, tangent


def _prefix(a, x, log_x):
    """``a log x - x - lgamma(a)`` (``incomplete.gamma_prefix``'s value): for ``a >= 10`` Stirling's
    ``a log1pmx(u) + log(a)/2 - log(2 pi)/2 - corr(a)``, ``u = (x - a)/a`` (``a log(x/a) - (x - a)`` written out where
    ``|u| >= 1/4``), below it ``a log x - x - lgamma(a)`` with ``special.lgamma_digamma_lanczos`` (XLA's ``lgamma``
    costs three times as much)."""
    big, _, stirling, (as_, xs, log_xs) = gamma_prefix_branches(a, x, log_x)
    return jnp.where(big, stirling, as_ * log_xs - xs - lgamma_digamma_lanczos(as_)[0])


def _log_density(a, b, y):
    """``P(a, b y) - log y`` with ``log(b y) = log b + log y``: ``b y`` itself underflows at
    ``b = y = 1e-30`` and overflows at ``1e30`` where its log does not. NaN stays NaN."""
    y = jnp.asarray(y, jnp.result_type(a, b))
    pos = (y > 0) & (y < jnp.inf)
    safe = safe_where(pos, y, 1.0)
    inside = _prefix(a, b * safe, jnp.log(b) + jnp.log(safe)) - jnp.log(safe)
    at_zero = jnp.where(a == 1, jnp.log(b), jnp.where(a < 1, jnp.inf, -jnp.inf))
    edge = jnp.where(y == 0, at_zero, jnp.where(jnp.isnan(y), jnp.nan, -jnp.inf))
    return jnp.where(pos, inside, edge)


_log_density_fast = jax.custom_jvp(_log_density)
_log_density_fast.defjvp(_log_density_jvp, symbolic_zeros=True)


@jax.custom_jvp
def mean_shift(a):
    """``a log a - a - lgamma(a)``, the part of the mean-form density (``mean_log_prob``) in the shape alone:
    ``log(a)/2 - log(2 pi)/2 - corr(a)`` for a >= 1 (Stirling, its terms of size ``a log a`` cancelled
    analytically; ``corr`` by its upward recurrence below 10, ``special.stirling_corr_small``: the plain sum
    lost ~60 float32 ulps at 1 <= a < 10), the plain sum below 1 (its terms of one sign). Its derivative is
    ``log a - psi(a)`` (written out)."""
    big = a >= 1.0
    ab, as_ = safe_where(big, a, 1.0), safe_where(~big, a, 0.5)
    stirling = 0.5 * jnp.log(ab) - HALF_LOG_2PI - stirling_corr_small(ab)
    return jnp.where(big, stirling, as_ * jnp.log(as_) - as_ - gammaln(as_))


@mean_shift.defjvp
def _mean_shift_jvp(primals, tangents):
    (a,), (da,) = primals, tangents
    return mean_shift(a), -digamma_minus_log(a) * da


def _mean_free_value(a, eta, y):
    pos = (y > 0) & (y < jnp.inf)
    inside = -a * expm1mx(jnp.log(safe_where(pos, y, 1.0)) - eta)
    # off (0, inf) the Gamma's own limits (log b = log a - eta at y = 0, a = 1; +inf for a < 1; -inf else; NaN at
    # NaN), less the shift and data term added to it: the sum is Gamma(a, a e^-eta)'s log_prob there too
    at_zero = jnp.where(a == 1, jnp.log(a) - eta, jnp.where(a < 1, jnp.inf, -jnp.inf))
    edge = jnp.where(y == 0, at_zero, jnp.where(jnp.isnan(y), jnp.nan, -jnp.inf)) - mean_shift(a)
    return jnp.where(pos, inside, edge)


@jax.custom_jvp
def mean_log_prob_free(a, eta, y):
    """``-a expm1mx(log y - eta) = a (log(y / mu) - y / mu + 1)``, mu = exp(eta): the part of the Gamma GLM's
    density (``mean_log_prob``) that moves with the log-mean eta; no term of the size of ``a log y``. Derivatives
    written out: ``d/d eta = a expm1(log y - eta)``, ``d/da = -expm1mx(log y - eta)``, ``d/dy = a (1 - y / mu) / y``
    on ``0 < y < inf`` (0 off it, where ``d/da`` cancels the shift's); differentiable (Hessians)."""
    return _mean_free_value(a, eta, y)


def _mean_log_prob_free_jvp(primals, tangents):
    a, eta, y = primals
    da, deta, dy = tangents
    value = _mean_free_value(a, eta, y)
    pos = (y > 0) & (y < jnp.inf)
    safe = safe_where(pos, y, 1.0)
    v = jnp.log(safe) - eta
    zero = jnp.zeros_like(value)
    tangent = zero
    if not isinstance(da, SymbolicZero):
        tangent = tangent + jnp.where(pos, -expm1mx(v), digamma_minus_log(a) + zero) * da
    if not isinstance(deta, SymbolicZero):
        tangent = tangent + jnp.where(pos, a * jnp.expm1(v), zero) * deta
    if not isinstance(dy, SymbolicZero):
        tangent = tangent + jnp.where(pos, -a * jnp.expm1(v) / safe, zero) * dy
    return value, tangent


mean_log_prob_free.defjvp(_mean_log_prob_free_jvp, symbolic_zeros=True)


def mean_data_term(y):
    """``-log y`` on ``0 < y < inf`` (0 off it): the Gamma GLM density's term in y alone."""
    pos = (y > 0) & (y < jnp.inf)
    return jnp.where(pos, -jnp.log(safe_where(pos, y, 1.0)), jnp.zeros_like(y))


def mean_log_prob(a, eta, y):
    """``log_prob(Gamma(a, a e^-eta), y) = a log a - a eta + (a - 1) log y - a y e^-eta - lgamma(a)``, the Gamma
    GLM (mean ``mu = e^eta``, shape a), as ``mean_log_prob_free + mean_data_term + mean_shift``: ``-a (u - 1 - log
    u) - log y + (a log a - a - lgamma(a))`` with ``u = y / mu``; one ``log y`` and one ``expm1`` per example, the
    shape's terms (``lgamma``) once. ``gamma.logpdf(y, a, scale=mu / a)``. McCullagh and Nelder, *GLMs*, ch. 8."""
    return mean_log_prob_free(a, eta, y) + mean_data_term(y) + mean_shift(a)


def _lgamma_plus_linear(a):
    """``h(a) = lgamma(a) + a + (1 - a) psi(a) = log(2 pi)/2 + log(a)/2 + corr(a) + (1 - a) D(a)`` for ``a >= 1``
    (Stirling's ``lgamma``, ``D = psi - log``: every term of one sign, none larger than the sum), with ``corr`` and
    ``D`` stepped up to ``b = a + k >= top`` (10 in float32, 20 in float64, where the series' first term left out is
    below a rounding; at 10 it cost float64 14 ulps) by ``corr(x) = corr(x + 1) + (x + 1/2) log1p(1/x) - 1`` and
    ``D(x) = D(x + 1) + log1pmx(1/x)``, both steps of one sign; the plain sum below 1 (``h`` has a root at 0.475:
    there its error is that of a's own rounding). The plain sum from 1 to 10 cancelled to 13 ulps; this keeps 1.3
    (float32) and 3 (float64) against mpmath."""
    wide = jnp.dtype(jnp.result_type(a)).itemsize >= 8
    top = 2.0 * STIRLING_MIN if wide else STIRLING_MIN
    coeffs = _step_coeffs(17 if wide else 8)
    one = a >= 1.0
    b = safe_where(one, a, top)
    corr, dml = jnp.zeros_like(b), jnp.zeros_like(b)
    for _ in range(int(top) - 1):  # b >= 1: at most top - 1 steps reach top
        below = b < top
        t2 = jnp.square(1.0 / (2.0 * b + 1.0))
        corr = corr + jnp.where(below, t2 * poly(coeffs, t2), 0.0)
        dml = dml + jnp.where(below, log1pmx(1.0 / b), 0.0)
        b = jnp.where(below, b + 1.0, b)
    a1 = safe_where(one, a, top)
    # (1 - a) D(a) expanded where no step was taken (b = a): its slope, O(1/a^2), is no difference of two 1/(2a)
    linear = jnp.where(a1 >= top, one_minus_x_digamma_minus_log(b), (1 - a1) * (dml + digamma_minus_log_series(b)))
    stirling = HALF_LOG_2PI + 0.5 * jnp.log(a1) + (corr + stirling_corr(b)) + linear
    as_ = safe_where(~one, a, 0.5)
    direct = gammaln(as_) + as_ + (1 - as_) * (digamma_minus_log(as_) + jnp.log(as_))
    return jnp.where(one, stirling, direct)


def entropy(theta: Gamma):
    """``a - log b + log Gamma(a) + (1 - a) psi(a)``; ``gamma.entropy``."""
    return _lgamma_plus_linear(theta.concentration) - jnp.log(theta.rate)


def kl(p: Gamma, q: Gamma):
    """``(a_p - a_q) psi(a_p) - lnG(a_p) + lnG(a_q) + a_q (log b_p - log b_q) + a_p (b_q - b_p)/b_p`` by whichever of
    two groupings has the smaller terms (their sum of magnitudes: the error each keeps), as the Beta's KL:

    * close pairs: ``B(a_q - a_p, a_p) - (a_q - a_p) u + a_p (exp(u) - 1 - u)`` with ``u = log b_q - log b_p`` and
      ``B(d, a) = lnG(a + d) - lnG(a) - d psi(a) >= 0`` (``special.lgamma_bregman``);
    * far pairs: ``a_q (exp(w) - 1 - w) + B_S(a_q; a_p)``, both terms >= 0, with ``w = log(m_p/m_q)`` (the means'
      log ratio) and ``B_S`` the Bregman divergence of the convex ``S(a) = lnG(a) - a log a + a`` (``_kl_shape``).

    The first alone kept ``eps a_p |u|`` (KL(Gamma(1e7, 1) || Gamma(3, 1e-20)) 96.0 in float32 for 97.13: terms of
    4.6e8 cancelled). ``u = log(b_q/b_p)`` by ``special.log_ratio``, not a difference of two logs (2e-7 relative of a
    KL of 1.5e-16 at b = 1e-20)."""
    ap, aq = p.concentration, q.concentration
    u = log_ratio(q.rate, p.rate)
    w = log_ratio(ap, aq) + u
    bregman = lgamma_bregman(aq - ap, ap, aq)  # aq itself, not ap + (aq - ap): 1e7 + (1e-3 - 1e7) is 0
    close_terms = (bregman, -(aq - ap) * u, _expm1mx_less_exp(ap, u))
    far_terms = (_expm1mx_less_exp(aq, w), *_kl_shape(ap, aq))
    # c (exp(x) - 1 - x) above x = 1 less its c exp(x): both forms' c exp(x) is a_p b_q / b_p, formed once,
    # exp(log a_p + u) (float32's exp overflows from 88.7, the product not: a_p = 1e-6, u = 92 is 1e34), and outside
    # the select where both have it (an overflow in the form not taken made the gradient 0 * inf = NaN); the far
    # form's slope in a_q is then -w, not two terms of exp(w) cancelling (-4.8e9 for 1e6 at w = 60)
    e_close, e_far = u > 1.0, w > 1.0
    mean_ratio = jnp.exp(safe_where(e_close | e_far, u, 0.0) + jnp.log(ap))
    part = lambda use: jnp.where(use, mean_ratio, 0.0)  # noqa: E731
    close = sum(close_terms) + part(e_close & ~e_far)
    far_value = sum(far_terms) + part(e_far & ~e_close)
    size = lambda terms: sum(jnp.abs(t) for t in terms)  # noqa: E731
    far = size(far_terms) + part(e_far) < size(close_terms) + part(e_close)
    return nonnegative(part(e_close & e_far) + jnp.where(far, far_value, close))  # >= 0 exactly


def _expm1mx_less_exp(c, x):
    """``c (exp(x) - 1 - x)`` for ``x <= 1``, ``-c (1 + x)`` above (the caller adds ``c exp(x)``)."""
    big = x > 1.0
    return jnp.where(big, -c * (1.0 + x), c * expm1mx(safe_where(big, 0.0, x)))


def _kl_shape(ap, aq):
    """The terms of ``B_S(a_q; a_p) = S(a_q) - S(a_p) - (a_q - a_p) S'(a_p) >= 0``, ``S(a) = lnG(a) - a log a + a =
    log(2 pi)/2 - log(a)/2 + c(a)`` (``c`` is Stirling's ``corr`` from 10, ``lnG(a) - (a - 1/2) log a + a - log(2
    pi)/2`` below, its three terms apart: the caller weighs their sizes) and ``S' = psi - log``: with ``t = (a_q -
    a_p)/a_p``, ``-(log(1 + t) - t)/2`` (``log1pmx`` within a quarter, else ``log(a_q/a_p) - t``) and ``c(a_q) -
    c(a_p) - (a_q - a_p) c'(a_p)``, ``c'(a) = psi(a) - log a + 1/(2a)`` (its series from 10); both shapes from 10,
    that last as one term, ``special.corr_bregman`` (its parts, ``1/(12 a)``, cancelled to 2e-4 of KL(Gamma(1000, 1)
    || Gamma(1000.1, 1.0001)), 2.5e-9, in float32)."""
    t = (aq - ap) / ap
    near = jnp.abs(t) < 0.25
    log_part = jnp.where(near, log1pmx(safe_where(near, t, 0.0)), log_ratio(aq, ap) - safe_where(near, 1.0, t))
    big = ap >= STIRLING_MIN
    r2 = jnp.square(1.0 / safe_where(big, ap, STIRLING_MIN))
    gap_p, psi_p = _stirling_gap(ap)
    aps = safe_where(big, 1.0, ap)
    slope = jnp.where(big, -r2 * poly(_PSI, r2), psi_p - jnp.log(aps) + 0.5 / aps)
    gap_q = _stirling_gap(aq)[0]
    both = big & (aq >= STIRLING_MIN)  # c's Bregman divergence itself (no corr(a_q) - corr(a_p) of 1/(12 a))
    c_bregman = corr_bregman(safe_where(both, aq - ap, 0.0), safe_where(both, ap, STIRLING_MIN),
                             safe_where(both, aq, STIRLING_MIN))
    apart = lambda v: jnp.where(both, 0.0, v)  # noqa: E731
    return (-0.5 * log_part, jnp.where(both, c_bregman, -(aq - ap) * slope), *(apart(v) for v in gap_q),
            *(apart(-v) for v in gap_p))


def _stirling_gap(a):
    """``c(a) = lnG(a) - (a - 1/2) log a + a - log(2 pi)/2`` as terms: Stirling's ``corr`` from 10; below, ``lnG(a)``,
    ``-(a - 1/2) log a`` and ``a - log(2 pi)/2`` (their sum cancels to ``1/(12 a)``: the caller weighs them), Lanczos's
    ``lnG`` and ``psi`` (``special.lgamma_digamma_lanczos``: a third of XLA's ``lgamma`` to compile and to run)."""
    big = a >= STIRLING_MIN
    ab, as_ = safe_where(big, a, STIRLING_MIN), safe_where(big, 1.0, a)
    small = lambda v: jnp.where(big, 0.0, v)  # noqa: E731
    lgamma, psi = lgamma_digamma_lanczos(as_)  # below 10: psi too, for the caller's c'(a)
    return (jnp.where(big, stirling_corr(ab), lgamma), small(-(as_ - 0.5) * jnp.log(as_)),
            small(as_ - HALF_LOG_2PI)), psi


def log_cdf(theta: Gamma, y):
    """``log P(a, b y)`` (regularised lower incomplete gamma) in log space; ``gamma.logcdf``."""
    return log_tail(theta, y, False)


def log_sf(theta: Gamma, y):
    """``log Q(a, b y)`` (regularised upper incomplete gamma) in log space; ``gamma.logsf``."""
    return log_tail(theta, y, True)


def log_tail(theta: Gamma, y, upper):
    """``log_sf`` where ``upper``, ``log_cdf`` elsewhere: ``log P`` and ``log Q`` come from one evaluation,
    at ``x = b y`` with ``log x = log b + log y`` (``b y`` underflows at ``b = 1e-8``, ``y = 1e-30``)."""
    b = theta.rate
    y = jnp.asarray(y, jnp.result_type(theta.concentration, b))
    pos = (y > 0) & (y < jnp.inf)
    safe = safe_where(pos, y, 1.0)
    x = jnp.where(pos, b * safe, jnp.where(jnp.isnan(y), jnp.nan, jnp.where(y > 0, jnp.inf, 0.0)))
    log_x = jnp.where(pos, jnp.log(b) + jnp.log(safe), jnp.log(x))
    return log_gammainc_tail(theta.concentration, x, upper, log_x)


def censored_log_prob(theta: Gamma, y, side):
    """One censored observation's log-likelihood: ``log_prob`` where ``side == 0``, ``log_cdf`` (known only to be
    <= y) where -1, ``log_sf`` (>= y) where +1, -inf for any other side; the same values as ``mj.censored``'s
    selects (which call this for a Gamma theta). The density ``P(a, x) - log y``, ``P(a, x) = a log x - x -
    lgamma(a)`` at ``x = b y``, is the prefix of both tails: one evaluation of ``incomplete.log_gammainc_tail``
    gives all three (its derivative in ``log x`` where observed ``a - x``), not a second ``lgamma`` and ``digamma``
    for the density to trace and compile. ``side`` takes y's shape (a ValueError otherwise, before tracing: it would
    broadcast). scipy: ``gamma.logpdf`` / ``logcdf`` / ``logsf``."""
    check_event_shape("Gamma", y, registry.batch_shape(theta))
    check_side_shape("Gamma", y, side)
    a, b = theta.concentration, theta.rate
    y = jnp.asarray(y, jnp.result_type(a, b))
    pos = (y > 0) & (y < jnp.inf)
    safe = safe_where(pos, y, 1.0)
    observed = side == 0
    x = jnp.where(pos, b * safe, jnp.where(jnp.isnan(y), jnp.nan, jnp.where(y > 0, jnp.inf, 0.0)))
    log_x = jnp.where(pos, jnp.log(b) + jnp.log(safe), jnp.log(x))
    value = log_gammainc_tail(a, x, side > 0, log_x, observed=observed)
    at_zero = jnp.where(a == 1, jnp.log(b), jnp.where(a < 1, jnp.inf, -jnp.inf))
    edge = jnp.where(y == 0, at_zero, jnp.where(jnp.isnan(y), jnp.nan, -jnp.inf))
    density = jnp.where(pos, value - jnp.log(safe), edge)
    known = (side == -1) | (side == 0) | (side == 1)
    return jnp.where(known, jnp.where(observed, density, value), -jnp.inf)


def mode(theta: Gamma):
    """``(a - 1)/b`` for a >= 1, else 0."""
    return jnp.maximum(theta.concentration - 1, 0) / theta.rate


def mean(theta: Gamma):
    return theta.concentration / theta.rate


def variance(theta: Gamma):
    """``a / b^2``, as ``(a / b) / b`` (``b^2`` overflows float32 at b = 1e20)."""
    return theta.concentration / theta.rate / theta.rate


def sample(key, theta: Gamma):
    """``G / b`` with ``G ~ Gamma(a, 1)``; below float's range the draw is 0 (see ``sample_log``)."""
    return jax.random.gamma(key, theta.concentration, dtype=jnp.result_type(theta.concentration)) / theta.rate


def sample_log(key, theta: Gamma):
    """``log y`` of a draw, exact where ``y`` itself underflows (a = 0.01: 41% of float32 draws are 0)."""
    a = theta.concentration
    return jax.random.loggamma(key, a, dtype=jnp.result_type(a)) - jnp.log(theta.rate)


def log_prob_log(theta: Gamma, log_y):
    """``log_prob`` at ``y = exp(log_y)``: ``a log b + (a - 1) log_y - b exp(log_y) - lgamma(a)``."""
    a, b = theta.concentration, theta.rate
    return a * jnp.log(b) + (a - 1) * log_y - b * jnp.exp(log_y) - gammaln(a)


def crps(theta: Gamma, y):
    """``(y - a/b)(2F(y) - 1) + (2 y f(y) - 1 / B(1/2, a)) / b``, F and f the Gamma(a, b) cdf and density.

    This is Gneiting's ``y (2F_a(y) - 1) - (a/b)(2F_{a+1}(y) - 1) - 1/(b B(1/2, a))`` with
    ``F_{a+1}(y) = F_a(y) - y f(y) / a`` (DLMF 8.8.5): no two terms of the size of the mean cancel (they did
    at large shapes). ``1/B(1/2, a) = exp(lgamma(a + 1/2) - lgamma(a)) / sqrt(pi)`` by ``special.lgamma_diff``
    (exact at a = 1e8). scoringrules' ``crps_gamma``; Jordan, Krueger and Lerch (2019), J. Stat. Softw. 90.
    """
    a, b = theta.concentration, theta.rate
    centred = 2.0 * jnp.exp(log_cdf(theta, y)) - 1.0
    y_density = jnp.exp(jnp.log(y) + log_prob(theta, y))
    inv_beta = jnp.exp(lgamma_diff(0.5, a) - 0.5 * math.log(math.pi))
    return (y - a / b) * centred + (2.0 * y_density - inv_beta) / b


def event_shape(theta: Gamma):
    return jnp.shape(theta.concentration)


def fisher(theta: Gamma):
    """The expected information in ``(concentration a, rate b)``:
    ``[[psi'(a), -1/b], [-1/b, a / b^2]]`` (the Hessian of log_prob is free of y)."""
    a, b = theta.concentration, theta.rate
    return jnp.array([[polygamma(1, a), -1.0 / b], [-1.0 / b, a / jnp.square(b)]])


def to_tfp(theta: Gamma):
    """TFP's twin: ``tfd.Gamma(concentration, rate)``."""
    return _twins.tfd().Gamma(theta.concentration, theta.rate)


def to_distrax(theta: Gamma):
    """distrax's twin: ``distrax.Gamma(concentration, rate)``."""
    return _twins.distrax().Gamma(theta.concentration, theta.rate)


def from_tfp(dist) -> Gamma:
    """From the rate or the log-rate."""
    full = _twins.full(dist)
    rate = jnp.exp(dist.log_rate) if dist.rate is None else dist.rate
    return Gamma(full(dist.concentration), full(rate))


registry.register(Gamma, registry.Ops(
    domain={"concentration": "positive", "rate": "positive"},
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
    tfp_names=('Gamma',),
    from_tfp=from_tfp,
    crps=crps,
    support=lambda theta: _support.positive,
))
registry.register_kl(Gamma, Gamma, kl)
