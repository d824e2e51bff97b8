"""The negative binomial distribution: overdispersed counts (variance above the mean).

    Pr(y | r, pi) = Gamma(y + r) / (Gamma(r) y!) (1 - pi)^r pi^y,   y in {0, 1, 2, ...},   pi = sig(logits)

the Poisson whose rate is Gamma(r, (1 - pi)/pi) distributed: mean ``r e^logits``, variance
``mean / (1 - pi)``, which is the Poisson's as r grows.

The binomial coefficient is ``-log B(r, y + 1) - log(y + r)`` with the stable ``special.betaln_small``
(``lgamma(y + r) - lgamma(r)`` at r = 1e8 cancels every float32 digit). The CDF is the regularised
incomplete beta ``I_p(r, floor(y) + 1)``, ``p = sig(-logits)``, in log space (``incomplete``). Counts (``mode``,
``sample``) are floats in the parameters' dtype, as for the Poisson.

scipy equivalent: ``scipy.stats.nbinom(n=total_count, p=sigmoid(-logits))``.
Reference: Prince, *Understanding Deep Learning*, section 5.6; Hilbe, *Negative Binomial Regression* (2011).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
from jax.custom_derivatives import SymbolicZero
from jax.scipy.special import digamma
from .registry import Param
import jax.numpy as jnp

from . import _support, _twins, registry
from .._checks import check_event_shape
from .incomplete import log_betainc
from .poisson import count_on_support, count_quantile, count_tail, draw_count, log_probabilities, y_log
from .special import (HALF_LOG_2PI, STIRLING_MIN, betaln_small, deviance, digamma_gap,
                      hyp2f1_half, log1mexp, log_add_small, safe_where, stirling_corr)


class NegativeBinomial(NamedTuple):
    """Parameters of one example's negative binomial: ``total_count`` (r > 0) and ``logits`` (log-odds of pi)."""

    total_count: Param
    logits: Param


def log_prob(theta: NegativeBinomial, y):
    """``-log B(r, y + 1) - log(y + r) + r log_sigmoid(-z) + y log_sigmoid(z)``; ``nbinom.logpmf``.

    ``logits = -inf`` (pi = 0) gives 0 at y = 0 and -inf elsewhere; -inf off the support. The derivatives
    are written out (``_log_prob_jvp``).
    """
    check_event_shape("NegativeBinomial", y, jnp.shape(theta.logits))
    r, z = theta.total_count, theta.logits
    dtype = jnp.result_type(r, z)
    y = jnp.asarray(y, dtype)
    shape = jnp.broadcast_shapes(jnp.shape(r), jnp.shape(z), jnp.shape(y))
    r, z = jnp.asarray(r, dtype), jnp.asarray(z, dtype)
    return _log_prob(jnp.broadcast_to(r, shape), jnp.broadcast_to(z, shape), jnp.broadcast_to(y, shape))


def _log_prob_value(r, z, y):
    ys = jnp.where(count_on_support(y), y, jnp.zeros_like(y))
    big = (ys >= STIRLING_MIN) & (r >= STIRLING_MIN)
    # at y = 0 the combinatorial factor -log B(r, 1) - log r is exactly 0: say so, not betaln's float32 error
    # min(r, y + 1) <= 10 wherever this branch is taken (both >= 10 is the Stirling form): betaln_small
    combinatorial = jnp.where(ys == 0, 0.0,
                              -betaln_small(r, ys + 1) - log_add_small(jnp.maximum(ys, r), jnp.minimum(ys, r)))
    direct = combinatorial + r * jax.nn.log_sigmoid(-z) + y_log(ys, jax.nn.log_sigmoid(z))
    value = jnp.where(big, _stirling(safe_where(big, r, STIRLING_MIN), safe_where(big, ys, STIRLING_MIN), z), direct)
    value = jnp.where(count_on_support(y), value, -jnp.inf)
    return jnp.where(jnp.isnan(y), jnp.nan, value)


_log_prob = jax.custom_jvp(_log_prob_value)


def _log_prob_jvp(primals, tangents):
    """``d/dz = y sig(-z) - r sig(z)``, ``d/dr = psi(y + r) - psi(r) + log_sigmoid(-z)`` by ``special.digamma_gap``
    (``D(y + r) - D(r) + log1p(y/r)`` with ``D = psi - log`` for r >= 10: no cancellation at r = 1e6, y = 1),
    ``d/dy = psi(y + r) - psi(y + 1) + log_sigmoid(z)``; 0 off the support. Autodiff would
    differentiate every branch of the value under its ``where`` (the Stirling form, ``betaln``'s three);
    a tangent that is a symbolic zero (a fixed r, a target) costs nothing. The rule is differentiable."""
    r, z, y = primals
    dr, dz, dy = tangents
    value = _log_prob_value(r, z, y)
    valid = count_on_support(y)
    ys = jnp.where(valid, y, jnp.zeros_like(y))
    zero = jnp.zeros_like(value)
    tangent = zero
    if not isinstance(dz, SymbolicZero):
        d_z = ys * jax.nn.sigmoid(-z) - r * jax.nn.sigmoid(z)
        tangent = tangent + jnp.where(valid, d_z, zero) * dz
    if not isinstance(dr, SymbolicZero):
        d_r = digamma_gap(r, ys) + jax.nn.log_sigmoid(-z)
        tangent = tangent + jnp.where(valid, d_r, zero) * dr
    if not isinstance(dy, SymbolicZero):
        d_y = digamma(ys + r) - digamma(ys + 1) + jax.nn.log_sigmoid(z)
        tangent = tangent + jnp.where(valid, d_y, zero) * dy
    return value, tangent


_log_prob.defjvp(_log_prob_jvp, symbolic_zeros=True)


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


def log_tail(theta: NegativeBinomial, y, upper):
    """``log Pr(Y > y)`` where ``upper``, ``log Pr(Y <= y)`` elsewhere, from one incomplete beta: with
    ``k = floor(y)`` and ``p = sig(-logits)`` (scipy's success probability), ``Pr(Y <= y) = I_p(r, k + 1)`` and
    ``Pr(Y > y) = I_{1-p}(k + 1, r)``, from ``log p = log_sigmoid(-z)`` and ``log(1 - p) = log_sigmoid(z)``.
    ``logits = -inf`` is the point mass at 0, ``+inf`` puts all mass at infinity. ``nbinom.logcdf`` / ``logsf``."""
    r, z = theta.total_count, theta.logits
    shape = jnp.broadcast_shapes(jnp.shape(y), jnp.shape(r), jnp.shape(z), jnp.shape(upper))
    dtype = jnp.result_type(r, z)
    r, z, upper = (jnp.broadcast_to(v, shape) for v in (r, z, upper))
    finite = jnp.isfinite(z)
    zs = safe_where(finite, z, 0.0)
    log_p, log_q = jax.nn.log_sigmoid(-zs), jax.nn.log_sigmoid(zs)

    def tail(k1, up):
        general = log_betainc(jnp.where(up, k1, r), jnp.where(up, r, k1), jnp.where(up, log_q, log_p),
                              jnp.where(up, log_p, log_q))
        at_zero = r * log_p  # Pr(Y <= 0) = p^r exactly (the fraction at b = 1 keeps 1e-9 of it at r = 1e8)
        return jnp.where(k1 == 1, jnp.where(up, log1mexp(at_zero), at_zero), general)
    value = count_tail(jnp.broadcast_to(y, shape), upper, tail, dtype)
    limit = jnp.where((z < 0) == upper, -jnp.inf, 0.0)  # z = -inf: all mass at 0 (cdf 1); +inf: none finite
    value = jnp.where(finite | (jnp.asarray(y) < 0) | jnp.isnan(jnp.asarray(y)), value, limit)
    return jnp.where(jnp.isnan(z), jnp.nan, value)


def log_cdf(theta: NegativeBinomial, y):
    """``log I_p(r, floor(y) + 1)``; ``nbinom.logcdf(y, r, sig(-logits))``."""
    return log_tail(theta, y, False)


def log_sf(theta: NegativeBinomial, y):
    """``log I_{1-p}(floor(y) + 1, r)``; ``nbinom.logsf(y, r, sig(-logits))``."""
    return log_tail(theta, y, True)


def _search(theta: NegativeBinomial, q, lower_first):
    """``poisson.count_quantile`` at ``q`` (``lower_first``: q is the lower-tail probability, else the upper)."""
    r, z = theta.total_count, theta.logits
    shape = jnp.broadcast_shapes(jnp.shape(r), jnp.shape(z), jnp.shape(q))
    dtype = jnp.result_type(r, z)
    r, z = jnp.broadcast_to(r, shape), jnp.broadcast_to(z, shape)
    log_a, log_b = log_probabilities(jnp.broadcast_to(jnp.asarray(q, dtype), shape), dtype)
    log_q, log_p = (log_a, log_b) if lower_first else (log_b, log_a)
    m = r * jnp.exp(z)
    pi = jax.nn.sigmoid(z)
    value = count_quantile(lambda k, up: log_tail(NegativeBinomial(r, z), k, up), log_q, log_p, m,
                           jnp.sqrt(m / jax.nn.sigmoid(-z)), (1 + pi) / jnp.sqrt(jnp.maximum(r * pi, 1e-30)))
    inner = (log_q > -jnp.inf) & (log_p > -jnp.inf)  # 0 < q < 1; -1 at q = 0 and inf at q = 1 as scipy
    edge = jnp.where(z == jnp.inf, jnp.inf, 0.0)  # logits -inf: all mass at 0; +inf: none on a finite count
    return jnp.where(jnp.isinf(z) & inner, edge, value)


def quantile(theta: NegativeBinomial, q):
    """The smallest count k with ``Pr(Y <= k) >= q`` (``poisson.count_quantile``); ``nbinom.ppf``: -1 at q = 0,
    inf at q = 1, NaN outside [0, 1]; exact in both tails."""
    return _search(theta, q, True)


def isf(theta: NegativeBinomial, p):
    """The smallest count k with ``Pr(Y > k) <= p``; ``nbinom.isf``, exact for p far below float epsilon."""
    return _search(theta, p, False)


def crps(theta: NegativeBinomial, y):
    """``(y - mu)(2F(y) - 1) + 2 (q/p)(n + y) f(y) - (mu/p) H_n`` at a count y, ``H_n = 2F1(n + 1, 1/2; 2; -4q/p^2)``
    (``special.hyp2f1_half``), p = ``sig(-logits)``, q = 1 - p, ``mu = n q/p`` the mean, F and f the cdf and mass.

    This is Wei and Held's (2014, TEST 23) ``y (2F(y) - 1) - (mu/p) [p (2 F_{n+1}(y - 1) - 1) + H_n]`` with
    ``F_{n+1}(y - 1) = F(y) - f(y)(n + y)/n``: the two terms of the size of the mean no longer cancel. At y = 0
    it is ``(mu/p)(H_0 - H_n)`` (``H_0 = p``), summed from positive terms. scoringrules' ``crps_negbinom``."""
    n, odds = theta.total_count, jnp.exp(theta.logits)
    mu, p = n * odds, jax.nn.sigmoid(-theta.logits)
    hyp, gap = hyp2f1_half(n, 4.0 * odds / p)
    mass = jnp.exp(log_prob(theta, y))
    general = (y - mu) * (2 * jnp.exp(log_cdf(theta, y)) - 1) + 2 * odds * (n + y) * mass - mu / p * hyp
    return jnp.where(y == 0, mu / p * gap, general)


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
    log_cdf=log_cdf,
    log_sf=log_sf,
    log_tail=log_tail,
    quantile=quantile,
    isf=isf,
    crps=crps,
    support=lambda theta: _support.nonnegative_integer,
    discrete=True,
))
