"""The negative binomial distribution: overdispersed counts (variance above the mean).

    Pr(y | r, pi) = Gamma(y + r) / (Gamma(r) y!) (1 - pi)^r pi^y,   y in {0, 1, 2, ...},   pi = sig(logits)

the Poisson whose rate is Gamma(r, (1 - pi)/pi) distributed: mean ``r e^logits``, variance
``mean / (1 - pi)``, which is the Poisson's as r grows.

The binomial coefficient is ``-log B(r, y + 1) - log(y + r)`` with the stable ``special.betaln``
(``lgamma(y + r) - lgamma(r)`` at r = 1e8 cancels every float32 digit). Counts (``mode``,
``sample``) are floats in the parameters' dtype, as for the Poisson.

scipy equivalent: ``scipy.stats.nbinom(n=total_count, p=sigmoid(-logits))``.
Reference: Prince, *Understanding Deep Learning*, section 5.6; Hilbe, *Negative Binomial Regression* (2011).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
from .registry import Param
import jax.numpy as jnp

from . import _twins, registry
from ..checks import check_event_shape
from .poisson import count_on_support, draw_count, y_log
from .special import HALF_LOG_2PI, STIRLING_MIN, _safe, betaln, deviance, log_add_small, stirling_corr


class NegativeBinomial(NamedTuple):
    """Parameters of one example's negative binomial: ``total_count`` (r > 0) and ``logits`` (log-odds of pi)."""

    total_count: Param
    logits: Param


def log_prob(theta: NegativeBinomial, y):
    """``-log B(r, y + 1) - log(y + r) + r log_sigmoid(-z) + y log_sigmoid(z)``; ``nbinom.logpmf``.

    ``logits = -inf`` (pi = 0) gives 0 at y = 0 and -inf elsewhere; -inf off the support.
    """
    check_event_shape("NegativeBinomial", y, jnp.shape(theta.logits))
    r, z = theta.total_count, theta.logits
    y = jnp.asarray(y, jnp.result_type(z))
    ys = jnp.where(count_on_support(y), y, jnp.zeros_like(y))
    big = (ys >= STIRLING_MIN) & (r >= STIRLING_MIN)
    # at y = 0 the combinatorial factor -log B(r, 1) - log r is exactly 0: say so, not betaln's float32 error
    combinatorial = jnp.where(ys == 0, 0.0, -betaln(r, ys + 1) - log_add_small(jnp.maximum(ys, r), jnp.minimum(ys, r)))
    direct = combinatorial + r * jax.nn.log_sigmoid(-z) + y_log(ys, jax.nn.log_sigmoid(z))
    value = jnp.where(big, _stirling(_safe(big, r, STIRLING_MIN), _safe(big, ys, STIRLING_MIN), z), direct)
    value = jnp.where(count_on_support(y), value, -jnp.inf)
    return jnp.where(jnp.isnan(y), jnp.nan, value)


def _stirling(r, y, z):
    """``log Pr(y)`` for ``r, y >= 10`` by Stirling's series, without terms of size ``r`` or ``y``:
    ``log(r / (y n))/2 - log(2 pi)/2 - corr(r) - corr(y) + corr(n) - dev(y, n pi) - dev(r, n (1 - pi))``,
    ``n = r + y``, ``dev(k, m) = k log(k/m) - k + m`` (``special.deviance``). At r = y = 1e6, z = 0
    the plain form adds terms of 1.4e6 (-8.125 in float32, truth -8.1733)."""
    n = r + y
    log_n = jnp.log(n)
    dev_y = deviance(y, n * jax.nn.sigmoid(z), log_n + jax.nn.log_sigmoid(z))
    dev_r = deviance(r, n * jax.nn.sigmoid(-z), log_n + jax.nn.log_sigmoid(-z))
    return (0.5 * (jnp.log(r) - jnp.log(y) - log_n) - HALF_LOG_2PI - stirling_corr(r) - stirling_corr(y)
            + stirling_corr(n) - dev_y - dev_r)


def mean(theta: NegativeBinomial):
    return theta.total_count * jnp.exp(theta.logits)


def variance(theta: NegativeBinomial):
    return mean(theta) / jax.nn.sigmoid(-theta.logits)


def mode(theta: NegativeBinomial):
    """``argmax_y Pr(y) = floor((r - 1) pi / (1 - pi))`` for r > 1, else 0; a float count."""
    return jnp.floor(jnp.maximum(theta.total_count - 1, 0) * jnp.exp(theta.logits))


def sample(key, theta: NegativeBinomial):
    """The gamma-Poisson mixture: ``lambda ~ Gamma(r) e^logits``, ``y ~ Poisson(lambda)``; a float count."""
    k1, k2 = jax.random.split(key)
    r = theta.total_count
    rate = jax.random.gamma(k1, r, dtype=jnp.result_type(r)) * jnp.exp(theta.logits)
    return draw_count(k2, rate)


def event_shape(theta: NegativeBinomial):
    return jnp.shape(theta.logits)


def to_tfp(theta: NegativeBinomial):
    """TFP's twin: ``tfd.NegativeBinomial(total_count, logits=logits)``, the same convention (successes
    of probability ``sigmoid(logits)``); distrax has no negative binomial."""
    return _twins.tfd().NegativeBinomial(theta.total_count, logits=theta.logits)


def from_tfp(dist) -> NegativeBinomial:
    """From logits or probs (``logits_parameter``)."""
    full = _twins.full(dist)
    return NegativeBinomial(full(dist.total_count), full(dist.logits_parameter()))


# no fisher: the total_count entry of the expected information, psi'(r) - E[psi'(y + r)], is an infinite
# series (the families learn r), so inference(cov="expected") gives the registry's NotImplementedError
registry.register(NegativeBinomial, registry.Ops(
    log_prob=log_prob,
    mode=mode,
    mean=mean,
    variance=variance,
    sample=sample,
    event_shape=event_shape,
    to_tfp=to_tfp,
    tfp_names=('NegativeBinomial',),
    from_tfp=from_tfp,
))
