"""The Bernoulli distribution on logits: binary classification.

    Pr(y | lambda) = (1 - lambda)^(1 - y) lambda^y,   y in {0, 1},   lambda = sig(z)

Kept on the logit ``z`` so that every quantity is exact at any finite or
infinite logit: ``log Pr(y | z) = log_sigmoid((2y - 1) z)``, which is 0 or
``-|z|`` at ``|z| = 1e4`` and never ``0 * inf``.

scipy equivalent: ``scipy.stats.bernoulli(expit(logits))``.
Reference: Prince, *Understanding Deep Learning*, eq. 5.17-5.19; the lecture, Example 2.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
from .registry import Param
import jax.numpy as jnp

from . import _support, _twins, discrete, registry
from .._checks import check_event_shape


class Bernoulli(NamedTuple):
    """Parameters of one example's Bernoulli: ``logits`` = log(lambda / (1 - lambda))."""

    logits: Param


def log_probs(theta: Bernoulli):
    """``[log Pr(y=0), log Pr(y=1)] = [log_sigmoid(-z), log_sigmoid(z)]`` on a last axis."""
    z = theta.logits
    return jnp.stack([jax.nn.log_sigmoid(-z), jax.nn.log_sigmoid(z)], axis=-1)


def _nll_and_exp(z, y):
    """``softplus(z) - y z`` written ``max(z, 0) - y z + log1p(e)``, ``e = exp(-|z|)``, for finite z;
    at ``z = +-inf`` it is 0 where the label agrees (y = 1 at +inf, y = 0 at -inf: ``0 * inf = 0``)
    and inf elsewhere, never ``inf - inf``. Returns the value and ``e``."""
    e = jnp.exp(-jnp.abs(z))
    finite = jnp.maximum(z, 0.0) - y * z + jnp.log1p(e)
    at_inf = jnp.where(jnp.where(z > 0, y == 1, y == 0), 0.0, jnp.inf)
    return jnp.where(jnp.isinf(z), at_inf, finite), e


@jax.custom_jvp
def binary_nll(z, y):
    """Binary cross-entropy ``-log Pr(y | z) = softplus(z) - y z`` for y in [0, 1].

    Exact at every finite and infinite logit (0 or ``|z|`` for hard labels). Its derivative is
    defined to be exactly ``sig(z) - y`` in z (and ``-z`` in y).
    """
    return _nll_and_exp(z, y)[0]


@binary_nll.defjvp
def _binary_nll_jvp(primals, tangents):
    z, y = primals
    dz, dy = tangents
    value, e = _nll_and_exp(z, y)  # e is shared by the value and sig(z)
    r = 1.0 / (1.0 + e)  # sig(|z|); sig(z) = e sig(|z|) below 0 (faster than a second division)
    sigmoid = jnp.where(z >= 0, r, e * r)
    return value, (sigmoid - y) * dz + jnp.where(dy == 0, 0.0, -z * dy)


def log_prob(theta: Bernoulli, y):
    """``log Pr(y | z) = -(softplus(z) - y z)``: y in {0, 1}, or a soft label in [0, 1]; ``-inf``
    outside [0, 1] (scipy: ``bernoulli.logpmf(2, p) = -inf``).

    For hard labels this is ``y log sig(z) + (1 - y) log sig(-z)``; equals
    ``scipy.stats.bernoulli.logpmf(y, expit(z))`` = -BCE(z, y). Exact at logits of
    +-1e4 and +-inf; the gradient in z is exactly ``y - sig(z)``.
    """
    check_event_shape("Bernoulli", y, jnp.shape(theta.logits))
    z = theta.logits
    y = jnp.asarray(y).astype(z.dtype)
    inside = (y >= 0) & (y <= 1)
    return jnp.where(inside, -binary_nll(z, jnp.where(inside, y, jnp.zeros_like(y))), -jnp.inf)


def sample(key, theta: Bernoulli):
    """Draw y in {0, 1} (int32) with ``Pr(y = 1) = sigmoid(z)``."""
    return jax.random.bernoulli(key, jax.nn.sigmoid(theta.logits)).astype(jnp.int32)


def quantile(theta: Bernoulli, q):
    """Smallest y in {0, 1} with ``Pr(Y <= y) >= q``; ``bernoulli.ppf``."""
    return (q > jax.nn.sigmoid(-theta.logits)).astype(jnp.int32)


def log_tail(theta: Bernoulli, y, upper):
    """``log Pr(Y > y)`` where ``upper``, ``log Pr(Y <= y)`` elsewhere: the steps ``log_sigmoid(-z)`` (``Pr(Y = 0)``)
    and ``log_sigmoid(z)`` on ``[0, 1)``, the limits 0 and -inf outside; ``bernoulli.logcdf`` / ``logsf``."""
    z = theta.logits
    y = jnp.asarray(y, jnp.result_type(z))
    middle = jnp.where(upper, jax.nn.log_sigmoid(z), jax.nn.log_sigmoid(-z))
    edge = jnp.where((y < 0) == jnp.asarray(upper), 0.0, -jnp.inf)
    return jnp.where(jnp.isnan(y), jnp.nan, jnp.where((y >= 0) & (y < 1), middle, edge))


def log_cdf(theta: Bernoulli, y):
    return log_tail(theta, y, False)


def log_sf(theta: Bernoulli, y):
    return log_tail(theta, y, True)


def crps(theta: Bernoulli, y):
    """``(lambda - y)^2``: the CRPS of a binary target is its Brier score."""
    return jnp.square(jax.nn.sigmoid(theta.logits) - y)


def mode(theta: Bernoulli):
    """``argmax_y Pr(y)``: 1 where lambda > 1/2, i.e. z > 0 (the lecture's threshold at 0.5); int32."""
    return (theta.logits > 0).astype(jnp.int32)


def mean(theta: Bernoulli):
    return jax.nn.sigmoid(theta.logits)


def variance(theta: Bernoulli):
    return jax.nn.sigmoid(theta.logits) * jax.nn.sigmoid(-theta.logits)


def probs(theta: Bernoulli):
    """``[1 - lambda, lambda]`` on a last axis."""
    return jnp.exp(log_probs(theta))


def event_shape(theta: Bernoulli):
    return jnp.shape(theta.logits)


def fisher(theta: Bernoulli):
    """The expected information in the logit, ``F = lambda (1 - lambda) = sig(z) sig(-z)`` (the variance
    of y), a (1, 1) matrix; 0 at ``z = +-inf``. Reference: McCullagh and Nelder (1989), section 4.4."""
    return jnp.reshape(variance(theta), (1, 1))


def to_tfp(theta: Bernoulli):
    """TFP's twin: ``tfd.Bernoulli(logits=logits)``."""
    return _twins.tfd().Bernoulli(logits=theta.logits)


def to_distrax(theta: Bernoulli):
    """distrax's twin: ``distrax.Bernoulli(logits=logits)``."""
    return _twins.distrax().Bernoulli(logits=theta.logits)


def from_tfp(dist) -> Bernoulli:
    """From logits or probs (``logits_parameter``)."""
    return Bernoulli(_twins.full(dist)(dist.logits_parameter()))


registry.register(Bernoulli, registry.Ops(
    domain={"logits": "real"},
    log_prob=log_prob,
    mode=mode,
    mean=mean,
    variance=variance,
    sample=sample,
    entropy=discrete.entropy_of(log_probs),
    quantile=quantile,
    event_shape=event_shape,
    probs=probs,
    fisher=fisher,
    to_tfp=to_tfp,
    to_distrax=to_distrax,
    tfp_names=('Bernoulli',),
    from_tfp=from_tfp,
    log_cdf=log_cdf,
    log_sf=log_sf,
    log_tail=log_tail,
    crps=crps,
    support=lambda theta: _support.binary,
    discrete=True,
    binary=True,
))
registry.register_kl(Bernoulli, Bernoulli, discrete.kl_of(log_probs))
registry.register_cross_entropy(Bernoulli, Bernoulli, discrete.cross_entropy_of(log_probs))
