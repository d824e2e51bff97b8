"""Theta types and the pure functions over them.

A theta is a NamedTuple pytree of ONE example's distribution parameters. Every
function here dispatches on the theta's type; the log density is the primitive
(``log_prob``) and the rest derive from it or from closed forms.
"""

from __future__ import annotations

import math
import numbers

import jax
import jax.numpy as jnp

from . import registry
from .bernoulli import Bernoulli
from .categorical import Categorical
from .independent import Independent
from .normal import Normal
from .poisson import Poisson
from .laplace import Laplace
from .asymmetric_laplace import AsymmetricLaplace
from .student_t import StudentT
from .gamma import Gamma
from .beta import Beta
from .von_mises import VonMises
from .negative_binomial import NegativeBinomial
from .binomial import Binomial
from .zero_inflated import ZeroInflated
from .mixture import MixtureNormal
from .multivariate_normal import MultivariateNormal
from .dirichlet import Dirichlet
from .plackett_luce import PlackettLuce
from .exponential import Exponential
from .weibull import Weibull
from .log_normal import LogNormal
from .registry import Ops, register, register_cross_entropy, register_kl


def log_prob(theta, y):
    """``log Pr(y | theta)`` for one example (a log density or a log mass).

    Equals scipy.stats' ``logpdf`` / ``logpmf``; ``-inf`` off the support. The
    target must have exactly the shape of one example's event: no broadcasting.
    """
    return registry.function(theta, "log_prob")(theta, registry.target(y))


def prob(theta, y):
    """``Pr(y | theta) = exp(log_prob(theta, y))``."""
    return jnp.exp(log_prob(theta, y))


def mode(theta):
    """``argmax_y Pr(y | theta)``: the lecture's point prediction (mean for a Normal,
    1 where lambda > 1/2 for a Bernoulli, the argmax class for a Categorical)."""
    return registry.function(theta, "mode")(theta)


def mean(theta):
    """``E[y | theta]``."""
    return registry.function(theta, "mean")(theta)


def variance(theta):
    """``Var[y | theta]``."""
    return registry.function(theta, "variance")(theta)


def sample(key, theta):
    """One draw ``y ~ Pr(y | theta)`` from an explicit PRNG key."""
    return registry.function(theta, "sample")(key, theta)


def entropy(theta, base: float = math.e):
    """``H(theta) = -E[log Pr(y | theta)]``, in nats; ``base=2`` gives bits.

    Discrete families use ``0 log 0 = 0``: a ``-inf`` logit adds exactly 0.
    scipy equivalent: ``scipy.stats.<dist>.entropy`` (nats) or ``scipy.stats.entropy(p, base=2)``.
    """
    if not isinstance(base, numbers.Real) or not math.isfinite(base) or base <= 0 or base == 1:
        raise ValueError(f"entropy: base must be a finite number > 0 other than 1 (the logarithm's "
                         f"base: math.e for nats, 2 for bits); got {base!r}")
    nats = registry.function(theta, "entropy")(theta)
    return nats if base == math.e else nats / math.log(base)


def kl(p, q):
    """``KL(p || q) = E_p[log p(y) - log q(y)]`` in nats, in closed form.

    For pairs without a closed form use ``mle_jax.kl_mc`` (Monte Carlo with a standard error).
    Reference: Kullback and Leibler (1951); the lecture, "Kullback-Leibler divergence".
    """
    return registry.kl(p, q)


def cross_entropy(p, q):
    """``CE(p, q) = -E_p[log q(y)] = H(p) + KL(p || q)`` in nats, in closed form."""
    return registry.cross_entropy(p, q)


def quantile(theta, q):
    """The ``q``-quantile ``F^{-1}(q)`` of ``Pr(y | theta)`` (scipy's ``ppf``)."""
    registry.check_target(theta, q, "quantile", levels=True)
    return registry.function(theta, "quantile")(theta, q)


def log_cdf(theta, y):
    """``log Pr(Y <= y | theta)`` in a stable form (scipy's ``logcdf``)."""
    y = registry.target(y)
    registry.check_target(theta, y, "log_cdf")
    return registry.function(theta, "log_cdf")(theta, y)


def log_sf(theta, y):
    """``log Pr(Y > y | theta)`` (the survival function) in a stable form (scipy's ``logsf``)."""
    y = registry.target(y)
    registry.check_target(theta, y, "log_sf")
    return registry.function(theta, "log_sf")(theta, y)


def log_tail(theta, y, upper):
    """``log Pr(Y > y)`` where ``upper`` is true and ``log Pr(Y <= y)`` elsewhere (a censored
    observation's log likelihood on either side), from one evaluation where the type has one."""
    y = registry.target(y)
    registry.check_target(theta, y, "log_tail")
    registry.check_upper(theta, y, upper, "log_tail")
    ok = registry.check_domain(theta, "log_tail")  # one check, named for this function (not log_sf's)
    return registry.poisoned(theta, registry.log_tail(theta, y, upper, checked=False), "log_tail", ok)


def isf(theta, p):
    """The upper quantile ``F^{-1}(1 - p)`` (scipy's ``isf``), exact where the type has its own form
    (Normal, Laplace) even for p so small that ``1 - p`` rounds to 1; else ``quantile(theta, 1 - p)``."""
    registry.check_target(theta, p, "isf", levels=True)
    ok = registry.check_domain(theta, "isf")  # one check, named for this function (not quantile's)
    return registry.poisoned(theta, registry.isf(theta, p, checked=False), "isf", ok)


def interval(theta, coverage: float = 0.95, *, key=None, num_samples: int = 10_000):
    """The central predictive interval ``(F^{-1}(a/2), F^{-1}(1 - a/2))`` with ``a = 1 - coverage``;
    the upper end is ``isf(theta, a/2)``, so a coverage of ``1 - 1e-9`` is finite in float32.

    A type without a ``quantile`` (a user's, registered with ``sample`` only) needs ``key``: the interval is
    then the empirical quantiles of ``num_samples`` draws per example (``jnp.quantile``, linear interpolation)."""
    if not 0.0 < coverage < 1.0:
        raise ValueError(f"interval: coverage must lie in (0, 1); got {coverage}")
    alpha = 1.0 - coverage
    ok = registry.check_domain(theta, "interval")  # one check for both ends, named for this function
    if registry.entries(theta).quantile is None:
        registry.require(theta, "sample", "interval")
        if key is None:
            raise TypeError(f"interval: {type(theta).__name__} has no quantile; pass key= for the interval "
                            f"from {num_samples} draws (or register a quantile with mj.register)")
        draws = jax.vmap(sample, in_axes=(0, None))(jax.random.split(key, num_samples), theta)
        ends = jnp.quantile(draws, jnp.asarray([0.5 * alpha, 1.0 - 0.5 * alpha], draws.dtype), axis=0)
        return ends[0], ends[1]
    ends = (registry.function(theta, "quantile", checked=False)(theta, 0.5 * alpha),
            registry.isf(theta, 0.5 * alpha, checked=False))
    return registry.poisoned(theta, ends, "interval", ok)


def probs(theta):
    """Class probabilities: ``softmax(logits)`` (Categorical) or ``[1 - lambda, lambda]`` (Bernoulli)."""
    if registry.entries(theta).probs is None:
        raise TypeError(f"probs is defined for discrete thetas (Bernoulli, Categorical), not {type(theta).__name__}")
    return registry.function(theta, "probs")(theta)


def event_shape(theta):
    """The shape of one example's target under ``theta``."""
    return registry.function(theta, "event_shape")(theta)


__all__ = [
    "AsymmetricLaplace", "Bernoulli", "Beta", "Binomial", "Categorical", "Dirichlet", "Exponential", "Gamma",
    "Independent", "Laplace", "LogNormal", "MixtureNormal", "MultivariateNormal", "NegativeBinomial", "Normal",
    "PlackettLuce", "Poisson", "StudentT", "VonMises", "Weibull", "ZeroInflated",
    "Ops", "cross_entropy", "entropy", "event_shape", "interval", "isf", "kl", "log_cdf", "log_prob", "log_sf",
    "log_tail", "mean", "mode", "prob", "probs", "quantile", "register", "register_cross_entropy", "register_kl",
    "sample", "variance",
]
