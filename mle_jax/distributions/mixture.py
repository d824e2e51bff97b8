"""A mixture of K Normals: multimodal regression (the mixture density network's head).

    Pr(y | w, mu, s) = sum_k w_k N(y | mu_k, s_k),   w = softmax(logits),   y in R

computed as ``logsumexp_k(log_softmax(logits)_k + log N(y | mu_k, s_k))``.

scipy equivalent: ``sum_k w_k scipy.stats.norm(mu_k, s_k).pdf(y)``.
Reference: Bishop (1994), *Mixture Density Networks*; Prince, *Understanding Deep Learning*, problem 5.7.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
from .registry import Param
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from . import _twins, registry
from .._checks import check_event_shape
from .categorical import log_probs as _weights_log_probs, Categorical
from .normal import abs_mean, log_ndtr, standard_log_prob
from .special import standardize


class MixtureNormal(NamedTuple):
    """Parameters of one example's mixture: ``logits``, ``loc``, ``scale``, each of shape (K,)."""

    logits: Param
    loc: Param
    scale: Param


def log_prob(theta: MixtureNormal, y):
    """``logsumexp_k(log w_k - (y - mu_k)^2 / (2 s_k^2) - log s_k) - log(2 pi)/2``."""
    check_event_shape("MixtureNormal", y, registry.batch_shape(theta))
    components = standard_log_prob(_z(theta, y), jnp.log(theta.scale))
    return logsumexp(_log_weights(theta) + components, axis=-1)


def _log_weights(theta: MixtureNormal):
    """``log softmax(logits)``, with ``+inf`` logits at their limit (``categorical.saturate``)."""
    return _weights_log_probs(Categorical(theta.logits))


def _z(theta: MixtureNormal, y):
    """``(y - mu_k)/s_k`` per component, with a gradient finite at tiny scales (``standardize``)."""
    y = jnp.asarray(y, jnp.result_type(theta.loc, theta.scale))[..., None]
    return standardize(jnp.broadcast_to(y, jnp.shape(theta.loc)), theta.loc, theta.scale)


def log_cdf(theta: MixtureNormal, y):
    """``log sum_k w_k Phi((y - mu_k)/s_k)``, by logsumexp of ``log_ndtr``: stable in both tails."""
    return logsumexp(_log_weights(theta) + log_ndtr(_z(theta, y)), axis=-1)


def log_sf(theta: MixtureNormal, y):
    """``log sum_k w_k Phi(-(y - mu_k)/s_k)``."""
    return logsumexp(_log_weights(theta) + log_ndtr(-_z(theta, y)), axis=-1)


def mean(theta: MixtureNormal):
    return jnp.sum(jnp.exp(_log_weights(theta)) * theta.loc, axis=-1)


def variance(theta: MixtureNormal):
    w = jnp.exp(_log_weights(theta))
    return jnp.sum(w * (jnp.square(theta.scale) + jnp.square(theta.loc)), axis=-1) - jnp.square(mean(theta))


def mode(theta: MixtureNormal, grid_size: int = 512, newton_steps: int = 4):
    """``argmax_y Pr(y)``, found numerically for each example: the best of a grid over the components'
    +-4 s ranges (plus each component mean); then, where the score ``d log Pr / dy`` changes sign from
    + to - across that point's grid step, bisection on its sign to the dtype's resolution; elsewhere
    Newton steps on the log density. Bisection holds where Newton crawls: on a flat top (two equal
    Normals two scales apart, whose second derivative vanishes at the peak) Newton's step shrinks the
    error by 2/3 only, while the score's sign resolves the peak to about ``eps^(1/3)`` of its width."""
    return _modes(MixtureNormal(*(jnp.asarray(field) for field in theta)), grid_size, newton_steps)


@partial(jax.jit, static_argnums=(1, 2))
def _modes(theta: MixtureNormal, grid_size: int, newton_steps: int):
    """``mode`` compiled once per shape (an eager call would dispatch the grid's and loops' ops singly)."""
    one = partial(_mode_one, grid_size=grid_size, newton_steps=newton_steps)
    return jnp.vectorize(lambda *fields: one(MixtureNormal(*fields)), signature="(k),(k),(k)->()")(*theta)


def _mode_one(theta: MixtureNormal, grid_size: int, newton_steps: int):
    lo = jnp.min(theta.loc - 4 * theta.scale)
    hi = jnp.max(theta.loc + 4 * theta.scale)
    grid = jnp.concatenate([jnp.linspace(lo, hi, grid_size, dtype=theta.loc.dtype), theta.loc])
    values = jax.vmap(lambda v: log_prob(theta, v))(grid)
    best = grid[jnp.argmax(values)]
    score = jax.grad(lambda v: log_prob(theta, v))
    curvature = jax.grad(score)

    def newton(v, _):
        h = curvature(v)
        step = jnp.where(h < 0, -score(v) / h, 0.0)  # only where the log density is concave
        return v + step, None

    def bisect(bracket, _):
        a, b = bracket
        m = a + (b - a) / 2
        rising = score(m) > 0
        return (jnp.where(rising, m, a), jnp.where(rising, b, m)), None

    width = (hi - lo) / (grid_size - 1)
    bracket = (best - width, best + width)
    bracketed = (score(bracket[0]) > 0) & (score(bracket[1]) < 0)
    (a, b), _ = jax.lax.scan(bisect, bracket, None, length=jnp.finfo(theta.loc.dtype).nmant + 3)
    refined, _ = jax.lax.scan(newton, best, None, length=newton_steps)
    # the first of the highest: the bisected peak where it was bracketed, then Newton's, then the grid's
    candidates = jnp.stack([jnp.where(bracketed, a + (b - a) / 2, best), refined, best])
    return candidates[jnp.argmax(jax.vmap(lambda v: log_prob(theta, v))(candidates))]


def sample(key, theta: MixtureNormal):
    """A component ``k ~ softmax(logits)``, then ``mu_k + s_k eps``; one draw per example."""
    k1, k2 = jax.random.split(key)
    dtype = jnp.result_type(theta.loc, theta.scale)
    shape = jnp.broadcast_shapes(*(jnp.shape(field) for field in theta))
    k = jax.random.categorical(k1, jnp.broadcast_to(_log_weights(theta), shape), axis=-1)[..., None]
    loc = jnp.take_along_axis(jnp.broadcast_to(theta.loc, shape), k, axis=-1)[..., 0]
    scale = jnp.take_along_axis(jnp.broadcast_to(theta.scale, shape), k, axis=-1)[..., 0]
    return loc + scale * jax.random.normal(k2, shape[:-1], dtype)


def crps(theta: MixtureNormal, y):
    """``sum_i w_i A(y - mu_i, s_i) - 1/2 sum_ij w_i w_j A(mu_i - mu_j, sqrt(s_i^2 + s_j^2))``, ``A(m, s) = E|N(m, s^2)|``
    (``normal.abs_mean``), ``w = softmax(logits)`` with ``+inf`` logits at their limit; scoringrules'
    ``crps_mixnorm``. Reference: Grimit et al. (2006), QJRMS 132."""
    w = jnp.exp(_log_weights(theta))
    first = jnp.sum(w * abs_mean(jnp.asarray(y)[..., None] - theta.loc, theta.scale), axis=-1)
    pair = abs_mean(theta.loc[..., :, None] - theta.loc[..., None, :],
                    jnp.sqrt(jnp.square(theta.scale[..., :, None]) + jnp.square(theta.scale[..., None, :])))
    return first - 0.5 * jnp.sum(w[..., :, None] * w[..., None, :] * pair, axis=(-2, -1))


def event_shape(theta: MixtureNormal):
    return jnp.shape(theta.loc)[:-1]


def batch_shape(theta):
    """The examples' axes: every axis of the fields but the last (one example's components)."""
    return jnp.shape(theta.loc)[:-1]


def to_tfp(theta: MixtureNormal):
    """TFP's twin: ``tfd.MixtureSameFamily(tfd.Categorical(logits=logits), tfd.Normal(loc, scale))``."""
    tfd = _twins.tfd()
    return tfd.MixtureSameFamily(tfd.Categorical(logits=theta.logits), tfd.Normal(theta.loc, theta.scale))


def to_distrax(theta: MixtureNormal):
    """distrax's twin: ``distrax.MixtureSameFamily`` of the same Categorical and Normal."""
    lib = _twins.distrax()
    return lib.MixtureSameFamily(lib.Categorical(logits=theta.logits), lib.Normal(theta.loc, theta.scale))


def from_tfp(dist) -> MixtureNormal:
    """From a ``MixtureSameFamily`` of a Categorical and Normal components only."""
    tfd = _twins.tfd()
    if not (isinstance(dist.mixture_distribution, tfd.Categorical)
            and isinstance(dist.components_distribution, tfd.Normal)):
        raise _twins.unconvertible(dist, f" of {type(dist.components_distribution).__name__} components")
    mixture, parts = _twins.from_tfp(dist.mixture_distribution), _twins.from_tfp(dist.components_distribution)
    full, k = _twins.full(dist), (parts.loc.shape[-1],)
    return MixtureNormal(full(mixture.logits, k), full(parts.loc, k), full(parts.scale, k))


registry.register(MixtureNormal, registry.Ops(
    domain={"logits": "real", "loc": "real", "scale": "positive"},
    log_prob=log_prob,
    mode=mode,
    mean=mean,
    variance=variance,
    sample=sample,
    log_cdf=log_cdf,
    log_sf=log_sf,
    event_shape=event_shape,
    to_tfp=to_tfp,
    to_distrax=to_distrax,
    tfp_names=('MixtureSameFamily',),
    from_tfp=from_tfp,
    crps=crps,
    component_axes=1,  # every field has one entry per component
))
