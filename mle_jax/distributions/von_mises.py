"""The von Mises distribution: angles (the book's wind direction).

    Pr(y | mu, k) = exp(k cos(y - mu)) / (2 pi I0(k)),   y an angle (any real number, mod 2 pi)

``log I0(k)`` is ``log(i0e(k)) + k`` and the density is written ``-2 k sin^2((y - mu)/2) - log(2 pi)
- log i0e(k)``: no ``k cos - k`` cancellation at k = 1e6. Entropy, KL and the circular variance use
``1 - A(k)`` with ``A = I1/I0``, from its asymptotic series for k >= 50 (15 in float32; relative error < 3e-15),
never ``1 - A`` of a rounded A. The CDF is that of the angle ``mu + x``, ``x`` in ``[-pi, pi)`` (the circle cut at
``mu - pi``, as scipy's ``vonmises(k, loc=mu)`` on ``[mu - pi, mu + pi]``): the tail beyond ``|x|`` by quadrature in
log space (``_log_tails``; relative error below 1e-12 in float64 where the tail is 1e-300), its quantile the
bisection of the tails (``_invert``).

scipy equivalent: ``scipy.stats.vonmises(kappa=concentration, loc=loc)`` on [-pi, pi].
Reference: Prince, *Understanding Deep Learning*, problem 5.6; Best and Fisher (1979) for sampling;
Abramowitz and Stegun 9.7.1 for the asymptotic series.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import numpy as np
from .registry import Param
import jax.numpy as jnp
from jax.scipy.special import i0e, i1e

from . import _invert, _support, _twins, registry
from .._checks import check_event_shape
from .normal import loc, loc_shape
from .special import nonnegative, log1mexp, log1p, poly, safe_where

LOG_2PI = math.log(2 * math.pi)
_ASYMPTOTIC_MIN = 50.0  # float64: the series' relative error is < 3e-15 from here
_ASYMPTOTIC_MIN_F32 = 15.0  # float32: < 3e-9 (the direct 1 - i1e/i0e loses 2k eps)
# 1 - A(k) = sum_n c_n / k^n for large k (from the Hankel expansions of I0 and I1)
_ONE_MINUS_A = (0.0, 0.5, 0.125, 0.125, 0.1953125, 0.40625, 1.0478515625, 3.21875, 11.466461181640625,
                46.478515625, 211.27614974975586, 1064.67822265625)


class VonMises(NamedTuple):
    """Parameters of one example's von Mises: ``loc`` (mu, an angle) and ``concentration`` (k >= 0)."""

    loc: Param
    concentration: Param


def log_i0(k):
    """``log I0(k) = log(i0e(k)) + k``, stable for large k."""
    return log_i0e(k) + k


@jax.custom_jvp
def log_i0e(k):
    """``log i0e(k) = log I0(k) - k`` for ``k >= 0``, its derivative written ``A(k) - 1 = -one_minus_resultant(k)``
    (``A = I1/I0``): JAX's ``i0e`` differentiates ``e^(-|k|)`` by ``sign(k)``, 0 at k = 0 exactly, where this slope is
    -1 (the log density's slope in k read ``cos(y - mu) - 1`` there for ``cos(y - mu)``; the entropy's 1 for 0); and
    ``(i1e - i0e) / i0e`` cancels for large k (float32: 12% off at k = 1e6, the wrong sign at 1e10), where
    ``1 - A`` is its asymptotic series."""
    return jnp.log(i0e(k))


@log_i0e.defjvp
def _log_i0e_jvp(primals, tangents):
    (k,), (dk,) = primals, tangents
    e0 = i0e(k)  # the value's, shared with the slope below the series' start
    return jnp.log(e0), -_one_minus_resultant(k, e0, i1e(k)) * dk


def log_prob(theta: VonMises, y):
    """``k cos(y - mu) - log(2 pi) - log I0(k)``; ``vonmises.logpdf``, periodic in y.

    Computed as ``-(log i0e(k) + log(2 pi) + 2 k sin^2((y - mu) / 2))`` (``k (cos d - 1)`` without the
    cancellation near d = 0). Written as one negated sum: with ``-2 k sin^2 - ...`` XLA:CPU kept the constant -2
    as an N-vector in memory for the sum's YNN fusion, and at N = 1e6 in float32 the program's temporaries then
    passed the 32 MB above which glibc's malloc maps fresh pages on every call (README, Performance)."""
    check_event_shape("VonMises", y, registry.batch_shape(theta))
    k = theta.concentration
    return -(log_i0e(k) + LOG_2PI + 2 * k * jnp.square(jnp.sin(0.5 * (y - theta.loc))))


def one_minus_resultant(k):
    """``1 - A(k)``, ``A(k) = I1(k) / I0(k)``: the circular variance."""
    k = jnp.asarray(k)
    ks = safe_where(~_asymptotic(k), k, 1.0)
    return _one_minus_resultant(k, i0e(ks), i1e(ks))


def _asymptotic(k):
    return k >= (_ASYMPTOTIC_MIN if k.dtype == jnp.float64 else _ASYMPTOTIC_MIN_F32)


def _one_minus_resultant(k, e0, e1):
    """``1 - A(k)``: its asymptotic series in ``1/k`` from the start, ``1 - e1/e0`` below (``e0 = i0e(k)``, ``e1 =
    i1e(k)``, read there only)."""
    big = _asymptotic(k)
    kb = safe_where(big, k, _ASYMPTOTIC_MIN)
    return jnp.where(big, poly(_ONE_MINUS_A, 1.0 / kb), 1.0 - e1 / e0)


def entropy(theta: VonMises):
    """``log(2 pi I0(k)) - k A(k) = log(2 pi) + log i0e(k) + k (1 - A(k))``."""
    return _entropy(theta.concentration)


@jax.custom_jvp
def _entropy(k):
    """The entropy in ``k``; its slope written ``k (1 - A)'(k) = -k A'(k)`` (``A' = 1/2`` at 0): autodiff's sum ``(A
    - 1) + (1 - A) + k (1 - A)'`` kept a rounding of 1 (0 for -5e-11 at k = 1e-10 in float32)."""
    return LOG_2PI + log_i0e(k) + k * one_minus_resultant(k)


@_entropy.defjvp
def _entropy_jvp(primals, tangents):
    (k,), (dk,) = primals, tangents
    gap, gap_slope = jax.jvp(one_minus_resultant, (k,), (jnp.ones_like(k),))
    return LOG_2PI + log_i0e(k) + k * gap, k * gap_slope * dk


def kl(p: VonMises, q: VonMises):
    """``log I0(k_q) - log I0(k_p) + A(k_p) (k_p - k_q cos(mu_p - mu_q))``, written
    ``log i0e(k_q) - log i0e(k_p) + (k_q - k_p)(1 - A(k_p)) + 2 k_q A(k_p) sin^2((mu_p - mu_q)/2)``."""
    kp, kq = p.concentration, q.concentration
    gap = one_minus_resultant(kp)
    value = (log_i0e(kq) - log_i0e(kp) + (kq - kp) * gap
             + 2 * kq * (1 - gap) * jnp.square(jnp.sin(0.5 * (p.loc - q.loc))))
    return nonnegative(value)  # >= 0 exactly; rounding must not make it negative


def _proposal(k):
    """Best and Fisher's wrapped-Cauchy parameter rho and ``k / rho``, without cancellation at any k:
    ``rho = (tau - sqrt(2 tau)) / (2k)`` with ``tau = 1 + sqrt(1 + 4k^2)`` is rewritten
    ``2k sqrt(tau) / ((sqrt(tau) + sqrt 2)(s + 1))``, ``s = sqrt(1 + 4k^2)`` (rho = 0 at k = 0), and
    ``1 - rho = (sqrt(tau)(1 + 1/(s + 2k)) + sqrt 2 (s + 1)) / ((sqrt(tau) + sqrt 2)(s + 1))``, a sum
    of positive terms (``s - 2k = 1/(s + 2k)``)."""
    s = jnp.sqrt(1 + 4 * jnp.square(k))
    root_tau = jnp.sqrt(1 + s)
    denom = (root_tau + math.sqrt(2)) * (s + 1)
    rho = 2 * k * root_tau / denom
    k_over_rho = denom / (2 * root_tau)
    one_minus_rho = (root_tau * (1 + 1 / (s + 2 * k)) + math.sqrt(2) * (s + 1)) / denom
    return rho, k_over_rho, one_minus_rho


_MAX_ATTEMPTS = 64  # each attempt accepts with probability > 0.65: all 64 fail with probability < 1e-29


def sample(key, theta: VonMises):
    """Best and Fisher's (1979) rejection sampler, written in the angle so that it is exact in float32
    from k = 0 (uniform) to k = 1e6 (width 1e-3):

        u1 ~ U(0, 1):  D = (1 - rho)^2 + 4 rho cos^2(pi u1 / 2),
                       angle = 2 asin((1 - rho) sin(pi u1 / 2) / sqrt(D))       (the proposal)
                       c = (k / rho)(1 - rho)^2 (1 + rho)^2 / (2 D)
        accept if c (2 - c) > u2 or log(c / u2) + 1 - c >= 0

    (the textbook ``f = cos(angle)`` and ``r = (1 + rho^2)/(2 rho)`` lose every digit for large k
    and divide by 0 at k = 0). The acceptance rate is above 0.65 for every k, and the loop stops
    after ``_MAX_ATTEMPTS`` = 64 rounds (all fail with probability < 1e-29; the last proposal is kept).

    From ``k >= 1/eps`` of the dtype (1.7e7 in float32, 4.5e15 in float64) the draw is the normal
    limit ``mu + N(0, 1) / sqrt(k)`` (its total-variation distance to the von Mises is O(1/k), below
    the dtype's resolution there; the proposal's ``k^2`` would overflow from 1.8e19 in float32):
    ``k = inf`` is the point mass at ``mu``. A NaN or negative concentration gives a NaN draw.
    """
    k = jnp.asarray(theta.concentration)
    shape = jnp.broadcast_shapes(jnp.shape(theta.loc), jnp.shape(k))
    dtype = jnp.result_type(theta.loc, k)
    k = jnp.broadcast_to(k, shape).astype(dtype)
    normal = k >= 1 / jnp.finfo(dtype).eps
    invalid = jnp.isnan(k) | (k < 0)
    key, normal_key = jax.random.split(key)
    draw = _rejection_draw(key, safe_where(~(normal | invalid), k, 1.0), shape, dtype)
    draw = jnp.where(normal, jax.random.normal(normal_key, shape, dtype) / jnp.sqrt(safe_where(normal, k, 1.0)),
                     draw)
    return _wrap(theta.loc + jnp.where(invalid, jnp.nan, draw))


def _wrap(angle):
    """``angle`` in [-pi, pi]: moved by a multiple of 2 pi only where it lies outside (adding pi to
    every draw would round a draw of width 1e-6 to float32's spacing at pi, 2.4e-7)."""
    outside = jnp.abs(angle) > math.pi
    return jnp.where(outside, jnp.mod(angle + math.pi, 2 * math.pi) - math.pi, angle)


def _rejection_draw(key, k, shape, dtype):
    """The angle ``y - mu`` by Best and Fisher's rejection, for finite ``k >= 0`` (see ``sample``)."""
    rho, k_over_rho, one_minus_rho = _proposal(k)

    def body(state):
        attempt, key, done, value = state
        key, k1, k2, k3 = jax.random.split(key, 4)
        u1, u2, u3 = (jax.random.uniform(kk, shape, dtype) for kk in (k1, k2, k3))
        half = 0.5 * math.pi * u1
        d = jnp.square(one_minus_rho) + 4 * rho * jnp.square(jnp.cos(half))
        angle = 2 * jnp.arcsin(jnp.clip(one_minus_rho * jnp.sin(half) / jnp.sqrt(d), 0, 1))
        c = k_over_rho * jnp.square(one_minus_rho * (1 + rho)) / (2 * d)
        accept = (c * (2 - c) - u2 > 0) | (jnp.log(c / u2) + 1 - c >= 0)
        value = jnp.where(done, value, jnp.where(u3 < 0.5, -angle, angle))
        return attempt + 1, key, done | accept, value

    def running(state):
        return (state[0] < _MAX_ATTEMPTS) & ~jnp.all(state[2])

    start = (jnp.asarray(0, jnp.int32), key, jnp.zeros(shape, bool), jnp.zeros(shape, dtype))
    return jax.lax.while_loop(running, body, start)[3]


def variance(theta: VonMises):
    """The circular variance ``1 - A(k)``."""
    return one_minus_resultant(theta.concentration)


def fisher(theta: VonMises):
    """The expected information in ``(loc mu, concentration k)``: ``diag(k A(k), A'(k))`` with
    ``A = I1/I0`` and ``A'(k) = 1 - A/k - A^2`` (the variance of ``cos(y - mu)``), from ``1 - A``
    (``one_minus_resultant``), by the derivative of its series for large k, where the direct form
    cancels (``A' ~ 1/(2k^2)``); ``A/k`` is ``1/2 - k^2/16`` below k = 1e-4. Reference: Mardia and
    Jupp, *Directional Statistics* (2000), section 5.3."""
    k = jnp.asarray(theta.concentration)
    u = one_minus_resultant(k)
    big = _asymptotic(k)
    inv = 1.0 / safe_where(big, k, _ASYMPTOTIC_MIN)
    series = inv * poly(tuple(n * c for n, c in enumerate(_ONE_MINUS_A)), inv)
    tiny = k < 1e-4
    a_over_k = jnp.where(tiny, 0.5 - jnp.square(k) / 16, (1 - u) / safe_where(~tiny, k, 1.0))
    k_k = jnp.where(big, series, u * (2 - u) - a_over_k)
    zero = jnp.zeros_like(k_k)
    return jnp.array([[k * (1 - u), zero], [zero, k_k]])


def to_tfp(theta: VonMises):
    """TFP's twin: ``tfd.VonMises(loc, concentration)``."""
    return _twins.tfd().VonMises(theta.loc, theta.concentration)


def to_distrax(theta: VonMises):
    """distrax's twin: ``distrax.VonMises(loc, concentration)``."""
    return _twins.distrax().VonMises(theta.loc, theta.concentration)


def from_tfp(dist) -> VonMises:
    full = _twins.full(dist)
    return VonMises(full(dist.loc), full(dist.concentration))
# Gauss-Legendre nodes and weights on [0, 1] for the tail integral (``_log_tails``)
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(48)
_GL_NODES, _GL_LOG_WEIGHTS = 0.5 * (_GL_NODES + 1), np.log(0.5 * _GL_WEIGHTS)
_DECAY = 60.0  # the window ends where the density has fallen by e^-60 (below float64's eps relative)


def centre(theta: VonMises, y):
    """``y - mu`` on the circle ``[-pi, pi)`` (moved by a multiple of 2 pi only where it lies outside, so that
    a small difference keeps its digits)."""
    d = jnp.asarray(y, jnp.result_type(theta.loc, theta.concentration)) - theta.loc
    inside = jnp.abs(d) <= math.pi
    return jnp.where(inside, d, jnp.mod(safe_where(inside, 0.0, d) + math.pi, 2 * math.pi) - math.pi)


def _log_tails(k, a):
    """``(log Pr(X <= -a), log Pr(X <= a))`` for the centred von Mises ``X`` (mu = 0) and ``0 <= a <= pi``, relative
    to the float:

        Pr(X <= -a) = int_a^pi exp(-2k sin^2(t/2)) dt / (2 pi i0e(k)),   Pr(X <= a) = 1 - Pr(X <= -a)

    by 48-point Gauss-Legendre quadrature over the window ``[a, a + W]`` where the integrand falls by ``e^60``
    from its value at ``a`` (``W = min(pi - a, pi 60/(k sin a), 2 sqrt(60/k))``), in log space: the integrand
    over its value at a is ``exp(-2k sin(s/2) sin(a + s/2))`` at ``t = a + s`` (no cancellation), so the
    far tail (``k = 1e6``, ``a = 3``: ``log Pr = -2e6``) is exact where the series of Hill (1977) and scipy's
    normal approximation are exact to an absolute eps only. Near the centre (``a < 1``, ``k a^2 < 1``: the
    integrand within a factor e^-1/2 of its peak) the same quadrature over ``[0, a]`` instead gives ``C = Pr(0 < X <
    a)`` and the tails ``1/2 -+ C``: the far form's slope in k there is ``E[cos t] - A(k)`` over the tail, terms
    of size 1 that cancel to one of size ``a`` (float32 3e-3 off at ``a = 1e-4``)."""
    k, a = jnp.broadcast_arrays(k, a)
    dtype = a.dtype
    positive = k > 0
    ks = safe_where(positive, k, 1.0)
    central = (a < 1.0) & (k * jnp.square(a) < 1.0)
    af = safe_where(central, 1.0, a)  # the far window's a: its 1/sin(a) was inf at a = 0 (a NaN slope in x)
    linear = math.pi * _DECAY / (ks * jnp.maximum(jnp.sin(af), jnp.finfo(dtype).tiny))
    width = jnp.minimum(math.pi - af, jnp.where(positive, jnp.minimum(linear, 2 * jnp.sqrt(_DECAY / ks)), jnp.inf))
    width = jnp.where(central, a, jnp.maximum(width, 0.0))
    start = jnp.where(central, 0.0, a)
    nodes = jnp.reshape(jnp.asarray(_GL_NODES, dtype), (1,) * a.ndim + (-1,))
    log_weights = jnp.reshape(jnp.asarray(_GL_LOG_WEIGHTS, dtype), (1,) * a.ndim + (-1,))
    s = width[..., None] * nodes
    exponent = -2 * k[..., None] * jnp.sin(0.5 * s) * jnp.sin(start[..., None] + 0.5 * s)
    log_mean = jax.scipy.special.logsumexp(exponent + log_weights, axis=-1) - LOG_2PI - log_i0e(k)
    empty = ~central & (width <= 0)
    log_width = jnp.log(safe_where(empty | central, 1.0, width))
    far = jnp.where(empty, -jnp.inf, -2 * k * jnp.square(jnp.sin(0.5 * af)) + log_width + log_mean)
    two_c = 2 * jnp.where(central, width, 0.0) * jnp.exp(log_mean)  # 2 C = 2 a (the integrand's mean) / (2 pi i0e)
    half = -math.log(2.0)
    return (jnp.where(central, half + log1p(-two_c), far),
            jnp.where(central, half + log1p(two_c), log1mexp(safe_where(central, -1.0, far))))


def log_tail(theta: VonMises, y, upper):
    """``log Pr(X > x)`` where ``upper``, ``log Pr(X <= x)`` elsewhere, for ``x = y - mu`` on ``[-pi, pi)``
    (``centre``): the distribution of the angle ``mu + x`` on the circle cut at ``mu - pi`` (scipy's
    ``vonmises(k, loc=mu).cdf`` on ``[mu - pi, mu + pi]``). The tail beyond ``|x|`` and the other side are
    ``_log_tails`` (by symmetry, ``Pr(X > x) = Pr(X <= -x)``)."""
    x = centre(theta, y)
    k = jnp.broadcast_to(jnp.asarray(theta.concentration, x.dtype), jnp.shape(x))
    lower, other = _log_tails(k, jnp.where(x <= 0, -x, x))  # |x|, its slope -1 at 0 (x = 0 is on the lower side)
    near = jnp.where(upper, x > 0, x <= 0)  # the side of the tail beyond |x|
    return jnp.where(near, lower, other)


def log_cdf(theta: VonMises, y):
    """``log Pr(mu - pi <= Y <= y)`` on the circle cut at ``mu - pi`` (``log_tail``); ``vonmises.logcdf``
    for ``y`` in ``[mu - pi, mu + pi]``."""
    return log_tail(theta, y, False)


def log_sf(theta: VonMises, y):
    """``log Pr(y < Y < mu + pi)`` (``log_tail``); ``vonmises.logsf`` on ``[mu - pi, mu + pi]``."""
    return log_tail(theta, y, True)


def _centred_tail(theta: VonMises, x, upper):
    return log_tail(VonMises(jnp.zeros_like(x), theta.concentration), x, upper)


_quantile_pair = _invert.pair(registry.Ops(), _invert.solver(
    registry.Ops(), _centred_tail, lambda theta: (-math.pi, math.pi, True)))


def quantile(theta: VonMises, q):
    """``mu + x`` with ``x`` in ``[-pi, pi]`` the ``q``-quantile of the centred angle (bisection of ``log_tail``,
    ``_invert``); ``vonmises.ppf``: ``mu - pi`` at q = 0, ``mu + pi`` at q = 1."""
    x = _quantile_pair[0](theta, q)
    return theta.loc + x


def isf(theta: VonMises, p):
    """``mu + x``, x the upper ``p`` point of the centred angle; ``vonmises.isf``, exact for tiny p."""
    return theta.loc + _quantile_pair[1](theta, p)


def distance(a, b):
    """``|angle(a - b)|`` in [0, pi]: the angular distance, so that y and y + 2 pi are the same target (the
    circular CRPS of Grimit et al., 2006, and the angular MAE)."""
    d = a - b
    return jnp.abs(jnp.arctan2(jnp.sin(d), jnp.cos(d)))


registry.register(VonMises, registry.Ops(
    domain={"loc": "real", "concentration": "nonnegative"},
    log_prob=log_prob,
    mode=loc,
    mean=loc,  # the circular mean direction
    variance=variance,
    sample=sample,
    entropy=entropy,
    event_shape=loc_shape,
    fisher=fisher,
    to_tfp=to_tfp,
    to_distrax=to_distrax,
    tfp_names=('VonMises',),
    from_tfp=from_tfp,
    support=lambda theta: _support.angle,
    distance=distance,
    log_cdf=log_cdf,
    log_sf=log_sf,
    log_tail=log_tail,
    quantile=quantile,
    isf=isf,
))
registry.register_kl(VonMises, VonMises, kl)
