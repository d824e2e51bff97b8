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
from jax.custom_derivatives import SymbolicZero

from .. import links
from ..distributions import Bernoulli, Categorical
from ..distributions import bernoulli as _bernoulli
from ..distributions import categorical as _categorical
from ..distributions.special import log1mexp, sigmoid_pair
from ._arguments import number_in, whole_number
from ._family import Family, PerExample, Spec, Training, build
from ._support import binary, labels, probability


def _bernoulli_theta(fp, raw):
    return Bernoulli(raw)


def _bernoulli_kernel(fp, raw, y):
    """The theta's own ``log_prob``: ``-binary_nll`` on [0, 1] and ``-inf`` off it (y = 2, -1, NaN),
    as for the theta, also where the labels are traced or not validated."""
    return _bernoulli.log_prob(Bernoulli(raw), y)


def bernoulli(*, soft_labels: bool = False) -> Family:
    """Bernoulli family on logits: the model emits one logit z, ``lambda = sig(z)``.

    The NLL is binary cross-entropy ``softplus(z) - y z`` (``mle_jax.distributions.bernoulli.binary_nll``):
    exact at logits of +-1e4 and +-inf, gradient exactly ``sig(z) - y``. Support: y in {0, 1};
    ``soft_labels=True`` accepts y in [0, 1] (label smoothing, distillation). The kernel is the
    theta's ``log_prob``: a target outside [0, 1] (y = 2, traced or unvalidated) has NLL +inf.
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
        per-example ``weights`` and ``mask`` and divided by the sum of the weights used. With label
        smoothing too, the whole smoothed term of example i is scaled by ``w[y_i]``; torch's
        ``cross_entropy(weight=w, label_smoothing=eps)`` weights each class's smoothing term by its own
        ``w_k`` instead (the two agree without smoothing, or with equal weights).
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
    """``-(1 - eps) log p_y - (eps / K) sum_k log p_k``: cross-entropy against the smoothed target;
    ``+inf`` for a label off [0, K) (-1, K, 1.7), as the NLL is (never a wrapped or clamped index)."""
    def loss(fp, raw, y):
        log_p = _categorical.log_probs(Categorical(raw))
        inside, label = _label_index(y, log_p.shape[-1])
        target = jnp.take_along_axis(log_p, label[..., None], axis=-1)[..., 0]
        return jnp.where(inside, -(1 - eps) * target - eps * jnp.mean(log_p, axis=-1), jnp.inf)
    return loss


def _label_index(y, k: int) -> tuple[jax.Array, jax.Array]:
    """Whether ``y`` is a label in [0, K), and an index that is one (0 where it is not)."""
    inside = _categorical.on_support(y, k)
    return inside, jnp.where(inside, jnp.asarray(y), 0).astype(jnp.int32)


def _class_weights(label: str, k: int, class_weights: Any) -> np.ndarray:
    values = np.asarray(class_weights)
    if (values.shape != (k,) or values.dtype == np.bool_ or not np.issubdtype(values.dtype, np.number)
            or not np.all(np.isfinite(values)) or np.any(values < 0)):
        raise ValueError(f"{label}: class_weights must be {k} finite numbers >= 0; got {class_weights!r}")
    return values


def _class_weight(weights: np.ndarray) -> Callable[[jax.Array], jax.Array]:
    """``y -> w[y]``: each example counts its class's weight; 1 for a label off [0, K), whose
    loss is +inf (never the weight of a wrapped or clamped index, nor ``0 * inf``)."""
    table = jnp.asarray(weights, jnp.float32)

    def weight(y):
        inside, label = _label_index(y, table.shape[0])
        return jnp.where(inside, table[label], 1.0)
    return weight


def interval_log_probs(cuts, gaps, f):
    """``log Pr(y = k) = log(sig(u_k) - sig(l_k))`` for k = 0..K-1, ``u_k = c_k - f``, ``l_k = c_{k-1} - f``
    (``c_{-1} = -inf``, ``c_{K-1} = +inf``), with no difference of probabilities: by
    ``sig(u) - sig(l) = sig(u) sig(-l) (1 - exp(-(u - l)))``,

        log Pr(y = k) = log_sigmoid(u_k) + log_sigmoid(-l_k) + log(1 - exp(-g_k)),

    where ``g_k = u_k - l_k`` is the gap ``c_k - c_{k-1}`` (``gaps``, never ``u - l`` recomputed; +inf
    for the first and last classes). Every term is a log-sigmoid or ``log1mexp``: finite, with a
    finite gradient, at any finite f (``ordinal(4)`` at its initial cutpoints, f = -100, class 2:
    ``-100.459``, where the difference of sigmoids is ``1 - 1 = 0`` in float32), and the limits at
    ``f = +-inf``. ``cuts`` (K-1,) increasing, ``gaps`` (K-2,) > 0.
    """
    inf = jnp.full((1,), jnp.inf, cuts.dtype)
    shifted = cuts - f
    upper = jnp.concatenate([shifted, inf])    # u_k; +inf for the last class (never inf - f)
    lower = jnp.concatenate([-inf, shifted])   # l_k; -inf for the first
    width = jnp.concatenate([inf, gaps, inf])  # g_k = c_k - c_{k-1}
    return _log_sigmoid(upper) + _log_sigmoid(-lower) + log1mexp(-width)


@jax.custom_jvp
def _log_sigmoid(x):
    """``log sig(x)`` (``jax.nn.log_sigmoid``) whose derivative ``sig(-x)`` is ``_sigmoid``, exact to the second
    derivative ``-sig(x) sig(-x)``: JAX's own rule kept only rounding there where ``sig(-x)`` is near 1 (at
    ``x = -46``, float64, 0 for -1.05e-20), so the ordinal model's Hessian taken through ``theta`` (a Categorical
    on these log-probabilities) lost the far class's curvature."""
    return jax.nn.log_sigmoid(x)


@_log_sigmoid.defjvp
def _log_sigmoid_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return _log_sigmoid(x), _sigmoid(-x) * dx


def _log_sigmoid_pair(sig_minus_u, sig_v, *, select_free=False):
    """``log sig(u) + log sig(-v) - min(u, 0) + max(v, 0)`` (an ordinal class's interval, less its width term and
    its linear head ``_interval_head``) from the two sigmoids the derivative reads, ``sig(-u)`` and ``sig(v)``: with
    ``p_u = sig(-|u|)`` (``sig(-u)`` where it is at most 1/2, else ``1 - sig(-u)``) and ``p_v = sig(-|v|)`` likewise,

        log sig(|u|) + log sig(|v|) = log((1 - p_u)(1 - p_v)) = log1p(-(p_u + p_v - p_u p_v)),

    one log1p and no exp of its own. Exact: where ``u >= 0``, ``p_u`` is ``sig(-u)`` itself (to its rounding);
    where ``u < 0``, ``1 - sig(-u)`` is off by a rounding of 1, but then ``|log sig(u)| >= log 2``, so that the
    interval's log-probability (every term <= 0) keeps its relative precision; likewise for v. 0 at ``u = inf``,
    ``v = -inf`` (both sigmoids 0). ``w = p_u + p_v - p_u p_v <= 3/4``: no log of 0. In float64 the log1p is
    ``log(1 - w)`` from w = 1/4 on (XLA's float64 log1p of a negative argument is up to 128 ulps off near -0.4).

    ``p`` is picked by a select (its derivative at ``sig = 1/2`` is that of the ``u >= 0`` side: autodiff of this
    form is exact at u = 0), or with ``select_free`` as ``min(sig, 1 - sig)``, the same bits (``1 - sig`` is exact
    above 1/2; at 1/2 both are 1/2), which XLA:CPU's vectorised library takes (``_interval_value``)."""
    if select_free:
        p_u, p_v = jnp.minimum(sig_minus_u, 1 - sig_minus_u), jnp.minimum(sig_v, 1 - sig_v)
    else:
        p_u = jnp.where(sig_minus_u <= 0.5, sig_minus_u, 1 - sig_minus_u)
        p_v = jnp.where(sig_v <= 0.5, sig_v, 1 - sig_v)
    w = p_u + p_v - p_u * p_v
    if jnp.dtype(jnp.result_type(w)).itemsize < 8:
        return jnp.log1p(-w)
    # float64: XLA's log1p is up to 128 ulps off on [-0.4142, -0.35] (special.log1p), where w = sig(v) for
    # v = c_{y-1} - f in [-0.62, -0.35]; from w = 1/4 on, log(1 - w) (1 - w rounded once, at most 2^-54, against
    # |log(1 - w)| >= 0.28): within 2 roundings on [0, 3/4] (mpmath). A select (measured no slower, A/B at
    # 1e4 / 1e6, value and gradient) where special.log1p's correction would cost a division
    return jnp.where(w < 0.25, jnp.log1p(-w), jnp.log(1 - w))


def _interval_head(upper, lower):
    """``min(u, 0) - max(v, 0)``, by selects whose derivative at 0 is that of the side ``_log_sigmoid_pair`` takes
    there (0)."""
    return jnp.where(upper < 0, upper, 0.0) - jnp.where(lower > 0, lower, 0.0)


# up to this many classes the observed class's cutpoints are picked by a chain of K selects per example
# (fused with the rest of the kernel); above it by a gather
SELECT_MAX_CLASSES = 16


def _pick(table, label, hits):
    """``table[label]`` by selects on ``hits[j] = (label == j)`` (a static chain), or a gather without them."""
    if hits is None:
        return jnp.take(table, label)
    value = table[0]
    for j in range(1, table.shape[0]):
        value = jnp.where(hits[j], table[j], value)
    return value


def _interval_ends(f, cuts, width_term, y):
    """The observed class's label (0 off the labels), whether ``y`` is a label, the selects' hits, ``u = c_y - f``
    (+inf for the last class and off the labels) and ``v = c_{y-1} - f`` (-inf for the first class)."""
    k = width_term.shape[0]
    inside = _categorical.on_support(y, k)
    label = jnp.where(inside, jnp.asarray(y), jnp.zeros_like(jnp.asarray(y))).astype(jnp.int32)
    hits = [label == j for j in range(k)] if k <= SELECT_MAX_CLASSES else None
    padded = jnp.concatenate([cuts[:1], cuts])  # c_{y-1} at y for y >= 1; y = 0 is replaced by -inf
    # +inf for the last class and off the labels (label 0 there, whose lower end is -inf): sig(-u) and sig(v)
    # are then exactly 0 wherever they must be, with no mask
    upper = jnp.where((label == k - 1) | ~inside, jnp.inf, _pick(jnp.concatenate([cuts, cuts[-1:]]), label, hits) - f)
    lower = jnp.where(label == 0, -jnp.inf, _pick(padded, label, hits) - f)
    return label, inside, hits, upper, lower


def _interval_parts(f, cuts, width_term, y):
    """The observed class's ``log Pr(y | f)`` and the pieces of its derivative: the label (0 off the labels),
    ``sig(-u)`` and ``sig(v)`` (``_sigmoid``: differentiable, each from one exp), from which the value takes its
    log (``_log_sigmoid_pair``): two exps and one log1p per example, and the derivative no exp of its own."""
    label, inside, hits, upper, lower = _interval_ends(f, cuts, width_term, y)
    sig_minus_u = _sigmoid(-upper)  # 0 for the last class and off the labels
    sig_v = _sigmoid(lower)         # 0 for the first class and off the labels (label 0)
    value = _interval_head(upper, lower) + _log_sigmoid_pair(sig_minus_u, sig_v) + _pick(width_term, label, hits)
    return jnp.where(inside, value, -jnp.inf), label, sig_minus_u, sig_v


def _interval_value(f, cuts, width_term, y):
    """``_interval_parts``' value, the same operations in the same order, in two steps: the selects (the picks, the
    signs, -inf off the labels, where ``u = inf`` and ``v = -inf`` make both sigmoids 0) into four per-example arrays,
    then ``head + log1p(-(p_u + p_v - p_u p_v)) + W_y`` and the sum with no select (``_log_sigmoid_pair``'s
    ``min`` form), which XLA:CPU hands to its vectorised library (YNNPACK; a fused loop with selects keeps XLA's own,
    slower ``exp`` and ``log1p``). The ``optimization_barrier`` keeps XLA from fusing the two steps back into one
    loop. Only the float64 value takes this form (in float32 the one loop measured faster): in a value and gradient
    (``_observed_interval_jvp``) the four arrays would take the program's temporaries at N = 1e6 float64 over
    glibc's 32 MB mmap threshold (page faults: 2x slower)."""
    label, inside, hits, upper, lower = _interval_ends(f, cuts, width_term, y)
    head = jnp.where(inside, _interval_head(upper, lower), -jnp.inf)
    head, minus_u, v, width = jax.lax.optimization_barrier((head, -upper, lower, _pick(width_term, label, hits)))
    # jax.nn.sigmoid is _sigmoid's primal: the same bits as _interval_parts'
    return head + _log_sigmoid_pair(jax.nn.sigmoid(minus_u), jax.nn.sigmoid(v), select_free=True) + width


@jax.custom_jvp
def _observed_interval(f, cuts, width_term, y):
    """``log Pr(y | f) = log sig(u) + log sig(-v) + W_y`` (``interval_log_probs`` at the observed class:
    ``u = c_y - f``, ``v = c_{y-1} - f``, ``W_y = log(1 - exp(-g_y))`` from ``width_term``) as
    ``min(u, 0) - max(v, 0) + log1p(-(p_u + p_v - p_u p_v)) + W_y``, ``p_u = sig(-|u|)``, ``p_v = sig(-|v|)``
    taken from ``sig(-u)`` and ``sig(v)`` (``_log_sigmoid_pair``): two exps and one log1p per example, exact at every
    u, v; -inf off the labels [0, K). The cutpoints and width of the class are
    picked by selects (``_pick``), and the derivative is written out (``_observed_interval_jvp``). Evaluated without
    differentiation in float64, in two steps (``_interval_value``)."""
    if jnp.result_type(f) != jnp.float64:  # float32's own loop is the faster (YNNPACK's float32 sum measured slower)
        return _interval_parts(f, cuts, width_term, y)[0]
    return _interval_value(f, cuts, width_term, y)


@jax.custom_jvp
def _sigmoid(x):
    """``sig(x)`` (``jax.nn.sigmoid``) whose derivative is ``sig(x) sig(-x)``, both from one ``exp``
    (``special.sigmoid_pair``; neither is ``1 - `` the other): the logistic's own rule, ``s (1 - s)``, keeps only
    rounding where ``s`` is near 1 (x = 30 in float64: 1e-3 off; x >= 37: 0 for ``exp(-x)``), and the ordinal NLL's
    Hessian is that derivative. Without differentiation, ``jax.nn.sigmoid``."""
    return jax.nn.sigmoid(x)


@_sigmoid.defjvp
def _sigmoid_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    value, value_neg = sigmoid_pair(x)
    return value, value * value_neg * dx


def _observed_interval_jvp(primals, tangents):
    """``d/df = sig(v) - sig(-u)``, ``d/dc_j = [y = j] sig(-u) - [y = j + 1] sig(v)``, ``d/dW_j = [y = j]``, all 0
    off the labels. ``sig(-u)`` and ``sig(v)`` are the two sigmoids the value takes its log from
    (``_interval_parts``): two exps per example in all, and XLA stores those two per-example arrays (each read by
    the value, the f-sum and its scatter) and no exp of the value's. Exact at every u, v (a sigmoid is never a
    difference), and differentiable: each sigmoid's derivative is ``sig sig(-.)`` (``_sigmoid``), so Hessians are
    exact where the observed class is far off (``f - c`` of 40 in float64, 15 in float32)."""
    f, cuts, width_term, y = primals
    d_f, d_cuts, d_width, _ = tangents
    value, label, sig_minus_u, sig_v = _interval_parts(f, cuts, width_term, y)
    # The tangent is written as -(...), with the signs on the (K,) tables: the NLL's cotangent is -1, so the
    # transpose's cotangent folds to +1 and the per-example arrays XLA stores are sig(-u) and sig(v) as they are,
    # each read by the f-sum and its scatter (no sign-flipped copies, no stored cotangent): 28 MB of temporaries at
    # N = 1e6 float64 (53 MB before), under glibc's 32 MB mmap threshold
    minus_tangent = jnp.zeros_like(value)
    if not isinstance(d_f, SymbolicZero):
        minus_tangent = minus_tangent + (sig_minus_u - sig_v) * d_f
    # (dc_y, dc_{y-1}, dW_y), 0 past the ends, each gathered at the label: their transposes are scatter-adds
    # (the cheapest sum by class on a CPU, against selects summed per class or a one-hot product)
    none = jnp.zeros((1,), value.dtype)
    if not isinstance(d_cuts, SymbolicZero):
        minus_tangent = (minus_tangent
                         + sig_minus_u * jnp.concatenate([-d_cuts, none]).at[label].get(mode="promise_in_bounds")
                         + sig_v * jnp.concatenate([none, d_cuts]).at[label].get(mode="promise_in_bounds"))
    if not isinstance(d_width, SymbolicZero):
        # off the labels the label is 0, whose width term is a constant (d_width[0] = 0): no mask
        minus_tangent = minus_tangent + (-d_width).at[label].get(mode="promise_in_bounds")
    return value, -minus_tangent


_observed_interval.defjvp(_observed_interval_jvp, symbolic_zeros=True)


def ordinal(num_classes: int) -> Family:
    """Ordered categories by cumulative logits: ``Pr(y <= k | f) = sig(c_k - f)``, k = 0..K-2.

    The model emits one score f per example; the K-1 cutpoints are the family's own
    parameters, kept ordered as ``c_0`` plus cumulative gaps ``softplus + eps``. theta is the
    resulting ``Categorical`` over the K classes, ``log Pr(y = k) = log(sig(c_k - f) - sig(c_{k-1} - f))``
    in the form of ``interval_log_probs`` (no cancellation at any f). Support: integer labels in [0, K).
    statsmodels: ``OrderedModel(distr="logit")``. Reference: McCullagh (1980).
    """
    k = whole_number("ordinal", "num_classes", num_classes, 2)

    def init(dtype):
        return {"first_cut": jnp.asarray(-(k - 2) / 2, dtype),
                "gaps": links.softplus_inverse(jnp.ones((k - 2,), dtype))}

    def cuts_and_gaps(fp, dtype):
        gaps = links.softplus.forward(fp["gaps"]).astype(dtype)
        if k > SELECT_MAX_CLASSES:
            return jnp.asarray(fp["first_cut"], dtype) + jnp.concatenate([jnp.zeros((1,), dtype), jnp.cumsum(gaps)]), gaps
        # the running sum written out for a few classes: scalar adds fused with the rest, no reduce-window
        running = [jnp.zeros((), dtype)]
        for j in range(k - 2):
            running.append(running[-1] + gaps[j])
        return jnp.asarray(fp["first_cut"], dtype) + jnp.stack(running), gaps

    def theta(fp, raw):
        return Categorical(interval_log_probs(*cuts_and_gaps(fp, jnp.result_type(raw)), raw))

    def kernel(fp, raw, y):
        """``interval_log_probs`` at the observed class only (``_observed_interval``); -inf off the labels."""
        dtype = jnp.result_type(raw)
        cuts, gaps = cuts_and_gaps(fp, dtype)
        inf = jnp.full((1,), jnp.inf, dtype)
        width_term = log1mexp(-jnp.concatenate([inf, gaps, inf]))  # 0 for the first and last classes
        return _observed_interval(raw, cuts, width_term, y)

    return build(spec=Spec("ordinal", args=(k,)), support=labels(k), theta=theta, init=init, kernel=kernel,
                 positive=("gaps",))
