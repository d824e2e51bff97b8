"""The binomial distribution on the logits: successes out of a known number of trials.

    Pr(y | n, pi) = C(n, y) pi^y (1 - pi)^(n - y),   y in {0, 1, ..., n},   pi = sigmoid(logits)

Where the smaller count ``m = min(y, n - y)`` is below 10, ``log C(n, y)`` is the log of the exact product
``prod_{k < m} (n - m + 1 + k)/(k + 1)`` (``special.log_rising_ratio_small``: no ``lgamma``), and
``log pi = log_sigmoid(z)``, ``log(1 - pi) = log_sigmoid(-z)`` (no ``log(1 - sigmoid(z))``). Where both
``y`` and ``n - y`` are >= 10 the mass is Loader's (2000) saddle-point form
``log(n / (2 pi y (n - y)))/2 + corr(n) - corr(y) - corr(n - y) - dev(y, n pi) - dev(n - y, n (1 - pi))``,
whose terms are not of the size of n (at n = 1e6 the plain form adds terms of 7e5 in float32).
The CDF is the regularised incomplete beta ``Pr(Y <= k) = I_{1 - pi}(n - k, k + 1)`` in log space
(``incomplete.log_betainc``). Counts (``mode``, ``sample``, ``quantile``) are floats in the parameters' dtype.

scipy equivalent: ``scipy.stats.binom(n=total_count, p=sigmoid(logits))``.
Reference: McCullagh and Nelder, *Generalized Linear Models* (1989), ch. 4; Loader, "Fast and accurate
computation of binomial probabilities" (2000).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero
from jax.scipy.special import digamma

from . import _support, _twins, registry
from .._checks import check_event_shape
from .incomplete import log_betainc
from .poisson import count_quantile, log_probabilities, y_log
from .registry import Param
from .special import (nonnegative, HALF_LOG_2PI, STIRLING_MIN, log1mexp, log1pmx_series, log_rising_ratio_small, poly,
                      safe_where, stirling_corr)


class Binomial(NamedTuple):
    """Parameters of one example's binomial: ``total_count`` (n, a whole number >= 0) and ``logits``
    (the log-odds of one trial's success)."""

    total_count: Param
    logits: Param


def on_support(n, y):
    """True where ``y`` is a count of successes out of ``n``: a whole number in ``[0, n]``, n finite."""
    return (y >= 0) & (y <= n) & (y == jnp.floor(y)) & (n < jnp.inf)


def log_prob(theta: Binomial, y):
    """``log C(n, y) + y log_sigmoid(z) + (n - y) log_sigmoid(-z)``; ``binom.logpmf(y, n, sigmoid(z))``.

    -inf off ``{0, ..., n}`` (and for an n that is not a whole number >= 0); ``logits = +-inf`` puts all
    mass on n or 0."""
    check_event_shape("Binomial", y, jnp.broadcast_shapes(jnp.shape(theta.total_count), jnp.shape(theta.logits)))
    n, z = theta.total_count, theta.logits
    dtype = jnp.result_type(n, z)
    y = jnp.asarray(y, dtype)
    shape = jnp.broadcast_shapes(jnp.shape(n), jnp.shape(z), jnp.shape(y))
    return _log_prob(*(jnp.broadcast_to(jnp.asarray(v, dtype), shape) for v in (n, z, y)))


def _log_prob_value(n, z, y):
    return _log_prob_parts(n, z, y)[0]


def _branches(n, y):
    """What every form of the mass branches on: ``y`` on the support, the successes and failures (0 off it), the
    larger count, whether the smaller reaches ``STIRLING_MIN`` (the saddle point's side) and the smaller count where
    it does not (0 where it does)."""
    inside = on_support(n, y) & (n == jnp.floor(n))
    ys = jnp.where(inside, y, jnp.zeros_like(y))
    rest = jnp.where(inside, n - ys, jnp.zeros_like(y))
    small_count, large_count = jnp.minimum(ys, rest), jnp.maximum(ys, rest)
    big = small_count >= STIRLING_MIN
    return inside, ys, rest, large_count, big, safe_where(~big, small_count, 0.0)


def _log_prob_parts(n, z, y):
    """``(log Pr(y), d/dz of it, y on the support, the successes, the failures)`` (0 off the support):
    ``log_prob_free + data_term`` (the same free value and slope; the slope differentiates as the plain form), one
    form per example chosen on the counts (``_free_parts``, whose forms share their transcendentals), not both forms
    under a ``where``. Where the smaller count ``m = min(y, n - y)`` is below
    10 the coefficient ``C(M + m, m)``, ``M = max(y, n - y)``, is the exact product
    ``special.log_rising_ratio_small(M + 1, m)`` (no ``lgamma``; exactly 0 at y = 0 and y = n); from 10 on Loader's
    saddle point (``data_term``, ``_free_parts``)."""
    free, slope, inside = _free_parts(n, z, y)
    ys = jnp.where(inside, y, jnp.zeros_like(y))
    return free + data_term(n, y), slope, inside, ys, jnp.where(inside, n - ys, jnp.zeros_like(y))


_log_prob = jax.custom_jvp(_log_prob_value)


def _log_prob_jvp(primals, tangents):
    """``d/dz = y sig(-z) - (n - y) sig(z)`` (``_free_parts``'s: from the saddle point's ``expm1`` where both counts
    reach 10, no cancellation), ``d/dn = psi(n + 1) - psi(n - y + 1) + log_sigmoid(-z)``, ``d/dy = psi(n - y + 1) -
    psi(y + 1) + z``, 0 off the support: written out, where autodiff would differentiate the branches under their
    ``where``s. Trials given as data (the family's) are a symbolic zero and cost nothing. The rule is
    differentiable."""
    n, z, y = primals
    dn, dz, dy = tangents
    value, slope, inside, ys, rest = _log_prob_parts(n, z, y)
    zero = jnp.zeros_like(value)
    tangent = zero
    if not isinstance(dz, SymbolicZero):
        tangent = tangent + slope * dz
    if not isinstance(dn, SymbolicZero):
        d_n = digamma(ys + rest + 1) - digamma(rest + 1) + jax.nn.log_sigmoid(-z)
        tangent = tangent + jnp.where(inside, d_n, zero) * dn
    if not isinstance(dy, SymbolicZero):
        tangent = tangent + jnp.where(inside, digamma(rest + 1) - digamma(ys + 1) + z, zero) * dy
    return value, tangent


_log_prob.defjvp(_log_prob_jvp, symbolic_zeros=True)


def _free_parts(n, z, y):
    """``(free value, d/dz of it, y on the support)``: ``_log_prob_parts``'s value less ``data_term``, one form
    per example chosen on the counts, the transcendentals shared by both forms (one ``exp``, one ``expm1``, two
    ``log``), not each form's under a ``where``.

    Below 10: ``y log pi + (n - y) log(1 - pi)``, ``log pi = min(z, 0) - log1p(e)``, ``e = exp(-|z|) = h^2``,
    ``h = exp(-|z|/2)`` (in the far tail, where ``e`` is below the normal floats, ``y log pi = -(y h) h``:
    ``special.count_log_sigmoid``'s); ``d/dz = y sig(-z) - (n - y) sig(z)`` from the same ``e``. A row off the
    support is computed on its counts as given and set to -inf (its slope to 0) at the end.

    From 10 on: ``-n KL(y/n || pi) = -dev(y, n pi) - dev(n - y, n (1 - pi))``, centred on the counts' own logit
    ``z0 = log(y / (n - y))``: with p the smaller share ``min(y, n - y)/n``, ``q = 1 - p`` and ``w = z - z0``
    signed towards p's side (``w = z0 - z`` where p is ``(n - y)/n``),

        KL = log1p(p expm1(w)) - p w,     d/dz = -+ n p q expm1(w) / (1 + p expm1(w))

    (``p w`` and the log cancel to ``p (1 - p) w^2 / 2`` near the optimum, keeping ``eps n p |w|``, the deviances'
    own: p is the smaller share, so ``eps min(y, n - y) |w|``); from ``w = 0.9 log(max float)`` on, where ``expm1``
    would overflow, ``KL = q w + log p`` (the rest is below ``e^-w / p``, far under a rounding). +inf at
    ``z = +-inf``; the slope has no cancellation (``y - n sigmoid(z)`` keeps ``eps n``: 1e8 roundings of the slope at
    n = 1e12, y = n / 2, w = 1e-11). ``z0`` is ``_log_ratio``'s, to a rounding of itself near 0 too. XLA:CPU writes
    out an expensive op that feeds two fusions: the value and the slope share only ``h``, ``w`` and ``expm1(w)``
    (with the value and the slope: 6 arrays of the rows' size written out by a value and gradient, where both forms
    under a ``where`` wrote out 15; sharing ``1 / (1 + x)`` between ``log1p`` and the slope cost 15-70%).

    Within ``|w| < 1/4`` the KL as two series of one sign each (``_near_neg_n_kl``),
    ``KL = p (expm1(w) - w) + log1pmx(p expm1(w))`` (``p w^2/2`` and ``-p^2 w^2/2`` to leading order: p is at most
    1/2, so they cancel at most to half), to a few roundings of itself where ``log1p(x) - p w`` keeps only
    ``eps n p |w|`` (at n = 1e9, ``w = 1e-3``: 5640 float32 roundings of the log-pmf, not the deviances' 600; the
    full-batch sum's ``log_prob_free`` left it out until session 40: 4206 float32 roundings at n = 1e9, y = 3e8).

    The slope's value is the centred form's above, its derivative (a Hessian, by autodiff through ``log_prob``'s and
    ``log_prob_free``'s rules) declared (``_declared_slope``): that of ``y sig(-z) - (n - y) sig(z)``,
    ``-n sig(z) sig(-z)`` in z (one sign, sig from e: exact in both tails, where autodiff through the centred form
    kept ``1 - x / (1 + x)`` and ``1 + expm1(w)``: ``eps n p q`` off, of either sign, and ``-n q`` where
    ``1 / (1 + x)^2`` underflows, from w = 45 in float32 and 355 in float64, for a curvature of ``n e^-w``),
    ``sig(-z)`` in y, ``-sig(z)`` in n; a value and gradient never read it (XLA drops its division)."""
    # the counts as given (not _branches' zeros off the support: XLA:CPU wrote those selects out between the ops)
    inside = on_support(n, y) & (n == jnp.floor(n))
    ys, rest = y, n - y
    big = jnp.minimum(ys, rest) >= STIRLING_MIN
    finfo = jnp.finfo(jnp.result_type(z))
    pos = z >= 0
    neg_abs_z = jnp.where(pos, -z, z)  # -|z|: one smooth branch each side
    far = neg_abs_z < math.log(2.0 * float(finfo.tiny))  # special._far's: exp(-|z|) below the normals from there
    ex = jnp.exp(0.5 * neg_abs_z)  # h = exp(-|z|/2); e = h^2 (normal until the far tail, where h is)
    e = ex * ex
    yb, rb = safe_where(big, ys, STIRLING_MIN), safe_where(big, rest, STIRLING_MIN)
    y_small = yb <= rb
    sign = jnp.where(y_small, 1.0, -1.0)
    small, large = jnp.where(y_small, yb, rb), jnp.where(y_small, rb, yb)  # n p, n q
    w = sign * z - _log_ratio(small, large)
    over = w > 0.9 * math.log(float(finfo.max))
    em = jnp.expm1(jnp.minimum(w, 0.9 * math.log(float(finfo.max))))
    inv_n = 1.0 / (yb + rb)
    x = jnp.where(big, small * inv_n * em, e)  # log1p's argument: p expm1(w), or e
    u = jnp.where(big & over, small * inv_n, jnp.abs(1.0 + x))  # p, or 1 + x rounded (abs: XLA keeps u - 1)
    t = jnp.log(u) - jnp.where(big & over, 0.0, ((u - 1.0) - x) / u)  # log1p(x): 1 + x's rounding undone
    log_pi, log_1mpi = jnp.where(pos, -t, z - t), jnp.where(pos, -z - t, -t)
    successes = jnp.where(far & pos, -(ys * ex) * ex, y_log(ys, log_pi))
    failures = jnp.where(far & ~pos, -(rest * ex) * ex, y_log(rest, log_1mpi))
    saddle = jnp.where(over, -(yb + rb - small) * w, small * w) - (yb + rb) * t  # -n KL
    saddle = jnp.where(jnp.abs(w) < 0.25, _near_neg_n_kl(small, yb + rb, w, em, x), saddle)
    value = jnp.where(inside, jnp.where(big, saddle, successes + failures), -jnp.inf)
    value = jnp.where(jnp.isnan(y) | jnp.isnan(n), jnp.nan, value)
    # -+ n p q expm1(w) / (1 + p expm1(w)) as (n p q) (expm1(w) / (1 + x)), each factor finite: n p expm1(w) and
    # n (n - y) expm1(w) overflowed in the far tail (float32, n p = 1e5, z = 100: a NaN slope; n p = 10, z = 90: -inf);
    inv = 1.0 / (1.0 + x)  # 1 / (1 + p expm1(w)), or 1 / (1 + e)
    slope_big = -sign * ((small * large) * inv_n) * (em * inv)
    zero = jnp.zeros_like(value)
    slope = jnp.where(inside, jnp.where(big, slope_big, _sigmoid_slope(ys, rest, pos, e, inv)), zero)
    # d/dz of the slope (a Hessian) declared, -n sig(z) sig(-z), where autodiff through the centred form kept
    # 1 - x / (1 + x); sig(z) from e (exact in both tails; only a second derivative reads it, so a value and gradient
    # compile it away); the counts 0 off the support (a NaN count's second derivative 0)
    ysz, restz = (jnp.where(inside, c, jnp.zeros_like(c)) for c in (ys, rest))
    inv_e = 1.0 / (1.0 + e)
    sig, sig_neg = jnp.where(pos, inv_e, e * inv_e), jnp.where(pos, e * inv_e, inv_e)
    return value, _declared_slope(slope, sig, sig_neg, z, ysz, restz), inside


def _declared_slope_value(slope, sig, sig_neg, z, ys, rest):
    """``slope = y sig(-z) - (n - y) sig(z)`` as computed by the caller, differentiated as that formula
    (``_declared_slope_jvp``)."""
    return slope


def _declared_slope_jvp(primals, tangents):
    """``d slope = -(y + rest) sig sig_neg dz + sig_neg dy - sig d rest`` (the tangents of ``slope``, ``sig`` and
    ``sig_neg`` themselves are not read)."""
    slope, sig, sig_neg, z, ys, rest = primals
    _, _, _, dz, dys, drest = tangents
    return slope, -(ys + rest) * sig * sig_neg * dz + sig_neg * dys - sig * drest


_declared_slope = jax.custom_jvp(_declared_slope_value)
_declared_slope.defjvp(_declared_slope_jvp)


def _log_ratio(small, large):
    """``log(small / large)`` for ``0 < small <= large``, to a rounding or two of itself, as one ``log1p`` of a
    difference (exact) over a count: ``log1p((small - large) / large)`` from a ratio of 3/4 on (``log`` of the rounded
    ratio kept half a rounding of 1 there, however near 0 the log: 2e-6 of the slope at n = 1e12, y = n / 2 + 1,
    w = 1e-11), ``-log1p((large - small) / small)`` below (an argument >= 1/3, exact from a ratio of 1/2 on; below,
    >= 1: its rounding is one of the log's). Not ``log1p`` of -1/2 to -1/4: XLA:CPU's float64 ``log1p`` is 120
    roundings off between ``1 - sqrt(2)`` and ``sqrt(1/2) - 1`` (1.5 at most elsewhere; float32's 1.8): z0 was
    2e-15 off at y / n = 0.38, 2e-4 of the slope at n = 1e12, w = 1e-11, ten times the plain ``y - n sig(z)``'s."""
    close = 4.0 * small > 3.0 * large
    flip = jnp.where(close, 1.0, -1.0)
    return flip * jnp.log1p(flip * (small - large) / jnp.where(close, large, small))


def _sigmoid_slope(ys, rest, pos, e, inv=None):
    """``y sig(-z) - (n - y) sig(z)`` from ``e = exp(-|z|)`` (``inv = 1 / (1 + e)``, the caller's where it has it)."""
    inv = 1.0 / (1.0 + e) if inv is None else inv
    sig, sig_neg = jnp.where(pos, inv, e * inv), jnp.where(pos, e * inv, inv)
    return ys * sig_neg - rest * sig


def _near_neg_n_kl(small, n, w, em, x):
    """``-n KL = -(n p) (expm1(w) - w) - n log1pmx(x)`` for ``|w| < 1/4`` (``x = p expm1(w)``, ``|x| < 0.15``), two
    Taylor series of one sign each (``p w^2 / 2`` and ``-p^2 w^2 / 2`` to leading order: p is at most 1/2, so they
    cancel at most to half): ``expm1(w) - w = w^2 sum_j w^j / (j + 2)!`` (6 terms for float32, 12 for float64) and
    ``log1p(x) - x = -x^2 sum_k (-x)^k / (k + 2)`` (8 and 18 terms): the first left out of each is below half a
    rounding of the KL (``4 |w|^J / (J + 2)!`` and ``2.6 (0.142)^K / (K + 2)`` of it at p = 1/2). No division, no
    cancellation of the size of ``n p w``; outside the window the values are unused (the caller's ``where``)."""
    wide = jnp.dtype(jnp.result_type(w)).itemsize >= 8
    expm1mx = jnp.square(w) * poly([1 / math.factorial(j + 2) for j in range(12 if wide else 6)], w)
    log1pmx = -jnp.square(x) * poly([(-1) ** k / (k + 2) for k in range(18 if wide else 8)], x)
    return -small * expm1mx - n * log1pmx


def _free_value(n, z, y):
    """``log Pr(y | n, z) - data_term(n, y)``: the part of the log-pmf that moves with the logit z (float n, y;
    same shapes), no term of the size of ``n log n`` added; d/dz ``y sig(-z) - (n - y) sig(z)`` as ``log_prob``'s.
    The counts are data: a derivative in n or y is refused (``log_prob`` has them)."""
    return _free_parts(n, z, y)[0]


log_prob_free = jax.custom_jvp(_free_value)


def _log_prob_free_jvp(primals, tangents):
    n, z, y = primals
    dn, dz, dy = tangents
    if not (isinstance(dn, SymbolicZero) and isinstance(dy, SymbolicZero)):
        raise ValueError("binomial.log_prob_free: the counts are data (no derivative in them); differentiate log_prob")
    value, slope, _ = _free_parts(n, z, y)
    if isinstance(dz, SymbolicZero):
        return value, jnp.zeros_like(value)
    return value, slope * dz


log_prob_free.defjvp(_log_prob_free_jvp, symbolic_zeros=True)


def data_term(n, y):
    """The log-pmf's terms in the counts alone (float n, y), 0 off the support: ``log P + m log s`` of the
    coefficient's exact product below 10 (``special.log_rising_ratio_small``), Loader's
    ``log(n / (2 pi y (n - y)))/2 + corr(n) - corr(y) - corr(n - y)`` from 10 on. ``log_prob_free + data_term``
    is ``log_prob``, each branch's value split in two."""
    inside, ys, rest, large_count, big, ms = _branches(n, y)
    log_product, log_s = log_rising_ratio_small(large_count + 1, ms)
    yb, rb = safe_where(big, ys, STIRLING_MIN), safe_where(big, rest, STIRLING_MIN)
    saddle = (0.5 * (jnp.log(yb + rb) - jnp.log(yb) - jnp.log(rb)) - HALF_LOG_2PI + stirling_corr(yb + rb)
              - stirling_corr(yb) - stirling_corr(rb))
    return jnp.where(inside, jnp.where(big, saddle, log_product + y_log(ms, log_s)), jnp.zeros_like(y))


def mean(theta: Binomial):
    return theta.total_count * jax.nn.sigmoid(theta.logits)


def variance(theta: Binomial):
    return theta.total_count * jax.nn.sigmoid(theta.logits) * jax.nn.sigmoid(-theta.logits)


def mode(theta: Binomial):
    """``floor((n + 1) pi)``, at most n (the smaller of the two modes where ``(n + 1) pi`` is whole); a float."""
    n = theta.total_count
    return jnp.minimum(jnp.floor((n + 1) * jax.nn.sigmoid(theta.logits)), n)


# jax.random.binomial's rejection test (BTRS) adds terms of the size of n: right in float32 up to n ~ 1e6 (at 4e6 the
# variance is 1.005-1.013 times n pi (1 - pi), at 1e9 1.26-1.43 times), in float64 far beyond; above, n is halved first
EXACT_SAMPLE_TRIALS = {4: 2.0**19, 8: 2.0**40}


def _split_trials(key, n, q, largest):
    """Devroye's (1986, X.4) halving of a binomial, exact in law: with ``X ~ Beta(a, n + 1 - a)`` the a-th smallest of
    n uniforms (``a = 1 + floor(n/2)``), ``Binomial(n, q)`` is ``Binomial(a - 1, q / X)`` where ``X >= q`` and
    ``a + Binomial(n - a, (q - X)/(1 - X))`` where not. Repeated while ``n > largest`` (about log2(n / largest)
    times); returns the successes counted so far and the binomial ``(n, q)`` left, with ``n <= largest``."""
    def body(carry):
        i, key, base, n, q = carry
        key, k1, k2 = jax.random.split(key, 3)
        big = n > largest
        a = jnp.where(big, 1.0 + jnp.floor(n / 2), 1.0)
        b = jnp.where(big, n + 1.0 - a, 1.0)
        g1, g2 = jax.random.gamma(k1, a, dtype=n.dtype), jax.random.gamma(k2, b, dtype=n.dtype)
        x = g1 / (g1 + g2)
        below = x >= q
        n_next = jnp.where(below, a - 1.0, b - 1.0)
        q_next = jnp.where(below, jnp.where(x > 0, q / x, 0.0), (q - x) / (1.0 - x))
        return (i + 1, key, jnp.where(big & ~below, base + a, base), jnp.where(big, n_next, n),
                jnp.where(big, jnp.clip(q_next, 0.0, 1.0), q))

    def more(carry):
        return jnp.any(carry[3] > largest) & (carry[0] < 2200)
    _, _, base, n, q = jax.lax.while_loop(more, body, (0, key, jnp.zeros_like(n), n, q))
    return base, n, q


def sample(key, theta: Binomial):
    """``y ~ Binomial(n, sigmoid(logits))``, a float count in the parameters' dtype: the successes of the less likely
    outcome, ``q = sigmoid(-|z|)`` (exact however small; ``1 - sigmoid(z)`` rounds to 0 from z = 17 in float32), are
    drawn by ``jax.random.binomial`` once n is at most ``EXACT_SAMPLE_TRIALS`` (``_split_trials`` halves it before)."""
    n, z = theta.total_count, theta.logits
    dtype = jnp.result_type(n, z)
    shape = jnp.broadcast_shapes(jnp.shape(n), jnp.shape(z))
    n, z = jnp.broadcast_to(n, shape).astype(dtype), jnp.broadcast_to(z, shape).astype(dtype)
    q = jax.nn.sigmoid(-jnp.abs(z))
    k1, k2 = jax.random.split(key)
    finite = jnp.isfinite(n)
    base, rest, q = _split_trials(k1, jnp.where(finite, n, 0.0), q, EXACT_SAMPLE_TRIALS[max(jnp.dtype(dtype).itemsize, 4)])
    k = base + jax.random.binomial(k2, jnp.where(finite, rest, n), q, shape, dtype)
    return jnp.where(z > 0, n - k, k)


def log_tail(theta: Binomial, y, upper):
    """``log Pr(Y > y)`` where ``upper``, ``log Pr(Y <= y)`` elsewhere: with ``k = floor(y)`` in ``[0, n)``,
    ``Pr(Y <= k) = I_{1-pi}(n - k, k + 1)`` and ``Pr(Y > k) = I_pi(k + 1, n - k)`` (one incomplete beta, from
    ``log_sigmoid(+-z)``); below 0 the CDF is 0, from n on it is 1. ``binom.logcdf`` / ``binom.logsf``."""
    n, z = theta.total_count, theta.logits
    shape = jnp.broadcast_shapes(jnp.shape(y), jnp.shape(n), jnp.shape(z), jnp.shape(upper))
    dtype = jnp.result_type(n, z)
    n, z, upper = (jnp.broadcast_to(v, shape) for v in (n, z, upper))
    y = jnp.broadcast_to(jnp.asarray(y, dtype), shape)
    k = jnp.floor(y)
    inside = (k >= 0) & (k < n)
    ks = safe_where(inside, k, 0.0)
    a, b = ks + 1, safe_where(inside, n - ks, 1.0)
    zs = safe_where(jnp.isfinite(z), z, 0.0)
    log_pi, log_1mpi = jax.nn.log_sigmoid(zs), jax.nn.log_sigmoid(-zs)
    # one loop: the upper tail I_pi(k + 1, n - k), or the lower I_{1-pi}(n - k, k + 1)
    general = log_betainc(jnp.where(upper, a, b), jnp.where(upper, b, a), jnp.where(upper, log_pi, log_1mpi),
                          jnp.where(upper, log_1mpi, log_pi))
    # k = 0: Pr(Y <= 0) = (1 - pi)^n exactly; k = n - 1: Pr(Y > n - 1) = pi^n
    at_zero = n * log_1mpi
    at_top = n * log_pi
    general = jnp.where(ks == 0, jnp.where(upper, log1mexp(at_zero), at_zero), general)
    general = jnp.where((ks == n - 1) & (ks > 0), jnp.where(upper, at_top, log1mexp(at_top)), general)
    # pi = 0 (z = -inf): all mass at 0; pi = 1: all mass at n
    point = jnp.where(z == jnp.inf, n, 0.0)
    point_value = jnp.where((k >= point) != upper, 0.0, -jnp.inf)
    general = jnp.where(jnp.isfinite(z), general, point_value)
    edge = jnp.where((k < 0) == upper, 0.0, -jnp.inf)  # below 0: sf 1, cdf 0; from n on: cdf 1, sf 0
    value = jnp.where(inside, general, edge)
    return jnp.where(jnp.isnan(y) | jnp.isnan(z) | jnp.isnan(n), jnp.nan, value)


def log_cdf(theta: Binomial, y):
    """``log I_{1-pi}(n - k, k + 1)``, ``k = floor(y)``; ``binom.logcdf``."""
    return log_tail(theta, y, False)


def log_sf(theta: Binomial, y):
    """``log I_pi(k + 1, n - k)``, ``k = floor(y)``; ``binom.logsf``."""
    return log_tail(theta, y, True)


def _search(theta: Binomial, q, lower_first):
    n, z = theta.total_count, theta.logits
    shape = jnp.broadcast_shapes(jnp.shape(n), jnp.shape(z), jnp.shape(q))
    dtype = jnp.result_type(n, z)
    n, z = jnp.broadcast_to(n, shape), jnp.broadcast_to(z, shape)
    log_a, log_b = log_probabilities(jnp.broadcast_to(jnp.asarray(q, dtype), shape), dtype)
    log_q, log_p = (log_a, log_b) if lower_first else (log_b, log_a)
    pi = jax.nn.sigmoid(z)
    sd = jnp.sqrt(n * pi * jax.nn.sigmoid(-z))
    value = count_quantile(lambda k, up: log_tail(Binomial(n, z), k, up), log_q, log_p, n * pi, sd,
                           (1 - 2 * pi) / jnp.maximum(sd, 1e-3))
    return jnp.where(log_p == -jnp.inf, jnp.where(jnp.isnan(value), jnp.nan, n), jnp.minimum(value, n))


def quantile(theta: Binomial, q):
    """The smallest count k with ``Pr(Y <= k) >= q`` (``poisson.count_quantile``); ``binom.ppf``: -1 at q = 0,
    n at q = 1, NaN outside [0, 1]; exact in both tails."""
    return _search(theta, q, True)


def isf(theta: Binomial, p):
    """The smallest count k with ``Pr(Y > k) <= p``; ``binom.isf`` (n at p = 0, -1 at p = 1)."""
    return _search(theta, p, False)


_ENTROPY_TERMS = 1024  # counts summed by ``entropy``: every count for n < 1024


# from this variance on, ``entropy`` is its asymptotic series ``log(2 pi e v)/2 - (1 - 4 pi (1 - pi))/(12 v)``, whose
# next term (at most ``1/(24 v^2)`` in size, the Poisson's) is below a rounding of H: 4e-10 at 1e4 in float32, 4e-18
# at 1e8 in float64. The lattice's counts there (near 1e9 in float32) were multiples of 32 for a step of 1318
_ENTROPY_ASYMPTOTIC_VARIANCE = {4: 1e4, 8: 1e8}


def entropy(theta: Binomial):
    """``H = -sum_y Pr(y) log Pr(y)``, of the less likely outcome's count (``H(n, z) = H(n, -z)``): summed over
    ``_ENTROPY_TERMS`` = 1024 counts: every count up to n for n < 1024, else the 1024 counts centred on the mean;
    where the standard deviation s exceeds 12, every h-th count with ``h = ceil(s / 12)``, times h (the trapezoid
    rule on a lattice of step ``s / h >= 6``, whose error ``exp(-2 pi^2 (s / h)^2)`` is below 1e-300; the window is
    +-40 s wide). From a variance ``v = n pi (1 - pi)`` of 1e4 (float32; 1e8 in float64) on, the asymptotic series
    ``log(2 pi e v)/2 - tanh(z/2)^2 / (12 v)`` (``1 - 4 pi (1 - pi) = tanh(z/2)^2``; the next term is below a
    rounding of H there), where the counts near the mean would no longer be exact in the dtype. ``binom.entropy``."""
    n, z = theta.total_count, theta.logits
    dtype = jnp.result_type(n, z)
    shape = jnp.broadcast_shapes(jnp.shape(n), jnp.shape(z))
    n, z = jnp.broadcast_to(n, shape).astype(dtype), jnp.broadcast_to(z, shape).astype(dtype)
    z = -jnp.abs(z)  # the count of the less likely outcome: its mean n sig(-|z|) <= n/2, its counts small and exact
    var = variance(Binomial(n, z))
    large = var >= _ENTROPY_ASYMPTOTIC_VARIANCE[max(jnp.dtype(dtype).itemsize, 4)]
    v = safe_where(large, var, 1.0)
    asymptotic = 0.5 * (jnp.log(2.0 * jnp.pi * v) + 1.0) - jnp.square(jnp.tanh(0.5 * z)) / (12.0 * v)
    n, z = safe_where(~large, n, 1.0), safe_where(~large, z, 0.0)
    sd = jnp.sqrt(variance(Binomial(n, z)))
    step = jnp.maximum(jnp.ceil(sd / 12), 1.0)
    half = _ENTROPY_TERMS // 2
    start = jnp.clip(jnp.floor(mean(Binomial(n, z))) - half * step, 0.0,
                     jnp.maximum(n - (_ENTROPY_TERMS - 1) * step, 0.0))
    j = jnp.reshape(jnp.arange(_ENTROPY_TERMS, dtype=dtype), (1,) * len(shape) + (-1,))
    y = start[..., None] + step[..., None] * j
    lp = log_prob(Binomial(jnp.broadcast_to(n[..., None], y.shape), jnp.broadcast_to(z[..., None], y.shape)), y)
    term = jnp.where(lp > -jnp.inf, -jnp.exp(lp) * jnp.where(lp > -jnp.inf, lp, 0.0), 0.0)
    return jnp.where(large, asymptotic, step * jnp.sum(term, axis=-1))


def kl(p: Binomial, q: Binomial):
    """``n KL(Bernoulli(pi_p) || Bernoulli(pi_q)) = n [pi_p (z_p - z_q) + softplus(z_q) - softplus(z_p)]``
    for the same n (written in logits: ``log pi = z - softplus(z)``); NaN where the two n differ (no
    closed form; infinite where ``n_p > n_q``)."""
    zp, zq = p.logits, q.logits
    per_trial = jax.nn.sigmoid(zp) * (zp - zq) + jax.nn.softplus(zq) - jax.nn.softplus(zp)
    value = p.total_count * nonnegative(per_trial)
    return jnp.where(p.total_count == q.total_count, value, jnp.where(p.total_count > q.total_count, jnp.inf,
                                                                        jnp.nan))


def event_shape(theta: Binomial):
    return jnp.broadcast_shapes(jnp.shape(theta.total_count), jnp.shape(theta.logits))


def fisher(theta: Binomial):
    """The expected information in the logits, ``n pi (1 - pi)`` (the variance of y); ``total_count`` is known
    (0 in its row and column): a (2, 2) matrix over ``(total_count, logits)``. McCullagh and Nelder, section 4.4."""
    v = variance(theta)
    zero = jnp.zeros_like(v)
    return jnp.stack([jnp.stack([zero, zero]), jnp.stack([zero, v])])


def to_tfp(theta: Binomial):
    """TFP's twin: ``tfd.Binomial(total_count, logits=logits)``; distrax has no binomial."""
    return _twins.tfd().Binomial(theta.total_count, logits=theta.logits)


def from_tfp(dist) -> Binomial:
    """From logits or probs (``logits_parameter``)."""
    full = _twins.full(dist)
    return Binomial(full(dist.total_count), full(dist.logits_parameter()))


registry.register(Binomial, registry.Ops(
    domain={"total_count": "whole", "logits": "real"},
    log_prob=log_prob,
    mode=mode,
    mean=mean,
    variance=variance,
    sample=sample,
    entropy=entropy,
    event_shape=event_shape,
    fisher=fisher,
    to_tfp=to_tfp,
    tfp_names=('Binomial',),
    from_tfp=from_tfp,
    log_cdf=log_cdf,
    log_sf=log_sf,
    log_tail=log_tail,
    quantile=quantile,
    isf=isf,
    support=lambda theta: _support.nonnegative_integer,
    discrete=True,
    missing="the CRPS is the sampled estimate (key=)",
))
registry.register_kl(Binomial, Binomial, kl)
