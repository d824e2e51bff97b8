"""Families for labels: binary, categorical and ordered categories.

    mj.bernoulli()           raw: the logit z            y in {0, 1} (or [0, 1] with soft_labels=True)
    mj.categorical(K)        raw: K logits               y an integer label in [0, K)
    mj.ordinal(K)            raw: one score f            y an integer label in [0, K), ordered

Label smoothing and class weights are training-loss options (``Training``): ``nll`` stays
the true NLL; ``recipe.loss`` and ``fit`` use them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from .. import links
from ..distributions import Bernoulli, Categorical
from ..distributions import bernoulli as _bernoulli
from ..distributions import categorical as _categorical
from ._arguments import number_in, whole_number
from ._family import Family, PerExample, Spec, Training, build
from ._support import binary, labels, probability


def _bernoulli_theta(fp, raw):
    return Bernoulli(raw)


def _bernoulli_kernel(fp, raw, y):
    return -_bernoulli.binary_nll(raw, jnp.asarray(y).astype(jnp.result_type(raw)))


def bernoulli(*, soft_labels: bool = False) -> Family:
    """Bernoulli family on logits: the model emits one logit z, ``lambda = sig(z)``.

    The NLL is binary cross-entropy ``softplus(z) - y z`` (``mle_jax.distributions.bernoulli.binary_nll``):
    exact at logits of +-1e4 and +-inf, gradient exactly ``sig(z) - y``. Support: y in {0, 1};
    ``soft_labels=True`` accepts y in [0, 1] (label smoothing, distillation).
    scipy: ``bernoulli.logpmf(y, expit(z))``. Reference: the lecture, Example 2.
    """
    if not isinstance(soft_labels, (bool, np.bool_)):
        raise ValueError(f"bernoulli: soft_labels must be True or False; got {soft_labels!r}")
    spec = Spec("bernoulli", options=(("soft_labels", True),) if soft_labels else ())
    support = probability if soft_labels else dataclasses.replace(
        binary, hint="pass soft_labels=True for probabilities")
    return build(spec=spec, support=support, theta=_bernoulli_theta, kernel=_bernoulli_kernel)


def _categorical_theta(fp, raw):
    return Categorical(raw)


def _categorical_kernel(fp, raw, y):
    return _categorical.log_prob(Categorical(raw), y)


def categorical(num_classes: int, *, label_smoothing: float = 0.0, class_weights: Any = None) -> Family:
    """Categorical family on logits: the model emits K logits, ``Pr(y = k) = softmax_k(z)``.

    The NLL is multiclass cross-entropy ``log sum_k exp(z_k) - z_y`` (the target logit is
    gathered, never a one-hot product). Support: integer labels in [0, K).
    scipy: ``multinomial.logpmf(onehot(y), 1, softmax(z))``. Reference: the lecture, Example 3.

    Training-loss options (``nll`` stays the true NLL; ``recipe.loss`` and ``fit`` use them):
      label_smoothing: eps in [0, 1): the target becomes ``(1 - eps) onehot(y) + eps / K``,
        ``loss_i = -(1 - eps) log p_y - (eps / K) sum_k log p_k`` (Szegedy et al., 2016).
      class_weights: K weights >= 0; example i counts ``w[y_i]`` times, combined with the
        per-example ``weights`` and ``mask`` and divided by the sum of the weights used.
    """
    k = whole_number("categorical", "num_classes", num_classes, 2)
    spec = Spec("categorical", args=(k,))
    training = _classification_training(spec.render(), k, label_smoothing, class_weights)
    return build(spec=spec, support=labels(k), theta=_categorical_theta, raw_shape=(k,),
                 kernel=_categorical_kernel, training=training)


def _classification_training(label: str, k: int, label_smoothing: Any, class_weights: Any) -> Training:
    """Label smoothing (a loss) and class weights (a weight per example), as one ``Training``."""
    eps = number_in(label, "label_smoothing", label_smoothing, 0.0, 1.0, open_high=True)
    options: tuple[tuple[str, Any], ...] = (("label_smoothing", eps),) if eps else ()
    weights = None
    if class_weights is not None:
        weights = _class_weights(label, k, class_weights)
        options += (("class_weights", tuple(float(w) for w in weights)),)
    return Training(options, _smoothed_loss(eps) if eps else None,
                    None if weights is None else _class_weight(weights))


def _smoothed_loss(eps: float) -> PerExample:
    """``-(1 - eps) log p_y - (eps / K) sum_k log p_k``: cross-entropy against the smoothed target."""
    def loss(fp, raw, y):
        log_p = _categorical.log_probs(Categorical(raw))
        target = jnp.take_along_axis(log_p, jnp.asarray(y)[..., None], axis=-1)[..., 0]
        return -(1 - eps) * target - eps * jnp.mean(log_p, axis=-1)
    return loss


def _class_weights(label: str, k: int, class_weights: Any) -> np.ndarray:
    values = np.asarray(class_weights)
    if (values.shape != (k,) or values.dtype == np.bool_ or not np.issubdtype(values.dtype, np.number)
            or not np.all(np.isfinite(values)) or np.any(values < 0)):
        raise ValueError(f"{label}: class_weights must be {k} finite numbers >= 0; got {class_weights!r}")
    return values


def _class_weight(weights: np.ndarray) -> Callable[[jax.Array], jax.Array]:
    """``y -> w[y]``: each example counts its class's weight."""
    table = jnp.asarray(weights, jnp.float32)

    def weight(y):
        return table[y]
    return weight


def ordinal(num_classes: int) -> Family:
    """Ordered categories by cumulative logits: ``Pr(y <= k | f) = sig(c_k - f)``, k = 0..K-2.

    The model emits one score f per example; the K-1 cutpoints are the family's own
    parameters, kept ordered as ``c_0`` plus cumulative softplus gaps. theta is the resulting
    ``Categorical`` over the K classes (``log Pr(y = k) = log(sig(c_k - f) - sig(c_{k-1} - f))``,
    computed as ``log_sigmoid(c_k - f) + log(-expm1(...))``). Support: integer labels in [0, K).
    statsmodels: ``OrderedModel(distr="logit")``. Reference: McCullagh (1980).
    """
    k = whole_number("ordinal", "num_classes", num_classes, 2)

    def init(dtype):
        return {"first_cut": jnp.asarray(-(k - 2) / 2, dtype),
                "gaps": links.softplus_inverse(jnp.ones((k - 2,), dtype))}

    def cutpoints(fp):
        gaps = links.softplus.forward(fp["gaps"])
        return fp["first_cut"] + jnp.concatenate([jnp.zeros((1,), gaps.dtype), jnp.cumsum(gaps)])

    def theta(fp, raw):
        c = cutpoints(fp).astype(jnp.result_type(raw))
        upper = jnp.concatenate([c, jnp.full((1,), jnp.inf, c.dtype)]) - raw   # c_k - f, +inf for the last
        lower = jnp.concatenate([jnp.full((1,), -jnp.inf, c.dtype), c]) - raw  # c_{k-1} - f, -inf for the first
        # log(sig(u) - sig(l)) = log_sigmoid(u) + log(1 - exp(log_sigmoid(l) - log_sigmoid(u)))
        log_upper, log_lower = jax.nn.log_sigmoid(upper), jax.nn.log_sigmoid(lower)
        return Categorical(log_upper + jnp.log(-jnp.expm1(log_lower - log_upper)))

    return build(spec=Spec("ordinal", args=(k,)), support=labels(k), theta=theta, init=init)
