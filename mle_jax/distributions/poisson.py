"""The Poisson distribution on the log-rate: counts.

    Pr(y | lambda) = lambda^y exp(-lambda) / y!,   y in {0, 1, 2, ...},   lambda = exp(log_rate)

The CDF is the regularised upper incomplete gamma ``Q(floor(y) + 1, lambda)`` in log space
(``incomplete``), exact in both tails. For y >= 10 the density is written with Stirling's series, ``-y expm1mx(log_rate - log y)
- log(2 pi y)/2 - corr(y)``, so that ``y log lambda``, ``lambda`` and ``log y!`` (each 1e9 at
y = 1e8) never cancel. Counts (``mode``, ``sample``) are floats in the parameters' dtype, as in
TensorFlow Probability: an int32 saturates at 2^31 - 1 (the mode of Poisson(exp(25)) is 7.2e10).

scipy equivalent: ``scipy.stats.poisson(exp(log_rate))``.
Reference: Prince, *Understanding Deep Learning*, problem 5.5 (Poisson regression).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
from jax.custom_derivatives import SymbolicZero
from .registry import Param
import jax.numpy as jnp
from jax.scipy.special import digamma, i0e, i1e

from . import _support, _twins, registry
from ._invert import log_probabilities
from .._checks import check_event_shape
from .incomplete import log_gammainc_tail
from .special import nonnegative, HALF_LOG_2PI, STIRLING_MIN, expm1mx, one_minus_bessel_tail, safe_where, stirling_corr

# below this rate jax.random.poisson's int32 draws are exact; above it the count is drawn from the
# Cornish-Fisher (skewness-corrected) normal approximation, whose CDF error is O(1/rate) < 1e-7
EXACT_SAMPLE_RATE = 1e7


class Poisson(NamedTuple):
    """Parameters of one example's Poisson: ``log_rate`` = log(lambda)."""

    log_rate: Param


def count_on_support(y):
    """True where ``y`` is a count: a non-negative integer value (finite: +inf is its own floor)."""
    return (y >= 0) & (y == jnp.floor(y)) & (y < jnp.inf)


def y_log(y, log_value):
    """``y * log_value`` with ``0 * log 0 = 0`` (a zero rate or probability at y = 0), double-where."""
    zero = y == 0
    return jnp.where(zero, jnp.zeros_like(y), y * safe_where(~zero, log_value, 0.0))


def log_factorial_small(y):
    """``log y!`` for a whole ``0 <= y < 10`` as the log of the exact product ``2 * 3 * ... * y`` (9! = 362880 is
    exact in float32): one log, not a log-gamma, and exact where jax's float32 ``gammaln(1)`` is 4.8e-7."""
    product = jnp.ones_like(y)
    for k in range(2, STIRLING_MIN_INT):
        product = product * jnp.where(y >= k, jnp.asarray(k, y.dtype), jnp.ones_like(y))
    return jnp.log(product)


STIRLING_MIN_INT = int(STIRLING_MIN)


def _log_prob_and_rate(z, y):
    """``(log Pr(y), lambda)``: for ``y >= 10`` Stirling's series ``-y expm1mx(z - log y) - log(2 pi y)/2 -
    corr(y)``, below it ``y z - lambda - log y!`` with the exact small factorial; -inf off the support."""
    big = y >= STIRLING_MIN
    yb = safe_where(big, y, STIRLING_MIN)
    log_y = jnp.log(yb)
    stirling = -yb * expm1mx(z - log_y) - 0.5 * log_y - HALF_LOG_2PI - stirling_corr(yb)
    rate = jnp.exp(z)
    ys = safe_where(~big, y, 0.0)
    # 0 * log 0 = 0: a zero rate (z = -inf) at y = 0 has probability 1
    direct = jnp.where(ys == 0, jnp.zeros_like(ys), ys * z) - rate - log_factorial_small(ys)
    # an infinite rate puts no mass on any finite count (inf - inf in the formulas above); a NaN rate gives NaN
    value = jnp.where(count_on_support(y) & (z != jnp.inf), jnp.where(big, stirling, direct), -jnp.inf)
    return jnp.where(jnp.isnan(y), jnp.nan, value), rate


@jax.custom_jvp
def _log_prob(z, y):
    return _log_prob_and_rate(z, y)[0]


@_log_prob.defjvp
def _log_prob_jvp(primals, tangents):
    """``d/dz = y - lambda`` on the support (0 off it), ``d/dy = z - psi(y + 1)``: written out, since autodiff
    would differentiate both branches under their ``where``s and the data-only terms (``log y!``, Stirling's
    correction), which do not depend on the rate. The rule is itself differentiable (Hessians)."""
    z, y = primals
    dz, dy = tangents
    value, rate = _log_prob_and_rate(z, y)
    valid = count_on_support(y) & (z != jnp.inf)
    d_z = jnp.where(valid, y - rate, jnp.zeros_like(rate))
    d_y = jnp.where(valid, z - digamma(y + 1), jnp.zeros_like(rate))
    return value, d_z * dz + d_y * dy


def _free_and_rate(z, y):
    """``(log Pr(y) - data_term(y), lambda)``: the part of ``_log_prob_and_rate``'s value that moves with the
    log-rate, branch by branch: ``-y expm1mx(z - log y)`` for ``y >= 10``, ``y z - lambda`` below; -inf off the
    support, NaN at a NaN count."""
    big = y >= STIRLING_MIN
    yb = safe_where(big, y, STIRLING_MIN)
    stirling = -yb * expm1mx(z - jnp.log(yb))
    rate = jnp.exp(z)
    ys = safe_where(~big, y, 0.0)
    direct = jnp.where(ys == 0, jnp.zeros_like(ys), ys * z) - rate
    value = jnp.where(count_on_support(y) & (z != jnp.inf), jnp.where(big, stirling, direct), -jnp.inf)
    return jnp.where(jnp.isnan(y), jnp.nan, value), rate


@jax.custom_jvp
def log_prob_free(z, y):
    """``log Pr(y | z) - data_term(y)``, the part of the log-pmf that depends on the log-rate z (same shapes,
    float y); its derivative in z is ``y - lambda`` on the support (as ``log_prob``'s). The count is data: a
    derivative in it is refused (``log_prob`` has one)."""
    return _free_and_rate(z, y)[0]


def _log_prob_free_jvp(primals, tangents):
    z, y = primals
    dz, dy = tangents
    if not isinstance(dy, SymbolicZero):
        raise ValueError("poisson.log_prob_free: the count y is data (no derivative in it); differentiate log_prob")
    value, rate = _free_and_rate(z, y)
    if isinstance(dz, SymbolicZero):
        return value, jnp.zeros_like(value)
    valid = count_on_support(y) & (z != jnp.inf)
    return value, jnp.where(valid, y - rate, jnp.zeros_like(rate)) * dz


log_prob_free.defjvp(_log_prob_free_jvp, symbolic_zeros=True)


def data_term(y):
    """The log-pmf's terms in y alone (float y): ``-log(2 pi y)/2 - corr(y)`` for ``y >= 10`` (Stirling's
    series), ``-log y!`` below (the exact small factorial); 0 at y = 0. ``log_prob_free(z, y) + data_term(y)``
    is ``log_prob``: each branch's value split in two, nothing that cancels."""
    big = y >= STIRLING_MIN
    yb = safe_where(big, y, STIRLING_MIN)
    stirling = -0.5 * jnp.log(yb) - HALF_LOG_2PI - stirling_corr(yb)
    return jnp.where(big, stirling, -log_factorial_small(safe_where(~big, y, 0.0)))


def log_prob(theta: Poisson, y):
    """``y log lambda - lambda - log y!``; equals ``scipy.stats.poisson.logpmf``; -inf off the support.

    ``log_rate = -inf`` (a zero rate) gives 0 at y = 0 and -inf elsewhere; ``+inf`` gives -inf. The
    derivative in the log-rate is written out, ``y - lambda`` (``_log_prob_jvp``).
    """
    check_event_shape("Poisson", y, jnp.shape(theta.log_rate))
    z = theta.log_rate
    dtype = jnp.result_type(z)
    y = jnp.asarray(y, dtype)
    shape = jnp.broadcast_shapes(jnp.shape(z), jnp.shape(y))
    return _log_prob(jnp.broadcast_to(jnp.asarray(z, dtype), shape), jnp.broadcast_to(y, shape))


def kl(p: Poisson, q: Poisson):
    """``KL = lambda_p (log lambda_p - log lambda_q) - lambda_p + lambda_q = lambda_q g(u)``,
    ``u = log lambda_p - log lambda_q``, ``g(u) = u (e^u - 1) - (e^u - 1 - u) >= 0``; ``lambda_q`` at a
    zero ``lambda_p`` (``kl(Poisson(-inf), Poisson(0)) = 1``), inf at a zero ``lambda_q`` only."""
    lp, lq = p.log_rate, q.log_rate
    p_zero, q_zero = jnp.isneginf(lp), jnp.isneginf(lq)
    regular = ~(p_zero | q_zero)
    u = safe_where(regular, lp - lq, 0.0)
    far = jnp.abs(u) > 1.0
    # far from u = 0 nothing cancels: lambda_q + lambda_p (u - 1), without e^u (e^90 overflows float32
    # where lambda_p u, at log rates 40 and -50, does not)
    far_value = jnp.exp(safe_where(far, lq, 0.0)) + jnp.exp(safe_where(far, lp, 0.0)) * (u - 1.0)
    near_value = jnp.exp(lq) * (u * jnp.expm1(u) - expm1mx(u))
    value = nonnegative(jnp.where(far, far_value, near_value))
    return jnp.where(p_zero, jnp.exp(lq), jnp.where(q_zero, jnp.inf, value))


def mode(theta: Poisson):
    """``argmax_y Pr(y) = floor(lambda)``, a float count in the parameters' dtype."""
    return jnp.floor(jnp.exp(theta.log_rate))


def mean(theta: Poisson):
    return jnp.exp(theta.log_rate)


def draw_count(key, rate):
    """A Poisson(rate) draw as a float of rate's dtype: exact (``jax.random.poisson``) below
    ``EXACT_SAMPLE_RATE``, the skewness-corrected normal quantile ``rate + sqrt(rate) e + (e^2 - 1)/6``
    rounded above it (never an int32 that saturates)."""
    dtype = jnp.result_type(rate)
    small = rate < EXACT_SAMPLE_RATE
    k1, k2 = jax.random.split(key)
    exact = jax.random.poisson(k1, safe_where(small, rate, 1.0), dtype=jnp.int32).astype(dtype)
    e = jax.random.normal(k2, jnp.shape(rate), dtype)
    big = safe_where(~small, rate, EXACT_SAMPLE_RATE)
    approx = jnp.maximum(jnp.floor(big + jnp.sqrt(big) * e + (jnp.square(e) - 1) / 6 + 0.5), 0.0)
    return jnp.where(small, exact, approx)


def sample(key, theta: Poisson):
    """A count ``y ~ Poisson(exp(log_rate))`` as a float in the parameters' dtype."""
    return draw_count(key, jnp.exp(theta.log_rate))


def count_tail(y, upper, tail, dtype):
    """``tail(k + 1, upper)`` at ``k = floor(y)`` for ``0 <= y < inf`` (a count's log cdf where not ``upper``, log
    sf where ``upper``), with the limits ``log Pr(Y <= y) = -inf`` below 0 and ``0`` at ``y = inf``; NaN stays NaN."""
    y = jnp.asarray(y, dtype)
    inside = (y >= 0) & (y < jnp.inf)
    value = tail(jnp.floor(safe_where(inside, y, 0.0)) + 1.0, upper)
    edge = jnp.where((y < 0) == jnp.asarray(upper), 0.0, -jnp.inf)  # below 0: sf 0, cdf -inf; at inf: the reverse
    return jnp.where(inside, value, jnp.where(jnp.isnan(y), jnp.nan, edge))


def log_tail(theta: Poisson, y, upper):
    """``log Pr(Y > y)`` where ``upper``, ``log Pr(Y <= y)`` elsewhere, from one incomplete gamma: with
    ``k = floor(y)``, ``Pr(Y <= y) = Q(k + 1, lambda)`` and ``Pr(Y > y) = P(k + 1, lambda)`` (DLMF 8.4.10), at
    ``log x = log_rate`` (lambda itself may underflow). ``poisson.logcdf`` / ``poisson.logsf``."""
    z = theta.log_rate
    shape = jnp.broadcast_shapes(jnp.shape(y), jnp.shape(z), jnp.shape(upper))
    z = jnp.broadcast_to(z, shape)
    return count_tail(jnp.broadcast_to(y, shape), jnp.broadcast_to(upper, shape),
                      lambda a, up: log_gammainc_tail(a, jnp.exp(z), ~up, z), z.dtype)


def log_cdf(theta: Poisson, y):
    """``log Pr(Y <= y) = log Q(floor(y) + 1, lambda)``; ``poisson.logcdf``."""
    return log_tail(theta, y, False)


def log_sf(theta: Poisson, y):
    """``log Pr(Y > y) = log P(floor(y) + 1, lambda)``; ``poisson.logsf``."""
    return log_tail(theta, y, True)


def _probe_start(mean, sd, skew, z):
    """The Cornish-Fisher start ``mean + sd (z + skew (z^2 - 1)/6)``, rounded, clipped to ``[0, 2^60]``."""
    guess = jnp.floor(mean + sd * (z + skew * (jnp.square(z) - 1) / 6) + 0.5)
    return jnp.clip(jnp.where(jnp.isnan(guess), 0.0, guess), 0.0, 2.0 ** 60)


def count_quantile(log_tail_at, log_q, log_p, mean, sd, skew):
    """The smallest count ``k >= 0`` with ``Pr(Y <= k) >= q`` (scipy's ``ppf``), ``q + p = 1`` given as ``log q`` and
    ``log p``: where ``p < 1/2`` the test is ``log Pr(Y > k) <= log p`` (exact for ``p`` far below float
    epsilon: ``isf``), elsewhere ``log Pr(Y <= k) >= log q``, each from one ``log_tail_at(k, upper)``.

    The search starts at the Cornish-Fisher quantile of ``(mean, sd, skew)``, gallops (steps doubling from
    ``sd/4``) until the answer is bracketed, and bisects the integers in between: one ``lax.while_loop`` of at
    most 2200 tail evaluations (about 2 log2(error) + 3 in practice). ``q = 0`` is -1 and ``q = 1`` inf (scipy's
    conventions); a count beyond ``2^60``, or an infinite one, is inf; NaN parameters or q give NaN. Every
    argument has the same shape and floating dtype.

    A tie ``Pr(Y <= k) = q`` is k: each test holds within ``64 eps`` relative of q or p (R's ``qbinom`` fuzz), where
    the tails' few roundings put F(k) an ulp below q and the search answered k + 1 (Binomial(3, 1/2)'s median 2 for
    scipy's 1). A q within 64 eps above F(k) reads k too: below the resolution of q itself."""
    dtype = log_q.dtype
    upper = log_p < log_q
    z = jnp.where(upper, -jax.scipy.special.ndtri(jnp.exp(log_p)), jax.scipy.special.ndtri(jnp.exp(log_q)))
    z = jnp.clip(z, -40.0, 40.0)  # ndtri of 0 or 1 (a tail below float range) is infinite: the gallop goes on
    probe = _probe_start(mean, sd, skew, z)
    step = jnp.maximum(jnp.floor(jnp.where(jnp.isfinite(sd), sd, 1.0) / 4), 1.0)
    inner = (log_q > -jnp.inf) & (log_p > -jnp.inf)  # 0 < q < 1
    cap = jnp.asarray(2.0 ** 60, dtype)

    fuzz = 64 * float(jnp.finfo(dtype).eps)  # in log q: 64 eps relative to q (a tie's roundings)

    def satisfied(k):
        value = log_tail_at(k, upper)
        return jnp.where(upper, value <= log_p + fuzz, value >= log_q - fuzz)

    def running(lo, hi):
        mid = jnp.floor(0.5 * (lo + hi))
        bracketed = (hi - lo > 1) & (mid > lo) & (mid < hi)  # no integer (no float) strictly between
        return jnp.where(hi < jnp.inf, bracketed, lo < cap)

    def cond(state):
        lo, hi, probe, step, lo_set, active, i = state
        return jnp.any(active) & (i < 2200)

    def body(state):
        lo, hi, probe, step, lo_set, active, i = state
        good = satisfied(probe)
        hi = jnp.where(active & good, jnp.minimum(hi, probe), hi)
        lo = jnp.where(active & ~good, jnp.maximum(lo, probe), lo)
        lo_set = lo_set | (active & ~good)
        bisect = lo_set & (hi < jnp.inf)
        gallop = jnp.where(hi < jnp.inf, jnp.maximum(probe - step, lo + 1), jnp.minimum(probe + step, cap))
        probe = jnp.where(bisect, jnp.floor(0.5 * (lo + hi)), gallop)
        active = active & running(lo, hi)
        return lo, hi, probe, 2 * step, lo_set, active, i + 1

    shape = jnp.shape(log_q)
    start = (jnp.full(shape, -1.0, dtype), jnp.full(shape, jnp.inf, dtype), probe, step,
             jnp.zeros(shape, bool), inner & ~jnp.isnan(probe), jnp.asarray(0))
    lo, hi, *_ = jax.lax.while_loop(cond, body, start)
    value = jnp.where(lo >= cap, jnp.inf, hi)
    value = jnp.where(log_q == -jnp.inf, -1.0, jnp.where(log_p == -jnp.inf, jnp.inf, value))
    bad = jnp.isnan(log_q) | jnp.isnan(log_p) | jnp.isnan(mean) | jnp.isnan(sd)
    return jnp.where(bad, jnp.nan, value)


def _quantile_parts(theta: Poisson, q):
    z = theta.log_rate
    shape = jnp.broadcast_shapes(jnp.shape(z), jnp.shape(q))
    return jnp.broadcast_to(z, shape), jnp.broadcast_to(jnp.asarray(q, jnp.result_type(z)), shape)


def _search(z, log_q, log_p):
    lam = jnp.exp(z)
    sd = jnp.sqrt(lam)
    value = count_quantile(lambda k, up: log_tail(Poisson(z), k, up), log_q, log_p, lam, sd,
                           1 / jnp.maximum(sd, 1e-3))
    # rate 0: all mass at 0 (still -1 at q = 0 and inf at q = 1, as scipy)
    return jnp.where((z == -jnp.inf) & (log_q > -jnp.inf) & (log_p > -jnp.inf), 0.0, value)


def quantile(theta: Poisson, q):
    """The smallest count k with ``Pr(Y <= k) >= q`` (``count_quantile``); ``poisson.ppf``: -1 at q = 0, inf at
    q = 1, NaN outside [0, 1]. Exact in both tails (q = 1e-300, or 1 - q below epsilon, through ``isf``)."""
    z, q = _quantile_parts(theta, q)
    return _search(z, *log_probabilities(q, z.dtype))


def isf(theta: Poisson, p):
    """The smallest count k with ``Pr(Y > k) <= p``; ``poisson.isf``, exact for p far below float epsilon."""
    z, p = _quantile_parts(theta, p)
    log_p, log_q = log_probabilities(p, z.dtype)
    return _search(z, log_q, log_p)


def crps(theta: Poisson, y):
    """``(y - l)(2F(y) - 1) + 2 l f(y) - l e^{-2l} (I_0(2l) + I_1(2l))`` at a count y (Wei and Held, 2014, TEST
    23); at y = 0 ``l (1 - e^{-2l} (I_0(2l) + I_1(2l)))`` (about ``l^2`` for small l, where the general form
    cancels to a negative number; ``special.one_minus_bessel_tail``). ``l = 0`` (``log_rate = -inf``) is the
    point mass at 0, whose CRPS is y. scoringrules' ``crps_poisson``."""
    lam = jnp.exp(theta.log_rate)
    cdf = jnp.exp(log_cdf(theta, y))
    lam_pmf = jnp.where(lam > 0, lam * jnp.exp(log_prob(theta, y)), 0.0)
    general = (y - lam) * (2 * cdf - 1) + 2 * lam_pmf - lam * (i0e(2 * lam) + i1e(2 * lam))
    return jnp.where(y == 0, lam * one_minus_bessel_tail(2 * lam), general)


def event_shape(theta: Poisson):
    return jnp.shape(theta.log_rate)


def fisher(theta: Poisson):
    """The expected information in the log-rate, ``F = lambda = exp(log_rate)`` (the variance of y), a
    (1, 1) matrix. Reference: McCullagh and Nelder (1989), section 6.2."""
    return jnp.reshape(mean(theta), (1, 1))


def to_tfp(theta: Poisson):
    """TFP's twin: ``tfd.Poisson(log_rate=log_rate)`` (distrax has no Poisson)."""
    return _twins.tfd().Poisson(log_rate=theta.log_rate)


def from_tfp(dist) -> Poisson:
    """From the rate or the log-rate (``log_rate_parameter``)."""
    return Poisson(_twins.full(dist)(dist.log_rate_parameter()))


registry.register(Poisson, registry.Ops(
    domain={"log_rate": "real"},
    log_prob=log_prob,
    mode=mode,
    mean=mean,
    variance=mean,
    sample=sample,
    event_shape=event_shape,
    fisher=fisher,
    to_tfp=to_tfp,
    tfp_names=('Poisson',),
    from_tfp=from_tfp,
    log_cdf=log_cdf,
    log_sf=log_sf,
    log_tail=log_tail,
    quantile=quantile,
    isf=isf,
    crps=crps,
    support=lambda theta: _support.nonnegative_integer,
    discrete=True,
))
registry.register_kl(Poisson, Poisson, kl)
