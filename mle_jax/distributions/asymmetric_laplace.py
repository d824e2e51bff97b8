"""The asymmetric Laplace distribution in its check-loss form: the likelihood of quantile regression.

    Pr(y | mu, b, q) = q (1 - q) / b * exp(-rho_q((y - mu) / b)),   rho_q(u) = u (q - 1{u < 0}),   y in R

with location mu, scale b > 0 and quantile level 0 < q < 1. The location is the q-quantile
(``F(mu) = q``), so maximising the likelihood in mu minimises the check (pinball) loss
``sum_i rho_q(y_i - mu_i)``: quantile regression (Koenker and Bassett, 1978). The standardised
variable ``U = (Y - mu) / b`` is ``E1 / q - E2 / (1 - q)`` with E1, E2 independent standard
exponentials: rate q to the right of mu, 1 - q to the left; ``rho_q(U)`` is itself Exp(1).
At q = 1/2 it is the Laplace with scale 2b.

scipy equivalent: ``scipy.stats.laplace_asymmetric(kappa, loc=mu, scale=b / sqrt(q (1 - q)))`` with
``kappa = sqrt(q / (1 - q))`` (scipy's right rate is kappa / scale, its left rate 1 / (kappa scale)).
TensorFlow Probability and distrax have no asymmetric Laplace (no library twin).
References: Koenker and Machado (1999), JASA 94, goodness of fit for quantile regression; Yu and
Moyeed (2001), Bayesian quantile regression, Stat. Prob. Letters 54.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from . import registry
from .._checks import check_event_shape
from .normal import _z, loc, loc_shape
from .registry import Param
from .special import nonnegative, expm1mx, log1mexp, log1p, log1pmx, log_ratio


class AsymmetricLaplace(NamedTuple):
    """Parameters of one example's asymmetric Laplace: ``loc`` (mu, the q-quantile), ``scale``
    (b > 0) and ``q`` (the quantile level, 0 < q < 1)."""

    loc: Param
    scale: Param
    q: Param


def check_loss(u, q):
    """``rho_q(u) = u (q - 1{u < 0}) = max(q u, (q - 1) u)`` (Koenker's check function)."""
    return jnp.maximum(q * u, (q - 1) * u)


def _negative(u):
    """``min(u, 0)``, read only where ``u < 0`` (there with slope 1); NaN stays NaN. Its twin ``max(u, 0)`` is
    ``special.nonnegative``, slope 1 at ``u = 0`` (``jnp.maximum``'s is 1/2 at the tie, which halved the slopes of the
    CDFs, CRPS and KL, each smooth there, at ``y = loc``)."""
    return jnp.where(u >= 0, 0.0, u)


def _log_norm(q):
    """``log(q (1 - q))``, with ``log1p(-q)`` for the second factor."""
    return jnp.log(q) + log1p(-q)


def log_prob(theta: AsymmetricLaplace, y):
    """``log(q (1 - q) / b) - rho_q((y - mu) / b)``; scipy's ``laplace_asymmetric.logpdf`` (module docstring)."""
    check_event_shape("AsymmetricLaplace", y, registry.batch_shape(theta))
    return _log_norm(theta.q) - jnp.log(theta.scale) - check_loss(_z(theta, y), theta.q)


def log_cdf(theta: AsymmetricLaplace, y):
    """``log F``: ``log q + (1 - q) u`` below mu, ``log(1 - exp(log(1 - q) - q u))`` above (u = (y - mu)/b),
    by ``log1mexp`` of the survival's log: ``1 - (1 - q) e^(-q u)`` is tiny where q is (q = 1e-8, u = 1:
    2e-8, -inf in float32 as ``log1p(-(1 - q) exp(-q u))``)."""
    u, q = _z(theta, y), theta.q
    below = jnp.log(q) + (1 - q) * _negative(u)
    above = log1mexp(log1p(-q) - q * nonnegative(u))
    return jnp.where(u < 0, below, above)


def log_sf(theta: AsymmetricLaplace, y):
    """``log Pr(Y > y)``: ``log(1 - q) - q u`` above mu, ``log(1 - exp(log q + (1 - q) u))`` below
    (``log1mexp``: exact where q is near 1)."""
    u, q = _z(theta, y), theta.q
    above = log1p(-q) - q * nonnegative(u)
    below = log1mexp(jnp.log(q) + (1 - q) * _negative(u))
    return jnp.where(u >= 0, above, below)


def _lower(p, q):
    """The standardised quantile for ``p <= q``: ``log(p / q) / (1 - q)``."""
    return (jnp.log(p) - jnp.log(q)) / (1 - q)


def _upper(one_minus_p_log, q):
    """The standardised quantile for ``p > q`` from ``log(1 - p)``: ``-(log(1 - p) - log(1 - q)) / q``."""
    return -(one_minus_p_log - log1p(-q)) / q


def quantile(theta: AsymmetricLaplace, p):
    """``F^{-1}(p) = mu + b log(p / q) / (1 - q)`` for ``p <= q``, ``mu - b log((1 - p)/(1 - q)) / q`` above;
    ``quantile(theta, q) = mu``."""
    q = theta.q
    lower = p <= q
    u = jnp.where(lower, _lower(jnp.where(lower, p, q), q), _upper(log1p(-jnp.where(lower, q, p)), q))
    return theta.loc + theta.scale * u


def isf(theta: AsymmetricLaplace, p):
    """The upper quantile ``F^{-1}(1 - p)``, from ``log p`` and ``log1p(-p)`` (exact for p so small that
    ``1 - p`` rounds to 1)."""
    q = theta.q
    lower = p >= 1 - q  # 1 - p <= q
    below = (log1p(-jnp.where(lower, p, 0.5)) - jnp.log(q)) / (1 - q)
    above = _upper(jnp.log(jnp.where(lower, 1 - q, p)), q)
    return theta.loc + theta.scale * jnp.where(lower, below, above)


def _mean_u(q):
    """``E[U] = 1/q - 1/(1 - q) = (1 - 2q) / (q (1 - q))``."""
    return (1 - 2 * q) / (q * (1 - q))


def mean(theta: AsymmetricLaplace):
    """``mu + b (1 - 2q) / (q (1 - q))``; scipy's ``laplace_asymmetric.mean``."""
    return theta.loc + theta.scale * _mean_u(theta.q)


def variance(theta: AsymmetricLaplace):
    """``b^2 (1/q^2 + 1/(1 - q)^2) = b^2 (1 - 2q + 2q^2) / (q^2 (1 - q)^2)``."""
    q = theta.q
    return jnp.square(theta.scale) * (1 / jnp.square(q) + 1 / jnp.square(1 - q))


def entropy(theta: AsymmetricLaplace):
    """``1 - log(q (1 - q)) + log b`` (``E[rho_q(U)] = 1``); scipy's ``laplace_asymmetric.entropy``."""
    return 1 - _log_norm(theta.q) + jnp.log(theta.scale)


def sample(key, theta: AsymmetricLaplace):
    """``mu + b (E1 / q - E2 / (1 - q))`` with E1, E2 independent standard exponentials."""
    shape = jnp.broadcast_shapes(jnp.shape(theta.loc), jnp.shape(theta.scale), jnp.shape(theta.q))
    dtype = jnp.result_type(theta.loc, theta.scale, theta.q)
    right, left = jax.random.exponential(key, (2,) + shape, dtype)
    return theta.loc + theta.scale * (right / theta.q - left / (1 - theta.q))


def _partial_expectation(t, q):
    """``G(t) = int_{-inf}^t F(u) du`` of the standardised variable, ``E[(t - U)_+]``:
    ``q / (1 - q) exp((1 - q) t)`` for t < 0, ``q / (1 - q) + t + (1 - q) / q expm1(-q t)`` for t >= 0."""
    ratio = q / (1 - q)
    below = ratio * jnp.exp((1 - q) * _negative(t))
    above = ratio + t + (1 - q) / q * jnp.expm1(-q * nonnegative(t))
    return jnp.where(t < 0, below, above)


def crps(theta: AsymmetricLaplace, y):
    """``CRPS = b [E|U - t| - E|U - U'| / 2]`` at ``t = (y - mu) / b``, with ``E|U - t| = E[U] - t + 2 G(t)``
    (``G`` the integral of the CDF up to t) and ``E|U - U'| = q (2 - q) / (1 - q) + (1 - q)(1 + q) / q``
    (``2 int F (1 - F)``). At q = 1/2 it is the Laplace's CRPS at scale 2b. Reference: Gneiting and
    Raftery (2007), JASA 102, the kernel form of the CRPS."""
    q = theta.q
    t = _z(theta, y)
    spread = q * (2 - q) / (1 - q) + (1 - q) * (1 + q) / q
    return theta.scale * (_mean_u(q) - t + 2 * _partial_expectation(t, q) - 0.5 * spread)


def kl(p: AsymmetricLaplace, r: AsymmetricLaplace):
    """``KL(p || r) = -H(p) - E_p[log r(Y)]`` in closed form:

        log(q_p (1 - q_p) / b_p) - 1 - log(q_r (1 - q_r) / b_r) + E_p[rho_{q_r}(Y - mu_r)] / b_r,
        E_p[rho_tau(Y - m)] = tau (E_p[Y] - m) + b_p G_p((m - mu_p) / b_p)

    (``rho_tau(v) = tau v + (-v)_+`` and ``E[(m - Y)_+] = int_{-inf}^m F_p``), written as terms that vanish at
    p = r without cancelling (the plain sum kept 3e-16 of a KL of 5e-17 at scales 1 + 1e-8 apart): with ``q = q_p``,
    ``delta = q_r - q``, ``s = log(b_p / b_r)`` (``special.log_ratio``), ``t = (mu_r - mu_p) / b_p``,

        KL = -log1pmx(delta/q) - log1pmx(-delta/(1 - q)) + expm1mx(s) + expm1(s) delta E[U]
             + e^s (H(t) - delta t),

    ``H(t) = G(t) - q/(1 - q) - q t >= 0``: ``(1 - q)/q expm1mx(-q t)`` for t >= 0, ``q/(1 - q) expm1mx((1 - q) t)``
    below (``E[U] = 1/q - 1/(1 - q)``). Clamped at 0 against rounding."""
    q, tau = p.q, r.q
    delta = tau - q
    s = log_ratio(p.scale, r.scale)
    t = (r.loc - p.loc) / p.scale
    above = (1 - q) / q * expm1mx(-q * nonnegative(t))
    below = q / (1 - q) * expm1mx((1 - q) * _negative(t))
    rest = jnp.where(t >= 0, above, below) - delta * t
    # e^s rest is 0 where rest is (t = 0, delta = 0) even where e^s overflows; there s is capped (its derivative
    # e^s d(rest) kept: a select of 0 dropped it, and the KL's slope and Hessian in the location at t = 0)
    cap = math.log(float(jnp.finfo(jnp.result_type(s)).max)) - 1
    scaled = jnp.exp(jnp.where(rest == 0, jnp.minimum(s, cap), s)) * rest
    value = (-log1pmx(delta / q) - log1pmx(-delta / (1 - q)) + expm1mx(s) + jnp.expm1(s) * delta * _mean_u(q)
             + scaled)
    return nonnegative(value)


def fisher(theta: AsymmetricLaplace):
    """The expected information in ``(loc, scale, q)``, as ``E[s s']`` of the score ``s`` (log_prob has no
    second derivative in loc at y = loc). With ``U`` standardised, ``rho_q(U) ~ Exp(1)`` independent of
    its sign, and the scores ``(q - 1{U<0}) / b``, ``(rho_q(U) - 1) / b`` and ``1/q - 1/(1-q) - U``:

        F_mu,mu = q (1 - q) / b^2     F_b,b = 1 / b^2      F_mu,b = 0
        F_mu,q = -1 / b               F_b,q = -(1 - 2q) / (q (1 - q) b)
        F_q,q = Var U = 1/q^2 + 1/(1 - q)^2
    """
    b, q = theta.scale, theta.q
    zero = jnp.zeros_like(b * q)
    inv_b = 1.0 / b + zero
    return jnp.array([[q * (1 - q) * jnp.square(inv_b), zero, -inv_b],
                      [zero, jnp.square(inv_b), -_mean_u(q) * inv_b],
                      [-inv_b, -_mean_u(q) * inv_b, 1 / jnp.square(q) + 1 / jnp.square(1 - q) + zero]])


registry.register(AsymmetricLaplace, registry.Ops(
    domain={"loc": "real", "scale": "positive", "q": "open_unit"},
    log_prob=log_prob,
    mode=loc,
    mean=mean,
    variance=variance,
    sample=sample,
    entropy=entropy,
    quantile=quantile,
    isf=isf,
    log_cdf=log_cdf,
    log_sf=log_sf,
    event_shape=loc_shape,
    fisher=fisher,
    crps=crps,
    missing="TensorFlow Probability and distrax have no asymmetric Laplace.",
))
registry.register_kl(AsymmetricLaplace, AsymmetricLaplace, kl)
