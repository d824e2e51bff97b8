"""Families: step 2 of the recipe, from a model's raw output to theta.

A family maps the unconstrained raw output of a model for ONE example to the
theta of a distribution, through one link per parameter, and may own
parameters of its own (a global learned sigma). It also carries the fused log
density ``log_prob(fparams, raw, y) = log Pr(y | theta(fparams, raw))`` written
for its links (``log sigma`` straight from the link, logits never turned into
probabilities), the training ``loss`` (the NLL, or beta-NLL), and the eager
value rules for targets.

    mj.normal(scale=0.2)          raw: mu                    (sigma fixed)
    mj.normal(scale="learned")    raw: mu                    (one global sigma in the family's params)
    mj.normal(scale="softplus")   raw: (mu, s), sigma = softplus(s) + eps  (also "exp", "square")
    mj.bernoulli()                raw: the logit z
    mj.categorical(K)             raw: K logits
    mj.independent(family, D)     raw: D stacked raws; log-likelihood summed over the D outputs
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import links
from .checks import check_event_shape, check_finite, fail_entries
from .distributions import Bernoulli, Categorical, Independent, Normal
from .distributions import bernoulli as _bernoulli
from .distributions import categorical as _categorical
from .distributions.normal import standard_log_prob


class Family(NamedTuple):
    """Raw model output for one example -> theta, with the family's own parameters.

    Fields:
      name: shown in error messages, e.g. ``"normal(scale='softplus')"``.
      raw_shape: the shape of one example's raw output; ``()`` and ``(1,)`` are
        interchangeable when it holds one value.
      event_shape: the shape of one example's target y.
      init: ``dtype -> fparams``, the family's own parameters (``{}`` if none).
      theta: ``(fparams, raw) -> theta``.
      log_prob: ``(fparams, raw, y) -> log Pr(y | theta(fparams, raw))``, fused for the links.
      loss: ``(fparams, raw, y) -> the per-example training loss`` (the NLL unless
        the family reweights it, as beta-NLL does).
      check: ``y (NumPy, all examples) -> None``; raises ValueError on values off the support.
    """

    name: str
    raw_shape: tuple[int, ...]
    event_shape: tuple[int, ...]
    init: Callable[[Any], Any]
    theta: Callable[[Any, jax.Array], Any]
    log_prob: Callable[[Any, jax.Array, jax.Array], jax.Array]
    loss: Callable[[Any, jax.Array, jax.Array], jax.Array]
    check: Callable[[np.ndarray], None]


def _make(name, raw_shape, event_shape, theta, log_prob=None, loss=None, init=None, check=None):
    """Build a Family, filling the defaults: log_prob through theta, loss = -log_prob."""
    if log_prob is None:
        from .distributions import log_prob as generic_log_prob

        def log_prob(fp, raw, y):
            return generic_log_prob(theta(fp, raw), y)
    if loss is None:
        def loss(fp, raw, y):
            return -log_prob(fp, raw, y)
    return Family(name, tuple(raw_shape), tuple(event_shape), init or (lambda dtype: {}),
                  theta, log_prob, loss, check or (lambda y: None))


def as_raw(family: Family, raw) -> jax.Array:
    """Check one example's raw output against ``family.raw_shape`` (at trace time)."""
    raw = jnp.asarray(raw)
    want = family.raw_shape
    if raw.shape == want:
        return raw
    if math.prod(want) == 1 and raw.size == 1 and raw.ndim <= 1 and len(want) <= 1:
        return raw.reshape(want)
    raise ValueError(
        f"{family.name}: the model's raw output for one example has shape {raw.shape}; "
        f"this family needs shape {want}")


# ----------------------------------------------------------------------------- Normal

def _check_real(name):
    def check(y):
        y = np.asarray(y)
        if not np.issubdtype(y.dtype, np.number) or np.issubdtype(y.dtype, np.complexfloating):
            raise ValueError(f"{name}: y must be real numbers; got dtype {y.dtype}")
        check_finite(name, y, "y")
    return check


def _positive_scale(name, scale) -> float:
    try:
        value = float(scale)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name}: scale must be a positive number or one of 'learned', 'softplus', "
            f"'exp', 'square'; got {scale!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name}: the fixed scale sigma must be finite and > 0; got sigma = {value}")
    return value


def normal(scale: float | str = "softplus", *, init_scale: float = 1.0, beta: float | None = None) -> Family:
    """Normal family: ``Pr(y | x) = N(y | mu(x), sigma(x))``.

    Args:
      scale: a positive float (sigma fixed, the model emits mu: least squares);
        ``"learned"`` (one global sigma = softplus(s) + eps, with s a family
        parameter learned jointly with phi); or a link name ``"softplus"``,
        ``"exp"``, ``"square"`` (heteroscedastic: the model emits (mu, s) and
        sigma = link(s)). ``"square"`` is the lecture's sigma^2 = f2^2; see
        ``mle_jax.links`` for its failure modes.
      init_scale: the starting sigma for ``"learned"``.
      beta: beta-NLL (Seitzer et al., 2022) for heteroscedastic scales: the
        training loss of example i is ``stop_gradient(sigma_i^(2 beta)) * NLL_i``;
        beta = 0 is the NLL, beta = 1 gives the mean the MSE's gradient. ``nll``
        still reports the true NLL.

    The log density is ``-z^2/2 - log sigma - log(2 pi)/2`` with ``z = (y - mu)/sigma``
    (``scipy.stats.norm.logpdf``); the Normal NLL with fixed sigma equals
    ``SSE / (2 sigma^2) + N log sigma + (N/2) log 2 pi`` (Prince, eq. 5.12).
    """
    if isinstance(scale, str) and scale == "learned":
        return _normal_learned(float(init_scale))
    if isinstance(scale, str) and scale in links.POSITIVE:
        return _normal_heteroscedastic(links.POSITIVE[scale], beta)
    if beta is not None:
        raise ValueError("normal: beta (beta-NLL) needs a heteroscedastic scale link")
    return _normal_fixed(_positive_scale(f"normal(scale={scale!r})", scale))


def _normal_fixed(sigma: float) -> Family:
    name = f"normal(scale={sigma})"
    log_sigma, inv_sigma = math.log(sigma), 1.0 / sigma

    def theta(fp, raw):
        return Normal(raw, jnp.asarray(sigma, jnp.result_type(raw)))

    def log_prob(fp, raw, y):
        return standard_log_prob((y - raw) * inv_sigma, log_sigma)

    return _make(name, (), (), theta, _checked(name, log_prob), check=_check_real(name))


def _normal_learned(init_scale: float) -> Family:
    name = "normal(scale='learned')"
    _positive_scale(name, init_scale)
    link = links.softplus

    def init(dtype):
        return {"scale": link.inverse(jnp.asarray(init_scale, dtype))}

    def theta(fp, raw):
        return Normal(raw, link.forward(fp["scale"]).astype(jnp.result_type(raw)))

    def log_prob(fp, raw, y):
        log_scale = link.log_forward(fp["scale"])
        return standard_log_prob((y - raw) * jnp.exp(-log_scale), log_scale)

    return _make(name, (), (), theta, _checked(name, log_prob), init=init, check=_check_real(name))


def _normal_heteroscedastic(link: links.Link, beta: float | None) -> Family:
    name = f"normal(scale={link.name!r}{'' if beta is None else f', beta={beta}'})"

    def theta(fp, raw):
        return Normal(raw[0], link.forward(raw[1]))

    def log_prob(fp, raw, y):
        log_scale = link.log_forward(raw[1])
        return standard_log_prob((y - raw[0]) * jnp.exp(-log_scale), log_scale)

    log_prob = _checked(name, log_prob)
    loss = None
    if beta is not None:
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"{name}: beta must lie in [0, 1]; got {beta}")

        def loss(fp, raw, y):
            weight = jnp.exp(2.0 * beta * jax.lax.stop_gradient(link.log_forward(raw[1])))
            return -weight * log_prob(fp, raw, y)

    return _make(name, (2,), (), theta, log_prob, loss, check=_check_real(name))


def _checked(name, log_prob):
    """Wrap a fused log density with the trace-time target shape check of a scalar family."""
    def checked(fp, raw, y):
        check_event_shape(name, y, ())
        return log_prob(fp, raw, y)
    return checked


# ----------------------------------------------------------------------------- Bernoulli

def bernoulli(*, soft_labels: bool = False) -> Family:
    """Bernoulli family on logits: the model emits one logit z, ``lambda = sig(z)``.

    The NLL is binary cross-entropy ``softplus(z) - y z``, computed as
    ``-log_sigmoid((2y - 1) z)``: exact at logits of +-1e4 and +-inf, gradient
    exactly ``sig(z) - y``. Targets must be 0 or 1; ``soft_labels=True`` accepts
    y in [0, 1] (``y log sig(z) + (1 - y) log sig(-z)``).
    scipy: ``bernoulli.logpmf(y, expit(z))``. Reference: the lecture, Example 2.
    """
    name = "bernoulli(soft_labels=True)" if soft_labels else "bernoulli()"

    def theta(fp, raw):
        return Bernoulli(raw)

    if soft_labels:
        def log_prob(fp, raw, y):
            return _bernoulli.log_prob(Bernoulli(raw), jnp.asarray(y, jnp.result_type(raw)))
    else:
        def log_prob(fp, raw, y):
            return jax.nn.log_sigmoid((2 * jnp.asarray(y, jnp.result_type(raw)) - 1) * raw)

    def check(y):
        y = np.asarray(y)
        if soft_labels:
            check_finite(name, y, "y")
            fail_entries(name, "in [0, 1]", (y < 0) | (y > 1), y)
        else:
            fail_entries(name, "0 or 1 (pass soft_labels=True for probabilities)",
                         (y != 0) & (y != 1), y)

    return _make(name, (), (), theta, _checked(name, log_prob), check=check)


# ----------------------------------------------------------------------------- Categorical

def categorical(num_classes: int) -> Family:
    """Categorical family on logits: the model emits K logits, ``Pr(y = k) = softmax_k(z)``.

    The NLL is multiclass cross-entropy ``log sum_k exp(z_k) - z_y`` (the target
    logit is gathered, never a one-hot product). Labels are integers in [0, K).
    scipy: ``multinomial.logpmf(onehot(y), 1, softmax(z))``. Reference: the lecture, Example 3.
    """
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise ValueError(f"categorical: num_classes must be an integer >= 2; got {num_classes!r}")
    k = int(num_classes)
    name = f"categorical({k})"

    def theta(fp, raw):
        return Categorical(raw)

    def log_prob(fp, raw, y):
        return _categorical.log_prob(Categorical(raw), y)

    def check(y):
        y = np.asarray(y)
        if not (np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_):
            raise ValueError(
                f"{name}: class labels must be integers in [0, {k}); got dtype {y.dtype} "
                f"(cast with y.astype(int) if the values are whole numbers)")
        fail_entries(name, f"in [0, {k})", (y < 0) | (y >= k), y, "label")

    return _make(name, (k,), (), theta, log_prob, check=check)


# ----------------------------------------------------------------------------- combinators

def independent(family: Family, dim: int, *, shared: bool = True) -> Family:
    """D independent outputs of one family: ``log Pr(y | x) = sum_d log Pr(y_d | theta_d(x))``.

    The model emits raw of shape ``(D,) + family.raw_shape``; the target y has
    shape ``(D,) + family.event_shape``. The family's own parameters (a learned
    sigma) are ``shared`` by the D outputs (the lecture's one sigma^2) or, with
    ``shared=False``, one set per output (a sigma per dimension, for outputs of
    different magnitudes). theta is ``Independent(base)`` with base fields of
    leading axis D. Reference: the lecture, "Multiple outputs" and Example 4.
    """
    if not isinstance(dim, (int, np.integer)) or dim < 1:
        raise ValueError(f"independent: dim must be a positive integer; got {dim!r}")
    name = f"independent({family.name}, {dim}{'' if shared else ', shared=False'})"
    fp_axis = None if shared else 0

    def init(dtype):
        fp = family.init(dtype)
        return fp if shared else jax.tree_util.tree_map(lambda a: jnp.stack([a] * dim), fp)

    def per_output(fn):
        return jax.vmap(fn, in_axes=(fp_axis, 0, 0))

    def theta(fp, raw):
        return Independent(jax.vmap(family.theta, in_axes=(fp_axis, 0))(fp, _split(raw)))

    def _split(raw):
        return raw.reshape((dim,) + family.raw_shape)

    def checked(fn):
        def summed(fp, raw, y):
            check_event_shape(name, y, (dim,) + family.event_shape)
            return jnp.sum(per_output(fn)(fp, _split(raw), y), axis=0)
        return summed

    return Family(name, (dim,) + family.raw_shape, (dim,) + family.event_shape, init, theta,
                  checked(family.log_prob), checked(family.loss), family.check)
