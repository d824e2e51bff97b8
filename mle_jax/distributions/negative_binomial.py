"""The negative binomial distribution: overdispersed counts (variance above the mean).

    Pr(y | r, pi) = Gamma(y + r) / (Gamma(r) y!) (1 - pi)^r pi^y,   y in {0, 1, 2, ...},   pi = sig(logits)

the Poisson whose rate is Gamma(r, (1 - pi)/pi) distributed: mean ``r e^logits``, variance
``mean / (1 - pi)``, which is the Poisson's as r grows.

The density branches once per example, on the count: below 10 the coefficient ``Gamma(y + r) / (Gamma(r) y!)`` is
the log of an exact product of at most nine factors (``special.log_rising_ratio_small``), from 10 on the saddle-point
form ``_stirling``, whose terms are not of the size of r or y (``lgamma(y + r) - lgamma(r)`` at r = 1e8 cancels every
float32 digit); no ``lgamma`` of the data, and the functions of r alone are one number when r is. The CDF is the
regularised incomplete beta ``I_p(r, floor(y) + 1)``, ``p = sig(-logits)``, in log space (``incomplete``). Counts
(``mode``, ``sample``) are floats in the parameters' dtype, as for the Poisson.

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
from .special import (HALF_LOG_2PI, STIRLING_MIN, count_log_sigmoid, deviance, digamma_gap_head, digamma_gap_large,
                      digamma_rise_small_ratio, hyp2f1_half, lgamma_minus_stirling, log1mexp, log_rising_ratio_small,
                      log_sigmoid_pair, rising_terms, safe_where, sigmoid_pair, stirling_corr)


class NegativeBinomial(NamedTuple):
    """Parameters of one example's negative binomial: ``total_count`` (r > 0) and ``logits`` (log-odds of pi)."""

    total_count: Param
    logits: Param


def log_prob(theta: NegativeBinomial, y):
    """``-log B(r, y + 1) - log(y + r) + r log_sigmoid(-z) + y log_sigmoid(z)``; ``nbinom.logpmf``.

    ``logits = -inf`` (pi = 0) gives 0 at y = 0 and -inf elsewhere; -inf off the support. The derivatives
    are written out (``_log_prob_jvp``).
    """
    check_event_shape("NegativeBinomial", y, registry.batch_shape(theta))
    r, z = theta.total_count, theta.logits
    dtype = jnp.result_type(r, z)
    y = jnp.asarray(y, dtype)
    shape = jnp.broadcast_shapes(jnp.shape(r), jnp.shape(z), jnp.shape(y))
    r, z = jnp.asarray(r, dtype), jnp.asarray(z, dtype)
    # r keeps its own shape: one total count for every example stays one number, its functions one scalar program
    return _log_prob(r, jnp.broadcast_to(z, shape), jnp.broadcast_to(y, shape))


def _log_prob_value(r, z, y):
    return _log_prob_parts(r, z, y, _r_terms(r, False))[0]


def _r_terms(r, derivative):
    """The functions of r alone, ``(1/s, log s, log r, G(r))`` (``s = max(r, 1)``, ``G = lgamma_minus_stirling``; at
    r = 0 those of r = 1) and, with ``derivative``, ``H(r)`` of ``special.digamma_gap_large``, as one array behind an
    optimization barrier: where r is one number for every example, one scalar program (XLA compiled one per term and
    consumer: 13 of the 36 kernels at N = 1e2), where it is one per example, one array of them."""
    rs = safe_where(r != 0, r, 1.0)
    terms = [*rising_terms(r), jnp.log(rs), lgamma_minus_stirling(rs)]
    if derivative:
        terms.append(digamma_gap_head(r))
    return tuple(jax.lax.optimization_barrier(jnp.stack(terms)))


def _log_prob_parts(r, z, y, terms):
    """``(log Pr(y), y on the support, the count (0 off it), log_sigmoid(-z))``, one branch per example on the data:
    below 10 the coefficient is the exact product ``special.log_rising_ratio_small`` (no ``lgamma``), from 10 on the
    saddle-point form ``_stirling`` (any r > 0). ``log_sigmoid(+-z)`` share one ``exp`` and one ``log1p``. ``terms``:
    ``_r_terms``."""
    inv, log_s, log_r, g_r = terms[:4]
    valid = count_on_support(y)
    ys = jnp.where(valid, y, jnp.zeros_like(y))
    log_pi, log_1mpi = log_sigmoid_pair(z)
    big = ys >= STIRLING_MIN
    yl = safe_where(~big, ys, 0.0)
    log_product, _ = log_rising_ratio_small(r, yl, inv, log_s)
    # y log s + y log pi as one product (they cancel at large r); 0 at y = 0 even where log pi = -inf (pi = 0)
    direct = log_product + y_log(yl, log_s + log_pi) + count_log_sigmoid(r, r, -z, r * log_1mpi, 0.0)[0]
    yb = safe_where(big, ys, STIRLING_MIN)
    # r = 0 (the limit of a vanishing r): no mass beyond 0, as the direct branch's factor r says below 10
    stirling = jnp.where(r == 0, jnp.where(z < jnp.inf, -jnp.inf, jnp.nan),
                         _stirling(safe_where(r != 0, r, 1.0), yb, z, log_pi, log_1mpi, log_r, g_r))
    value = jnp.where(big, stirling, direct)
    value = jnp.where(valid, value, -jnp.inf)
    return jnp.where(jnp.isnan(y), jnp.nan, value), valid, ys, log_1mpi


_log_prob = jax.custom_jvp(_log_prob_value)


def _log_prob_jvp(primals, tangents):
    """``d/dz = y sig(-z) - r sig(z)`` (``sig(+-z)`` from one ``exp``), ``d/dr = psi(y + r) - psi(r) +
    log_sigmoid(-z)`` (``special.digamma_rise_small_ratio`` below 10: the value's product and its derivative, one
    division; ``special.digamma_gap_large`` from 10 on: no cancellation at r = 1e6, y = 10),
    ``d/dy = psi(y + r) - psi(y + 1) + log_sigmoid(z)``; 0 off the support.
    Autodiff would differentiate both branches of the value under their ``where``; a tangent that is a symbolic
    zero (a fixed r, a target) costs nothing. The rule is differentiable."""
    r, z, y = primals
    dr, dz, dy = tangents
    terms = _r_terms(r, not isinstance(dr, SymbolicZero))
    value, valid, ys, log_1mpi = _log_prob_parts(r, z, y, terms)
    zero = jnp.zeros_like(value)
    tangent = zero
    if not isinstance(dz, SymbolicZero):
        sig, sig_neg = sigmoid_pair(z)
        tangent = tangent + jnp.where(valid, ys * sig_neg - r * sig, zero) * dz
    if not isinstance(dr, SymbolicZero):
        big = ys >= STIRLING_MIN
        gap = jnp.where(big, digamma_gap_large(r, safe_where(big, ys, STIRLING_MIN), terms[4]),
                        digamma_rise_small_ratio(r, safe_where(~big, ys, 0.0), terms[0]))
        gap = jnp.where(jnp.isnan(r) | (r == 0), jnp.nan, gap)  # off the parameter space, as psi(r) says
        tangent = tangent + jnp.where(valid, gap + log_1mpi, zero) * dr
    if not isinstance(dy, SymbolicZero):
        d_y = digamma(ys + r) - digamma(ys + 1) + jax.nn.log_sigmoid(z)
        tangent = tangent + jnp.where(valid, d_y, zero) * dy
    return value, tangent


_log_prob.defjvp(_log_prob_jvp, symbolic_zeros=True)


def _stirling(r, y, z, log_pi, log_1mpi, log_r, g_r):
    """``log Pr(y)`` for ``y >= 10`` and any ``r > 0`` by Stirling's series, without terms of size ``r`` or ``y``:
    ``log(r / (y n))/2 - log(2 pi)/2 - G(r) - corr(y) + corr(n) - dev(y, n pi) - dev(r, n (1 - pi))``,
    ``n = r + y``, ``dev(k, m) = k log(k/m) - k + m`` (``special.deviance``, given ``m - k = +-(y (1 - pi) - r pi)``:
    ``n``'s rounding would leave ``eps n`` in it), ``G = special.lgamma_minus_stirling``
    (``corr(r)`` for r >= 10; a function of r alone, ``g_r``, with ``log_r``, from ``_r_terms``). At r = y = 1e6, z = 0
    the plain form adds terms of 1.4e6 (-8.125 in float32, truth -8.1733)."""
    n = r + y
    log_n = jnp.log(n)
    sig, sig_neg = sigmoid_pair(z)
    log_y = jnp.log(y)
    # n (1 - pi) - r = y (1 - pi) - r pi = -(n pi - y), without n's rounding (the score in z; r far from y)
    gap = y * sig_neg - r * sig
    dev_y = deviance(y, n * sig, log_n + log_pi, log_y, -gap)
    dev_r = deviance(r, n * sig_neg, log_n + log_1mpi, log_r, gap)
    return (0.5 * (log_r - log_y - log_n) - HALF_LOG_2PI - g_r - stirling_corr(y)
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
    domain={"total_count": "positive", "logits": "real"},
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
