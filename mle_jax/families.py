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
from .distributions.normal import HALF_LOG_2PI


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
      kernel, affine: ``log_prob = scale * kernel(fparams, raw, y) + shift`` with
        ``(scale, shift) = affine(fparams)`` the same for every example (for a Normal with
        fixed sigma, kernel = (y - mu)^2, scale = -1/(2 sigma^2), shift = -log sigma - log(2 pi)/2).
        The recipe applies scale and shift once per reduction, not once per example.
      loss: ``(fparams, raw, y) -> the per-example training loss`` where it is not the NLL
        (beta-NLL, label smoothing), else None.
      check: ``y (NumPy, all examples) -> None``; raises ValueError on values off the support.
      loss_weight: ``y -> a weight`` multiplying each example in the training loss (class
        weights), or None; the recipe folds it into the per-example weights, so a weighted
        mean divides by the sum of the weights actually used.
    """

    name: str
    raw_shape: tuple[int, ...]
    event_shape: tuple[int, ...]
    init: Callable[[Any], Any]
    theta: Callable[[Any, jax.Array], Any]
    log_prob: Callable[[Any, jax.Array, jax.Array], jax.Array]
    kernel: Callable[[Any, jax.Array, jax.Array], jax.Array]
    affine: Callable[[Any], tuple[Any, Any]]
    loss: Callable[[Any, jax.Array, jax.Array], jax.Array] | None
    check: Callable[[np.ndarray], None]
    loss_weight: Callable[[jax.Array], jax.Array] | None = None


def _make(name, raw_shape, event_shape, theta, kernel=None, affine=None, loss=None, init=None, check=None,
          loss_weight=None):
    """Build a Family: ``log_prob = scale * kernel + shift`` (kernel defaults to the theta's log_prob)."""
    if kernel is None:
        from .distributions import log_prob as generic_log_prob

        def kernel(fp, raw, y):
            return generic_log_prob(theta(fp, raw), y)
    affine = affine or (lambda fp: (1.0, 0.0))

    def log_prob(fp, raw, y):
        scale, shift = affine(fp)
        return scale * kernel(fp, raw, y) + shift

    return Family(name, tuple(raw_shape), tuple(event_shape), init or (lambda dtype: {}),
                  theta, log_prob, kernel, affine, loss, check or (lambda y: None), loss_weight)


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


def _squared_error(fp, raw, y):
    """``(y - mu)^2``: the Normal's per-example kernel when sigma is the same for every example."""
    return jnp.square(y - raw)


def _normal_fixed(sigma: float) -> Family:
    name = f"normal(scale={sigma})"
    affine = (-0.5 / sigma**2, -(math.log(sigma) + HALF_LOG_2PI))

    def theta(fp, raw):
        return Normal(raw, jnp.asarray(sigma, jnp.result_type(raw)))

    # least squares: log Pr = -(y - mu)^2 / (2 sigma^2) - log sigma - log(2 pi)/2
    return _make(name, (), (), theta, _checked(name, _squared_error), lambda fp: affine, check=_check_real(name))


def _normal_learned(init_scale: float) -> Family:
    name = "normal(scale='learned')"
    _positive_scale(name, init_scale)
    link = links.softplus

    def init(dtype):
        return {"scale": link.inverse(jnp.asarray(init_scale, dtype))}

    def theta(fp, raw):
        return Normal(raw, link.forward(fp["scale"]).astype(jnp.result_type(raw)))

    def affine(fp):  # log Pr = -(y - mu)^2 / (2 sigma^2) - log sigma - log(2 pi)/2, sigma from the family
        log_scale, inv_scale, _ = link.scale_terms(fp["scale"])
        return -0.5 * jnp.square(inv_scale), -(log_scale + HALF_LOG_2PI)

    return _make(name, (), (), theta, _checked(name, _squared_error), affine, init=init, check=_check_real(name))


def _normal_heteroscedastic(link: links.Link, beta: float | None) -> Family:
    family = _location_scale("normal", link.name, 1.0, lambda fp, loc, s: Normal(loc, s),
                             lambda fp, z: -0.5 * jnp.square(z), shift=lambda fp: -HALF_LOG_2PI)
    if beta is None:
        return family
    name = f"normal(scale={link.name!r}, beta={beta})"
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"{name}: beta must lie in [0, 1]; got {beta}")

    def loss(fp, raw, y):
        weight = jnp.exp(2.0 * beta * jax.lax.stop_gradient(link.log_forward(_unstack(raw)[1])))
        return -weight * family.log_prob(fp, raw, y)

    return family._replace(name=name, loss=loss)


def _unstack(raw):
    """The entries of one example's raw vector as static slices (``raw[j]`` would become a
    gather under vmap, and a scatter in the gradient)."""
    return tuple(jax.lax.index_in_dim(raw, j, keepdims=False) for j in range(raw.shape[0]))


def _checked(name, fn):
    """Wrap a fused per-example function with the trace-time target shape check of a scalar family."""

    def checked(fp, raw, y):
        check_event_shape(name, y, ())
        return fn(fp, raw, y)
    return checked


def _named(label, text):
    """``laplace`` + ``scale=1`` -> ``laplace(scale=1)``; ``student_t(df=4)`` -> ``student_t(df=4, scale=1)``."""
    return f"{label[:-1]}, {text})" if label.endswith(")") else f"{label}({text})"


def _location_scale_kernel(link, standard_log_prob):
    """``l(raw, y) = phi(z) - log s`` with ``z = (y - mu) s^-1``, ``s = link(r)``, ``raw = (mu, r)``,
    and its derivative written out (a custom JVP) rather than left to autodiff:

        dl/dy = phi'(z) / s,   dl/dmu = -dl/dy,   dl/dr = -(z phi'(z) + 1) d log s / dr.

    Autodiff of the same expression divides by s again, differentiates softplus through a second
    exp and scatters two partial gradients into the raw vector; this form reuses ``1 / s`` and
    ``d log s / dr`` from ``link.scale_terms`` and gives one gradient row per example, which made
    the value-and-gradient about twice as fast on the CPU (experiments/benchmarks). ``phi'`` is
    autodiff of ``phi``; the rule is itself differentiable, so Hessians and jvp-of-grad work.
    """
    score = jax.grad(standard_log_prob, argnums=1)

    def terms(raw, y):
        loc, raw_scale = _unstack(raw)
        log_scale, inv_scale, dlog_scale = link.scale_terms(raw_scale)
        return (y - loc) * inv_scale, log_scale, inv_scale, dlog_scale

    @jax.custom_jvp
    def fused(fp, raw, y):
        z, log_scale, _, _ = terms(raw, y)
        return standard_log_prob(fp, z) - log_scale

    @fused.defjvp
    def fused_jvp(primals, tangents):
        fp, raw, y = primals
        dfp, draw, dy = tangents
        z, log_scale, inv_scale, dlog_scale = terms(raw, y)
        if jax.tree.leaves(fp):  # the family's own parameters (a learned df): autodiff at fixed z
            value, tangent = jax.jvp(lambda fp: standard_log_prob(fp, z), (fp,), (dfp,))
        else:
            value, tangent = standard_log_prob(fp, z), 0.0
        dphi = score(fp, z)
        dl_dy = dphi * inv_scale
        grad_raw = jnp.stack([-dl_dy, -(z * dphi + 1.0) * dlog_scale])
        return value - log_scale, tangent + jnp.dot(draw, grad_raw) + dy * dl_dy

    def kernel(fp, raw, y):
        return fused(fp, raw, jnp.asarray(y, jnp.result_type(raw, y)))
    return kernel


def _location_scale(label, scale, init_scale, theta_of, standard_log_prob, shift=None, extra_init=None):
    """A location-scale family: ``log Pr(y) = standard_log_prob(fp, (y - mu)/s) + shift(fp) - log s``.

    ``scale`` is a fixed positive float, ``"learned"`` (a global s = softplus(fp) + eps),
    or a positive link's name (the model emits (mu, raw scale)). ``shift`` is the part of the
    standard log density that is the same for every example; the recipe adds it once.
    """
    extra_init = extra_init or (lambda dtype: {})
    shift = shift or (lambda fp: 0.0)
    if isinstance(scale, str) and scale in links.POSITIVE:
        link = links.POSITIVE[scale]
        name = _named(label, f"scale={scale!r}")

        kernel = _location_scale_kernel(link, standard_log_prob)

        def theta(fp, raw):
            loc, raw_scale = _unstack(raw)
            return theta_of(fp, loc, link.forward(raw_scale))

        return _make(name, (2,), (), theta, _checked(name, kernel), lambda fp: (1.0, shift(fp)), init=extra_init,
                     check=_check_real(name))
    if isinstance(scale, str) and scale == "learned":
        name = _named(label, "scale='learned'")
        _positive_scale(name, init_scale)
        link = links.softplus

        def init(dtype):
            return {**extra_init(dtype), "scale": link.inverse(jnp.asarray(init_scale, dtype))}

        def kernel(fp, raw, y):
            _, inv_scale, _ = link.scale_terms(fp["scale"])
            return standard_log_prob(fp, (y - raw) * inv_scale)

        def theta(fp, raw):
            return theta_of(fp, raw, link.forward(fp["scale"]).astype(jnp.result_type(raw)))

        return _make(name, (), (), theta, _checked(name, kernel),
                     lambda fp: (1.0, shift(fp) - link.log_forward(fp["scale"])), init=init, check=_check_real(name))
    sigma = _positive_scale(_named(label, f"scale={scale!r}"), scale)
    name = _named(label, f"scale={sigma}")

    def fixed_kernel(fp, raw, y):
        return standard_log_prob(fp, (y - raw) / sigma)

    def fixed_theta(fp, raw):
        return theta_of(fp, raw, jnp.asarray(sigma, jnp.result_type(raw)))

    return _make(name, (), (), fixed_theta, _checked(name, fixed_kernel),
                 lambda fp: (1.0, shift(fp) - math.log(sigma)), init=extra_init, check=_check_real(name))


# ----------------------------------------------------------------------------- Bernoulli

def bernoulli(*, soft_labels: bool = False) -> Family:
    """Bernoulli family on logits: the model emits one logit z, ``lambda = sig(z)``.

    The NLL is binary cross-entropy ``softplus(z) - y z`` (``mle_jax.distributions.bernoulli.binary_nll``):
    exact at logits of +-1e4 and +-inf, gradient exactly ``sig(z) - y``. Targets must
    be 0 or 1; ``soft_labels=True`` accepts y in [0, 1] (label smoothing, distillation).
    scipy: ``bernoulli.logpmf(y, expit(z))``. Reference: the lecture, Example 2.
    """
    name = "bernoulli(soft_labels=True)" if soft_labels else "bernoulli()"

    def theta(fp, raw):
        return Bernoulli(raw)

    def kernel(fp, raw, y):
        return -_bernoulli.binary_nll(raw, jnp.asarray(y).astype(jnp.result_type(raw)))

    def check(y):
        y = np.asarray(y)
        if soft_labels:
            check_finite(name, y, "y")
            fail_entries(name, "in [0, 1]", (y < 0) | (y > 1), y)
        else:
            fail_entries(name, "0 or 1 (pass soft_labels=True for probabilities)",
                         (y != 0) & (y != 1), y)

    return _make(name, (), (), theta, _checked(name, kernel), check=check)


# ----------------------------------------------------------------------------- Categorical

def categorical(num_classes: int, *, label_smoothing: float = 0.0, class_weights=None) -> Family:
    """Categorical family on logits: the model emits K logits, ``Pr(y = k) = softmax_k(z)``.

    The NLL is multiclass cross-entropy ``log sum_k exp(z_k) - z_y`` (the target logit is
    gathered, never a one-hot product). Labels are integers in [0, K).
    scipy: ``multinomial.logpmf(onehot(y), 1, softmax(z))``. Reference: the lecture, Example 3.

    Training-loss options (``nll`` stays the true NLL; ``recipe.loss`` and ``fit`` use them):
      label_smoothing: eps in [0, 1): the target becomes ``(1 - eps) onehot(y) + eps / K``,
        ``loss_i = -(1 - eps) log p_y - (eps / K) sum_k log p_k`` (Szegedy et al., 2016).
      class_weights: K weights >= 0; example i counts ``w[y_i]`` times, combined with the
        per-example ``weights`` and ``mask`` and divided by the sum of the weights used.
    """
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise ValueError(f"categorical: num_classes must be an integer >= 2; got {num_classes!r}")
    k = int(num_classes)
    options = []
    if label_smoothing:
        options.append(f"label_smoothing={label_smoothing}")
    if class_weights is not None:
        options.append("class_weights=...")
    name = f"categorical({', '.join([str(k)] + options)})"
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"{name}: label_smoothing must lie in [0, 1); got {label_smoothing}")

    def theta(fp, raw):
        return Categorical(raw)

    def kernel(fp, raw, y):
        return _categorical.log_prob(Categorical(raw), y)

    def check(y):
        y = np.asarray(y)
        if not (np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_):
            raise ValueError(
                f"{name}: class labels must be integers in [0, {k}); got dtype {y.dtype} "
                f"(cast with y.astype(int) if the values are whole numbers)")
        fail_entries(name, f"in [0, {k})", (y < 0) | (y >= k), y, "label")

    loss = None
    if label_smoothing:
        def loss(fp, raw, y):
            log_p = _categorical.log_probs(Categorical(raw))
            target = jnp.take_along_axis(log_p, jnp.asarray(y)[..., None], axis=-1)[..., 0]
            return -(1 - label_smoothing) * target - label_smoothing * jnp.mean(log_p, axis=-1)

    loss_weight = None
    if class_weights is not None:
        weights = np.asarray(class_weights, np.float64)
        if weights.shape != (k,) or not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise ValueError(f"{name}: class_weights must be {k} finite numbers >= 0; got {class_weights!r}")
        table = jnp.asarray(weights, jnp.float32)

        def loss_weight(y):
            return table[y]

    return _make(name, (k,), (), theta, kernel, loss=loss, check=check, loss_weight=loss_weight)


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
    if family.loss_weight is not None:
        raise ValueError(f"independent: {family.name} weighs examples by class, which has no meaning "
                         f"for D outputs at once; weight the examples with fit(..., weights=...)")
    name = f"independent({family.name}, {dim}{'' if shared else ', shared=False'})"
    fp_axis = None if shared else 0

    def init(dtype):
        fp = family.init(dtype)
        return fp if shared else jax.tree_util.tree_map(lambda a: jnp.stack([a] * dim), fp)

    def theta(fp, raw):
        return Independent(jax.vmap(family.theta, in_axes=(fp_axis, 0))(fp, _split(raw)))

    def _split(raw):
        return raw.reshape((dim,) + family.raw_shape)

    def summed(fn):
        def total(fp, raw, y):
            check_event_shape(name, y, (dim,) + family.event_shape)
            return jnp.sum(jax.vmap(fn, in_axes=(fp_axis, 0, 0))(fp, _split(raw), y), axis=0)
        return total

    if shared:  # one (scale, shift) for all D outputs: sum_d (a k_d + b) = a sum_d k_d + D b
        kernel = summed(family.kernel)

        def affine(fp):
            scale, shift = family.affine(fp)
            return scale, dim * shift
    else:  # a scale per output: applied inside the sum over d
        def scaled_kernel(fp, raw, y):
            return family.affine(fp)[0] * family.kernel(fp, raw, y)
        kernel = summed(scaled_kernel)

        def affine(fp):
            return 1.0, jnp.sum(jax.vmap(lambda f: family.affine(f)[1])(fp))

    loss = None if family.loss is None else summed(family.loss)
    return _make(name, (dim,) + family.raw_shape, (dim,) + family.event_shape, theta, kernel,
                 affine, loss, init, family.check)
