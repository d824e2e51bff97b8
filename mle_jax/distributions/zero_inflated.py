"""Zero inflation of a count distribution: a structural zero with probability ``g = sigmoid(gate_logits)``,
else a draw of the base (a ``Poisson`` or ``NegativeBinomial`` theta).

    Pr(0) = g + (1 - g) p(0),   Pr(y) = (1 - g) p(y) for y = 1, 2, ...

``log Pr(0) = logaddexp(log_sigmoid(gate), log_sigmoid(-gate) + log p(0))`` and ``log Pr(y) =
log_sigmoid(-gate) + log p(y)``: no ``log`` of a sum that underflows, no ``log(1 - sigmoid)``. The CDF is
``g + (1 - g) F(y)`` (log-sum-exp of the two logs), the survival function ``(1 - g) S(y)``, from the base's
own ``log_tail``. The mean is ``(1 - g) mu`` and the variance ``(1 - g)(sigma^2 + g mu^2)``.

scipy equivalent: none; ``g * (y == 0) + (1 - g) * scipy.stats.poisson.pmf(y, mu)``.
statsmodels: ``ZeroInflatedPoisson`` / ``ZeroInflatedNegativeBinomialP`` (``inflation="logit"``).
Reference: Lambert, "Zero-inflated Poisson regression" (Technometrics, 1992).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from . import _support, registry
from .registry import Param
from .special import log_sigmoid_pair, sigmoid_pair


class ZeroInflated(NamedTuple):
    """``gate_logits`` (the log-odds of a structural zero) and the ``base`` count theta."""

    gate_logits: Param
    base: Any


def _base(theta: ZeroInflated, name: str):
    """The base's function ``name``, unchecked: the ZeroInflated's own dispatch checked the base's domain (the
    registry checks the thetas among a theta's fields), and the family's loss pays no second check."""
    return registry.function(theta.base, name, checked=False)


def _gate_parts(g, base, zero):
    """``(log Pr, sig(g), sig(-g), w, 1 - w)``: ``log sig(+-g)`` and ``sig(+-g)`` from ``special.log_sigmoid_pair``
    and ``sigmoid_pair`` (one ``exp`` between them, one log1p),
    ``log Pr = logaddexp(log sig(g), log sig(-g) + base)`` where ``zero``, ``log sig(-g) + base`` elsewhere;
    ``w = exp(log sig(g) - log Pr)`` is the posterior probability of a structural zero (0 off ``zero``) and
    ``1 - w = exp(log sig(-g) + base - log Pr)`` its complement, each from its own exp (no ``1 - w`` that
    cancels at a gate of 30)."""
    log_gate, log_open = log_sigmoid_pair(g)
    count = log_open + base
    value = jnp.where(zero, jnp.logaddexp(log_gate, count), count)
    sig_g, sig_minus_g = sigmoid_pair(g)
    at_zero = jnp.where(zero, value, 0.0)
    w = jnp.where(zero, jnp.exp(log_gate - at_zero), 0.0)
    rest = jnp.where(zero, jnp.exp(jnp.where(zero, count, 0.0) - at_zero), 1.0)
    return value, sig_g, sig_minus_g, w, rest


@jax.custom_jvp
def _gated(g, base, zero):
    """``log Pr(y)`` of the zero-inflated count from the gate logit g and the base's ``log p(y)``."""
    return _gate_parts(g, base, zero)[0]


@_gated.defjvp
def _gated_jvp(primals, tangents):
    """``d/dg = w sig(-g) - (1 - w) sig(g)``, ``d/d log p = 1 - w`` (``w`` the posterior probability of a
    structural zero, 0 at y > 0): written out, where autodiff would differentiate two log-sigmoids and a
    logaddexp. At a zero base probability (``log p = -inf``) ``w = 1`` and the base gets no gradient. The rule
    is differentiable."""
    g, base, zero = primals
    d_g, d_base, _ = tangents
    value, sig_g, sig_minus_g, w, rest = _gate_parts(g, base, zero)
    return value, (w * sig_minus_g - rest * sig_g) * d_g + rest * d_base


def log_prob(theta: ZeroInflated, y):
    """``log(g + (1 - g) p(0))`` at 0 and ``log(1 - g) + log p(y)`` elsewhere; -inf off the base's support.
    The derivative in the gate and the base's log-probability is written out (``_gated``)."""
    g = theta.gate_logits
    base = _base(theta, "log_prob")(theta.base, y)
    dtype = jnp.result_type(g, base)
    y = jnp.asarray(y, dtype)
    shape = jnp.broadcast_shapes(jnp.shape(g), jnp.shape(base), jnp.shape(y))
    return _gated(jnp.broadcast_to(jnp.asarray(g, dtype), shape), jnp.broadcast_to(jnp.asarray(base, dtype), shape),
                  jnp.broadcast_to(y == 0, shape))


def mean(theta: ZeroInflated):
    return jax.nn.sigmoid(-theta.gate_logits) * _base(theta, "mean")(theta.base)


def variance(theta: ZeroInflated):
    """``(1 - g)(sigma^2 + g mu^2)``, sigma^2 and mu the base's."""
    g = theta.gate_logits
    mu = _base(theta, "mean")(theta.base)
    return jax.nn.sigmoid(-g) * (_base(theta, "variance")(theta.base) + jax.nn.sigmoid(g) * jnp.square(mu))


def mode(theta: ZeroInflated):
    """0 or the base's mode m (the largest mass off 0 of a unimodal base): whichever has the larger mass."""
    m = _base(theta, "mode")(theta.base)
    at_m = log_prob(theta, m)
    at_zero = log_prob(theta, jnp.zeros_like(m))
    return jnp.where((m == 0) | (at_zero >= at_m), jnp.zeros_like(m), m)


def sample(key, theta: ZeroInflated):
    """0 with probability g, else a draw of the base (a float count)."""
    k1, k2 = jax.random.split(key)
    draw = _base(theta, "sample")(k2, theta.base)
    zero = jax.random.bernoulli(k1, jax.nn.sigmoid(theta.gate_logits), jnp.shape(draw))
    return jnp.where(zero, jnp.zeros_like(draw), draw)


def log_tail(theta: ZeroInflated, y, upper):
    """``log Pr(Y > y) = log(1 - g) + log S(y)`` where ``upper``; ``log Pr(Y <= y) = logaddexp(log g, log(1 - g)
    + log F(y))`` for y >= 0 (-inf below 0) elsewhere; F, S the base's."""
    g = theta.gate_logits
    base = _base(theta, "log_tail")(theta.base, y, upper)
    y = jnp.asarray(y, jnp.result_type(g, base))
    lower = jnp.where(y >= 0, jnp.logaddexp(jax.nn.log_sigmoid(g), jax.nn.log_sigmoid(-g) + base), -jnp.inf)
    upper_value = jnp.where(y >= 0, jax.nn.log_sigmoid(-g) + base, 0.0)
    value = jnp.where(upper, upper_value, lower)
    return jnp.where(jnp.isnan(y) | jnp.isnan(g), jnp.nan, value)


def log_cdf(theta: ZeroInflated, y):
    return log_tail(theta, y, False)


def log_sf(theta: ZeroInflated, y):
    return log_tail(theta, y, True)


def event_shape(theta: ZeroInflated):
    return jnp.shape(theta.gate_logits)


registry.register(ZeroInflated, registry.Ops(
    domain={"gate_logits": "real"},
    log_prob=log_prob,
    mode=mode,
    mean=mean,
    variance=variance,
    sample=sample,
    event_shape=event_shape,
    log_cdf=log_cdf,
    log_sf=log_sf,
    log_tail=log_tail,
    support=lambda theta: _support.nonnegative_integer,
    discrete=True,
    missing="no closed form for a zero-inflated count (the CRPS is the sampled estimate, key=)",
))
