"""The von Mises distribution: angles (the book's wind direction).

    Pr(y | mu, k) = exp(k cos(y - mu)) / (2 pi I0(k)),   y an angle (any real number, mod 2 pi)

``log I0(k)`` is computed as ``log(i0e(k)) + k``: exact for any k (``I0`` itself
overflows float32 at k = 89).

scipy equivalent: ``scipy.stats.vonmises(kappa=concentration, loc=loc)`` on [-pi, pi].
Reference: Prince, *Understanding Deep Learning*, problem 5.6; Best and Fisher (1979) for sampling.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import i0e, i1e

from . import registry
from ..checks import check_event_shape

LOG_2PI = math.log(2 * math.pi)


class VonMises(NamedTuple):
    """Parameters of one example's von Mises: ``loc`` (mu, an angle) and ``concentration`` (k >= 0)."""

    loc: jax.Array
    concentration: jax.Array


def log_i0(k):
    """``log I0(k) = log(i0e(k)) + k``, stable for large k."""
    return jnp.log(i0e(k)) + k


def log_prob(theta: VonMises, y):
    """``k cos(y - mu) - log(2 pi) - log I0(k)``; ``vonmises.logpdf``, periodic in y."""
    check_event_shape("VonMises", y, jnp.shape(theta.loc))
    k = theta.concentration
    return k * jnp.cos(y - theta.loc) - LOG_2PI - log_i0(k)


def _mean_resultant(k):
    """``A(k) = I1(k) / I0(k)``."""
    return i1e(k) / i0e(k)


def entropy(theta: VonMises):
    """``log(2 pi I0(k)) - k A(k)``."""
    k = theta.concentration
    return LOG_2PI + log_i0(k) - k * _mean_resultant(k)


def kl(p: VonMises, q: VonMises):
    """``log I0(k_q) - log I0(k_p) + A(k_p) (k_p - k_q cos(mu_p - mu_q))``."""
    kp, kq = p.concentration, q.concentration
    return log_i0(kq) - log_i0(kp) + _mean_resultant(kp) * (kp - kq * jnp.cos(p.loc - q.loc))


def sample(key, theta: VonMises):
    """Best and Fisher's (1979) rejection sampler, wrapped to (-pi, pi] around mu."""
    k = jnp.asarray(theta.concentration)
    shape = jnp.broadcast_shapes(jnp.shape(theta.loc), jnp.shape(k))
    dtype = jnp.result_type(theta.loc)
    tau = 1 + jnp.sqrt(1 + 4 * jnp.square(k))
    rho = (tau - jnp.sqrt(2 * tau)) / (2 * jnp.maximum(k, 1e-30))
    r = (1 + jnp.square(rho)) / (2 * rho)

    def body(state):
        key, done, value = state
        key, k1, k2, k3 = jax.random.split(key, 4)
        u1, u2, u3 = (jax.random.uniform(kk, shape, dtype) for kk in (k1, k2, k3))
        z = jnp.cos(math.pi * u1)
        f = (1 + r * z) / (r + z)
        c = k * (r - f)
        accept = (c * (2 - c) - u2 > 0) | (jnp.log(c / u2) + 1 - c >= 0)
        theta_ = jnp.sign(u3 - 0.5) * jnp.arccos(jnp.clip(f, -1, 1))
        value = jnp.where(done, value, theta_)
        return key, done | accept, value

    _, _, draw = jax.lax.while_loop(lambda s: ~jnp.all(s[1]), body,
                                    (key, jnp.zeros(shape, bool), jnp.zeros(shape, dtype)))
    # tiny concentrations: the distribution is uniform on the circle
    uniform = jax.random.uniform(jax.random.fold_in(key, 1), shape, dtype, -math.pi, math.pi)
    draw = jnp.where(k < 1e-6, uniform, draw)
    return jnp.mod(theta.loc + draw + math.pi, 2 * math.pi) - math.pi


registry.register(VonMises, registry.Ops(
    log_prob=log_prob,
    mode=lambda t: t.loc,
    mean=lambda t: t.loc,  # the circular mean direction
    variance=lambda t: 1 - _mean_resultant(t.concentration),  # the circular variance
    sample=sample,
    entropy=entropy,
    event_shape=lambda t: jnp.shape(t.loc),
))
registry.register_kl(VonMises, VonMises, kl)
