"""Is the predicted distribution any good? Proper scores, PIT and calibration, for any theta.

    crps(theta, y)         = int (F(t) - 1{y <= t})^2 dt = E|Y - y| - 1/2 E|Y - Y'|     (lower is better)
    pit(theta, y)          = F(y); randomised u = F(y-) + V (F(y) - F(y-)), V ~ U(0, 1), for counts
    brier(theta, y)        = sum_k (p_k - 1{y = k})^2
    calibration(theta, y)  = the reliability diagram's bins and ECE = sum_b (n_b / N) |conf_b - freq_b|
    coverage(theta, y)     = the fraction of y inside the central predictive interval

Every function here is generic: what it needs of a theta type (the closed-form ``crps``, ``log_cdf``,
``quantile``, ``probs``, the ``support``, whether targets are ``discrete``, ``unordered`` or vectors, the
``distance`` between two targets) is an entry of the type's registry table, found through
``distributions.registry``, with the one fallback per missing entry documented there: a user's type
registered with ``mj.register`` is scored as a built-in is.

Each function works on one example or on a batch (theta's fields and y with the same leading axes)
and returns the per-example score; average it yourself. ``y`` must have exactly the theta's batch x
event shape (no broadcasting: a (N, 1) target for N scalar predictions is a ValueError naming both
shapes), at least one example, and, where its values can be read (not inside a caller's ``jit``),
lie on the theta's support (counts for a Poisson, 0/1 for a Bernoulli, labels in [0, K) for a
Categorical, y > 0 for a Gamma; NaN and inf are refused); every failure is a ValueError raised before
anything is compiled. bfloat16 and float16 thetas are scored in float32 and the score returned in their dtype.

A calibrated model has PIT values uniform on [0, 1] and a reliability diagram on the diagonal.
References: Gneiting and Raftery (2007), JASA 102; Jordan, Krueger and Lerch (2019), J. Stat.
Softw. 90 (the closed forms); Czado, Gneiting and Held (2009), Biometrics 65 (randomised PIT);
Grimit et al. (2006), QJRMS 132 (the CRPS on the circle); Guo et al. (2017), ICML (ECE).
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import distributions as dist
from ._boundary import as_array
from ._cache import Programs, concrete_or_inline, is_concrete
from .distributions import _support, registry
from .distributions._support import validate

#: The module's compiled programs (scores run once per evaluation: compiled fast, at optimisation level 0).
PROGRAMS = Programs()


def _compiled(fn: Any = None, *, static_argnums: tuple | int = ()) -> Any:
    """``fn`` jitted (kept in ``PROGRAMS``) on concrete arrays, inlined as is inside a caller's jit / grad / vmap."""
    if fn is None:
        return partial(_compiled, static_argnums=static_argnums)

    def build():
        return jax.jit(fn, static_argnums=static_argnums, compiler_options={"xla_backend_optimization_level": 0})
    return concrete_or_inline(fn, lambda *args: PROGRAMS.get(("scores", fn.__name__), build)(*args))


def _name(theta) -> str:
    return type(theta).__name__


# ----------------------------------------------------------------------------- targets

def check_targets(name: str, theta, y) -> None:
    """Raise a ValueError unless ``y`` has exactly the theta's batch x event shape (``registry.target_shape``),
    holds at least one example, and (when its values are concrete) lies on the theta's support."""
    try:
        want = registry.target_shape(theta)  # a TypeError naming the theta types for anything else
    except ValueError as error:
        raise ValueError(f"{name}: {error}") from None
    shape = tuple(np.shape(y))
    if shape != want:
        raise ValueError(
            f"{name}: y has shape {shape} but {_name(theta)} predicts targets of shape {want} "
            f"(its batch x event shape); scores never broadcast y against theta: pass y with shape {want}")
    if math.prod(want) == 0:
        raise ValueError(f"{name}: there are no examples (y and theta have shape {want})")
    if is_concrete(y):
        validate(name, registry.support(theta), np.atleast_1d(np.asarray(y)))


def _cast(theta, y):
    """theta broadcast to its batch shape in a float dtype (integers promoted; bfloat16 / float16 computed in
    float32), y in that dtype (class labels of an ``unordered`` type stay integers), and the dtype to return."""
    out = jnp.result_type(*jax.tree_util.tree_leaves(theta), float)
    compute = jnp.promote_types(out, jnp.float32)
    labels = registry.entries(theta).unordered
    return registry.broadcast(theta, compute), (jnp.asarray(y) if labels else jnp.asarray(y, compute)), out


def _prepared(name, theta, y):
    y = as_array(name, "y", y)  # a pandas / polars Series, a torch tensor, ... read once (mle_jax._frames)
    check_targets(name, theta, y)
    registry.check_domain(theta, name)
    return _cast(theta, y)


# ----------------------------------------------------------------------------- CRPS

class SampleEstimate(NamedTuple):
    """A Monte Carlo estimate and its standard error."""

    estimate: jax.Array
    standard_error: jax.Array


def _scalar_only(name, theta):
    if registry.event_ndims(theta):
        raise TypeError(f"{name}: the CRPS is defined for scalar targets; {_name(theta)} has vector "
                        f"targets (its multivariate generalisation, the energy score, is not provided)")
    if registry.entries(theta).unordered:
        raise TypeError(f"{name}: {_name(theta)}'s classes have no order, so it has no CRPS; use brier(theta, y)")


def crps(theta, y, *, key=None, num_samples: int = 1000):
    """The continuous ranked probability score ``int (F(t) - 1{y <= t})^2 dt`` per example, >= 0.

    The type's registered closed form (``crps`` in its module: Normal, Laplace, Student t, Gamma, Poisson,
    negative binomial, mixture of Normals, Bernoulli, where it is the Brier score). Any other theta with
    scalar targets (Beta, von Mises, a user's type) needs ``key`` and returns ``crps_sample``'s
    ``SampleEstimate``. Vector targets (MultivariateNormal, Independent) and unordered classes
    (Categorical) are a TypeError. Support: y as ``check_targets`` requires (exact shape, on the support).
    scoringrules: ``crps_normal``, ``crps_laplace``, ``crps_t``, ``crps_gamma``, ``crps_poisson``,
    ``crps_negbinom``, ``crps_mixnorm``.
    """
    _scalar_only("crps", theta)
    if registry.entries(theta).crps is None:
        if key is None:
            raise ValueError(f"crps: no closed form for {_name(theta)}; pass key= for the sample-based "
                             f"estimate with its standard error")
        return crps_sample(key, theta, y, num_samples)
    theta, y, out = _prepared("crps", theta, y)
    return _closed_crps(theta, y).astype(out)


@_compiled
def _closed_crps(theta, y):
    return registry.function(theta, "crps")(theta, y)


def crps_sample(key, theta, y, num_samples: int = 1000) -> SampleEstimate:
    """``1/m sum_i d(x_i, y) - 1/(2 m (m-1)) sum_{i != j} d(x_i, x_j)`` from m draws per example (unbiased),
    with the standard error of its first-order (Hoeffding) projection ``h_i = d(x_i, y) - mean_j d(x_i, x_j)``.

    ``d`` is the type's ``distance``, ``|a - b|`` by default; for a von Mises theta the angular distance
    ``|angle(a - b)|`` in [0, pi] (the circular CRPS of Grimit et al., 2006), so that y and y + 2 pi score the same."""
    _scalar_only("crps_sample", theta)
    registry.require(theta, "sample", "crps_sample")
    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) or num_samples < 2:
        raise ValueError(f"crps_sample: num_samples must be an integer >= 2; got {num_samples!r}")
    theta, y, out = _prepared("crps_sample", theta, y)
    estimate, error = _crps_sample(key, theta, y, int(num_samples))
    return SampleEstimate(estimate.astype(out), error.astype(out))


def _distance(theta):
    return registry.entries(theta).distance or (lambda a, b: jnp.abs(a - b))


@_compiled(static_argnums=3)
def _crps_sample(key, theta, y, num_samples):
    d = _distance(theta)

    def one(k, t, y_i):
        xs = jax.vmap(dist.sample, in_axes=(0, None))(jax.random.split(k, num_samples), t).astype(y_i.dtype)
        pair = d(xs[:, None], xs[None, :])
        h = d(xs, y_i) - jnp.sum(pair, axis=1) / (num_samples - 1)
        estimate = jnp.mean(d(xs, y_i)) - 0.5 * jnp.sum(pair) / (num_samples * (num_samples - 1))
        return estimate, jnp.std(h, ddof=1) / math.sqrt(num_samples)
    flat = jax.tree_util.tree_map(lambda f: f.reshape((-1,) + f.shape[y.ndim:]), theta)
    est, err = jax.vmap(one)(jax.random.split(key, y.size), flat, y.reshape(-1))
    return est.reshape(y.shape), err.reshape(y.shape)


# ----------------------------------------------------------------------------- PIT and coverage

@_compiled
def _randomised_pit(theta, y, key):
    """``F(y - 1) + V (F(y) - F(y - 1))``: integer targets, where F jumps."""
    upper, lower = jnp.exp(dist.log_cdf(theta, y)), jnp.exp(dist.log_cdf(theta, y - 1))
    return lower + jax.random.uniform(key, jnp.shape(y), y.dtype) * (upper - lower)


@_compiled
def _continuous_pit(theta, y):
    return jnp.exp(dist.log_cdf(theta, y))


def _pit(theta, y, key):
    return _randomised_pit(theta, y, key) if registry.entries(theta).discrete else _continuous_pit(theta, y)


def pit(theta, y, *, key=None):
    """The probability integral transform ``F(y | theta)`` in [0, 1]: uniform when y ~ theta.

    For ``discrete`` types (Poisson, negative binomial, Bernoulli) F jumps, so the randomised PIT
    ``F(y - 1) + V (F(y) - F(y - 1))`` with ``V ~ U(0, 1)`` drawn from ``key`` (required) is exactly
    uniform. Others use ``exp(log_cdf)`` (scipy's ``cdf``); a theta type without a ``log_cdf`` (von Mises,
    MultivariateNormal) is a TypeError, unordered classes (Categorical) too.
    """
    if registry.entries(theta).unordered:
        raise TypeError(f"pit: {_name(theta)}'s classes have no order; use calibration(theta, y)")
    registry.require(theta, "log_cdf", "pit")
    if registry.entries(theta).discrete and key is None:
        raise ValueError(f"pit: {_name(theta)} is discrete; pass key= for the randomised PIT")
    theta, y, out = _prepared("pit", theta, y)
    return _pit(theta, y, key).astype(out)


def coverage(theta, y, level: float = 0.95):
    """Whether each y lies in the central ``level`` predictive interval ``[F^-1(a/2), F^-1(1 - a/2)]``;
    its mean is the empirical coverage, which should be near ``level``. Needs a ``quantile``."""
    registry.require(theta, "quantile", "coverage")
    theta, y, _ = _prepared("coverage", theta, y)
    return _coverage(theta, y, float(level))


@_compiled(static_argnums=2)
def _coverage(theta, y, level):
    return _interval_hits(theta, y, level)[0]


def _interval_hits(theta, y, level):
    """``(hit, undefined)``: whether each y lies in its central interval, and where that interval is NaN (a theta
    outside its domain, a NaN parameter), whose False hit is no miss."""
    lower, upper = dist.interval(theta, level)
    if registry.support(theta) is _support.angle:  # the angle's turn that starts at the interval's lower end
        y = lower + jnp.mod(y - lower, 2 * jnp.pi)
    return (lower <= y) & (y <= upper), jnp.isnan(lower) | jnp.isnan(upper)


def _rate(hits, undefined):
    """The mean of ``hits``, NaN where any example's is undefined (never a rate read from a NaN prediction)."""
    return jnp.where(jnp.any(undefined), jnp.nan, jnp.mean(hits))


# ----------------------------------------------------------------------------- classification

def brier(theta, y):
    """The Brier score ``sum_k (p_k - 1{y = k})^2`` per example, y a label (an integer in [0, K) for a
    Categorical). A ``binary`` type (Bernoulli, 0/1 labels) reports the usual binary form ``(lambda - y)^2``
    (sklearn's ``brier_score_loss``; half the sum over both classes). Needs ``probs``."""
    registry.require(theta, "probs", "brier")
    theta, y, out = _prepared("brier", theta, y)
    return _brier(theta, y).astype(out)


@_compiled
def _brier(theta, y):
    p = dist.probs(theta)
    if registry.entries(theta).binary:
        return jnp.square(p[..., 1] - y)
    onehot = jax.nn.one_hot(y, p.shape[-1], dtype=p.dtype)
    return jnp.sum(jnp.square(p - onehot), axis=-1)


class Calibration(NamedTuple):
    """A reliability diagram: per bin of confidence, its mean confidence, the observed frequency
    and the count (NaN for empty bins), and the expected calibration error."""

    ece: jax.Array
    edges: jax.Array
    confidence: jax.Array
    frequency: jax.Array
    counts: jax.Array


def _check_bins(name, bins):
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"{name}: bins must be a positive integer; got {bins!r}")


def calibration(theta, y, bins: int = 15) -> Calibration:
    """Expected calibration error over ``bins`` equal-width bins of [0, 1].

    ``binary`` types (Bernoulli): the confidence is ``Pr(y = 1)`` and the frequency the fraction of ones
    (sklearn's ``calibration_curve``). Others (Categorical): top-label, the confidence ``max_k p_k`` and the
    frequency the accuracy of the argmax. ``ECE = sum_b (n_b / N) |mean confidence_b - frequency_b|``.
    """
    _check_bins("calibration", bins)
    registry.require(theta, "probs", "calibration")
    theta, y, _ = _prepared("calibration", theta, y)
    return Calibration(*_calibration(theta, y, int(bins)))


@_compiled(static_argnums=2)
def _calibration(theta, y, bins):
    p = dist.probs(theta)
    if registry.entries(theta).binary:
        conf, hit = p[..., 1], jnp.asarray(y, p.dtype)
    else:
        conf, hit = jnp.max(p, axis=-1), (jnp.argmax(p, axis=-1) == y).astype(p.dtype)
    conf, hit = conf.reshape(-1), hit.reshape(-1)
    index = jnp.clip(jnp.floor(conf * bins).astype(jnp.int32), 0, bins - 1)
    counts = jnp.bincount(index, length=bins)
    sum_conf = jnp.bincount(index, weights=conf, length=bins)
    sum_hit = jnp.bincount(index, weights=hit, length=bins)
    safe = jnp.maximum(counts, 1)
    empty = counts == 0
    ece = jnp.sum(jnp.abs(sum_conf - sum_hit)) / conf.shape[0]
    return (ece, jnp.linspace(0.0, 1.0, bins + 1, dtype=p.dtype),
            jnp.where(empty, jnp.nan, sum_conf / safe), jnp.where(empty, jnp.nan, sum_hit / safe), counts)


# ----------------------------------------------------------------------------- evaluate

def evaluate(recipe, params, x, y, *, key=None, level: float = 0.95, bins: int = 15) -> dict:
    """Held-out metrics that fit the recipe's family, as plain floats.

    Always ``nll`` (mean NLL per example) and ``n``. Classification thetas (with ``probs``): ``accuracy``,
    ``brier``, ``ece``; with soft Bernoulli labels y in [0, 1] the accuracy is the expected
    agreement ``y`` where the mode is 1 and ``1 - y`` where it is 0 (the hard accuracy for 0/1
    labels), and the Brier score ``(lambda - y)^2``. Scalar targets: ``crps`` (closed form, or
    sampled with ``key``), ``mae`` and ``rmse`` of the predictive mean in the type's ``distance`` (for a
    von Mises the angular error in [0, pi]), ``coverage`` of the central ``level`` interval where a
    quantile function exists, and ``pit_ks`` (the Kolmogorov distance of the PIT values from uniform;
    discrete families need ``key``). What a type cannot give is left out.
    """
    _check_bins("evaluate", bins)
    x, y = as_array("evaluate", "x", x), as_array("evaluate", "y", y)
    if not 0.0 < level < 1.0:
        raise ValueError(f"evaluate: level must lie in (0, 1); got {level!r}")
    out = {"n": int(np.shape(y)[0]) if np.ndim(y) else 1, "nll": float(recipe.mean_nll(params, x, y))}
    theta = recipe.predict(params, x)
    is_class = registry.entries(theta).probs is not None
    if not is_class and (np.ndim(y) != 1 or registry.event_ndims(theta)):
        return out
    theta, y, _ = _cast(theta, y)
    if is_class:
        names, fn = ("accuracy", "brier", "ece"), _classification_metrics
    else:
        names, fn = _scalar_metric_names(theta, key is not None), _scalar_metrics
    values = fn(theta, y, key if key is not None else jax.random.PRNGKey(0), names, level, int(bins))
    out.update((name, float(value)) for name, value in zip(names, values))
    return out


def _scalar_metric_names(theta, keyed):
    table = registry.entries(theta)
    names = ["mae", "rmse"]
    if table.crps is not None or (keyed and table.sample is not None):
        names.insert(0, "crps")
    if table.quantile is not None:
        names.append("coverage")
    if table.log_cdf is not None and (keyed or not table.discrete):
        names.append("pit_ks")
    return tuple(names)


@_compiled(static_argnums=(3, 4, 5))
def _classification_metrics(theta, y, key, names, level, bins):
    mode = jax.vmap(dist.mode)(theta)
    probs = dist.probs(theta)
    if registry.entries(theta).binary:  # expected agreement with a (possibly soft) label
        hits = jnp.where(mode == 1, y, 1.0 - y)
    else:
        hits = (mode == y).astype(probs.dtype)
    undefined = jnp.isnan(probs).any(axis=-1)  # a NaN logit's integer mode is no prediction
    return _rate(hits, undefined), jnp.mean(_brier(theta, y)), _calibration(theta, y, bins)[0]


@_compiled(static_argnums=(3, 4, 5))
def _scalar_metrics(theta, y, key, names, level, bins):
    """The metrics in ``names``, in one compiled function."""
    crps_key, pit_key = jax.random.split(key)
    error = _distance(theta)(y, jax.vmap(dist.mean)(theta))
    values = {"mae": jnp.mean(error), "rmse": jnp.sqrt(jnp.mean(jnp.square(error)))}
    if "crps" in names:
        closed = registry.entries(theta).crps is not None
        values["crps"] = jnp.mean(_closed_crps(theta, y) if closed else _crps_sample(crps_key, theta, y, 1000)[0])
    if "coverage" in names:
        values["coverage"] = _rate(*_interval_hits(theta, y, level))
    if "pit_ks" in names:
        values["pit_ks"] = ks_uniform(_pit(theta, y, pit_key))
    return tuple(values[name] for name in names)


@_compiled
def ks_uniform(u):
    """The Kolmogorov distance ``sup_t |ECDF(t) - t|`` of values u in [0, 1] from the uniform."""
    u = jnp.sort(u.reshape(-1))
    n = u.shape[0]
    return jnp.maximum(jnp.max(jnp.arange(1, n + 1) / n - u), jnp.max(u - jnp.arange(n) / n))
