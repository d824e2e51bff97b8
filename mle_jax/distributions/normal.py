"""The Normal distribution: the lecture's choice for real-valued regression.

    Pr(y | mu, sigma) = 1 / sqrt(2 pi sigma^2) exp(-(y - mu)^2 / (2 sigma^2)),   y in R

scipy equivalent: ``scipy.stats.norm(loc, scale)``.
Reference: Prince, *Understanding Deep Learning*, eq. 5.10; the lecture, Example 1.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import numpy as np
from jax.custom_derivatives import SymbolicZero
from .registry import Param
import jax.numpy as jnp
from jax.scipy.special import erfc, ndtr, ndtri

from . import _twins, registry
from .._checks import check_event_shape, check_side_shape
from .special import HALF_LOG_2PI, expm1mx, log_ratio, mills_inverse_series, mills_min, mills_series, standardize

_INV_SQRT_PI = 1.0 / math.sqrt(math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_HALF = math.sqrt(0.5)
# 1/sqrt(2) less its rounding to float64 (mpmath), and to float32: the rest of the constant in ``ndtr_minus_abs``
_SQRT_HALF_LO = {8: -4.8336466567264567e-17, 4: _SQRT_HALF - float(np.float32(_SQRT_HALF)) - 4.8336466567264567e-17}


class Normal(NamedTuple):
    """Parameters of one example's Normal: ``loc`` (mu) and ``scale`` (sigma > 0)."""

    loc: Param
    scale: Param


def standard_log_prob(z, log_scale):
    """``log N(y | mu, sigma)`` from ``z = (y - mu) / sigma`` and ``log sigma``.

        log Pr = -z^2 / 2 - log sigma - log(2 pi) / 2

    The one formula every Normal density in mle_jax goes through; families pass
    ``log sigma`` computed for their link (see ``mle_jax.links``).
    """
    return -0.5 * jnp.square(z) - log_scale - HALF_LOG_2PI


def mills_ratio(t, log_phi):
    """``M = phi(t) / Phi(t)`` given ``log_phi = log Phi(t)``: ``exp(-t^2/2 - log(2 pi)/2 - log_phi)``, except in the
    far lower tail (t at or below ``-special.mills_min``: -10 in float32, -20 in float64, as ``log_ndtr``'s own
    series), where ``log_phi`` is within rounding of ``-t^2/2`` and that difference keeps only its rounding (float32
    at t = -1e4 gave 2981 for 1e4): there
    ``-t / S = -t (1/S)``, ``u = 1/t^2``, with the reciprocal of Laplace's asymptotic series ``S = 1 - u + 3 u^2 -
    ...``, ``1/S = 1 + u - 2 u^2 + 10 u^3 - ...`` (``special.mills_inverse_series``: one division per example, where
    ``-r / (u S)`` with ``r = 1/t`` took two). ``t = -inf`` gives NaN (``t - t``, as the exp of ``-inf + inf``), NaN
    gives NaN; a ``log_phi`` of ``inf``, a caller's mark for an entry it discards, gives 0 (above the cut) or the
    series (below): finite, with finite derivatives, either way.

    One compare and three selects: the series runs on ``t`` where far, on the cut elsewhere (finite, no NaN in a
    gradient; a select, not ``min(t, cut)``, whose derivative at ``t = cut`` is 1/2), and the exp on 0 where far.
    Finite out to half the largest float (``-t`` once ``t^2`` overflows, slope -1; ``r = 1/t`` squared was flushed to 0
    there, which gave inf from t = -1.9e19 in float32, -1.5e154 in float64)."""
    cut = -mills_min(t.dtype)
    far = t <= cut
    t_far = jnp.where(far, t, cut)
    # t - t: NaN at t = -inf, 0 elsewhere (written so, XLA keeps t_far in the gradient's loop: no stored N-vector)
    series = (t - t) + -t_far * mills_inverse_series(1.0 / jnp.square(t_far))
    # the exp's argument is NaN where far past the float range (-inf + inf at t = -1e20 in float32): 0 there
    near = jnp.exp(jnp.where(far, 0.0, -0.5 * jnp.square(t) - HALF_LOG_2PI - log_phi))
    return jnp.where(far, series, near)


def _product_error(a, b, p):
    """``a b - p`` exactly for ``p = fl(a b)`` (Dekker's product by Veltkamp's split into half-width parts; no FMA
    in XLA's vocabulary), ``|a|, |b|`` far below the float range."""
    def split(v):
        t = (134217729.0 if v.dtype.itemsize >= 8 else 4097.0) * v  # 2^27 + 1, 2^12 + 1
        hi = t - (t - v)
        return hi, v - hi
    (ah, al), (bh, bl) = split(a), split(b)
    return ((ah * bh - p) + ah * bl + al * bh) + al * bl


def ndtr_minus_abs(x):
    """``Phi(-|x|) = erfc(|x|/sqrt 2)/2``, relatively exact in the tail. XLA's erfc is ``exp(-z^2) R(z)`` with
    ``z^2`` rounded, and ``z = fl(|x| / sqrt 2)`` is rounded too: each moves ``-z^2`` by about ``z^2`` ulps, ~0.5
    x^2 ulps of the result in all (1e3 ulps at x = 37 in float64, 117 at 12 in float32). Here the result is taken
    back to ``|x|`` itself: ``exp(z^2 - x^2/2) ~ 1 - (e + 2 z w)`` with ``e = z^2 - fl(z^2)`` and ``w = x/sqrt 2 -
    z`` (Dekker's exact products, ``_product_error``, and the constant's own rounding), within 4 ulps of mpmath on
    [0, 37.5] in float64 and [0, 12.5] in float32 (5 below 1.5, erfc's own). The correction's arguments stop at 64
    (``Phi`` is 0 there in both dtypes; no inf - inf)."""
    a = jnp.abs(x)
    r = 0.5 * erfc(a * _SQRT_HALF)
    a = jnp.minimum(a, 64.0)
    z = a * _SQRT_HALF
    lo = _SQRT_HALF_LO[8 if a.dtype.itemsize >= 8 else 4]
    w = _product_error(a, jnp.full_like(a, _SQRT_HALF), z) + a * lo
    zz = z * z
    # r (1 - c), not r - r c: r c is subnormal beyond x = 12 in float32, 36.7 in float64, and flushed to 0 where XLA
    # does not fuse the two into one FMA (op by op, or with r c materialised: 120 and 990 ulps there)
    return r * (1.0 - (_product_error(z, z, zz) + 2.0 * z * w))


@jax.custom_jvp
def log_ndtr(x):
    """``log Phi(x)`` in both tails, from one ``log`` of a selected argument (``scipy.special.log_ndtr``):

        x <= -c:     -x^2/2 - log(2 pi)/2 + log(S(1/x^2) / -x)    (Laplace's series S, ``special.mills_series``)
        -c < x <= 0: log r,                                     r = Phi(-|x|)  (``ndtr_minus_abs``)
        x > 0:       log u - ((u - 1) + r) / u = log1p(-r),     u = 1 - r

    with ``c = special.mills_min`` (10 in float32, 20 in float64; 12 terms of S leave 2e-20 there). ``r`` is exact
    to a few roundings relatively, so the upper tail keeps the small complement that ``log(ndtr(x))`` rounds away
    (JAX's own ``log_ndtr`` takes that up to x = 8 in float64, 5 in float32: 7% off at x = 8 in float64, 4% at 5 in
    float32, and its three-term series below -20 is 2e-11 off). ``log1p(-r)`` is written as ``log u`` plus the
    rounding of ``u`` (``u - 1`` exact by Sterbenz, ``u`` in [1/2, 1]): one ``log`` in all three pieces, and none of
    XLA's float64 ``log1p``, 121 ulps off for ``-r`` in (-0.414, -0.293) (``special.log1p``). Within 5 ulps of
    mpmath on the whole line in both dtypes (``-x^2/2`` as ``(-x/2) x``: finite while the value is, down to
    x = -2.6e19 in float32; ``x^2`` overflowed from -1.8e19); -inf at -inf, 0 at +inf, NaN at NaN; where ``Phi(-x)`` is subnormal
    (x > 37.5 in float64, 12.9 in float32) XLA flushes it, and the upper tail's value, to 0.

    Its derivative is ``mills_ratio(x, log Phi(x))`` (JAX's ``exp(log phi - log Phi)`` is rounding alone in the far
    lower tail: 2981 at x = -1e4 for 1e4 in float32); above the series' cut that exp's argument, of size x^2/2,
    carries its rounding into M: ~0.5 x^2 ulps (400 at x = 35 in float64, 160 at -19 near the cut)."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):  # integers (and booleans): in JAX's default float, as scipy's
        return log_ndtr(x.astype(jnp.result_type(float)))
    if x.dtype.itemsize < 4:  # float16, bfloat16: computed in float32 (the split products need its range)
        return log_ndtr(x.astype(jnp.float32)).astype(x.dtype)
    cut = -mills_min(x.dtype)
    far = x <= cut
    upper = x > 0
    r = ndtr_minus_abs(x)
    x_far = jnp.where(far, x, cut)
    arg = jnp.where(far, mills_series(1.0 / jnp.square(x_far)) / -x_far, jnp.where(upper, 1.0 - r, r))
    rest = jnp.where(far, (-0.5 * x) * x - HALF_LOG_2PI, jnp.where(upper, -((arg - 1.0) + r) / arg, 0.0))
    return jnp.log(arg) + rest


@log_ndtr.defjvp
def _log_ndtr_jvp(primals, tangents):
    x, = primals
    dx, = tangents
    if x.dtype.itemsize < 4:  # float16, bfloat16: float32's value and M (Mills' coefficients overflow float16, and
        # M from a value rounded to bfloat16 was 1.5% off at x = -3), each rounded once
        wide = x.astype(jnp.float32)
        value = log_ndtr(wide)
        return value.astype(x.dtype), (mills_ratio(wide, value) * dx).astype(x.dtype)
    value = log_ndtr(x)
    return value, mills_ratio(x, value) * dx


def log_prob(theta: Normal, y):
    """``log N(y | loc, scale)``; equals ``scipy.stats.norm.logpdf(y, loc, scale)``."""
    check_event_shape("Normal", y, registry.batch_shape(theta))
    return standard_log_prob(_z(theta, y), jnp.log(theta.scale))


def _z(theta, y):
    """``(y - mu) / sigma`` with a gradient that stays finite at ``sigma = 1e-30`` (``standardize``)."""
    return standardize(jnp.asarray(y, jnp.result_type(theta.loc, theta.scale)), theta.loc, theta.scale)


def log_cdf(theta: Normal, y):
    """``log Pr(Y <= y)``, stable in both tails (``log_ndtr``); ``norm.logcdf``."""
    return log_ndtr(_z(theta, y))


def log_sf(theta: Normal, y):
    """``log Pr(Y > y) = log Phi(-(y - mu)/sigma)``, stable in both tails; ``norm.logsf``."""
    return log_ndtr(-_z(theta, y))


def log_tail(theta: Normal, y, upper):
    """``log_sf`` where ``upper``, ``log_cdf`` elsewhere, from one ``log_ndtr``: ``log Phi(-z)`` or ``log Phi(z)``
    (a censored observation's log likelihood on either side). The side enters as a factor -1 or 1 of z, not as a
    select between -z and z: XLA:CPU then fuses ``log_ndtr`` and its derivative as it does for a fixed side
    (the select split it into 19 fusions, 1.3-1.5 times the time of the fixed-side form at N = 1e4)."""
    z = _z(theta, y)
    return log_ndtr(z * jnp.where(upper, -1.0, 1.0).astype(z.dtype))


def censored_log_prob(theta: Normal, y, side):
    """One censored observation's log-likelihood: ``log N(y | mu, sigma)`` where ``side == 0``, ``log Phi(z)``
    (known only to be <= y) where -1, ``log Phi(-z)`` (>= y) where +1, -inf for any other side; ``z = (y - mu)
    / sigma``. The same values as ``log_prob`` / ``log_tail`` under the selects of ``mj.censored`` (which calls
    this for a Normal theta); scipy: ``norm.logpdf`` / ``logcdf`` / ``logsf``. Reference: Tobin (1958).

    Its derivatives in mu, sigma and y are written, each one select per example that reads only the value ``v``
    and z (never log_ndtr's inner pieces):

        d v / d mu = z / sigma (observed),   -s M / sigma (censored),   0 (other sides)
        d v / d sigma = z (z / sigma) - 1 / sigma,   -s M (z / sigma),   0;   d v / d y = -d v / d mu

    with ``s = -1`` right- and ``+1`` left-censored and the Mills ratio ``M = phi(s z) / Phi(s z) =
    exp(-z^2 / 2 - log(2 pi) / 2 - v)``. Autodiff of the selects made XLA:CPU keep eight to ten N-vectors for
    the gradient's sum (38 MB at N = 1e6 in float32, over the 32 MB above which glibc's malloc maps, and faults
    in, fresh pages on every call); these forms keep two (README, Performance).
    """
    check_event_shape("Normal", y, registry.batch_shape(theta))
    check_side_shape("Normal", y, side)
    y = jnp.asarray(y, jnp.result_type(theta.loc, theta.scale))
    return _censored(theta.loc, theta.scale, y, side)


def _censored_value(mu, sigma, y, side):
    z = (y - mu) / sigma
    observed = standard_log_prob(z, jnp.log(sigma))
    tail = log_ndtr(z * jnp.where(side > 0, -1.0, 1.0).astype(z.dtype))
    known = (side == -1) | (side == 0) | (side == 1)
    return jnp.where(known, jnp.where(side == 0, observed, tail), -jnp.inf)


@jax.custom_jvp
def _censored(mu, sigma, y, side):
    return _censored_value(mu, sigma, y, side)


def _censored_jvp(primals, tangents):
    mu, sigma, y, side = primals
    d_mu, d_sigma, d_y, _ = tangents
    value = _censored_value(mu, sigma, y, side)
    z = (y - mu) / sigma
    s = jnp.where(side > 0, -1.0, 1.0).astype(z.dtype)
    observed = side == 0
    tail = (side == -1) | (side == 1)
    # the Mills ratio from the value alone; log_phi = inf where no tail is taken (an observed or unknown side's value
    # would make it sigma or inf, which the selects drop but a second derivative would multiply by 0): 0, or the
    # far tail's series, finite either way
    mills = mills_ratio(s * z, jnp.where(tail, value, jnp.inf))
    zero = jnp.zeros_like(z)
    c_mu = jnp.where(observed, z / sigma, jnp.where(tail, -s * mills / sigma, zero))
    out = None
    for c, t in ((c_mu, d_mu), (None, d_sigma), (-c_mu, d_y)):
        if isinstance(t, SymbolicZero):
            continue
        if c is None:
            # where M underflows to 0 (the certain side's far tail, y = +-inf included) the product is 0, not 0 inf
            slope = jnp.where(mills == 0, zero, -s * mills * (z / sigma))
            c = jnp.where(observed, z * (z / sigma) - 1 / sigma, jnp.where(tail, slope, zero))
        out = c * t if out is None else out + c * t
    return value, jnp.zeros_like(value) if out is None else out


_censored.defjvp(_censored_jvp, symbolic_zeros=True)


def quantile(theta: Normal, q):
    """``mu + sigma Phi^{-1}(q)``; ``norm.ppf``. Right down to the dtype's smallest normal q (1.2e-38
    in float32; XLA flushes smaller, subnormal, q to 0, where the quantile is -inf)."""
    return theta.loc + theta.scale * ndtri(q)


def isf(theta: Normal, p):
    """The upper quantile ``F^{-1}(1 - p) = mu - sigma Phi^{-1}(p)`` (symmetry), exact for tiny p
    where ``1 - p`` rounds to 1; ``norm.isf``."""
    return theta.loc - theta.scale * ndtri(p)


def sample(key, theta: Normal):
    """``mu + sigma eps`` with ``eps ~ N(0, 1)``."""
    shape = jnp.broadcast_shapes(jnp.shape(theta.loc), jnp.shape(theta.scale))
    eps = jax.random.normal(key, shape, jnp.result_type(theta.loc))
    return theta.loc + theta.scale * eps


def entropy(theta: Normal):
    """``H = log sigma + (1 + log 2 pi) / 2`` nats; ``norm.entropy``."""
    return jnp.log(theta.scale) + 0.5 + HALF_LOG_2PI


def kl(p: Normal, q: Normal):
    """``KL(N(m1, s1) || N(m2, s2)) = log(s2/s1) + (s1^2 + (m1 - m2)^2) / (2 s2^2) - 1/2``.

    With ``r = log(s1/s2)`` (``special.log_ratio``: the ratio under- or overflows at 1e-30 / 1e30, and ``log s1 -
    log s2`` at s = 1e-20 kept 2e-7 relative of a KL of 1e-16): ``KL = (exp(2r) - 1 - 2r) / 2 + ((m1 - m2)/s2)^2 /
    2``, a sum of two terms >= 0.
    """
    r = log_ratio(p.scale, q.scale)
    return 0.5 * expm1mx(2 * r) + 0.5 * jnp.square((p.loc - q.loc) / q.scale)


def cross_entropy(p: Normal, q: Normal):
    """``CE(p, q) = H(p) + KL(p || q) = log s2 + (log 2 pi)/2 + (exp(2r) + ((m1 - m2)/s2)^2) / 2``,
    ``r = log(s1/s2)`` (``special.log_ratio``)."""
    r = log_ratio(p.scale, q.scale)
    return jnp.log(q.scale) + HALF_LOG_2PI + 0.5 * (jnp.exp(2 * r) + jnp.square((p.loc - q.loc) / q.scale))


def abs_mean(m, s):
    """``E|X|`` for ``X ~ N(m, s^2)``: ``m (2 Phi(m/s) - 1) + 2 s phi(m/s)`` (the Normal and mixture CRPS)."""
    z = m / s
    return m * (2.0 * ndtr(z) - 1.0) + 2.0 * s * _INV_SQRT_2PI * jnp.exp(-0.5 * z * z)


def crps(theta: Normal, y):
    """``CRPS = E|Y - y| - E|Y - Y'|/2 = s [z (2 Phi(z) - 1) + 2 phi(z) - 1/sqrt(pi)]``, ``z = (y - mu)/s``;
    scoringrules' ``crps_normal``. Reference: Gneiting and Raftery (2007), JASA 102, eq. 21."""
    return abs_mean(y - theta.loc, theta.scale) - theta.scale * _INV_SQRT_PI


def loc(theta):
    """The location: mode, mean and median of every symmetric location-scale theta."""
    return theta.loc


def loc_shape(theta):
    """The event shape of a location-scale theta: the shape of its ``loc``."""
    return jnp.shape(theta.loc)


def variance(theta: Normal):
    return jnp.square(theta.scale)


def fisher(theta: Normal):
    """The expected information in ``(loc, scale)``: ``diag(1 / sigma^2, 2 / sigma^2)``.
    Reference: Casella and Berger, *Statistical Inference*, example 7.3.14."""
    precision = 1.0 / jnp.square(theta.scale)
    return jnp.array([[precision, jnp.zeros_like(precision)], [jnp.zeros_like(precision), 2.0 * precision]])


def to_tfp(theta: Normal):
    """TFP's twin: ``tfd.Normal(loc, scale)``."""
    return _twins.tfd().Normal(theta.loc, theta.scale)


def to_distrax(theta: Normal):
    """distrax's twin: ``distrax.Normal(loc, scale)``."""
    return _twins.distrax().Normal(theta.loc, theta.scale)


def from_tfp(dist) -> Normal:
    full = _twins.full(dist)
    return Normal(full(dist.loc), full(dist.scale))


registry.register(Normal, registry.Ops(
    domain={"loc": "real", "scale": "positive"},
    log_prob=log_prob,
    mode=loc,
    mean=loc,
    variance=variance,
    sample=sample,
    entropy=entropy,
    quantile=quantile,
    isf=isf,
    log_cdf=log_cdf,
    log_sf=log_sf,
    log_tail=log_tail,
    event_shape=loc_shape,
    fisher=fisher,
    to_tfp=to_tfp,
    to_distrax=to_distrax,
    tfp_names=('Normal',),
    from_tfp=from_tfp,
    crps=crps,
))
registry.register_kl(Normal, Normal, kl)
registry.register_cross_entropy(Normal, Normal, cross_entropy)
