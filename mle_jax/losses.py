"""Per-example negative log-likelihoods on raw model outputs, called as optax's losses are.

    mj.losses.categorical(logits, labels)            logits (N, K), integer labels (N,)    -> (N,)
    mj.losses.bernoulli(logits, labels)              logits (N,), labels (N,) in {0, 1}
    mj.losses.normal(mu, y, scale=0.5)               sigma fixed: (y - mu)^2 / (2 sigma^2) + log sigma + log(2 pi)/2
    mj.losses.normal(raw, y, scale="softplus")       raw (N, 2) = (mu, raw scale), sigma = softplus + eps
    mj.losses.normal(mu, y, scale=sigma)             sigma an array: learned in your own step, or known per example
    mj.losses.nll(family, raw, y, fparams)           any family, e.g. with the family parameters a recipe trained

Every function here is ONE generic per-example term, ``-family.log_prob(fparams, raw_i, y_i)``
(or ``family.loss`` where the family trains on something else), ``vmap``-ed over the leading
axis: the families' own fused, stable forms (log-sigmoid logits, gathered log-softmax, ``log
sigma`` straight from the link), so the values and gradients are the recipe's, term by term.
The result has shape (N,); reduce it as you like (``jnp.mean``, or ``mj.reduce_terms`` for
weights and masks). Nothing is jitted here: call these inside your own ``jit``/``grad``.

Shapes are checked on every call and never broadcast: ``raw`` must be ``(N, *raw_shape)`` (a
``(N, 1)`` raw is accepted where the family takes one value, as the recipe accepts a model's
``(1,)`` output) and ``y`` exactly ``(N, *event_shape)``; anything else is a ValueError showing
both shapes (a ``(N, 1)`` target against ``(N,)`` logits is the bug that makes an ``(N, N)``
loss elsewhere). Target values (labels in ``[0, K)``, counts, ...) are checked with the
family's rules when they are concrete; inside a trace their values cannot be read and are not
(nor with ``validate=False``): there an impossible target (a label 2 for ``bernoulli``, -1 or K
for ``categorical``, a count 2.5) has NLL ``+inf``, as the theta's ``log_prob`` is ``-inf``.

Family-owned parameters are explicit keyword arguments in natural units: a Python number is a
fixed setting (``scale=0.5``, ``df=4.0``); an array, traced or not, is a value you learn or know
yourself (``scale=jax.nn.softplus(params["s"])``, of shape () or one per example (N,)). An array
value enters the family's own "learned" form through the inverse of its link (softplus + eps),
so it must exceed the floor ``eps = finfo(dtype).eps`` (an eager value below it is a ValueError, a
traced one gives NaN). ``mj.losses.nll`` takes a family and its parameters in the family's raw form
instead (``params.family`` of a recipe). In your own jitted step, with a learned global sigma:

    def loss_fn(params, x, y):
        mu = model(params["net"], x)                                   # (N,)
        return jnp.mean(mj.losses.normal(mu, y, scale=jax.nn.softplus(params["s"])))

    grads = jax.jit(jax.grad(loss_fn))(params, x, y)                   # then optax as usual

Precision follows raw: bfloat16 in, bfloat16 out, with that dtype's link floor (2^-7 in
bfloat16, so sigma = softplus + 0.0078); cast raw to float32 first for a float32 loss.

Reference: Prince, *Understanding Deep Learning*, ch. 5; optax ``losses`` for the calling style.
"""

from __future__ import annotations

import numbers
from typing import Callable, cast

import jax
import jax.numpy as jnp
import numpy as np

import mle_jax as _mj  # the public family constructors, looked up at call time

from . import links
from .checks import fail_entries, is_concrete, one_array
from .families import Family


# ----------------------------------------------------------------------------- the generic term

def nll(family: Family, raw, y, fparams=None, *, validate: bool = True) -> jax.Array:
    """``-log Pr(y_i | family.theta(fparams, raw_i))`` for every example i: shape (N,).

    Args:
      family: any mle_jax family, e.g. ``mj.normal("softplus")``, ``mj.ordinal(5)``.
      raw: the model's raw outputs, shape ``(N, *family.raw_shape)``.
      y: the targets, shape ``(N, *family.event_shape)``.
      fparams: the family's own parameters in its raw form (``params.family`` of a recipe);
        required when the family owns any. A leaf with an extra leading axis of size N gives
        each example its own value.
      validate: check the target values with the family's rules when they are concrete
        (unchecked, an impossible target gives ``+inf``).

    Equals ``-recipe.log_prob(params, x, y)`` on the model's raw outputs. Example:

      >>> import jax.numpy as jnp, mle_jax as mj
      >>> mj.losses.nll(mj.bernoulli(), jnp.array([0.0, 2.0]), jnp.array([1, 0]))  # log 2, softplus(2)
      Array([0.6931472, 2.126928 ], dtype=float32)
    """
    raw, y, fp, axes = _prepared(family, raw, y, fparams, validate)
    return -jax.vmap(family.log_prob, in_axes=(axes, 0, 0))(fp, raw, y)


def loss(family: Family, raw, y, fparams=None, *, validate: bool = True) -> jax.Array:
    """The per-example training loss of ``family``: shape (N,).

    ``nll`` unless the family trains on something else: beta-NLL (``mj.normal(..., beta=)``),
    label smoothing, and class weights, where example i's term is multiplied by ``w[y_i]`` (as
    torch's ``CrossEntropyLoss(weight=w, reduction="none")``); the recipe's weighted mean is
    then ``sum(loss) / sum(w[y])``. Arguments as for ``nll``.
    """
    raw, y, fp, axes = _prepared(family, raw, y, fparams, validate)
    if family.loss is None:
        terms = -jax.vmap(family.log_prob, in_axes=(axes, 0, 0))(fp, raw, y)
    else:
        terms = jax.vmap(family.loss, in_axes=(axes, 0, 0))(fp, raw, y)
    if family.loss_weight is not None:
        terms = terms * jax.vmap(family.loss_weight)(y).astype(terms.dtype)
    return terms


def _prepared(family, raw, y, fparams, validate):
    """Check the shapes (and concrete target values); return raw, y, fparams, their vmap axes."""
    if not isinstance(family, Family):
        raise TypeError(f"mj.losses: family must be an mle_jax Family (e.g. mj.normal()); got {type(family).__name__}")
    one_array(f"mj.losses.{family.name}", "y", y)
    raw = jnp.asarray(raw)
    if not jnp.issubdtype(raw.dtype, jnp.floating):
        raise TypeError(f"mj.losses.{family.name}: raw outputs must be floating point; got dtype {raw.dtype}")
    want_raw, want_y = family.raw_shape, family.event_shape
    n = raw.shape[0] if raw.ndim else None
    one_value = len(want_raw) <= 1 and int(np.prod(want_raw)) == 1
    shape = raw.shape[1:] if not (one_value and raw.shape[1:] in ((), (1,))) else want_raw
    if n is None or shape != want_raw or np.shape(y) != (n,) + want_y:
        raise ValueError(
            f"mj.losses.{family.name}: raw has shape {raw.shape} and y has shape {np.shape(y)}; this family "
            f"needs raw of shape {_batched(want_raw)} and y of shape {_batched(want_y)}, with the same N "
            f"(mle_jax never broadcasts targets against predictions)")
    raw = raw.reshape((n,) + want_raw)
    if validate and is_concrete(y):
        family.check(_numpy(y))
    fp, axes = _family_params(family, fparams, raw.dtype, n)
    return raw, jnp.asarray(y), fp, axes


def _family_params(family, fparams, dtype, n):
    """The family's parameters and their vmap axes: None for a shared leaf, 0 for one per example."""
    template = family.init(dtype)
    if fparams is None:
        if jax.tree.leaves(template):
            raise ValueError(
                f"mj.losses.{family.name}: this family owns parameters {_keys(template)}; pass them as "
                f"fparams (params.family of a recipe), or their values to the family's mj.losses function")
        return template, None
    if jax.tree.structure(fparams) != jax.tree.structure(template):
        raise ValueError(f"mj.losses.{family.name}: fparams must have the structure of family.init(dtype), "
                         f"{jax.tree.structure(template)}; got {jax.tree.structure(fparams)}")

    def axis(path, leaf, like):
        shape, base = np.shape(leaf), np.shape(like)
        if shape == base:
            return None
        if shape == (n,) + base:
            return 0
        raise ValueError(f"mj.losses.{family.name}: the family parameter {jax.tree_util.keystr(path)} has shape "
                         f"{shape}; expected {base} (shared) or {(n,) + base} (one per example)")
    return fparams, jax.tree_util.tree_map_with_path(axis, fparams, template)


def _numpy(y):
    """y as NumPy for the family's value check; bfloat16 / float16 exactly as float32, which NumPy's
    own dtype tests recognise as a real number."""
    y = np.asarray(y)
    return y.astype(np.float32) if jnp.issubdtype(y.dtype, jnp.floating) and y.dtype.itemsize < 4 else y


def _batched(shape):
    """``(2,)`` -> ``"(N, 2)"``: the shape of a batch of examples of one example's ``shape``."""
    return "(N,)" if not shape else "(" + ", ".join(["N"] + [str(d) for d in shape]) + ")"


def _keys(tree):
    return sorted(tree) if isinstance(tree, dict) else jax.tree.structure(tree)


# ----------------------------------------------------------------------------- values -> family parameters

def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _positive(label, name, value):
    """A positive value (array, traced or not) as the raw parameter of a softplus + eps link."""
    kind = value.dtype if hasattr(value, "dtype") else np.asarray(value).dtype  # None, bools: not numbers
    if not (jnp.issubdtype(kind, jnp.integer) or jnp.issubdtype(kind, jnp.floating)):
        raise TypeError(f"mj.losses.{label}: {name} must be a positive number or a real array; got {value!r}")
    value = jnp.asarray(value)
    if not jnp.issubdtype(value.dtype, jnp.floating):
        value = value.astype(jnp.result_type(float))
    if is_concrete(value):
        array = np.asarray(value)
        floor = links.floor(value.dtype)
        fail_entries(label, f"finite and > {floor:.3g} (the floor finfo(dtype).eps of the link)",
                     ~(np.isfinite(array) & (array > floor)), np.atleast_1d(array), name)
    return cast(Callable, links.softplus.inverse)(value)


def _scaled(label, make, scale, fparams, **options):
    """The family and fparams for a scale given as a number (fixed), a link name, or an array value."""
    if isinstance(scale, str):
        if scale == "learned":
            raise ValueError(
                f"mj.losses.{label}: scale='learned' needs the value: pass scale=sigma as an array "
                f"(e.g. jax.nn.softplus(params['s'])), or use mj.losses.nll(family, raw, y, params.family)")
        return make(scale=scale, **options), fparams
    if _is_number(scale):
        return make(scale=float(scale), **options), fparams
    return make(scale="learned", **options), {**fparams, "scale": _positive(label, "scale", scale)}


# ----------------------------------------------------------------------------- one function per family

def normal(raw, y, scale: float | str | jax.Array = "softplus", *, beta: float | None = None,
           validate: bool = True) -> jax.Array:
    """Normal NLL ``(y - mu)^2 / (2 sigma^2) + log sigma + log(2 pi)/2`` per example.

    ``scale``: a number (sigma fixed; raw is mu, shape (N,)); a link name ``"softplus"``,
    ``"exp"``, ``"square"`` (raw (N, 2) = (mu, raw scale), heteroscedastic); or an array sigma
    of shape () or (N,) (raw is mu). ``beta`` gives beta-NLL for a link (Seitzer et al., 2022).
    With scale=1: ``optax.losses.squared_error(mu, y) / 2 + log(2 pi)/2``. scipy: ``-norm.logpdf``.
    """
    family, fp = _scaled("normal", _mj.normal, scale, {}, **({} if beta is None else {"beta": beta}))
    return loss(family, raw, y, fp or None, validate=validate)


def laplace(raw, y, scale: float | str | jax.Array = "softplus", *, validate: bool = True) -> jax.Array:
    """Laplace NLL ``|y - mu| / b + log(2 b)``; ``scale`` as for ``normal``. scipy: ``-laplace.logpdf``."""
    family, fp = _scaled("laplace", _mj.laplace, scale, {})
    return loss(family, raw, y, fp or None, validate=validate)


def student_t(raw, y, df: float | jax.Array = 4.0, scale: float | str | jax.Array = "softplus", *,
              validate: bool = True) -> jax.Array:
    """Student t NLL; ``df`` a number (fixed) or an array value, ``scale`` as for ``normal``.

    ``-log Pr = -lnG((nu+1)/2) + lnG(nu/2) + log(nu pi)/2 + (nu+1)/2 log1p(z^2/nu) + log s``;
    scipy: ``-t.logpdf(y, df, mu, s)``.
    """
    if _is_number(df):
        make, fp = (lambda **kw: _mj.student_t(float(df), **kw)), {}
    else:
        make, fp = (lambda **kw: _mj.student_t("learned", **kw)), {"df": _positive("student_t", "df", df)}
    family, fp = _scaled("student_t", make, scale, fp)
    return loss(family, raw, y, fp or None, validate=validate)


def bernoulli(logits, labels, *, soft_labels: bool = False, validate: bool = True) -> jax.Array:
    """Binary cross-entropy on logits ``softplus(z) - y z``: exact at logits of +-1e4 and +-inf.

    Labels 0 or 1; ``soft_labels=True`` takes y in [0, 1].
    Equals ``optax.losses.sigmoid_binary_cross_entropy(z, y)``; scipy: ``-bernoulli.logpmf(y, expit(z))``.
    """
    return loss(_mj.bernoulli(soft_labels=soft_labels), logits, labels, validate=validate)


def categorical(logits, labels, *, label_smoothing: float = 0.0, class_weights=None,
                validate: bool = True) -> jax.Array:
    """Cross-entropy on logits ``logsumexp(z) - z_y`` with integer labels in [0, K), K = logits.shape[-1].

    ``label_smoothing`` eps: the target is ``(1 - eps) onehot(y) + eps / K`` (optax's
    ``smooth_labels``); ``class_weights`` w (K,): term i is ``w[y_i]`` times the loss, and the
    weighted mean is ``sum(loss) / sum(w[y])``, as the recipe computes it.
    Equals ``optax.losses.softmax_cross_entropy_with_integer_labels(z, y)``.
    """
    k = np.shape(logits)[-1] if np.ndim(logits) >= 2 else None
    if k is None:
        raise ValueError(f"mj.losses.categorical: logits must have shape (N, K); got {np.shape(logits)}")
    family = _mj.categorical(k, label_smoothing=label_smoothing, class_weights=class_weights)
    return loss(family, logits, labels, validate=validate)


def poisson(log_rate, counts, *, validate: bool = True) -> jax.Array:
    """Poisson NLL on the log-rate z: ``exp(z) - y z + log y!``; scipy: ``-poisson.logpmf(y, exp(z))``.

    Equals torch's ``poisson_nll_loss(z, y, log_input=True, full=False)`` plus ``log y!``.
    """
    return loss(_mj.poisson(), log_rate, counts, validate=validate)


def gamma(raw, y, *, validate: bool = True) -> jax.Array:
    """Gamma NLL for y > 0, raw (N, 2) = (a, b) through softplus: concentration and rate.
    scipy: ``-gamma.logpdf(y, a, scale=1/b)``."""
    return loss(_mj.gamma(), raw, y, validate=validate)


def beta(raw, y, *, validate: bool = True) -> jax.Array:
    """Beta NLL for 0 < y < 1, raw (N, 2) through softplus. scipy: ``-beta.logpdf(y, a, b)``."""
    return loss(_mj.beta(), raw, y, validate=validate)


def von_mises(raw, y, *, validate: bool = True) -> jax.Array:
    """von Mises NLL for angles, raw (N, 2) = (mu, k), ``concentration = softplus(k) + eps``.
    scipy: ``-vonmises.logpdf(y, kappa, mu)``."""
    return loss(_mj.von_mises(), raw, y, validate=validate)


def negative_binomial(raw, y, *, total_count: float | str | jax.Array, validate: bool = True) -> jax.Array:
    """Negative binomial NLL on the log-mean m (mean ``exp(m)``, variance ``exp(m)(1 + exp(m)/r)``).

    ``total_count``: the dispersion r as a value (a number or an array of shape () or (N,); raw
    is m, shape (N,)), or ``"per_example"`` (raw (N, 2) = (m, raw r), r = softplus + eps).
    scipy: ``-nbinom.logpmf(y, r, r / (r + exp(m)))``.
    """
    if isinstance(total_count, str):
        return loss(_mj.negative_binomial(total_count), raw, y, validate=validate)
    fp = {"total_count": _positive("negative_binomial", "total_count", total_count)}
    return loss(_mj.negative_binomial("learned"), raw, y, fp, validate=validate)


def mixture_normal(raw, y, *, validate: bool = True) -> jax.Array:
    """Mixture of K Normals (a mixture density network), raw (N, 3K) = (logits, locs, raw scales):
    ``-logsumexp_k(log softmax(logits)_k + log N(y | mu_k, softplus(s_k) + eps))``."""
    width = np.shape(raw)[-1] if np.ndim(raw) == 2 else 0
    if width == 0 or width % 3:
        raise ValueError(f"mj.losses.mixture_normal: raw must have shape (N, 3K); got {np.shape(raw)}")
    return loss(_mj.mixture_normal(width // 3), raw, y, validate=validate)


def mvn_cholesky(raw, y, *, validate: bool = True) -> jax.Array:
    """Multivariate Normal NLL with a Cholesky link: y (N, D), raw (N, D + D(D+1)/2) (the mean,
    then the lower triangle row by row, its diagonal through softplus + eps).
    scipy: ``-multivariate_normal.logpdf``."""
    if np.ndim(y) != 2:
        raise ValueError(f"mj.losses.mvn_cholesky: y must have shape (N, D); got {np.shape(y)}")
    return loss(_mj.mvn_cholesky(np.shape(y)[1]), raw, y, validate=validate)


def ordinal(raw, y, *, cutpoints, validate: bool = True) -> jax.Array:
    """Ordinal NLL by cumulative logits, ``Pr(y <= k) = sig(c_k - f)``, raw f (N,), labels in [0, K).

    ``cutpoints``: the K - 1 increasing cutpoints c (an array, traced or not); consecutive
    gaps must exceed the link's floor ``finfo(dtype).eps``. Reference: McCullagh (1980).
    """
    c = jnp.asarray(cutpoints)
    if c.ndim != 1 or c.shape[0] < 1:
        raise ValueError(f"mj.losses.ordinal: cutpoints must have shape (K - 1,) with K >= 2; got {c.shape}")
    if not jnp.issubdtype(c.dtype, jnp.floating):
        c = c.astype(jnp.result_type(float))
    fp = {"first_cut": c[0], "gaps": _positive("ordinal", "cutpoint gaps", jnp.diff(c))}
    return loss(_mj.ordinal(c.shape[0] + 1), raw, y, fp, validate=validate)


def independent(raw, y, family: Family, fparams=None, *, shared: bool = True, validate: bool = True) -> jax.Array:
    """D independent outputs of ``family``: ``-sum_d log Pr(y_d | theta_d)``, raw ``(N, D, *raw_shape)``
    and y ``(N, D, *event_shape)``; ``fparams`` as for ``nll`` (the base family's own, raw form)."""
    if np.ndim(raw) < 2:
        raise ValueError(f"mj.losses.independent: raw must have shape (N, D, ...); got {np.shape(raw)}")
    return loss(_mj.independent(family, np.shape(raw)[1], shared=shared), raw, y, fparams, validate=validate)


def censored(raw, y, family: Family, fparams=None, *, validate: bool = True) -> jax.Array:
    """Censored observations of a continuous scalar ``family``: y (N, 2) = (value, side), side 0
    observed (the density), -1 known only to be <= value (``log_cdf``), +1 >= value (``log_sf``)."""
    return loss(_mj.censored(family), raw, y, fparams, validate=validate)


__all__ = [
    "bernoulli", "beta", "categorical", "censored", "gamma", "independent", "laplace", "loss",
    "mixture_normal", "mvn_cholesky", "negative_binomial", "nll", "normal", "ordinal", "poisson",
    "student_t", "von_mises",
]
