"""Student's t distribution: regression robust to outliers (heavy tails).

    Pr(y | nu, mu, s) = Gamma((nu+1)/2) / (Gamma(nu/2) sqrt(nu pi) s) (1 + z^2/nu)^(-(nu+1)/2),   z = (y - mu)/s

The normaliser is computed as ``R(nu/2) - log(2 pi)/2`` with ``R(h) = lgamma(h + 1/2) - lgamma(h) -
log(h)/2`` (``_normaliser``), which tends to 0 as nu grows: at nu = 1e8 the
density is the Normal's to float32 round-off, where the plain difference of log-gammas cancels
to -9.9 instead of -1.04. The CDF uses ``log I_x(nu/2, 1/2)`` in log space (``incomplete``), exact
in the far tails and differentiable in nu.

scipy equivalent: ``scipy.stats.t(df, loc, scale)``.
Reference: Prince, *Understanding Deep Learning*, problem 5.9 (robust regression).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.core
import numpy as np
from jax.custom_derivatives import SymbolicZero
from .registry import Param
import jax.numpy as jnp
from jax.scipy.special import gammaln, polygamma

from . import _invert, _twins, registry
from .._checks import check_event_shape
from .incomplete import gamma_form_min, half_gamma_region, log_betainc
from .normal import _z, loc_shape, log_ndtr
from .special import (_CORR, _PSI, HALF_LOG_2PI, STIRLING_MIN, poly, safe_where, digamma_minus_log, log1mexp,
                      log1pmx_ratio, stirling_corr, with_slope)

LOG_2 = math.log(2.0)
_LOG_SQRT_PI = 0.5 * math.log(math.pi)
# the CRPS takes nu = min(df, 1e30); the kernels take any df whole (a df of 1e31 read as 1e30 was 27% off at z = 1e15)
_DF_CAP = 1e30


class StudentT(NamedTuple):
    """Parameters of one example's Student t: ``df`` (nu > 0), ``loc`` (mu), ``scale`` (s > 0)."""

    df: Param
    loc: Param
    scale: Param


def _log_abs_z(z, gap=None, scale=None):
    """``log|z|`` (``-inf`` at 0, ``+inf`` at an infinite z), from ``log|y - mu| - log s`` where ``z`` itself overflows (``y = -1e30``,
    ``s = 1e-30``) and ``gap = y - mu`` is given; every branch double-where'd (finite gradients)."""
    nonzero = z != 0
    finite = jnp.isfinite(z) | jnp.isnan(z)
    value = jnp.log(jnp.abs(safe_where(nonzero & finite, z, 1.0)))
    if gap is None or scale is None:  # an infinite z (y = +-inf) is log|z| = +inf
        value = jnp.where(finite, value, jnp.inf)
    else:
        wide = jnp.log(jnp.abs(safe_where(finite, 1.0, gap))) - jnp.log(scale)
        value = jnp.where(finite, value, wide)
    return jnp.where(nonzero, value, -jnp.inf)


def _log1p_square(t, log_abs_t):
    """``log(1 + t^2)``: ``log1p(t^2)`` for ``|t| <= 1``, ``2 log|t| + log1p(exp(-2 log|t|))`` above, from
    ``log|t|`` alone (``t^2`` overflows at 1e20, and ``t`` itself may be infinite where ``log|t|`` is not)."""
    small = log_abs_t <= 0
    ts, big = safe_where(small, t, 0.0), safe_where(~small, log_abs_t, 1.0)
    return jnp.where(small, jnp.log1p(jnp.square(ts)), 2 * big + jnp.log1p(jnp.exp(-2 * big)))


def _log1p_over(q):
    """``log1p(q) / q`` for ``0 <= q <= 1``, 1 at ``q = 0`` (a short series below 1e-4)."""
    small = q < 1e-4
    qs, ql = safe_where(small, q, 0.0), safe_where(~small, q, 1.0)
    return jnp.where(small, 1 - qs / 2 + jnp.square(qs) / 3 - qs ** 3 / 4, jnp.log1p(ql) / ql)


def _stirling_from(h) -> float:
    """Where ``_normaliser`` turns to Stirling's form: 10, and 4 below float64 (float32's six ``corr`` terms are exact
    to 1e-10 there; the direct ``lgamma`` difference lost ``eps lgamma(h + 1/2) / |R|``: at h = 9.99 R was 1.3e-4 off
    and R' 3.9e-4, a learned df's slope near 20)."""
    return STIRLING_MIN if jnp.dtype(jnp.result_type(h)).itemsize >= 8 else 4.0


def _normaliser(h):
    """``R(h) = lgamma(h + 1/2) - lgamma(h) - log(h)/2``; for h >= 10 (4 below float64, ``_stirling_from``)
    Stirling's ``h log1pmx(t) + corr(h + 1/2) - corr(h)``, ``t = 1/(2h)``, with ``h log1pmx(t) = t/2 log1pmx(t)/t^2``:
    it tends to 0 as h grows, and is 0 at ``h = inf`` (the Normal), not ``inf * 0``. A scalar h (a
    family's df) takes one branch (``lax.cond``): the two under a ``where``, and their derivatives, made
    some thirty scalar kernels of XLA:CPU per call."""
    start = _stirling_from(h)
    big = h >= start
    if jnp.ndim(h) == 0:
        return _scalar_normaliser(h)
    hb, hs = safe_where(big, h, STIRLING_MIN), safe_where(~big, h, 1.0)
    return jnp.where(big, _normaliser_stirling(hb), _normaliser_direct(hs))


def _normaliser_and_slope(h):
    """``(R(h), R'(h))`` from the branch that h takes (each branch's input made safe: vmap turns a
    batched cond into a select of both)."""
    start = _stirling_from(h)

    def stirling(h):
        h = safe_where(h >= start, h, STIRLING_MIN)
        return jax.jvp(_normaliser_stirling, (h,), (jnp.ones_like(h),))

    def direct(h):
        h = safe_where(h < start, h, 1.0)
        return jax.jvp(_normaliser_direct, (h,), (jnp.ones_like(h),))
    return jax.lax.cond(h >= start, stirling, direct, h)


# ``_normaliser`` of a scalar h (a family's df): one ``lax.cond`` branch computes R and its slope ``R'(h)``
# together, so that the value and gradient carry two scalars out of the branch, not the branch's linearisation
# (48 residuals, each a kernel of XLA:CPU). Differentiable again: the slope is forward-mode autodiff of the
# branch's own form, itself differentiable.
_scalar_normaliser = with_slope(_normaliser_and_slope)


def _normaliser_stirling(h):
    t = 0.5 / h
    return 0.5 * t * log1pmx_ratio(t) + stirling_corr(h + 0.5) - stirling_corr(h)


def _normaliser_direct(h):
    return gammaln(h + 0.5) - gammaln(h) - 0.5 * jnp.log(h)


def log_normaliser(df):
    """``log Gamma((nu+1)/2) - log Gamma(nu/2) - log(nu pi)/2``, the standard t's log density at 0:
    ``R(nu/2) - log(2 pi)/2`` (a family's shift: once per reduction). A Python number gives a Python
    float (``_normaliser_float``: it takes the dtype of what it is added to), an array an array."""
    if isinstance(df, (int, float)):
        return _normaliser_float(0.5 * df) - HALF_LOG_2PI
    return _normaliser(0.5 * df) - HALF_LOG_2PI


def _normaliser_float(h: float) -> float:
    """``_normaliser`` in Python's float64 for a number h > 0: ``lgamma`` below 10, above it Stirling's
    form with ``(log1p(t) - t)/t^2 = sum_k (-t)^k / (k + 2)`` (``t <= 1/20``: 30 terms reach 1e-39)."""
    if h < STIRLING_MIN:
        return math.lgamma(h + 0.5) - math.lgamma(h) - 0.5 * math.log(h)
    if math.isinf(h):
        return 0.0
    t = 0.5 / h
    ratio = -sum((-t) ** k / (k + 2) for k in range(30))
    def corr(x):
        return sum(c * (1 / x) ** (2 * n + 1) for n, c in enumerate(_CORR))
    return 0.5 * t * ratio + corr(h + 0.5) - corr(h)


def standard_kernel(z, df):
    """``-(nu + 1)/2 log(1 + z^2/nu)``, the z-dependent part of the standard t's log density: for a df
    known when the program is traced (a Python number, inf included), ``_fixed_kernel`` (no derivative in nu, its
    constants folded), else ``_kernel``."""
    z = jnp.asarray(z)
    if isinstance(df, (int, float)) and df > 0:
        return _fixed_kernel(z, float(df))
    return _kernel(z, jnp.asarray(df, z.dtype))


# |t| above which t^2 would overflow (float32 2^62, float64 2^510): there log(1 + t^2) = 2 log1p(|t|)
_BIG_T = {jnp.dtype(jnp.float32): 2.0 ** 62, jnp.dtype(jnp.float64): 2.0 ** 510}
_BIG_Q = 2.0 ** 100  # q/(1 + q) is 1 to round-off beyond (float32 and float64)
_TINY_Q = {jnp.dtype(jnp.float32): 2.0 ** -23, jnp.dtype(jnp.float64): 2.0 ** -52}  # eps: log1p(q) is q to round-off


def _half_log1p_square(t):
    """``x = sqrt(1 + t^2) - 1``, whose ``log1p`` is ``log(1 + t^2) / 2``: ``t^2 / (1 + sqrt(1 + t^2))``
    (no cancellation at small t; a square root and a division), and ``|t|`` where ``t^2`` would overflow
    (there ``log1p(|t|) = log(1 + t^2)/2`` to round-off). Cheap arithmetic and one select, so that
    XLA:CPU fuses it into one loop and takes the ``log1p`` and the sum to its vectorised library."""
    a = jnp.abs(t)
    q = jnp.square(t)
    return jnp.where(a > _BIG_T.get(jnp.dtype(t.dtype), _BIG_T[jnp.dtype(jnp.float32)]), a, q / (1 + jnp.sqrt(1 + q)))


def _kernel_terms(z, df):
    """``nu = df`` (any size, ``inf`` included), ``t = z / sqrt(nu)``, ``q = t^2``, ``x = sqrt(1 + q) - 1``."""
    nu = df
    t = z * jax.lax.rsqrt(nu)  # one square root and division per family where nu is the family's
    return nu, t, jnp.square(t), _half_log1p_square(t)


def _kernel(z, df):
    """The part of the standard t's log density that depends on z: ``-(nu + 1)/2 log(1 + z^2/nu)``,
    as ``-(nu + 1) log1p(x)``, ``x = sqrt(1 + z^2/nu) - 1`` (``_half_log1p_square``): one transcendental
    per example, and ``-(1 + 1/nu) z^2/2`` where ``z^2/nu`` is below eps (``_signed_kernel``): exact for any nu."""
    return _signed_kernel(z, df, -1.0)


def standard_cost(z, df):
    """``-_kernel``: ``(nu + 1)/2 log(1 + z^2/nu)``, the z-dependent part of the standard t's NLL, with its
    derivatives negated inside the rule (``_signed_kernel``), for a learned df (an array)."""
    z = jnp.asarray(z)
    return _signed_kernel(z, jnp.asarray(df, z.dtype), 1.0)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _signed_kernel(z, df, sign: float):
    """``sign (nu + 1) log1p(x)``: ``_kernel`` (sign -1) or its cost ``standard_cost`` (sign +1); where ``q = z^2/nu``
    is below eps or NaN, ``sign (1 + 1/nu) z^2/2`` (``log(1 + q)/q = 1 - q/2``, a rounding): there ``x`` may be below
    the normal floats, which XLA:CPU flushes to 0 (float32 nu = 3e38, z = 1: the value was 0, not 1/2), and at
    ``nu = inf`` (the Normal's ``z^2/2``, not ``inf * 0``). As ``sign c S`` (``_scaled_log1p``)."""
    nu, _, q, x = _kernel_terms(z, df)
    c, scaled = _scaled_log1p(z, nu, q, x)
    return (sign * c) * scaled


_C_MAX = 2.0 ** 100  # the value's scalar factor c = min(nu + 1, 2^100)


def _scaled_log1p(z, nu, q, x):
    """``(c, S)`` with the kernel's ``(nu + 1) log1p(x) = c S``: ``c = min(nu + 1, 2^100)`` (a number per family) and
    ``S = (nu + 1)/c log1p(x)`` (``log1p(x)`` itself up to nu = 2^100), or ``(1 + 1/nu) z^2 / (2c)`` where ``q`` is
    below eps or NaN. The value (its sum times ``sign c``) and the slope in df (``log1p(x) = S c/(nu + 1)``) read
    the one N-vector S: XLA:CPU wrote a select of the value's own, and log1p(x) beside it, as two (float32, 1e6 rows:
    1.15 times the time); and ``c S`` has neither ``inf * 0`` (nu = inf) nor a product below the normal floats (a
    ``z^2/(2 nu)`` there is under 1e-8 of the value, its normaliser's round-off) nor one above (``S < 1e11``)."""
    c = jnp.minimum(nu + 1, _C_MAX)
    big = q >= _TINY_Q.get(jnp.dtype(q.dtype), 2.0 ** -23)
    return c, jnp.where(big, ((nu + 1) / c) * jnp.log1p(x), ((0.5 / c) * (1 + 1 / nu)) * z * z)


def _signed_kernel_jvp(sign, primals, tangents):
    """The tangent ``g dz + D ddf`` from ``_signed_slopes``; the value is ``_signed_kernel`` itself, so that a
    second derivative of it comes from this rule again. The sign is in the slopes, not applied to the tangent:
    the summed NLL's cotangent on a cost is then 1, which XLA folds, where a -1 shared by the location's and
    the df's reductions is an N-vector XLA:CPU writes and reads twice."""
    z, df = primals
    dz, ddf = tangents
    value = _signed_kernel(z, df, sign)
    g, d = _signed_slopes(z, df, sign)
    tangent = jnp.zeros_like(value)
    if not isinstance(dz, SymbolicZero):
        tangent = tangent + g * dz
    if not isinstance(ddf, SymbolicZero):  # a fixed df (the families' df=5.0) skips this
        tangent = tangent + d * ddf
    return value, tangent


_signed_kernel.defjvp(_signed_kernel_jvp, symbolic_zeros=True)


def _slope_terms(z, df):
    """``nu``, ``z`` with +-inf as 0 (``zf``) and ``w = 1/(1 + z^2/nu)`` (0 at an infinite z and where ``z^2/nu``
    overflows)."""
    nu = df
    infinite = jnp.isinf(z)
    zf = safe_where(infinite, 0.0, z)  # z = +-inf fed as 0 to the discarded branch: no NaN derivative
    w = jnp.where(infinite, jnp.zeros_like(z), 1 / (1 + jnp.square(zf * jax.lax.rsqrt(nu))))
    return nu, zf, w


# below q = 1/32, h by its series in q (``_near_slope``): float64 11 terms, whose first omitted term is under the
# round-off of the first form from there on (both within 6e-15 of h, relative); float32 below 1/64, 3 terms (both
# within 7e-6 of h there: a fourth term made the learned-df family 1.6 times as slow at N = 1e4 on XLA:CPU)
_NEAR_Q = {jnp.dtype(jnp.float32): (1 / 64, 3), jnp.dtype(jnp.float64): (1 / 32, 11)}


def _near_slope(q, u, inv, scale, terms: int):
    """``scale (u/nu - h)``, ``u = q/(1 + q)``, ``h = log(1 + q) - u = q^2 (1/2 - 2q/3 + 3q^2/4 - ...)``, the
    series' ``j``-th coefficient ``(-1)^j (j + 1)/(j + 2)``: no two terms of size q left to cancel. Its coefficients
    are numbers, folded into the loop over the examples (a series in q whose coefficients held 1/nu made a dozen
    scalar kernels of XLA:CPU per call: float32 N = 1e4 took 1.6 times as long)."""
    h = jnp.square(q) * poly([(-1) ** j * (j + 1) / (j + 2) for j in range(terms)], q)
    return (scale * inv) * u - scale * h


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _signed_slopes(z, df, sign: float):
    """``-sign`` times the log density's slopes (``_signed_kernel``'s): ``g = d/dz = -(1 + 1/nu) z w``,
    ``w = 1/(1 + q) = r^2``, ``r = 1/(1 + x)``, ``q = z^2/nu`` (0 at an infinite z; ``nu/z`` where ``q`` overflows), and

        D = d/dnu = (1 + 1/nu)/2 u - log(1 + q)/2 = (u/nu - h)/2,   u = q/(1 + q),   h = log(1 + q) - u

    the first form but below ``q = 1/32`` (float32 1/64, ``_NEAR_Q``), where it cancels to ``-q^2/4 + q/(2 nu)`` from
    terms of size q (float64 nu = 1e15, z = 0.7: 14% off; float32 nu = 1e8, z = 3: 3.6 times too large) and the
    second, h by its series in q (``_near_slope``), is taken. ``u`` is taken at
    ``min(q, 2^100)``: 1 at q = inf, no ``1/q`` at q = 0. Each vector ends in a select and each division has one use:
    XLA:CPU's reduction takes a trailing division (and the arithmetic after it) into its own kernel and writes its
    operands out as N-vectors, and writes out a division that several operations read."""
    nu, _, q, x = _kernel_terms(z, df)
    infinite = jnp.isinf(z)
    zf = safe_where(infinite, 0.0, z)
    inv = 1 / nu
    # w = 1/(1 + q) = r^2, r = 1/(1 + x): (zf r) r is nu/z where q overflows, not 0; one expression (zf w, w a vector
    # of its own, made XLA:CPU write zf and w out as two N-vectors for the reduction)
    r = 1 / (1 + x)
    g = jnp.where(infinite, jnp.zeros_like(z), (sign * (1 + inv)) * zf * r * r)
    qc = jnp.minimum(q, _BIG_Q)
    u = qc / (1 + qc)
    near_q, terms = _NEAR_Q.get(jnp.dtype(q.dtype), _NEAR_Q[jnp.dtype(jnp.float32)])
    k = -sign
    c, scaled = _scaled_log1p(z, nu, q, x)  # -k log1p(x) = sign S c/(nu + 1): the value's vector
    far = (0.5 * k * (1 + inv)) * u + scaled * (sign * c / (nu + 1))
    return g, jnp.where(q < near_q, _near_slope(q, u, inv, 0.5 * k, terms), far)


@_signed_slopes.defjvp
def _signed_slopes_jvp(sign, primals, tangents):
    """``-sign`` times the log density's second derivatives, written out (autodiff of the slopes overflows where ``q^2`` or
    ``q^1.5`` does: |z / sqrt(nu)| above 1e10 in float32), with ``w``, ``u = q/(1 + q)`` and ``s = z w / nu``, each
    difference in its exact form (they cancelled to round-off near q = 0, where nu is large):
    ``(1 + 1/nu) w - 1 = (1 - z^2) w / nu``, and ``1 - 1/nu - (1 + 1/nu) w = u - (1 + w)/nu`` below q = 1,

        d2/dz2 = -(1 + 1/nu) w (2w - 1),   d2/dz dnu = s (1 - z^2) w / nu,
        d2/dnu2 = u/(2 nu) (u - (1 + w)/nu),      (1 - 1/nu - (1 + 1/nu) w from q = 1 on)

    each 0 at an infinite z but for d2/dnu2 (its limit ``(1 - 1/nu)/(2 nu)``)."""
    z, df = primals
    dz, ddf = tangents
    g, d = _signed_slopes(z, df, sign)
    nu, zf, w = _slope_terms(z, df)
    inv = 1 / nu
    u = jnp.where(w > 0.5, jnp.square(zf * jax.lax.rsqrt(nu)) * w, 1 - w)  # q w below q = 1, 1 - w above (1 at inf)
    d_zz = -(1 + inv) * w * (2 * w - 1)
    # (1 - z^2) w / nu from z itself below |z| = 2^20 (exactly 0 at z = +-1), w/nu - u beyond (no cancellation there)
    moderate = jnp.abs(zf) < 2.0 ** 20
    zs = safe_where(moderate, zf, 0.0)
    d_z_nu = zf * w * inv * jnp.where(moderate, (1 - zs) * (1 + zs) * w * inv, w * inv - u)
    # where u rounds to 1 (q >= 1) the first form loses w: at nu = 1 it is -2w (the first form gave 0 from z = 1e8)
    tail = jnp.where(w > 0.5, u - (1 + w) * inv, (1 - inv) - (1 + inv) * w)
    d_nu_nu = u * (0.5 * inv) * tail
    dz = jnp.zeros_like(z) if isinstance(dz, SymbolicZero) else dz
    ddf = jnp.zeros_like(df) if isinstance(ddf, SymbolicZero) else ddf
    return (g, d), ((-sign) * (d_zz * dz + d_z_nu * ddf), (-sign) * (d_z_nu * dz + d_nu_nu * ddf))


def _fixed_t(z, df: float):
    """``t = z / sqrt(nu)`` for a Python nu: 0 at ``nu = inf`` (not ``inf * 0`` at an infinite z)."""
    return z * (1 / math.sqrt(df)) if df < math.inf else jnp.zeros_like(z)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _fixed_kernel(z, df: float):
    """``_kernel`` for a df known when the program is traced (a Python number ``df > 0``, inf included):
    ``-(nu + 1)/2 log(1 + t^2) = -(nu + 1) log1p(x)``, ``t = z / sqrt(nu)``, with
    ``x = sqrt(1 + t^2) - 1 = t^2 / (1 + sqrt(1 + t^2))`` (no cancellation at small t) and ``x = |t|``
    where ``t^2`` would overflow (``|t| > 2^62``, float32; there ``log1p(|t|) = log(1 + t^2)/2`` to round-off).
    One transcendental per example, after the last select: XLA:CPU computes x in one fused loop (a square
    root and a division) and the log1p and the sum in its vectorised elementwise library.

    A df beyond 1e30 (known when traced, so no other df pays for it) adds one select: ``-(1 + 1/nu) z^2/2`` where
    ``q = t^2`` is below eps (``log(1 + q)/q = 1 - q/2``, a rounding) or NaN, where ``x`` is below the normal floats
    (XLA:CPU flushes them to 0: float32 ``nu = 1e38``, ``z = 1``) and at ``nu = inf`` (the Normal's ``-z^2/2``, not
    ``inf * 0``). The learned kernel read such a df as 1e30: 27% off at df 1e31, z = 1e15 (float32)."""
    t = _fixed_t(z, df)
    value = -(df + 1) * jnp.log1p(_half_log1p_square(t))
    if df <= _DF_CAP:
        return value
    tiny = float(jnp.finfo(jnp.result_type(z)).eps)
    return jnp.where(jnp.square(t) >= tiny, value, -(1 + 1 / df) * (0.5 * z) * z)


@_fixed_kernel.defjvp
def _fixed_kernel_jvp(df, primals, tangents):
    (z,), (dz,) = primals, tangents
    return _fixed_kernel(z, df), _fixed_score(z, df) * dz


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _fixed_score(z, df: float):
    """``d/dz _fixed_kernel = -(1 + 1/nu) z w``, ``w = 1/(1 + z^2/nu) = r^2``, ``r = 1/(1 + x)`` (``x`` the value's,
    ``_half_log1p_square``): ``(z r) r`` is ``-(nu + 1)/z`` where ``z^2/nu`` overflows (float32 ``|z| > 1.8e19
    sqrt(nu)``, float64 1e154; ``z w`` was 0 there, and a learned scale's slope lost ``(nu + 1)/s``), as the learned
    df's slope (``_signed_slopes``). 0 at ``z = +-inf`` (not ``inf * 0``). XLA computes ``x`` once for the value and
    the slope: one division fewer than ``z w`` (float32, 1e6 rows: 0.85 of its time)."""
    r = 1 / (1 + _half_log1p_square(_fixed_t(z, df)))
    return jnp.where(jnp.isinf(z), jnp.zeros_like(z), (-(1 + 1 / df) * z) * r * r)


@_fixed_score.defjvp
def _fixed_score_jvp(df, primals, tangents):
    """``d^2/dz^2 = -(1 + 1/nu) w (2w - 1)``, ``w = 1 / (1 + z^2/nu)``: ``-(1 + 1/nu)`` at 0, 0 at +-inf
    (and where ``z^2`` overflows), not ``inf/inf``."""
    (z,), (dz,) = primals, tangents
    w = 1 / (1 + jnp.square(_fixed_t(z, df)))
    return _fixed_score(z, df), -(1 + 1 / df) * w * (2 * w - 1) * dz


def standard_log_prob(z, df, log_abs_z=None):
    """``log Pr`` of the standard t at ``z``, without ``-log s``:
    ``R(nu/2) - log(2 pi)/2 - (nu + 1)/2 log(1 + z^2/nu)`` (``_normaliser``). For ``z^2 <= nu`` the last
    term is ``z^2/2 (1 + 1/nu) log1p(q)/q``, ``q = z^2/nu``: the Normal's ``z^2/2`` at ``nu = inf``.

    Without ``log_abs_z`` (the families' kernel: z finite or infinite, never from an overflowed ``y - mu``)
    the z-dependent part is ``_kernel``, one ``log1p`` per example and its derivative written out; the
    normaliser depends on nu alone (once per family where nu is the family's)."""
    if log_abs_z is None:
        z = jnp.asarray(z)
        return log_normaliser(df if isinstance(df, (int, float)) else jnp.asarray(df, z.dtype)) + standard_kernel(z, df)
    half = 0.5 * df
    log_abs_t = log_abs_z - 0.5 * jnp.log(df)
    near = log_abs_t <= 0  # |t| <= 1, t = z / sqrt(nu)
    zn = safe_where(near, z, 0.0)
    body = 0.5 * jnp.square(zn) * (1 + 1 / df) * _log1p_over(jnp.square(zn / jnp.sqrt(df)))
    tail = (half + 0.5) * _log1p_square(jnp.zeros_like(zn), safe_where(~near, log_abs_t, 1.0))
    return _known_normaliser(df, z.dtype) - HALF_LOG_2PI - jnp.where(near, body, tail)


def _known_normaliser(df, dtype):
    """``R(nu/2)`` (``_normaliser``), as a Python float (``_normaliser_float``) where df is one finite number known
    when traced (a family's fixed df, ``_static_df``): no ``lax.cond`` and its two branches' derivatives traced and
    compiled for a constant (the censored Student t's compile)."""
    branches = _static_df(df, dtype)
    return _normaliser(0.5 * df) if branches.normaliser is None else branches.normaliser


def log_prob(theta: StudentT, y):
    """``scipy.stats.t.logpdf(y, df, loc, scale)``; ``df = inf`` is the Normal."""
    check_event_shape("StudentT", y, registry.batch_shape(theta))
    z = _z(theta, y)
    return standard_log_prob(z, theta.df, _log_abs_z(z, _gap(theta, y, z), theta.scale)) - jnp.log(theta.scale)


def _gap(theta, y, z):
    return jnp.asarray(y, z.dtype) - theta.loc


def _x_digamma_minus_log(x):
    """``x (psi(x) - log x)`` for ``x >= 10``: ``-1/2 - r sum_n _PSI[n] r^(2n)``, ``r = 1/x`` (finite at inf)."""
    r = 1.0 / x
    return -0.5 - r * poly(_PSI, jnp.square(r))


def entropy(theta: StudentT):
    """``(nu+1)/2 [psi((nu+1)/2) - psi(nu/2)] + log(sqrt(nu) B(nu/2, 1/2)) + log s``, written with
    ``h = nu/2`` as ``(h + 1/2) [log1p(1/(2h)) + D(h + 1/2) - D(h)] + log(2 pi)/2 - R(h) + log s``,
    ``D(x) = psi(x) - log x``: every term bounded as nu grows (the limit is the Normal's entropy); for
    h >= 10 ``(h + 1/2) log1p(t) = (1 + t)/2 log1p(t)/t``, ``t = 1/(2h)``, and ``(h + 1/2) D(h + 1/2) -
    h D(h) - D(h)/2`` from ``x D(x)``, so ``nu = inf`` gives the Normal's, not ``inf * 0``."""
    h = 0.5 * theta.df
    big = h >= STIRLING_MIN
    hb, hs = safe_where(big, h, STIRLING_MIN), safe_where(~big, h, 1.0)
    t = 0.5 / hb
    large = (0.5 * (1 + t) * _log1p_over(t) + _x_digamma_minus_log(hb + 0.5) - _x_digamma_minus_log(hb)
             - 0.5 * digamma_minus_log(hb))
    small = (hs + 0.5) * (jnp.log1p(0.5 / hs) + digamma_minus_log(hs + 0.5) - digamma_minus_log(hs))
    return jnp.where(big, large, small) + HALF_LOG_2PI - _normaliser(h) + jnp.log(theta.scale)


def _beta_arguments(t, log_abs_t):
    """``(log x, log(1 - x))`` with ``x = 1/(1 + t^2)``: ``-log(1 + t^2)`` and ``2 log|t| - log(1 + t^2)``."""
    log1p_sq = _log1p_square(t, log_abs_t)
    return -log1p_sq, 2 * log_abs_t - log1p_sq


def _log_lower_tail(df, log_x, log_1mx, normaliser):
    """``log Pr(T <= -|t| sqrt(nu))`` for the standard t at ``z = t sqrt(nu)``:
    ``log I_x(nu/2, 1/2) - log 2`` with ``x = 1/(1 + t^2)``, from ``log x`` and ``log(1 - x)`` (``_beta_arguments``);
    ``normaliser`` is ``R(nu/2)`` (``_normaliser``), which gives ``log B(nu/2, 1/2)``. The a >> b form is never
    taken here: ``log_cdf`` writes it itself (``_wallace``)."""
    half = 0.5 * df  # log B(h, 1/2) = log(pi)/2 - R(h) - log(h)/2: no betaln compiled beside the normaliser
    log_beta = _LOG_SQRT_PI - normaliser - 0.5 * jnp.log(half)
    return log_betainc(half, jnp.full_like(df, 0.5), log_x, log_1mx, stirling=False, log_beta=log_beta,
                       half=True, gamma_form=False) - LOG_2


def _log1p_ratio_parts(w):
    """``(L(w), L'(w))`` for ``0 <= w < 1``, ``L(w) = log(1 + w)/w`` (1 at 0; ``_log1p_over``) and
    ``L' = r(-s)/(1 + w)^2`` with ``r(t) = (log(1 + t) - t)/t^2`` (``log1pmx_ratio``) and ``s = w/(1 + w)`` below
    ``w = 1/4``, ``L' = (log(1 - s) + s)/w^2`` above. No cancellation: the written
    ``(w/(1 + w) - log1p(w))/w^2`` cancels 1e4-fold at ``w = 1e-4``."""
    small = w < 0.25
    ws, wl = safe_where(small, w, 0.0), safe_where(small, 0.5, w)
    sl = wl / (1.0 + wl)
    value = _log1p_over(w)
    slope = jnp.where(small, log1pmx_ratio(-ws / (1.0 + ws)) / jnp.square(1.0 + ws), (jnp.log1p(-sl) + sl) / jnp.square(wl))
    return value, slope


_log1p_ratio = with_slope(_log1p_ratio_parts)


def _wallace(z, t, df):
    """``v = |z| sqrt((1 - 1/(2 nu)) L(t^2))``, ``t = z/sqrt(nu)``, ``L(w) = log(1 + w)/w`` (``_log1p_ratio``): the
    incomplete beta's a >> b form ``I_x(nu/2, 1/2) = Q(1/2, u) = 2 Phi(-v)``, ``u = v^2/2 = (nu/2 - 1/4) log(1 + t^2)``
    (``incomplete.half_gamma_region``: where it is taken), so ``log F(-|z|) = log Phi(-v)``. Written in ``z`` and
    ``1/nu`` so that its derivative in nu, ``|z| (L/(2 nu^2) - (1 - 1/(2 nu)) L' t^2/nu) / (2 sqrt(...))``, is a
    sum of two positive terms: through the incomplete beta the slopes in ``a = nu/2`` and in ``x`` cancel to
    ``t^2/2`` of each (float32: 2.75 times off at nu = 1e8, z = -40, the prefix's ``a log x`` rounding by 5e-5)."""
    return jnp.abs(z) * jnp.sqrt((1.0 - 0.5 / df) * _log1p_ratio(jnp.square(t)))


def _fisher(z, df, terms, log_big_phi):
    """Fisher's (1925) expansion ``F(z) = Phi(z) - phi(z) sum_k g_k(z)/nu^k`` in log space,
    ``g1 = (z^3 + z)/4``, ``g2 = (3z^7 - 7z^5 - 5z^3 - 3z)/96``,
    ``g3 = (z^11 - 11z^9 + 14z^7 + 6z^5 - 3z^3 - 15z)/384`` (``f_nu / phi = 1 + sum_k a_k(z)/nu^k`` integrated term
    by term: ``g_k' - z g_k = -a_k``; Abramowitz and Stegun 26.7.5's are the quantile's, whose g2 and g3 here left
    the CDF 1e-11 off at nu = 1e7 and its slope in nu 2e-4 off); the first ``terms`` of them, from
    ``log_big_phi = log Phi(z)`` (the caller's, shared with the Normal's branch)."""
    s = jnp.square(z)  # g_k = z P_k(z^2), by Horner's rule; only the first ``terms`` are built
    g = [(1, 1), (-3, -5, -7, 3), (-15, -3, 6, 14, -11, 1)]
    scale = (4, 96, 384)
    total = z * sum(poly([c / scale[k] for c in g[k]], s) / df ** (k + 1) for k in range(terms))
    log_phi = -0.5 * jnp.square(z) - HALF_LOG_2PI
    return log_big_phi + jnp.log1p(-jnp.exp(log_phi - log_big_phi) * total)


# Fisher's expansion replaces the incomplete beta where nu / (nu + z^2) is within rounding of 1 (float32)
# or where the fraction converges slowly (float64: x near its threshold 1 - 3/nu takes over 1e6 steps
# at nu = 1e11): (min nu, max z^4 / nu, terms); the omitted term is below (z^4/nu)^(terms + 1) relative.
_FISHER = {jnp.dtype("float32"): (1e4, 1e-2, 2), jnp.dtype("float64"): (1e7, 1e-3, 3)}


class _Branches(NamedTuple):
    """Which of ``log_cdf``'s branches a df may take (Python bools), and its ``R(nu/2)`` where it is known."""

    normal: bool  # nu = inf somewhere: the Normal's log Phi
    fisher: bool  # nu >= _FISHER's min somewhere: Fisher's expansion
    gamma_form: bool  # nu/2 large enough for the incomplete beta's a >> b form (``incomplete.gamma_form_min``)
    normaliser: float | None  # R(nu/2) of one known finite nu, in float64


def _static_df(df, dtype) -> _Branches:
    """The branches ``log_cdf`` compiles. A traced df (learned) may take any; a df known when traced (a
    family's fixed df, a concrete array: ``mj.student_t(4.0)``) only those its values take, so that
    ``censored(student_t(4.0))`` compiles neither the Normal's, nor Fisher's expansion, nor the a >> b form,
    whose selects would never pick them (each is chosen by the value of nu alone), and its ``R(nu/2)`` is a
    constant. The same values either way."""
    if isinstance(df, jax.core.Tracer):
        return _Branches(True, True, True, None)
    nu = np.asarray(df, dtype)
    min_df = _FISHER.get(jnp.dtype(dtype), (np.inf,))[0]
    one = nu.size == 1 and bool(np.isfinite(nu).all()) and float(nu.reshape(-1)[0]) > 0
    return _Branches(bool(np.any(nu == np.inf)), bool(np.any(nu >= min_df)),
                     bool(np.any(~(0.5 * nu < gamma_form_min(dtype)))),
                     _normaliser_float(0.5 * float(nu.reshape(-1)[0])) if one else None)


def log_cdf(theta: StudentT, y):
    """``log Pr(Y <= y)`` in log space, exact in both tails and differentiable in nu; ``t.logcdf``.

    At ``z = 0`` exactly (where ``log|z|`` has no derivative) the value is ``log 1/2`` and the
    derivative ``2 f(0)``, written out. In float32 with ``nu >= 1e4`` and ``z^4 / nu < 1e-2`` the
    incomplete beta's argument ``nu / (nu + z^2)`` rounds to 1, and in float64 with ``nu >= 1e7`` and
    ``z^4 / nu < 1e-3`` its fraction converges slowly, so Fisher's expansion is used there (``_FISHER``;
    its error is below 1e-5 and 1e-12 relative in those regions; see docs/reliability.md). Where the
    incomplete beta would take its a >> b form (``incomplete.half_gamma_region``) that form is written here as
    ``log Phi(-v)`` (``_wallace``), sharing Fisher's and the Normal's ``log Phi``, so that its slope in nu is
    accurate. A df known when traced compiles only the branches it takes (``_static_df``).
    """
    z = _z(theta, y)
    log_abs_z = _log_abs_z(z, _gap(theta, y, z), theta.scale)
    branches = _static_df(theta.df, z.dtype)
    df = jnp.broadcast_to(theta.df, jnp.shape(z)).astype(z.dtype)
    normal = df == jnp.inf
    df = safe_where(normal, 1.0, df) if branches.normal else df
    zero = z == 0
    limit = jnp.isinf(log_abs_z)  # y = +-inf: the limits 0 and -inf
    regular = ~(zero | limit)
    zr = safe_where(regular & jnp.isfinite(z), z, 1.0)
    t = zr / jnp.sqrt(df)  # only where |t| <= 1; log|t| beyond
    normaliser = _normaliser(0.5 * df) if branches.normaliser is None else branches.normaliser
    log_x, log_1mx = _beta_arguments(t, safe_where(regular, log_abs_z, 0.0) - 0.5 * jnp.log(df))
    near_normal = jnp.zeros_like(normal)
    min_df, max_ratio, terms = _FISHER.get(jnp.dtype(z.dtype), (jnp.inf, 0.0, 0))
    fisher = z.dtype in _FISHER and branches.fisher
    if fisher:
        near_normal = (df >= min_df) & (jnp.square(jnp.square(z)) < max_ratio * df)  # never where normal
    wallace = jnp.zeros_like(normal)  # the incomplete beta's a >> b form, written here (``_wallace``)
    if branches.gamma_form:
        wallace = regular & ~normal & ~near_normal & half_gamma_region(0.5 * df, log_x, log_1mx)
    # the incomplete beta sees harmless inputs (df 1, x = 1/2: a short loop) where another branch is taken: a
    # Fisher entry's nu = 1e6 ran its fraction ~3,000 steps, and every entry of the batch with it
    aside = wallace | near_normal | normal
    fill = jnp.log(jnp.asarray(0.5, log_x.dtype))
    log_x, log_1mx = safe_where(aside, fill, log_x), safe_where(aside, fill, log_1mx)
    lower = _log_lower_tail(safe_where(aside, 1.0, df), log_x, log_1mx, safe_where(aside, 0.0, normaliser))
    log_big_phi = jnp.zeros_like(z)  # not compiled where no branch can be taken
    if branches.normal or fisher or branches.gamma_form:
        zg = safe_where(normal | near_normal, z, 0.0)
        if branches.gamma_form:
            v = _wallace(safe_where(wallace, zr, 1.0), safe_where(wallace, t, 0.5), safe_where(wallace, df, 2.0))
            zg = jnp.where(wallace, -v, zg)
        log_big_phi = log_ndtr(zg)  # one log Phi for the Normal (df = inf), Fisher's expansion and the a >> b form
        lower = jnp.where(wallace, log_big_phi, lower) if branches.gamma_form else lower
    general = jnp.where(z < 0, lower, log1mexp(lower))
    if fisher:
        fisher_value = _fisher(safe_where(near_normal, z, 0.0), safe_where(near_normal, df, min_df), terms,
                               safe_where(near_normal, log_big_phi, -LOG_2))  # Phi(0): inputs of a discarded branch
        general = jnp.where(near_normal, fisher_value, general)
    at_zero = -LOG_2 + 2 * jnp.exp(normaliser - HALF_LOG_2PI) * safe_where(zero, z, 0.0)  # 2 f(0) z
    value = jnp.where(zero, at_zero, jnp.where(limit, jnp.where(z < 0, -jnp.inf, 0.0), general))
    return jnp.where(normal, log_big_phi, value) if branches.normal else value


def log_sf(theta: StudentT, y):
    """``log Pr(Y > y)``: the mirror image of ``log_cdf``; ``t.logsf``."""
    return log_tail(theta, y, True)


def log_tail(theta: StudentT, y, upper):
    """``log_sf`` where ``upper``, ``log_cdf`` elsewhere, in one incomplete beta (the mirror image)."""
    y = jnp.asarray(y)
    return log_cdf(StudentT(theta.df, jnp.where(upper, -theta.loc, theta.loc), theta.scale), jnp.where(upper, -y, y))


def mode(theta: StudentT):
    return jnp.broadcast_to(theta.loc, jnp.broadcast_shapes(jnp.shape(theta.loc), jnp.shape(theta.df)))


def mean(theta: StudentT):
    """``mu`` for nu > 1, undefined (NaN) otherwise; ``t.mean``."""
    return jnp.where(theta.df > 1, theta.loc, jnp.nan)


def variance(theta: StudentT):
    """``s^2 nu / (nu - 2)`` for nu > 2, inf for 1 < nu <= 2, NaN otherwise; ``t.var``."""
    t = theta  # nu / (nu - 2) as 1 / (1 - 2/nu): the Normal's s^2 at nu = inf, not inf / inf
    return jnp.where(t.df > 2, jnp.square(t.scale) / (1 - 2 / t.df), jnp.where(t.df > 1, jnp.inf, jnp.nan))


def sample(key, theta: StudentT):
    """``mu + s T``, ``T = Z sqrt(nu / (2 G))``, ``Z ~ N(0, 1)``, ``G ~ Gamma(nu / 2)`` drawn as ``log G``
    (``jax.random.loggamma``): ``jax.random.t`` divides by G itself, which underflows to 0 for small nu (an inf
    draw 11% of the time at nu = 0.05 in float32, where the t exceeds float32's range 1% of the time); a standard
    normal draw at ``nu = inf``."""
    shape, dtype = jnp.shape(theta.loc), jnp.result_type(theta.loc)
    normal = theta.df == jnp.inf
    half = 0.5 * safe_where(normal, 2.0, theta.df)
    k_normal, k_gamma = jax.random.split(key)
    z = jax.random.normal(k_normal, shape, dtype)
    draw = z * jnp.exp(0.5 * (jnp.log(half) - jax.random.loggamma(k_gamma, half, shape, dtype)))
    return theta.loc + theta.scale * jnp.where(normal, z, draw)


# F_nu,nu = sum_k c_k / nu^k (k >= 4) for large nu, where the difference of trigammas cancels; from
# psi'(x) ~ 1/x + 1/(2x^2) + sum_j B_2j / x^(2j+1). Relative error 1e-14 at nu = 30, 7e-8 at nu = 10.
_FISHER_DF = (3.5, -13.0, 39.5, -119.0, 363.5, -1101.0, 3279.5, -9763.0, 29523.5, -89609.0, 265719.5,
              -778047.0, 2391483.5, -7639237.0)
_FISHER_DF_MIN = {jnp.dtype("float32"): 10.0, jnp.dtype("float64"): 30.0}


def fisher(theta: StudentT):
    """The expected information in ``(df nu, loc mu, scale s)`` (Lange, Little and Taylor 1989), with
    ``t = 1/nu`` (finite at nu = inf, where it is the Normal's with no information on nu):

        F_mu,mu = (nu + 1) / ((nu + 3) s^2)        F_s,s = 2 nu / ((nu + 3) s^2)
        F_nu,s = -2 / ((nu + 1) (nu + 3) s)        F_nu,mu = F_mu,s = 0
        F_nu,nu = (psi'(nu/2) - psi'((nu+1)/2)) / 4 - (nu + 5) / (2 nu (nu + 1) (nu + 3))

    the last by its series in 1/nu for large nu (``_FISHER_DF``).
    """
    nu, s = theta.df, theta.scale
    t = 1.0 / nu
    big = nu >= _FISHER_DF_MIN.get(jnp.result_type(nu), 30.0)
    small = safe_where(~big, nu, 1.0)
    direct = (0.25 * (polygamma(1, 0.5 * small) - polygamma(1, 0.5 * (small + 1)))
              - (small + 5) / (2 * small * (small + 1) * (small + 3)))
    df_df = jnp.where(big, t ** 4 * poly(_FISHER_DF, t), direct)
    df_scale = -2 * t * t / ((1 + t) * (1 + 3 * t) * s)
    zero = jnp.zeros_like(df_df)
    inv_s2 = 1.0 / jnp.square(s)
    return jnp.array([[df_df, zero, df_scale],
                      [zero, (1 + t) / (1 + 3 * t) * inv_s2, zero],
                      [df_scale, zero, 2 / (1 + 3 * t) * inv_s2]])


def to_tfp(theta: StudentT):
    """TFP's twin: ``tfd.StudentT(df, loc, scale)`` (distrax has no Student t)."""
    return _twins.tfd().StudentT(theta.df, theta.loc, theta.scale)


def from_tfp(dist) -> StudentT:
    full = _twins.full(dist)
    return StudentT(full(dist.df), full(dist.loc), full(dist.scale))
def _near_one(nu):
    """Where the t CRPS uses series about nu = 1: ``|nu - 1| < 0.02`` in float64, ``< 0.2`` in float32 (where
    the divided difference loses ``eps / |nu - 1|``); the series' error is below 1e-12 and 1e-7 there."""
    return jnp.abs(nu - 1.0) < (0.02 if jnp.finfo(jnp.result_type(nu)).bits == 64 else 0.2)


def _half_gamma_slope(nu):
    """``(G(nu - 1/2) - G(nu/2)) / h``, ``G(m) = log Gamma(m + 1/2) - log Gamma(m)``, ``h = (nu - 1)/2``; far from
    nu = 1 as ``R(nu - 1/2) - R(nu/2) + log(2 - 1/nu)/2`` (``_normaliser``: no term grows with nu).
    Near nu = 1 (``_near_one``) the midpoint series ``G1(m) + G3(m) h^2/24 + G5(m) h^4/1920`` at
    ``m = (3 nu - 1)/4``, ``Gk(m) = psi^(k-1)(m + 1/2) - psi^(k-1)(m)``."""
    near = _near_one(nu)
    nn = jnp.where(near, nu, 1.0)
    m, h2 = 0.25 * (3.0 * nn - 1.0), jnp.square(0.5 * (nn - 1.0))
    derivative = lambda k: polygamma(k, m + 0.5) - polygamma(k, m)  # noqa: E731  (G^(k+1))
    series = derivative(0) + derivative(2) * h2 / 24.0 + derivative(4) * h2 * h2 / 1920.0
    nf = jnp.minimum(jnp.where(near, 3.0, nu), _DF_CAP)
    difference = (_normaliser(nf - 0.5) - _normaliser(0.5 * nf)
                  + 0.5 * (math.log(2.0) + jnp.log1p(-0.5 / nf)))  # G(m) = R(m) + log(m)/2
    divided = difference / (0.5 * (nf - 1.0))
    return jnp.where(near, series, divided)


def _crps_excess(nu, z):
    """``E(nu, z) = 2 f(z) (nu + z^2)/(nu - 1) - C(nu)``, ``C = 2 sqrt(nu) B(1/2, nu - 1/2) / ((nu - 1) B(1/2, nu/2)^2)``
    and f the standard t density: the two terms of the t CRPS that each have a pole at nu = 1, for every nu > 1/2.

    With ``A = log(2 f (nu + z^2))`` and ``B = log((nu - 1) C)``,
    ``A - B = G(nu - 1/2) - G(nu/2) - (nu - 1)/2 log(1 + z^2/nu)`` (``_half_gamma_slope``) vanishes at nu = 1,
    so ``E = e^B expm1(A - B) / (nu - 1)`` is finite there (the Cauchy CRPS is finite: the integral converges
    for nu > 1/2), and ``B = log nu - log(pi)/2 - log1p(-1/(2 nu))/2 + 2 R(nu/2) - R(nu - 1/2)``
    (``_normaliser``) has no lgamma differences: E tends to the Normal's as nu -> inf."""
    log_abs_t = _log_abs_z(z) - 0.5 * jnp.log(nu)
    q = 0.5 * (_half_gamma_slope(nu) - _log1p_square(z / jnp.sqrt(nu), log_abs_t))  # (A - B) / (nu - 1)
    x = (nu - 1.0) * q
    log_b = (jnp.log(nu) - _LOG_SQRT_PI - 0.5 * jnp.log1p(-0.5 / nu)
             + 2.0 * _normaliser(0.5 * nu) - _normaliser(nu - 0.5))
    near = _near_one(nu)
    tiny = jnp.abs(x) < 1e-30
    exprel = jnp.where(tiny, 1.0, jnp.expm1(x) / jnp.where(tiny, 1.0, x))  # expm1(x) / x
    return jnp.exp(log_b) * jnp.where(near, q * exprel, jnp.expm1(x) / jnp.where(near, 1.0, nu - 1.0))


def crps(theta: StudentT, y):
    """``s [z (2F(z) - 1) + 2 f(z) (nu + z^2)/(nu - 1) - 2 sqrt(nu) B(1/2, nu - 1/2) / ((nu - 1) B(1/2, nu/2)^2)]``
    for nu > 1/2 (the formula continues analytically below nu = 1, where the integral still converges);
    infinite for nu <= 1/2. ``2F(z) - 1 = sign(z) (1 - 2F(-|z|))`` from the lower tail (``log_cdf``); the last
    two terms by ``_crps_excess`` (finite at nu = 1 and as nu -> inf, where they tend to the Normal's).
    The ratios of Gamma functions come from Stirling differences (``_normaliser``), not ``betaln``
    differences (``betaln(1/2, 5e7)`` is -8.9 with an error of 1e-6 in float32).
    scoringrules' ``crps_t``. Reference: Jordan, Krueger and Lerch (2019), J. Stat. Softw. 90."""
    ok = theta.df > 0.5
    nu = jnp.where(ok, jnp.minimum(theta.df, _DF_CAP), 2.0)
    z = (y - theta.loc) / theta.scale
    standard = StudentT(nu, jnp.zeros_like(z), jnp.ones_like(z))
    centred = jnp.sign(z) * (1.0 - 2.0 * jnp.exp(log_cdf(standard, -jnp.abs(z))))
    value = theta.scale * (z * centred + _crps_excess(nu, z))
    return jnp.where(ok, value, jnp.inf)


def _central_series(df, z, terms: int):
    """``S`` with ``F(z) - 1/2 = z f(z) S`` for the standard t: ``S = 2F1((nu + 1)/2, 1; 3/2; x)``, ``x = z^2 /
    (nu + z^2)`` (Abramowitz and Stegun 26.7.1 with 26.5.23: ``I_x(1/2, nu/2) = 2 sqrt(x) (1 - x)^(nu/2) /
    B(1/2, nu/2) 2F1(...)``, and ``sqrt(x) (1 - x)^(nu/2) / B = |z| f(z)``), summed term by term: each term is the
    last times ``(nu x/2 + (k + 1/2) x) / (k + 3/2)``, all positive (no cancellation). ``nu x / 2 = (z^2/2) / (1 +
    z^2/nu)``: the Normal's ``1F1(1; 3/2; z^2/2)`` at ``nu = inf``. For ``x <= 1/4`` and ``nu x/2 <= 1`` the terms
    fall by 4 from the tenth on: ``terms`` of them are exact to the dtype. scipy: ``(t.cdf(z, nu) - 1/2) / (z
    t.pdf(z, nu))``."""
    t2 = jnp.where(df == jnp.inf, 0.0, jnp.square(z) / df)
    x = t2 / (1 + t2)
    bx = 0.5 * jnp.square(z) / (1 + t2)
    term, total = jnp.ones_like(z), jnp.ones_like(z)
    for k in range(terms):
        term = term * (bx + (k + 0.5) * x) / (k + 1.5)
        total = total + term
    return total, x, bx


_CENTRAL = 1 / 16  # |q - 1/2| below which the bisection's value is polished (beyond, its error is below 8 eps)


def _centred(bisection, upper: bool):
    """``bisection(theta, q)`` (the registry's quantile, or with ``upper`` its isf, by bisection of the tails,
    ``_invert``) with the centre exact. At ``q = 1/2`` the value is ``loc`` (``F(loc) = 1/2`` for the symmetric
    t). Within ``|q - 1/2| < 1/16`` one Newton step on the central probability ``G(z) = F(z) - 1/2 = d`` with
    ``d = q - 1/2`` (``1/2 - p`` for the isf: exact, by Sterbenz): the bisection ends where ``F``'s rounding, an
    absolute ``eps / 2``, stops it, which near the median is all of ``d`` (float32 ``q = 0.5 - 9e-8`` was 17% off,
    ``0.5 - 3e-8`` 50%; float64 ``0.5 + 1e-15`` 3%). With ``G = z f(z) S`` (``_central_series``) the step
    ``z - (G - d) / f`` is ``d / f(z) - z (S - 1)``: a few roundings of z. Where the series is not short (``x >
    1/4`` or ``nu x / 2 > 1``: a df below about 0.05) and beyond 1/16, both tails, the bisection's value. The
    derivative is the bisection's everywhere (the implicit function's, ``dq / f``; the step is not
    differentiated). scipy: ``t.ppf`` / ``t.isf``; ``t.ppf(0.5, df) = 0``."""
    def centred(theta, q):
        y = bisection(theta, q)
        shape, dtype = y.shape, y.dtype
        loc, scale, df = (jnp.broadcast_to(jnp.asarray(v, dtype), shape) for v in (theta.loc, theta.scale, theta.df))
        q = jnp.broadcast_to(jnp.asarray(q, dtype), shape)
        d = (0.5 - q) if upper else (q - 0.5)
        central = (jnp.abs(d) < _CENTRAL) & jnp.isfinite(y) & (df > 0) & (scale > 0)
        yc, loc_c, scale_c, dfc, dc = (jax.lax.stop_gradient(safe_where(central, v, w))
                                       for v, w in ((y, 1.0), (loc, 0.0), (scale, 1.0), (df, 1.0), (d, 0.0)))
        z = (yc - loc_c) / scale_c
        normal = dfc == jnp.inf
        density = jnp.exp(jnp.where(normal, -0.5 * jnp.square(z) - HALF_LOG_2PI,
                                    standard_log_prob(z, safe_where(normal, 1.0, dfc))))
        series, x, bx = _central_series(dfc, z, 40 if jnp.dtype(dtype).itemsize >= 8 else 24)
        polished = loc_c + scale_c * (dc / density - z * (series - 1.0))
        central = central & (x <= 0.25) & (bx <= 1.0)
        y = jnp.where(central, y + (polished - yc), y)  # y's derivative, the polished value
        slope = jnp.where(jnp.isfinite(y), y - jax.lax.stop_gradient(y), 0.0)  # 0, with y's derivative
        return jnp.where(q == 0.5, jax.lax.stop_gradient(loc) + slope, y)
    return centred


_TAILS = registry.Ops(log_prob=log_prob, log_cdf=log_cdf, log_sf=log_sf, log_tail=log_tail, event_shape=loc_shape)
_BISECTION = _invert.fallbacks(_TAILS)  # the quantile and isf every type with tails gets, before the median's fix

registry.register(StudentT, registry.Ops(
    domain={"df": "positive", "loc": "real", "scale": "positive"},
    compiled=False,  # a concrete df picks log_cdf's branches and a float64 normaliser (_static_df): op by op
    log_prob=log_prob,
    quantile=_centred(_BISECTION["quantile"], upper=False),
    isf=_centred(_BISECTION["isf"], upper=True),
    mode=mode,
    mean=mean,
    variance=variance,
    sample=sample,
    entropy=entropy,
    log_cdf=log_cdf,
    log_sf=log_sf,
    log_tail=log_tail,
    event_shape=loc_shape,
    fisher=fisher,
    to_tfp=to_tfp,
    tfp_names=('StudentT',),
    from_tfp=from_tfp,
    crps=crps,
))
