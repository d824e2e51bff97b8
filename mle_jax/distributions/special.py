"""Stable special functions: differences of log-gamma and log-beta without differences of huge values.

The densities of the Student t, negative binomial, Gamma and Beta need ``lgamma(a + d) - lgamma(a)``
and ``log B(a, b)`` at arguments up to 1e8 and more. Written as differences of ``lgamma`` these lose
every digit in float32 (``lgamma(1e8)`` is 1.7e9, whose float32 spacing is 128) and 1e-7 in float64
(JAX's ``betaln(1, 12.18)``). Here, for arguments of at least ``STIRLING_MIN`` = 10, each difference is
rewritten through Stirling's series so that only terms of the size of the result are ever added:

    lgamma(x) = (x - 1/2) log x - x + log(2 pi)/2 + corr(x),
    corr(x)   = 1/(12x) - 1/(360x^3) + 1/(1260x^5) - ...           (|error| < 1e-14 for x >= 10)
    lgamma(a + d) - lgamma(a) = d log a + a (log1p(t) - t) + (d - 1/2) log1p(t) + corr(a + d) - corr(a),
                                t = d / a

and ``psi(x) - log x = -1/(2x) - 1/(12x^2) + ...``. Below 10 the plain differences are exact enough
(their terms are below 15 in size). Every branch is a "double where": the unused branch is fed a
harmless argument, so gradients stay finite.

The module also holds the constants and helpers every distribution module shares (``HALF_LOG_2PI``,
``poly``, ``safe_where``, Mills' asymptotic series ``mills_series`` and its reciprocal ``mills_inverse_series``)
and the special functions of the closed-form CRPS (``one_minus_bessel_tail``, ``hyp2f1_half``).

scipy equivalent: ``scipy.special.betaln``, ``gammaln``, ``digamma``, ``log1p``, ``i0e``, ``hyp2f1``.
Reference: Abramowitz and Stegun 6.1.40-6.1.42 and 6.3.18; DiDonato and Morris (1992) for log B.
The accuracy promised for each function is in docs/reliability.md.
"""

from __future__ import annotations

import math
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import digamma, gammaln, i0e, i1e

#: ``log(2 pi) / 2``, the Normal's constant: defined here only.
HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
STIRLING_MIN = 10.0

# corr(x) = sum_n _CORR[n] / x^(2n + 1); psi(x) - log x + 1/(2x) = -sum_n _PSI[n] / x^(2n + 2)
_CORR = (1 / 12, -1 / 360, 1 / 1260, -1 / 1680, 1 / 1188, -691 / 360360)
_PSI = (1 / 12, -1 / 120, 1 / 252, -1 / 240, 1 / 132, -691 / 32760)


def poly(coeffs, x):
    """``sum_n coeffs[n] x^n`` by Horner's rule."""
    out = jnp.zeros_like(x)
    for c in reversed(coeffs):
        out = out * x + c
    return out


# Laplace's asymptotic series of Mills' ratio: v Phi(-v) / phi(v) = S(1/v^2), S(z) = sum_n (-1)^n (2n - 1)!! z^n.
# From mills_min on, 12 terms leave a relative error below the first omitted term, 23!!/v^24: 3e-13 at v = 10
# (float32), 2e-20 at v = 20 (float64)
MILLS = tuple((-1) ** n * float(np.prod(np.arange(1, 2 * n, 2))) for n in range(12))


def _reciprocal_series(coeffs):
    """The coefficients of ``1 / sum_n coeffs[n] z^n`` (``coeffs[0] = 1``), exactly, term by term."""
    out = [Fraction(1)]
    for n in range(1, len(coeffs)):
        out.append(-sum((Fraction(coeffs[k]) * out[n - k] for k in range(1, n + 1)), Fraction(0)))
    return tuple(float(c) for c in out)


# 1/S(z) = 1 + z - 2 z^2 + 10 z^3 - 74 z^4 + 706 z^5 - ...: Mills' ratio phi(v)/Phi(-v) = v / S = v (1/S) with no
# division by S. From mills_min on, 12 terms leave 2e-20 at v = 20 (float64) and the first 8 (MILLS_TERMS_32)
# 1.4e-10 at v = 10 (float32), against mpmath
MILLS_INVERSE = _reciprocal_series(MILLS)
MILLS_TERMS_32 = 8


def mills_min(dtype):
    """Where Mills' asymptotic series takes over: ``v >= 10`` in float32 (and narrower), ``v >= 20`` in float64."""
    return 20.0 if jnp.dtype(dtype).itemsize >= 8 else 10.0


def mills_series(u):
    """``S = v Phi(-v) / phi(v) = 1 - u + 3 u^2 - ... + (-1)^11 21!! u^11`` at ``u = 1/v^2``, for ``|v| >= mills_min``
    (Laplace's asymptotic series; Abramowitz and Stegun 26.2.12): Mills' ratio ``phi(v)/Phi(-v)`` is ``v / S``
    there, never ``exp`` of a difference of two exponents of size ``v^2/2`` (which keeps only their rounding)."""
    return poly(MILLS, u)


def mills_inverse_series(u):
    """``1/S = Phi(v) / (v Phi(-v)) = 1 + u - 2 u^2 + 10 u^3 - 74 u^4 + ...`` at ``u = 1/v^2``, for ``|v| >=
    mills_min``: Mills' ratio ``phi(v)/Phi(-v)`` is ``v / S = v (1/S)``, a product where ``mills_series`` takes a
    division. Its first 12 terms in float64, 8 in float32 and narrower (``MILLS_INVERSE``: 2e-20 at v = 20, 1.4e-10
    at v = 10). Reference: Abramowitz and Stegun 26.2.12-26.2.13 (the series of ``R(v) = Phi(-v)/phi(v)``)."""
    wide = jnp.dtype(jnp.result_type(u)).itemsize >= 8
    return poly(MILLS_INVERSE if wide else MILLS_INVERSE[:MILLS_TERMS_32], u)


def powers(t, n):
    """``(t^0, t^1, ..., t^(n-1))`` along a new last axis, by doubling (``log2 n`` products): a polynomial as one
    contraction ``sum(powers(t, n) * coeffs, -1)``, whose derivatives compile to a few operations where Horner's
    rule unrolls ``2n`` of them (and reverse mode its transpose)."""
    out = jnp.ones(jnp.shape(t) + (1,), jnp.result_type(t))
    step = t
    while out.shape[-1] < n:
        out = jnp.concatenate([out, out * step[..., None]], axis=-1)
        step = step * step
    return out[..., :n]


def aligned(*params, y):
    """The parameters and the target ``y`` broadcast to one shape in the parameters' dtype: a density's
    arguments, elementwise from there on."""
    dtype = jnp.result_type(*params)
    shape = jnp.broadcast_shapes(*(jnp.shape(v) for v in params), jnp.shape(y))
    return tuple(jnp.broadcast_to(jnp.asarray(v, dtype), shape) for v in (*params, y))


def nonnegative(x):
    """``max(x, 0)`` with slope 1 at ``x = 0``: a divergence clamped against rounding (>= 0 exactly) keeps its own
    derivatives where it is 0, at ``p = r``, whose Hessian there is the Fisher information (``jnp.maximum``'s slope at
    the tie is 1/2: the KL's Hessian at ``p = r`` was half of it). NaN stays NaN."""
    return jnp.where(x < 0, jnp.zeros_like(x), x)


def safe_where(use, x, fill):
    """``x`` where ``use`` holds, else ``fill``: the input of a branch that ``where`` will discard (the
    "double where": ``where(use, f(safe_where(use, x, 1.0)), g(...))`` keeps f's NaN out of the gradient)."""
    if isinstance(x, (int, float)):  # a Python number takes fill's dtype: safe_where(small, 1.0, h) keeps a float32
        return jnp.where(use, x, fill)  # h float32 under x64 (jnp.result_type(1.0) is float64 there)
    return jnp.where(use, x, jnp.asarray(fill, jnp.result_type(x)))


def with_slope(parts):
    """``f(u) = parts(u)[0]`` with the derivative ``parts(u)[1]``: a custom JVP for a function of one argument
    whose form gives its value and slope together (a branch or series of its own), so that autodiff carries the
    slope, not the form's linearisation. Differentiable again where ``parts`` is."""
    @jax.custom_jvp
    def f(u):
        return parts(u)[0]

    @f.defjvp
    def f_jvp(primals, tangents):
        value, slope = parts(primals[0])
        return value, slope * tangents[0]
    return f


def log1pmx(t):
    """``log(1 + t) - t`` without cancellation.

    For ``|t| < 1/4``, with ``s = t / (2 + t)`` (so ``log(1 + t) = 2 atanh(s)``):
    ``log1pmx(t) = -t s + 2 s^3 (1/3 + s^2/5 + s^4/7 + ...)``, every term small and of one sign.
    """
    small = jnp.abs(t) < 0.25
    series = log1pmx_series(safe_where(small, t, 0.0))
    tl = safe_where(~small, t, 1.0)
    return jnp.where(small, series, log1p(tl) - tl)


def log1pmx_series(t, terms=12):
    """``log1pmx`` for ``|t| < 1/4`` only (the series; no branch). ``terms`` of ``P``; the first left out is
    ``s^(2 terms + 1) / (2 terms + 3)`` of the leading ``-t s`` (``|s| <= 1/7``): below 1e-19 with 10 (float64), 4e-11
    with 5 (float32); the default 12 is more than either needs."""
    s, series = log1pmx_p(t, terms)
    return -t * s + 2.0 * s ** 3 * series


def log1pmx_ratio(t):
    """``(log(1 + t) - t) / t^2`` for ``|t| < 1/4``: ``-1/(2 + t) + 2 t P(s^2)/(2 + t)^3`` (the series
    of ``log1pmx_series`` divided by ``t^2``), smooth through ``t = 0`` where it is ``-1/2``."""
    return -1.0 / (2.0 + t) + 2.0 * t / (2.0 + t) ** 3 * log1pmx_p(t)[1]


def log1pmx_p(t, terms=12):
    """``(s, P(s^2))``, ``s = t/(2 + t)``, ``P(z) = 1/3 + z/5 + z^2/7 + ...`` (``terms`` terms): the series
    ``log(1 + t) - t = -t s + 2 s^3 P(s^2)`` (``log1pmx_series``), for ``|t| < 1/4`` (``|s| <= 1/7``). One home for
    the forms built on it: ``log1pmx_ratio``, and Temme's ``(log1pmx(t) + t^2/2)/t^3 = 1/(2 (2 + t)) + 2 P/(2 + t)^3``
    (``incomplete._log_betainc_temme``)."""
    s = t / (2.0 + t)
    return s, poly(_step_coeffs(terms), jnp.square(s))


def expm1mx(u):
    """``exp(u) - 1 - u`` without cancellation (a series for ``|u| < 0.1``)."""
    small = jnp.abs(u) < 0.1
    us = safe_where(small, u, 0.0)
    series = jnp.square(us) * poly([1 / math.factorial(n) for n in range(2, 10)], us)
    ul = safe_where(~small, u, 1.0)
    return jnp.where(small, series, jnp.expm1(ul) - ul)


def exprel(w):
    """``(e^w - 1) / w`` (1 at w = 0): its Taylor series ``sum_n w^n / (n + 1)!`` for ``|w| < 0.1`` (10 terms: no
    0/0, and a derivative without the cancellation of ``(w e^w - expm1(w)) / w^2``), ``expm1(w) / w`` elsewhere.
    ``scipy.special.exprel``."""
    small = jnp.abs(w) < 0.1
    series = poly([1 / math.factorial(n + 1) for n in range(10)], safe_where(small, w, 0.0))
    wl = safe_where(~small, w, 1.0)
    return jnp.where(small, series, jnp.expm1(wl) / wl)


def deviance(k, m, log_m, log_k=None, diff=None):
    """``k log(k/m) - k + m >= 0`` (a Poisson deviance term) for ``k > 0``, finite ``m >= 0``: ``-k log1pmx(w)``,
    ``w = (m - k)/k``, by its series within a quarter of ``k``, where its terms would cancel; ``k (w - log(m/k))``
    elsewhere, the log of the ratio (rounded once), never ``log k - log m`` (at k = 1e9 those are 20.7 and 21.0, and
    their difference kept 300 roundings of the deviance just past the quarter: 2e-5 relative in float32). One
    division: ``q = m/k`` below ``m = k/2`` (``w = q - 1``, not small there), else ``q = w`` (``m - k`` is exact up to
    ``2k``) and ``log1p(w)`` as ``log(u) - ((u - 1) - w)/u``, ``u = |1 + w|`` rounded (the rounding of ``1 + w`` undone
    to first order: one log, as before, and not XLA's float64 ``log1p``, 120 ulps off near w = -0.41; the ``abs``
    keeps XLA from folding ``(1 + w) - 1`` to ``w``, which drops the correction in a compiled program). The caller's
    ``log m`` serves only where ``m/k`` is below the dtype's smallest normal (``m`` may underflow), with ``log k`` (the
    caller's where it has one). Within 10 roundings of the deviance everywhere (its condition in ``m``, ``|m - k| /
    dev``, is 9 at the quarter; ``log(1 + w)`` kept 1.5 eps of ``1 + w``'s rounding there: 19 roundings). ``diff = m - k`` where the caller has it without ``m``'s rounding (default ``m - k``): a saddle point's
    ``m = n pi`` with ``n = k + y`` rounded keeps ``eps n`` of ``m - k``, all of it where k is far above the mean (the
    negative binomial at r = 1e20, y = 3e13 in float32 was 4e5 off), while ``y (1 - pi) - k pi`` keeps ``eps y``."""
    low = m < 0.5 * k
    q = jnp.where(low, m, m - k if diff is None else diff) / k
    near = (jnp.abs(q) < 0.25) & ~low
    ratio = jnp.where(low, q, jnp.abs(1.0 + q))  # abs (1 + q > 0 here): XLA folds (1 + q) - 1 to q, undoing the correction
    normal = ratio >= jnp.finfo(jnp.result_type(ratio)).tiny
    log_k = jnp.log(k) if log_k is None else log_k
    log_ratio = jnp.where(normal, jnp.log(safe_where(normal, ratio, 1.0)), safe_where(normal, 0.0, log_m) - log_k)
    log_ratio = log_ratio - jnp.where(low, 0.0, ((ratio - 1.0) - q) / ratio)  # log1p(q): 1 + q's rounding undone
    terms = 10 if jnp.dtype(jnp.result_type(q)).itemsize >= 8 else 5
    series = -k * log1pmx_series(safe_where(near, q, 0.0), terms)
    return jnp.where(near, series, k * (jnp.where(low, q - 1.0, q) - log_ratio))


def log1p(x):
    """``log(1 + x)`` to a rounding or two in every dtype. JAX's float64 ``log1p`` (XLA's) is up to 128 ulps off for
    ``x`` in ``[-0.4142, -0.35]`` (mpmath; float32 is within 2 ulps everywhere): there, for ``-1/2 <= x <= -1/4``,
    ``u = 1 + x`` (one rounding) and ``log1p(x) = log u - ((u - 1) - x)/u`` (``u - 1`` exact by Sterbenz: the
    correction is ``1 + x``'s rounding, to first order). ``u`` is taken as ``|1 + x|`` (the same number): XLA's
    simplifier folds ``(x + 1) - 1`` to ``x``, which would drop the correction in a compiled program (``log u`` alone
    is 2 ulps off). ``jnp.log1p`` elsewhere and in float32. scipy equivalent: ``numpy.log1p``."""
    x = jnp.asarray(x)
    if jnp.dtype(jnp.result_type(x)).itemsize < 8:
        return jnp.log1p(x)
    mid = (x >= -0.5) & (x <= -0.25)
    xm = safe_where(mid, x, -0.375)
    u = jnp.abs(1.0 + xm)
    return jnp.where(mid, jnp.log(u) - ((u - 1.0) - xm) / u, jnp.log1p(x))


@jax.custom_jvp
def log_ratio(a, b):
    """``log(a/b)`` for ``a, b > 0``, exact to a few roundings of itself: ``log1p((a - b)/b)`` within a factor 2 (``a -
    b`` is exact there), ``log(a/b)`` where the ratio is a normal float, ``log a - log b`` only where it would
    under- or overflow (``|log(a/b)| > 87`` in float32). ``log a - log b`` alone keeps ``eps |log a|`` of the
    difference: at a = 1e-20 (1 + 1e-8), b = 1e-20, 2e-7 relative in a scale family's KL of 5e-17.

    Its derivative is written, ``da/a - db/b``: autodiff of ``a/b`` forms ``a/b^2``, and ``b^2`` underflows float32
    below b = 1e-19 (a Weibull's log density at scale 1e-20 had a NaN slope in the scale)."""
    ratio = a / b
    finfo = jnp.finfo(jnp.result_type(ratio))
    near = (ratio >= 0.5) & (ratio <= 2.0)
    normal = (ratio >= finfo.tiny) & (ratio <= finfo.max)
    close = log1p(safe_where(near, (a - b) / b, 0.0))
    direct = jnp.log(safe_where(normal, ratio, 1.0))
    return jnp.where(near, close, jnp.where(normal, direct, jnp.log(a) - jnp.log(b)))


@log_ratio.defjvp
def _log_ratio_jvp(primals, tangents):
    a, b = primals
    da, db = tangents
    return log_ratio(a, b), _reciprocal(a) * da - _reciprocal(b) * db


@jax.custom_jvp
def _reciprocal(a):
    """``1/a``, its derivative ``-r (r da)``, ``r = 1/a``: autodiff's ``-da / a^2`` is 0/0 where ``a^2`` underflows
    (float32 a < 1e-19), and so log_ratio's Hessian was NaN off its diagonal, whose entries are 0."""
    return 1 / a


@_reciprocal.defjvp
def _reciprocal_jvp(primals, tangents):
    (a,), (da,) = primals, tangents
    r = 1 / a
    return r, -r * (r * da)


def log1mexp(x):
    """``log(1 - exp(x))`` for ``x <= 0`` (Maechler, 2012): exact near 0 and in the far tail."""
    near = x > -math.log(2.0)
    xn = safe_where(near, x, -1.0)
    xf = safe_where(~near, x, -1.0)
    return jnp.where(near, jnp.log(-jnp.expm1(xn)), log1p(-jnp.exp(xf)))


def stirling_corr(x):
    """``lgamma(x) - [(x - 1/2) log x - x + log(2 pi)/2]`` for ``x >= 10``."""
    r = 1.0 / x
    return r * poly(_CORR, jnp.square(r))


def _step_coeffs(terms):
    return tuple(1.0 / (2 * n + 3) for n in range(terms))


def stirling_corr_small(x):
    """``corr(x) = lgamma(x) - [(x - 1/2) log x - x + log(2 pi)/2]`` for ``x >= 1`` (``stirling_corr`` for
    ``x >= 10`` only), with no term larger than itself: the upward recurrence to ``b = x + k >= 10``,

        corr(x) = corr(x + 1) + (x + 1/2) log1p(1/x) - 1 = corr(b) + sum_{j<k} D(x + j),

    whose step is, with ``t = 1 / (2x + 1)`` (``log1p(1/x) = 2 atanh t``), ``D(x) = atanh(t)/t - 1 = t^2/3 + t^4/5
    + ...`` (``t^2 <= 1/9``; 8 terms for float32, 17 for float64: the first left out below their rounding). The
    plain ``(x + 1/2) log1p(1/x) - 1`` loses its leading 1 (an ulp of 1 per step). Reference: Loader (2000), *Fast
    and accurate computation of binomial probabilities* (the Stirling error ``stirlerr``)."""
    coeffs = _step_coeffs(8 if jnp.dtype(jnp.result_type(x)).itemsize <= 4 else 17)
    b, total = x, jnp.zeros_like(x)
    for _ in range(int(STIRLING_MIN) - 1):  # x >= 1: at most 9 steps reach 10
        below = b < STIRLING_MIN
        t2 = jnp.square(1.0 / (2.0 * b + 1.0))
        total = total + jnp.where(below, t2 * poly(coeffs, t2), 0.0)
        b = jnp.where(below, b + 1.0, b)
    return total + stirling_corr(b)


def digamma_minus_log(x):
    """``psi(x) - log x``; the asymptotic series for ``x >= 10``, ``digamma(x) - log x`` below."""
    big = x >= STIRLING_MIN
    series = digamma_minus_log_series(safe_where(big, x, STIRLING_MIN))
    xs = safe_where(~big, x, 1.0)
    return jnp.where(big, series, digamma(xs) - jnp.log(xs))


def digamma_minus_log_series(x):
    """``psi(x) - log x`` for ``x >= 10`` only (the asymptotic series; no branch, no ``digamma``)."""
    r2 = jnp.square(1.0 / x)
    return -0.5 / x - r2 * poly(_PSI, r2)


def one_minus_x_digamma_minus_log(x):
    """``(1 - x) (psi(x) - log x)`` for ``x >= 10``: with ``r = 1/x`` and the series ``D = -r/2 - r^2 P(r^2)``
    (``digamma_minus_log_series``), ``1/2 - r/2 + r (1 - r) P(r^2)``, the product expanded (``x r = 1``). Its
    derivative, ``O(1/x^2)``, is then that of a function of ``r`` alone; the product's, ``-D + (1 - x) D'``, is two
    terms of ``1/(2x)`` cancelling, and ``D' = 1/(2x^2)`` underflows first (float32 at x = 1e20: ``1/x`` for the
    derivative where it is ``O(1/x^2)``: a Gamma entropy's slope in its shape 2x too large)."""
    r = 1.0 / x
    return 0.5 - 0.5 * r + r * (1.0 - r) * poly(_PSI, jnp.square(r))


def digamma_gap(x, d):
    """``psi(x + d) - psi(x)`` for ``x > 0``, ``d >= 0``: ``log1p(d/x) + D(x + d) - D(x)`` with ``D = psi - log``
    by its series for ``x >= 10`` (from the increment: ``1e8 + 1`` rounds to ``1e8`` in float32, ``log1p(1e-8)``
    does not), the two ``digamma`` below; two ``digamma`` per element, where two ``digamma_minus_log`` cost
    four and two logs."""
    big = x >= STIRLING_MIN
    xb, db = safe_where(big, x, STIRLING_MIN), safe_where(big, d, 1.0)
    series = jnp.log1p(db / xb) + digamma_minus_log_series(xb + db) - digamma_minus_log_series(xb)
    xs, ds = safe_where(~big, x, 1.0), safe_where(~big, d, 1.0)
    return jnp.where(big, series, digamma(xs + ds) - digamma(xs))


def _stirling_rest(d, a, positive=False):
    """``lgamma(a + d) - lgamma(a) - d log a`` for ``a, a + d >= 10``: ``a log1pmx(t) + (d - 1/2) log1p(t) + corr(a +
    d) - corr(a)``, ``t = d/a``. ``log1p`` (XLA's float64 ``log1p`` is 110 ulps off for t in (-0.414, -0.293): the
    Gamma KL between shapes 0.6 a and a), ``jnp.log1p`` where the caller knows ``d >= 0`` (``positive``)."""
    t = d / a
    log1p_t = jnp.log1p(t) if positive else log1p(t)
    return a * log1pmx(t) + (d - 0.5) * log1p_t + stirling_corr(a + d) - stirling_corr(a)


def _both_large(d, a):
    return (a >= STIRLING_MIN) & (a + d >= STIRLING_MIN)


def lgamma_diff(d, a, positive=False):
    """``lgamma(a + d) - lgamma(a)`` for ``a > 0``, ``a + d > 0``, exact for huge ``a`` (1e8 in float32);
    ``positive``: the caller knows ``d >= 0`` (``_stirling_rest``'s plain ``log1p``)."""
    big = _both_large(d, a)
    ab, db = safe_where(big, a, STIRLING_MIN), safe_where(big, d, 0.0)
    stirling = db * jnp.log(ab) + _stirling_rest(db, ab, positive)
    as_, ds = safe_where(~big, a, 1.0), safe_where(~big, d, 0.0)
    return jnp.where(big, stirling, gammaln(as_ + ds) - gammaln(as_))


def _log1pmx_of(d, a, a_plus_d):
    """``(L, L - t)`` with ``t = d/a`` and ``L = log((a + d)/a)``: ``log1p(t)`` and ``log1pmx(t)`` from ``d`` itself
    (``(a + d) - a`` loses the digits of a small ``d``), ``log((a + d)/a)`` where ``t < -1/2`` (``1 + t`` would
    cancel: ``a + d`` near 0)."""
    t = d / a
    low = t < -0.5
    tl = safe_where(low, 0.0, t)
    log_part = jnp.where(low, log_ratio(a_plus_d, a), log1p(tl))
    return t, log_part, jnp.where(low, log_part - t, log1pmx(tl))


def corr_bregman(d, a, a_plus_d):
    """``corr(a + d) - corr(a) - d corr'(a)`` for ``a, a + d >= 10`` (``corr`` Stirling's, ``sum_k c_k a^-m``,
    ``m = 2k - 1``): each term ``c_k a^-m h_m(t)``, ``h_m(t) = (1 + t)^-m - 1 + m t = expm1mx(-m L) - m log1pmx(t)``
    (two terms >= 0, ``L = log1p(t)``, ``t = d/a``) within ``|t| < 1/4``, the plain difference beyond (``corr(a)``
    is at most ``1/(12 a)`` of a divergence of at least ``a t^2/3``)."""
    t, log_part, lmx = _log1pmx_of(d, a, a_plus_d)
    near = jnp.abs(t) < 0.25
    ln, lmxn = safe_where(near, log_part, 0.0), safe_where(near, lmx, 0.0)
    r = 1.0 / a
    r2 = jnp.square(r)
    series, power = jnp.zeros_like(t), r
    for k, c in enumerate(_CORR):
        m = 2 * k + 1
        series = series + c * power * (expm1mx(-m * ln) - m * lmxn)
        power = power * r2
    af = safe_where(near, STIRLING_MIN, a_plus_d)
    plain = stirling_corr(af) - stirling_corr(a) + d * r2 * poly(_PSI, r2)
    return jnp.where(near, series, plain)


def lgamma_bregman(d, a, a_plus_d):
    """``B(d, a) = lgamma(a + d) - lgamma(a) - d psi(a)`` (>= 0, the Bregman divergence of lgamma) as a sum of terms
    >= 0, never a difference of lgammas: the building block of the Gamma, Beta and Dirichlet KL divergences.

    Below 10 (20 in float64, where the bracket's series, cut at six terms, kept 50 ulps at 10) in ``min(a, a + d)``,
    the recurrence ``lgamma(x + 1) = lgamma(x) + log x``, ``psi(x + 1) = psi(x) + 1/x`` steps both up to ``A = a + k``:

        B(d, a) = B(d, a + k) - sum_{j<k} log1pmx(d / (a + j)),

    and from there Stirling's series, with ``t = d/A``, ``L = log1p(t)``:

        B(d, A) = A ((1 + t) L - t) - log1pmx(t)/2 + [corr(A + d) - corr(A) - d corr'(A)],

    ``(1 + t) L - t = log1pmx(t) + t L`` (about ``t^2/2``), the bracket ``corr_bregman``. Nothing cancels at a small
    ``d``: the plain difference of lgammas kept ``eps lgamma(a)`` (KL(Gamma(9.99, 1) || Gamma(10, 1.0001)) 7.8e-6
    for 4.3e-6 in float32) and Stirling's ``d (log A - psi(A))`` two terms of ``d/(2A)``.

    ``a_plus_d`` is ``a + d`` as the caller knows it best (a concentration itself): in float32
    ``1e7 + (1e-3 - 1e7)`` is 0, and ``lgamma`` of it inf."""
    a, d, top = jnp.broadcast_arrays(a, d, a_plus_d)
    start = 2.0 * STIRLING_MIN if jnp.dtype(jnp.result_type(a)).itemsize >= 8 else STIRLING_MIN

    def step(_, carry):
        total, a, top = carry
        below = jnp.minimum(a, top) < start
        total = total - jnp.where(below, _log1pmx_of(d, a, top)[2], 0.0)
        return total, jnp.where(below, a + 1.0, a), jnp.where(below, top + 1.0, top)

    # min(a, a + d) > 0: so many steps reach the start (a loop, not unrolled: a fifth of the compile)
    steps, a, top = jax.lax.fori_loop(0, int(start), step, (jnp.zeros_like(a), a, top))
    _, log_part, lmx = _log1pmx_of(d, a, top)
    return steps + a * (lmx + d / a * log_part) - 0.5 * lmx + corr_bregman(d, a, top)


def _betaln_stirling(x, y):
    """``log B(x, y)`` by Stirling's series for all three ``lgamma`` (both arguments >= 10), with
    ``p = x / (x + y)``: ``log(2 pi)/2 + (x - 1/2) log p + (y - 1/2) log(1 - p) - log(x + y)/2 + corr(x)
    + corr(y) - corr(x + y)``."""
    p = x / (x + y)
    return (HALF_LOG_2PI + (x - 0.5) * jnp.log(p) + (y - 0.5) * jnp.log1p(-p)
            - 0.5 * jnp.log(x + y) + stirling_corr(x) + stirling_corr(y) - stirling_corr(x + y))


def betaln(a, b):
    """``log B(a, b) = lgamma(a) + lgamma(b) - lgamma(a + b)`` to float64 round-off for any ``a, b > 0``.

    With ``x = min(a, b)``, ``y = max(a, b)``: both >= 10 uses Stirling's series for all three
    terms; otherwise ``lgamma(x) - lgamma_diff(x, y)``, whose own branch takes Stirling's form of
    ``lgamma(y + x) - lgamma(y)`` for ``y >= 10`` and the plain difference below (one formula for both:
    three ``lgamma`` evaluated per element, not six).
    """
    x, y = jnp.minimum(a, b), jnp.maximum(a, b)
    both = x >= STIRLING_MIN
    symmetric = _betaln_stirling(safe_where(both, x, STIRLING_MIN), safe_where(both, y, STIRLING_MIN))
    return jnp.where(both, symmetric, betaln_small(safe_where(~both, x, 1.0), safe_where(~both, y, 1.0)))


def betaln_small(a, b):
    """``log B(a, b)`` where ``min(a, b) <= 10`` (the caller's branch sees to it): ``lgamma(x) - lgamma_diff(x, y)``,
    ``x = min(a, b)``, ``y = max(a, b)``, as ``betaln`` there, without its branch for two large arguments
    (``lgamma(x)`` at x <= 10 is at most 12.8: nothing large cancels). The negative binomial and binomial
    densities, whose Stirling branch takes both counts >= 10."""
    x, y = jnp.minimum(a, b), jnp.maximum(a, b)
    return gammaln(x) - lgamma_diff(x, y, positive=True)


def log_add_small(big, small):
    """``log(big + small)`` for ``big >= small > 0`` as ``log big + log1p(small / big)``."""
    return jnp.log(big) + jnp.log1p(small / big)


@jax.custom_jvp
def standardize(y, loc, scale):
    """``z = (y - loc) / scale`` with its derivative written ``dz = (dy - dloc - z dscale) / scale``.

    Autodiff would form ``-(y - loc) / scale^2``: at ``scale = 1e-30`` the square underflows in
    float32 and the gradient of a finite log density becomes inf; ``z / scale`` does not.
    """
    return (y - loc) / scale


@standardize.defjvp
def _standardize_jvp(primals, tangents):
    y, loc, scale = primals
    dy, dloc, dscale = tangents
    z = (y - loc) / scale
    # where z overflows (y = 1e30, s = 1e-30 in float32) the caller works from log|y - loc| - log s;
    # a zero cotangent must not meet z = inf (inf * 0 = NaN in the scale's gradient)
    return z, (dy - dloc - jnp.where(jnp.isfinite(z), z, 0.0) * dscale) / scale


def _kummer(a, b, n):
    """The coefficient of x^n in ``M(a, b, -2x)``: ``(a)_n / ((b)_n n!) (-2)^n``, exactly."""
    rising = lambda c: math.prod(Fraction(c) + k for k in range(n))  # noqa: E731
    return rising(a) / (rising(b) * math.factorial(n)) * (-2) ** n


# 1 - e^{-x} (I_0(x) + I_1(x)) = x sum_n _BESSEL_TAIL[n] x^n
_BESSEL_TAIL = [float(-_kummer(Fraction(1, 2), 1, n + 1) - _kummer(Fraction(3, 2), 3, n) / 2) for n in range(20)]


def one_minus_bessel_tail(x):
    """``1 - e^{-x} (I_0(x) + I_1(x))`` for x >= 0 (``= x/2 - x^2/4 + ...``): below 1/2 its Taylor series, whose
    coefficients come from Kummer's ``e^{-x} I_0(x) = M(1/2, 1, -2x)`` and ``e^{-x} I_1(x) = (x/2) M(3/2, 3, -2x)``."""
    small = x < 0.5
    xs = jnp.where(small, x, 0.0)
    xl = jnp.where(small, 1.0, x)
    return jnp.where(small, xs * poly(_BESSEL_TAIL, xs), 1.0 - i0e(xl) - i1e(xl))


_T = np.arange(-150, 151) * 0.03  # exp-sinh nodes in float64: s from e^-70 to e^70, step 0.03 in t


def hyp2f1_half(n, z):
    """``H_n = 2F1(n + 1, 1/2; 2; -z)`` and ``H_0 - H_n`` for z >= 0 (``H_0 = 2 (sqrt(1 + z) - 1) / z``).

    Euler's integral with t = sin^2, s = tan: ``H_n = (4/pi) int_0^inf (1 + s^2)^-2 r(s)^(n+1) ds`` with
    ``r = 1 / (1 + z s^2/(1 + s^2))``, so ``H_0 - H_n = (4/pi) int (1 + s^2)^-2 r (1 - r^n) ds``, every term
    positive (``1 - r^n = -expm1(n log r)``). By the exp-sinh rule (exact to double precision), in logs:
    ``log(1 + s^2) = softplus(2 log s)`` (s reaches e^70, whose square overflows float32) and
    ``log r = -log1p(z sig(2 log s))`` (not the difference of two logs, which (n + 1) = 1e6 would magnify).
    scipy: ``hyp2f1(n + 1, 0.5, 2, -z)``."""
    n, z = jnp.asarray(n)[..., None], jnp.asarray(z)[..., None]
    t = jnp.asarray(_T, n.dtype).reshape((1,) * (n.ndim - 1) + (-1,))
    log_s = 0.5 * math.pi * jnp.sinh(t)
    log_weight = -2.0 * jax.nn.softplus(2.0 * log_s) + log_s + jnp.log(2.0 * 0.03 * jnp.cosh(t))  # (4/pi) ds
    log_r = -jnp.log1p(z * jax.nn.sigmoid(2.0 * log_s))
    hyp = jnp.sum(jnp.exp(log_weight + (n + 1) * log_r), axis=-1)
    gap = jnp.sum(jnp.exp(log_weight + log_r) * -jnp.expm1(n * log_r), axis=-1)
    return hyp, gap


def log_sigmoid_pair(z):
    """``(log sig(z), log sig(-z))`` from one ``exp`` and one ``log1p``: ``min(+-z, 0) - log1p(exp(-|z|))``
    (exact in both tails; ``(0, -inf)`` at z = inf, ``(-inf, 0)`` at -inf). ``jax.nn.log_sigmoid`` twice costs two
    of each. The smaller of the two is below the normal floats where ``exp(-|z|)`` is (``count_log_sigmoid``)."""
    pos = z >= 0  # one smooth branch each side, chosen by a select: max/min/abs have the wrong slope at z = 0
    t = jnp.log1p(jnp.exp(jnp.where(pos, -z, z)))
    return jnp.where(pos, -t, z - t), jnp.where(pos, -z - t, -t)


def _far(z):
    """``(cut, h)``: the far tail is ``|z| > cut = -log(2 tiny)`` (86.6 in float32, 707.7 in float64), where
    ``e = exp(-|z|)`` is subnormal or near it and the CPU flushes it to 0 (the factor 2 keeps the cut's rounding
    and exp's last ulp on the safe side: at z = 87.33655 in float32, ``log(tiny)`` rounded, ``e`` was flushed); there
    ``count e = (count h) h`` with ``h = exp(-|z|/2)``, normal until twice the cut. ``h`` is its own ``exp``."""
    return -math.log(2.0 * float(jnp.finfo(jnp.result_type(z)).tiny)), jnp.exp(-0.5 * jnp.abs(z))


def count_log_sigmoid(a, b, z, near_a, near_b):
    """``(a log sig(z), b log sig(-z))`` for counts ``a, b >= 0`` (``near_a``, ``near_b``: the caller's own products,
    used below the far tail): in the far tail (``_far``) the smaller of ``log sig(+-z) = -log1p(e)`` is below the
    normal floats and the CPU flushes it to 0, so ``Binomial(1e14, logits=-87.35).log_prob(0)`` was 0, not
    ``-1e14 e^-87.35 = -1.2e-24``; there ``log1p(e) = e`` exactly and ``-count e`` is ``-(count h) h``: three
    roundings, no subnormal in between. mpmath: ``a log(sigmoid(z))``."""
    cut, h = _far(z)
    return jnp.where(z > cut, -(a * h) * h, near_a), jnp.where(z < -cut, -(b * h) * h, near_b)


def sigmoid_pair(z):
    """``(sig(z), sig(-z))`` from one ``exp`` and one division: ``1/(1 + e)`` and ``e/(1 + e)``, ``e = exp(-|z|)``,
    each exact to round-off in both tails (neither is ``1 - `` the other)."""
    pos = z >= 0
    e = jnp.exp(jnp.where(pos, -z, z))
    inv = 1.0 / (1.0 + e)
    return jnp.where(pos, inv, e * inv), jnp.where(pos, e * inv, inv)


def log_rising_ratio_small(r, y, inv=None, log_s=None):
    """``(log P, log s)`` with ``log[Gamma(y + r) / (Gamma(r) y!)] = y log s + log P`` for a whole ``0 <= y < 10`` and
    any ``r > 0`` (the negative binomial's and, at ``r = n - y + 1``, the binomial's coefficient): ``s = max(r, 1)``,
    ``P = prod_{k < y} (r + k) / (s (k + 1))``, a product of at most nine factors in ``(0, 1]``
    (``P >= min(r, 1) / 9!``: no overflow at r = 1e30, none of ``lgamma(y + r) - lgamma(r)``'s cancellation at
    r = 1e8). Exact to about ``2 y`` roundings; no ``lgamma``. ``y log s`` is the caller's, to be added to its own
    ``y log pi`` (they cancel at large r). ``inv = 1/s`` and ``log s``, functions of r alone, may come from the
    caller (``rising_terms``)."""
    if inv is None or log_s is None:
        inv, log_s = rising_terms(r)
    product = jnp.ones(jnp.broadcast_shapes(jnp.shape(r), jnp.shape(y)), jnp.result_type(r, y))
    for k in range(int(STIRLING_MIN) - 1):
        product = product * jnp.where(y > k, (r + k) * (inv * (1.0 / (k + 1))), 1.0)
    return jnp.log(product), log_s


def rising_terms(r):
    """``(1/s, log s)``, ``s = max(r, 1)``: the functions of r alone in ``log_rising_ratio_small`` and
    ``digamma_rise_small_ratio``."""
    s = jnp.maximum(r, 1.0)
    return 1.0 / s, jnp.log(s)


def digamma_rise_small(r, y):
    """``psi(r + y) - psi(r) = sum_{k < y} 1/(r + k)`` for a whole ``0 <= y < 10`` and ``r > 0``: at most nine terms,
    all positive (exact to round-off for any r; reciprocals of r alone, computed once when r is one number)."""
    total = jnp.zeros(jnp.broadcast_shapes(jnp.shape(r), jnp.shape(y)), jnp.result_type(r, y))
    for k in range(int(STIRLING_MIN) - 1):
        total = total + jnp.where(y > k, 1.0 / (r + k), 0.0)
    return total


def lgamma_minus_stirling(x):
    """``G(x) = lgamma(x) - [(x - 1/2) log x - x + log(2 pi)/2]`` for any ``x > 0``: Stirling's correction
    ``corr(x)`` for ``x >= 10``, the plain difference below with ``lgamma_digamma_lanczos`` (terms below 70 at
    x = 1e-30 in float32; no XLA ``lgamma`` where x is one value per example). With it a
    saddle-point form written for two large arguments holds for a small one too."""
    big = x >= STIRLING_MIN
    xb, xs = safe_where(big, x, STIRLING_MIN), safe_where(~big, x, 1.0)
    lgamma_small = lgamma_digamma_lanczos(xs)[0]
    return jnp.where(big, stirling_corr(xb), lgamma_small - (xs - 0.5) * jnp.log(xs) + xs - HALF_LOG_2PI)


def digamma_gap_large(x, d, h=None):
    """``psi(x + d) - psi(x)`` for ``x > 0`` and ``x + d >= 10``, ``d >= 0``: ``log1p(u) + D(x + d) + H(x)`` with
    ``D = psi - log`` by its series, ``m = max(x, 10)``, ``u = (x + d - m)/m`` (exactly ``d/x`` for x >= 10: no
    cancellation at x = 1e8, d = 10) and ``H(x) = log m - psi(x)``, a function of x alone: ``-D(x)`` for x >= 10,
    ``log 10 - psi(x)`` below (one number when x is). The negative binomial's score (d = y >= 10); for x < 10 and a
    small d the absolute error is that of ``psi(x)``, eps log 10. ``h = H(x)`` may come from the caller
    (``digamma_gap_head``)."""
    big = x >= STIRLING_MIN
    m = jnp.where(big, x, STIRLING_MIN)  # a select, not max/min: their derivative at x = 10 is 1/2
    u = (d + jnp.where(big, 0.0, x - STIRLING_MIN)) / m
    if h is None:
        h = digamma_gap_head(x)
    return jnp.log1p(u) + digamma_minus_log_series(x + d) + h


def digamma_gap_head(x):
    """``H(x) = log max(x, 10) - psi(x)`` of ``digamma_gap_large``: ``-D(x)`` by its series for x >= 10,
    ``log 10 - psi(x)`` below."""
    big = x >= STIRLING_MIN
    xb, xs = safe_where(big, x, STIRLING_MIN), safe_where(~big, x, 1.0)
    return jnp.where(big, -digamma_minus_log_series(xb), math.log(STIRLING_MIN) - lgamma_digamma_lanczos(xs)[1])


# Godfrey's Lanczos sum (g = 7, n = 9: c_0 + sum_i c_i/(x + i), as in Numerical Recipes and XLA's own lgamma) as
# one rational function P(x)/Q(x), Q = prod_{i=1..8} (x + i), and the numerator of its logarithmic derivative,
# N = P'Q - PQ' (coefficients in ascending powers, expanded in 60-digit arithmetic from Godfrey's c_i): P and Q
# have positive coefficients and N negative ones, so nothing cancels for x > 0
_LANCZOS_G = 7.0
_LANCZOS_P = (10619610.099075994, 11246929.484659927, 5210869.017760831, 1379496.2658786706, 228235.2154997145,
              24165.510665029535, 1599.0425347220457, 60.45833333334203, 0.9999999999998099)
_LANCZOS_Q = (40320.0, 109584.0, 118124.0, 67284.0, 22449.0, 4536.0, 546.0, 36.0, 1.0)
_LANCZOS_N = (-710263156275.6554, -2088657169094.2717, -2734230097401.6694, -2127924102192.4543,
              -1106051660614.7712, -407912161569.4256, -110444706773.79288, -22362101911.66238,
              -3409838279.134236, -390371461.9948292, -33079889.113968924, -2014583.6298809226,
              -83443.81324508008, -2106.0850694442993, -24.458333333348875)


# trigamma(x) - 1/x - 1/(2x^2) = sum_n _TRI[n] / x^(2n + 3) (B_2n / x^(2n + 1) for n >= 1)
_TRI = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6, -3617 / 510, 43867 / 798)


def trigamma(x):
    """``psi'(x)`` for ``x > 0``: the asymptotic series ``1/x + 1/(2x^2) + sum B_2n / x^(2n+1)`` at ``x + m >= 10``
    after ``m <= 10`` steps of ``psi'(x) = 1/x^2 + psi'(x + 1)`` (selects, one division each; inf where ``1/x^2``
    overflows). The second derivative of every ``lgamma`` here: autodiff of Lanczos's ``N/(P Q)`` loses every digit
    in float32 near x = 10, and XLA's ``polygamma(1, x)`` is wrong above 1e19 in float32.
    ``scipy.special.polygamma(1, x)``; Abramowitz and Stegun 6.4.12."""
    steps = int(STIRLING_MIN)
    total = jnp.zeros_like(x)
    z = x
    for _ in range(steps):
        low = z < STIRLING_MIN
        total = total + jnp.where(low, 1.0 / jnp.square(safe_where(low, z, 1.0)), 0.0)
        z = jnp.where(low, z + 1.0, z)
    r = 1.0 / z
    r2 = jnp.square(r)
    return total + r + 0.5 * r2 + r * r2 * poly(_TRI, r2)


@jax.custom_jvp
def lgamma_digamma_lanczos(x):
    """``(lgamma(x), psi(x))`` for ``0 < x <= 10`` (Stirling's series takes over above; ``P Q`` overflows float32
    beyond about 1e3) from Lanczos's approximation in rational form: ``lgamma(x + 1) = log(2 pi)/2 + (x + 1/2) log t
    - t + log(P/Q)``, ``t = x + g + 1/2``, its derivative ``psi(x + 1) = log t + (x + 1/2)/t - 1 + N/(P Q)``, then
    ``lgamma(x) = lgamma(x + 1) - log x`` and ``psi(x) = psi(x + 1) - 1/x`` (no reflection: exact as x -> 0, where
    XLA's ``lgamma`` and ``digamma`` evaluate a sine for every element). Polynomials and one division each: the
    pair costs about a third of XLA's ``lgamma`` alone. Error below that of ``jax.scipy.special.gammaln`` /
    ``digamma`` on (0, 10] (1.1e-6 / 2.7e-7 relative in float32, 2e-15 / 8e-16 in float64).
    Derivatives written (``_lgamma_pair_jvp``): ``psi`` for ``lgamma``, ``trigamma`` for ``psi``.
    Reference: Lanczos (1964), SIAM J. Numer. Anal. B 1; Press et al., *Numerical Recipes*, 6.1."""
    lgamma1, digamma1 = lgamma_digamma_lanczos_shifted(x)
    return lgamma1 - jnp.log(x), digamma1 - 1.0 / x


@jax.custom_jvp
def lgamma_digamma_lanczos_shifted(x):
    """``(lgamma(x + 1), psi(x + 1))`` for ``0 < x <= 10``: ``lgamma_digamma_lanczos`` before its last step
    (``- log x``, ``- 1/x``), so that ``x + 1`` is never rounded (the series of the incomplete gamma's ``log P``
    divides by ``Gamma(a + 1)``). Its error is absolute, about 1e-7 in float32, not relative as x -> 0 (2e-4 of
    ``lgamma(1.001)``; ``lgamma1p_ratio`` is exact there).
    Derivatives written, as ``lgamma_digamma_lanczos``'s (``trigamma(x + 1)``)."""
    p, q, n = poly(_LANCZOS_P, x), poly(_LANCZOS_Q, x), poly(_LANCZOS_N, x)
    t = x + (_LANCZOS_G + 0.5)
    log_t = jnp.log(t)
    return HALF_LOG_2PI + (x + 0.5) * log_t - t + jnp.log(p / q), log_t + (x + 0.5) / t - 1.0 + n / (p * q)


# lgamma(1 + a) = a sum_k _LGAMMA1P[k] a^k: -gamma, then (-1)^k zeta(k) / k for k >= 2 (Abramowitz and Stegun 6.1.33)
_LGAMMA1P = (-0.5772156649015329, 0.8224670334241132, -0.40068563438653143, 0.27058080842778454,
             -0.20738555102867398, 0.1695571769974082, -0.1440498967688461, 0.12550966952474304,
             -0.11133426586956469, 0.1000994575127818, -0.09095401714582904, 0.083353840546109,
             -0.0769325164113522, 0.07143294629536133, -0.06666870588242046, 0.06250095514121304,
             -0.058823978658684585, 0.055555767627403614, -0.05263167937961666, 0.05000004769810169,
             -0.047619070330142226, 0.04545455629320467, -0.04347826605304026, 0.04166666915034121,
             -0.04000000119214014)
LGAMMA1P_MAX = 0.2


def lgamma1p_ratio(a):
    """``lgamma(1 + a) / a`` for ``|a| <= LGAMMA1P_MAX = 0.2`` (``-gamma`` at 0) to the dtype's relative rounding,
    by the Taylor series ``lgamma(1 + a) = -gamma a + sum_(k >= 2) (-1)^k zeta(k) a^k / k``: 12 terms in float32,
    25 in float64 (the next below ``0.2^n / n`` of the sum). Lanczos's form keeps only an absolute error there
    (``1e-7`` in float32: 2e-4 of ``lgamma(1.001)``). Its derivative by autodiff of the polynomial.
    ``scipy.special.gammaln(1 + a) / a``."""
    terms = 12 if jnp.dtype(jnp.result_type(a)).itemsize < 8 else len(_LGAMMA1P)
    return poly(_LGAMMA1P[:terms], a)


@jax.custom_jvp
def lgamma_digamma(x):
    """``(lgamma(x), psi(x))`` for any ``x > 0`` with two ``log`` per element and no XLA ``lgamma`` / ``digamma``:
    Stirling's series for ``x >= 10`` (``(x - 1/2) log x - x + log(2 pi)/2 + corr(x)`` and ``log x + (psi - log)(x)``),
    ``lgamma_digamma_lanczos`` below, the branch chosen first so that one ``log`` (of ``x`` or of Lanczos's ``t``)
    and one ``log`` of ``P / (Q x)`` serve both. Accuracy as ``lgamma_digamma_lanczos`` below 10 and Stirling's
    1e-14 above; derivatives written (``psi``, ``trigamma``). The Dirichlet's ``log B`` and its score;
    ``scipy.special.gammaln`` / ``digamma``."""
    big = x >= STIRLING_MIN
    xb, xs = safe_where(big, x, STIRLING_MIN), safe_where(~big, x, 1.0)
    p, q, n = poly(_LANCZOS_P, xs), poly(_LANCZOS_Q, xs), poly(_LANCZOS_N, xs)
    t = xs + (_LANCZOS_G + 0.5)
    log_z = jnp.log(jnp.where(big, xb, t))
    log_ratio = jnp.log(jnp.where(big, 1.0, p / (q * xs)))
    lgamma_small = HALF_LOG_2PI + (xs + 0.5) * log_z - t + log_ratio
    psi_small = log_z + (xs + 0.5) / t - 1.0 + n / (p * q) - 1.0 / xs
    lgamma_big = (xb - 0.5) * log_z - xb + HALF_LOG_2PI + stirling_corr(xb)
    psi_big = log_z + digamma_minus_log_series(xb)
    return jnp.where(big, lgamma_big, lgamma_small), jnp.where(big, psi_big, psi_small)


def _lgamma_pair_jvp(pair, shift=0.0):
    """The JVP of a ``(lgamma(x), psi(x))`` pair: ``(psi dx, trigamma dx)``, the value's own ``psi`` and
    ``trigamma`` (only a second derivative evaluates it); ``pair`` the decorated function itself, so that a
    derivative of ``psi`` is this rule again, never autodiff of the rational form."""
    def jvp(primals, tangents):
        (x,), (dx,) = primals, tangents
        lg, psi = pair(x)
        return (lg, psi), (psi * dx, trigamma(x + shift) * dx)
    return jvp


lgamma_digamma_lanczos.defjvp(_lgamma_pair_jvp(lgamma_digamma_lanczos))
lgamma_digamma.defjvp(_lgamma_pair_jvp(lgamma_digamma))
lgamma_digamma_lanczos_shifted.defjvp(_lgamma_pair_jvp(lgamma_digamma_lanczos_shifted, shift=1.0))


def digamma_rise_small_ratio(r, y, inv=None):
    """``digamma_rise_small`` as ``D / P``: ``P`` the product of ``log_rising_ratio_small`` (the same factors
    ``f_k = (r + k) c_k``, ``c_k = 1/(s (k + 1))``, shared with it) and ``D`` its derivative with the ``c_k`` held
    fixed (``D <- D f_k + P c_k``), so that ``D / P = sum_{k < y} c_k / f_k = sum_{k < y} 1/(r + k)``: one division
    per element and no reciprocal of r per term (nine scalar programs when r is one number). ``inv = 1/max(r, 1)``
    may come from the caller (``rising_terms``)."""
    if inv is None:
        inv = rising_terms(r)[0]
    shape = jnp.broadcast_shapes(jnp.shape(r), jnp.shape(y))
    product = jnp.ones(shape, jnp.result_type(r, y))
    slope = jnp.zeros(shape, jnp.result_type(r, y))
    for k in range(int(STIRLING_MIN) - 1):
        c = inv * (1.0 / (k + 1))
        use = y > k
        slope = jnp.where(use, slope * ((r + k) * c) + product * c, slope)
        product = product * jnp.where(use, (r + k) * c, 1.0)
    return slope / product


def betaln_digamma_gaps(a, b):
    """``(log B(a, b), psi(a + b) - psi(a), psi(a + b) - psi(b))`` for ``a, b > 0`` without XLA's ``lgamma`` or
    ``digamma`` of a per-example value (each about 20 logs on CPU). Both below 10: ``L(a) + L(b) - L(a + b)`` and
    ``psi(a + b) - psi(a)`` from ``lgamma_digamma_lanczos`` (Lanczos's form holds for any x > 0; ``a + b < 20``,
    where ``P Q`` is below 1e21); one of them at least 10: ``log B`` as ``betaln`` (Stirling's series for both
    large, else ``L(min) - lgamma_diff(min, max)``, whose Stirling branch takes ``max >= 10``) and each gap by
    ``digamma_gap_large`` (``a + b >= 10``). The value alone (the gaps unused) compiles to the value's terms only.
    The Beta density and its score."""
    a, b = jnp.broadcast_arrays(a, b)
    small = jnp.maximum(a, b) < STIRLING_MIN
    fill_a, fill_b = a < STIRLING_MIN, b < STIRLING_MIN
    lg_a, psi_a = lgamma_digamma_lanczos(safe_where(fill_a, a, 1.0))
    lg_b, psi_b = lgamma_digamma_lanczos(safe_where(fill_b, b, 1.0))
    lg_ab, psi_ab = lgamma_digamma_lanczos(safe_where(small, a + b, 1.0))
    x, w = jnp.minimum(a, b), jnp.maximum(a, b)
    both = x >= STIRLING_MIN
    symmetric = _betaln_stirling(safe_where(both, x, STIRLING_MIN), safe_where(both, w, STIRLING_MIN))
    mixed = ~small & ~both
    xm, wm = safe_where(mixed, x, 1.0), safe_where(mixed, w, STIRLING_MIN)
    one_large = jnp.where(a < b, lg_a, lg_b) - (xm * jnp.log(wm) + _stirling_rest(xm, wm, positive=True))
    value = jnp.where(small, lg_a + lg_b - lg_ab, jnp.where(both, symmetric, one_large))
    a_l, b_l = safe_where(small, 1.0, a), safe_where(small, 1.0, b)
    gap_a = jnp.where(small, psi_ab - psi_a, digamma_gap_large(a_l, safe_where(small, STIRLING_MIN, b)))
    gap_b = jnp.where(small, psi_ab - psi_b, digamma_gap_large(b_l, safe_where(small, STIRLING_MIN, a)))
    return value, gap_a, gap_b


@jax.custom_jvp
def betaln_with_gaps(a, b):
    """``log B(a, b)`` (``betaln_digamma_gaps``) whose derivatives are its digamma gaps, ``-(psi(a + b) - psi(a))`` and
    ``-(psi(a + b) - psi(b))``, from the same Lanczos evaluation: autodiff of ``lgamma`` compiles XLA's digamma for
    each of its three terms. The incomplete beta's prefix."""
    return betaln_digamma_gaps(a, b)[0]


@betaln_with_gaps.defjvp
def _betaln_with_gaps_jvp(primals, tangents):
    value, gap_a, gap_b = betaln_digamma_gaps(*primals)
    return value, -gap_a * tangents[0] - gap_b * tangents[1]
