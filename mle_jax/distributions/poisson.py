"""The Poisson distribution on the log-rate: counts.

    Pr(y | lambda) = lambda^y exp(-lambda) / y!,   y in {0, 1, 2, ...},   lambda = exp(log_rate)

For y >= 10 the density is written with Stirling's series, ``-y expm1mx(log_rate - log y)
- log(2 pi y)/2 - corr(y)``, so that ``y log lambda``, ``lambda`` and ``log y!`` (each 1e9 at
y = 1e8) never cancel. Counts (``mode``, ``sample``) are floats in the parameters' dtype, as in
TensorFlow Probability: an int32 saturates at 2^31 - 1 (the mode of Poisson(exp(25)) is 7.2e10).

scipy equivalent: ``scipy.stats.poisson(exp(log_rate))``.
Reference: Prince, *Understanding Deep Learning*, problem 5.5 (Poisson regression).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
from .registry import Param
import jax.numpy as jnp
from jax.scipy.special import gammaln

from . import _twins, registry
from ..checks import check_event_shape
from .special import HALF_LOG_2PI, STIRLING_MIN, _safe, expm1mx, stirling_corr

# below this rate jax.random.poisson's int32 draws are exact; above it the count is drawn from the
# Cornish-Fisher (skewness-corrected) normal approximation, whose CDF error is O(1/rate) < 1e-7
EXACT_SAMPLE_RATE = 1e7


class Poisson(NamedTuple):
    """Parameters of one example's Poisson: ``log_rate`` = log(lambda)."""

    log_rate: Param


def count_on_support(y):
    """True where ``y`` is a count: a non-negative integer value."""
    return (y >= 0) & (y == jnp.floor(y))


def y_log(y, log_value):
    """``y * log_value`` with ``0 * log 0 = 0`` (a zero rate or probability at y = 0), double-where."""
    zero = y == 0
    return jnp.where(zero, jnp.zeros_like(y), y * _safe(~zero, log_value, 0.0))


def log_prob(theta: Poisson, y):
    """``y log lambda - lambda - log y!``; equals ``scipy.stats.poisson.logpmf``; -inf off the support.

    ``log_rate = -inf`` (a zero rate) gives 0 at y = 0 and -inf elsewhere; ``+inf`` gives -inf.
    """
    check_event_shape("Poisson", y, jnp.shape(theta.log_rate))
    z = theta.log_rate
    y = jnp.asarray(y, jnp.result_type(z))
    big = y >= STIRLING_MIN
    yb = _safe(big, y, STIRLING_MIN)
    stirling = -yb * expm1mx(z - jnp.log(yb)) - 0.5 * jnp.log(yb) - HALF_LOG_2PI - stirling_corr(yb)
    ys = _safe(~big, y, 0.0)
    # log 0! = log 1! = 0 exactly (jax's float32 gammaln(1) is 4.8e-7, which a zero rate would show)
    direct = y_log(ys, z) - jnp.exp(z) - jnp.where(ys < 2, 0.0, gammaln(ys + 1))
    # an infinite rate puts no mass on any finite count (inf - inf in the formulas above)
    finite_rate = z < jnp.inf
    value = jnp.where(count_on_support(y) & finite_rate, jnp.where(big, stirling, direct), -jnp.inf)
    return jnp.where(jnp.isnan(y), jnp.nan, value)


def kl(p: Poisson, q: Poisson):
    """``KL = lambda_p (log lambda_p - log lambda_q) - lambda_p + lambda_q = lambda_q g(u)``,
    ``u = log lambda_p - log lambda_q``, ``g(u) = u (e^u - 1) - (e^u - 1 - u) >= 0``; ``lambda_q`` at a
    zero ``lambda_p`` (``kl(Poisson(-inf), Poisson(0)) = 1``), inf at a zero ``lambda_q`` only."""
    lp, lq = p.log_rate, q.log_rate
    p_zero, q_zero = jnp.isneginf(lp), jnp.isneginf(lq)
    regular = ~(p_zero | q_zero)
    u = _safe(regular, lp - lq, 0.0)
    far = jnp.abs(u) > 1.0
    # far from u = 0 nothing cancels: lambda_q + lambda_p (u - 1), without e^u (e^90 overflows float32
    # where lambda_p u, at log rates 40 and -50, does not)
    far_value = jnp.exp(_safe(far, lq, 0.0)) + jnp.exp(_safe(far, lp, 0.0)) * (u - 1.0)
    near_value = jnp.exp(lq) * (u * jnp.expm1(u) - expm1mx(u))
    value = jnp.maximum(jnp.where(far, far_value, near_value), 0.0)
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
    exact = jax.random.poisson(k1, _safe(small, rate, 1.0), dtype=jnp.int32).astype(dtype)
    e = jax.random.normal(k2, jnp.shape(rate), dtype)
    big = _safe(~small, rate, EXACT_SAMPLE_RATE)
    approx = jnp.maximum(jnp.floor(big + jnp.sqrt(big) * e + (jnp.square(e) - 1) / 6 + 0.5), 0.0)
    return jnp.where(small, exact, approx)


def sample(key, theta: Poisson):
    """A count ``y ~ Poisson(exp(log_rate))`` as a float in the parameters' dtype."""
    return draw_count(key, jnp.exp(theta.log_rate))


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
))
registry.register_kl(Poisson, Poisson, kl)
