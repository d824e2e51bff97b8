"""Links: maps from a model's unconstrained raw output to a distribution parameter.

Each link is a NamedTuple of pure functions: ``forward(raw) -> parameter``,
``inverse(parameter) -> raw`` (where one exists) and, for the positive links,
``log_forward(raw) = log(forward(raw))`` computed stably, so that a Normal
density can use ``log sigma`` without forming ``sigma`` first, and
``scale_terms(raw) = (log sigma, 1 / sigma, d log sigma / d raw)``, from which a
location-scale family writes its log density and that density's derivative.

Positive links add a dtype-aware floor ``eps = finfo(dtype).eps`` (1.2e-7 in
float32, 2.2e-16 in float64): ``sigma = g(raw) + eps``. It keeps ``log sigma``
finite where ``g`` underflows (``softplus`` and ``exp`` reach 0 at raw = -104 in
float32) and its gradient is the true derivative of that function, never a
clamp under ``stop_gradient`` (the bug in torch's GaussianNLLLoss).

Known failure modes:
- ``square`` is the lecture's ``sigma^2 = f2^2``. At f2 = 0 its gradient is
  exactly 0 (a unit that reaches 0 stays there), and when a residual is 0 the
  likelihood grows without bound as f2 -> 0 (variance collapse): the floor
  keeps the loss finite but cannot make the optimum sensible. Prefer softplus.
- ``exp`` grows fast: a raw of 20 is sigma = 5e8. Its ``log_forward`` is exact
  (``logaddexp(raw, log eps)``), so the loss stays finite even at raw = 100
  where ``exp`` itself overflows float32.

Reference: Prince, *Understanding Deep Learning*, section 5.3.4; Seitzer et al. (2022).
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.core
import jax.numpy as jnp
import numpy as np


class Link(NamedTuple):
    """A parameter link: ``forward``, its ``inverse`` (or None), and ``log_forward`` (or None).

    Positive links also give ``scale_terms(raw) -> (log g, 1 / g, d log g / d raw)``: what a
    scale family needs for ``log sigma``, ``z = (y - mu) / sigma`` and the derivative of its
    log density written out (``families._location_scale``), each in a form that stays finite
    for every raw (None for the other links).
    """

    name: str
    forward: Callable[[jax.Array], jax.Array]
    inverse: Callable[[jax.Array], jax.Array] | None = None
    log_forward: Callable[[jax.Array], jax.Array] | None = None
    scale_terms: Callable[[jax.Array], tuple[jax.Array, jax.Array, jax.Array]] | None = None


def floor(dtype) -> float:
    """The positive links' floor: machine epsilon of ``dtype`` (float32 unless inexact)."""
    dtype = dtype if jnp.issubdtype(dtype, jnp.inexact) else jnp.float32
    return float(jnp.finfo(dtype).eps)


def _floored(fn):
    return lambda raw: fn(raw) + floor(jnp.result_type(raw))


def softplus_inverse(scale):
    """``raw`` with ``softplus(raw) + eps = scale``: ``raw = s + log(-expm1(-s))``, ``s = scale - eps``.

    Defined for ``scale > eps`` (the floor of the scale's dtype): a concrete value at or below it (an
    ``init_scale=1e-9`` in float32) is a ``ValueError``, where the formula would give NaN or -inf; a traced
    one gives NaN there (NaN stays NaN). A bfloat16 or float16 scale is inverted in float32 and the raw value
    rounded once to its dtype (in bfloat16 throughout, ``log`` and ``expm1`` rounded too: the scale read back
    was up to 1.7% off, 0.8% for the rounded exact raw value)."""
    dtype = jnp.result_type(scale)
    eps = floor(dtype)
    if not isinstance(scale, jax.core.Tracer):
        values = np.asarray(scale)
        if np.any(values <= eps):
            raise ValueError(f"softplus link: a positive parameter must exceed the link's floor eps = {eps:.3g} "
                             f"(machine epsilon of {dtype}); got {values.min():.3g}")
    half = jnp.issubdtype(dtype, jnp.floating) and jnp.finfo(dtype).bits < 32
    s = (jnp.asarray(scale, jnp.float32) if half else scale) - eps
    raw = s + jnp.log(-jnp.expm1(-s))
    return raw.astype(dtype) if half else raw


identity = Link("identity", lambda raw: raw, lambda p: p)

_softplus = _floored(jax.nn.softplus)


def softplus_terms(raw):
    """sigma = softplus(raw) + eps: ``d log sigma / d raw = sigmoid(raw) / sigma``."""
    scale = _softplus(raw)
    inv_scale = 1.0 / scale
    return jnp.log(scale), inv_scale, jax.nn.sigmoid(raw) * inv_scale


def softplus_log(raw):
    """``log(softplus(raw) + eps)``."""
    return jnp.log(_softplus(raw))


softplus = Link("softplus", _softplus, softplus_inverse, softplus_log, softplus_terms)


def _log_floor(raw) -> float:
    return math.log(floor(jnp.result_type(raw)))


def _exp_log(raw):
    return jnp.logaddexp(raw, _log_floor(raw))


def _exp_terms(raw):
    """sigma = exp(raw) + eps overflows float32 at raw = 89, so log sigma is computed directly:
    ``1 / sigma = exp(-log sigma)``, ``d log sigma / d raw = sigmoid(raw - log eps)``."""
    log_scale = _exp_log(raw)
    return log_scale, jnp.exp(-log_scale), jax.nn.sigmoid(raw - _log_floor(raw))


exp = Link("exp", _floored(jnp.exp), lambda scale: jnp.log(scale - floor(jnp.result_type(scale))), _exp_log,
           _exp_terms)


def _square_variance(raw):
    return jnp.square(raw) + floor(jnp.result_type(raw)) ** 2


def _square_terms(raw):
    """sigma^2 = f2^2 + eps^2: ``d log sigma / d f2 = f2 / sigma^2``, exactly 0 at f2 = 0."""
    variance = _square_variance(raw)
    return 0.5 * jnp.log(variance), jax.lax.rsqrt(variance), raw / variance


square = Link(
    # The lecture's sigma^2 = f2^2, floored: sigma = sqrt(f2^2 + eps^2).
    "square",
    lambda raw: jnp.sqrt(_square_variance(raw)),
    lambda scale: jnp.sqrt(jnp.square(scale) - floor(jnp.result_type(scale)) ** 2),
    lambda raw: 0.5 * jnp.log(_square_variance(raw)),
    _square_terms,
)

sigmoid = Link("sigmoid", jax.nn.sigmoid, jax.scipy.special.logit, jax.nn.log_sigmoid)

softmax = Link(
    # The inverse is defined up to an additive constant: log p (centred logits).
    "softmax",
    lambda raw: jax.nn.softmax(raw, axis=-1),
    lambda p: jnp.log(p) - jnp.mean(jnp.log(p), axis=-1, keepdims=True),
    lambda raw: jax.nn.log_softmax(raw, axis=-1),
)

POSITIVE = {"softplus": softplus, "exp": exp, "square": square}
ALL = {link.name: link for link in (identity, softplus, exp, square, sigmoid, softmax)}


def log_forward(link: Link) -> Callable[[jax.Array], jax.Array]:
    """``link.log_forward``; a ValueError for a link without one."""
    if link.log_forward is None:
        raise ValueError(f"the {link.name} link has no log_forward")
    return link.log_forward


def scale_terms(link: Link) -> Callable[[jax.Array], tuple[jax.Array, jax.Array, jax.Array]]:
    """``link.scale_terms`` of a positive link; a ValueError for the others."""
    if link.scale_terms is None:
        raise ValueError(f"the {link.name} link is not a positive (scale) link")
    return link.scale_terms


def get(name: str | Link) -> Link:
    """Look a link up by name (or pass a ``Link`` through)."""
    if isinstance(name, Link):
        return name
    try:
        return ALL[name]
    except KeyError:
        raise ValueError(f"unknown link {name!r}; known: {sorted(ALL)}") from None
