"""Is the predicted distribution any good? Proper scores, PIT and calibration, for any theta.

    crps(theta, y)         = int (F(t) - 1{y <= t})^2 dt = E|Y - y| - 1/2 E|Y - Y'|     (lower is better)
    pit(theta, y)          = F(y); randomised u = F(y-) + V (F(y) - F(y-)), V ~ U(0, 1), for counts
    brier(theta, y)        = sum_k (p_k - 1{y = k})^2
    calibration(theta, y)  = the reliability diagram's bins and ECE = sum_b (n_b / N) |conf_b - freq_b|
    coverage(theta, y)     = the fraction of y inside the central predictive interval

Each function works on one example or on a batch (theta's fields and y with the same leading axes)
and returns the per-example score; average it yourself. ``y`` must have exactly the theta's batch x
event shape (no broadcasting: a (N, 1) target for N scalar predictions is a ValueError naming both
shapes), at least one example, and, where its values can be read (not inside a caller's ``jit``),
lie on the theta's support (the family's: counts for a Poisson, 0/1 for a Bernoulli, labels in
[0, K) for a Categorical, y > 0 for a Gamma; NaN and inf are refused); every failure is a
ValueError raised before anything is compiled. bfloat16 and float16 thetas are scored in float32
and the score returned in their dtype.

A calibrated model has PIT values uniform on [0, 1] and a reliability diagram on the diagonal.
References: Gneiting and Raftery (2007), JASA 102; Jordan, Krueger and Lerch (2019), J. Stat.
Softw. 90 (the closed forms); Czado, Gneiting and Held (2009), Biometrics 65 (randomised PIT);
Grimit et al. (2006), QJRMS 132 (the CRPS on the circle); Guo et al. (2017), ICML (ECE).
"""

from __future__ import annotations

import math
from functools import partial, wraps
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import distributions as dist
from ._crps import CLOSED_FORM, nb_cdf, poisson_cdf
from .checks import is_concrete
from .families import _support as supports


def _jit(fn: Any = None, *, static_argnums: tuple | int = ()) -> Any:
    """``fn`` compiled (fast to compile: metrics run once per evaluation, not in a training loop)
    when called on concrete arrays; inlined as is inside a caller's own jit / grad / vmap."""
    if fn is None:
        return partial(_jit, static_argnums=static_argnums)
    compiled = jax.jit(fn, static_argnums=static_argnums, compiler_options={"xla_backend_optimization_level": 0})

    @wraps(fn)
    def call(*args):
        return (compiled if is_concrete(args) else fn)(*args)
    return call


CRPS_CLOSED_FORM = {kind: _jit(fn) for kind, fn in CLOSED_FORM.items()}

# ----------------------------------------------------------------------------- targets

_SUPPORT = {
    dist.Normal: supports.real, dist.Laplace: supports.real, dist.StudentT: supports.real,
    dist.MixtureNormal: supports.real, dist.VonMises: supports.angle, dist.Gamma: supports.positive,
    dist.Beta: supports.unit_interval, dist.Poisson: supports.nonnegative_integer,
    dist.NegativeBinomial: supports.nonnegative_integer, dist.Bernoulli: supports.binary,
}
_TRAILING = (dist.Categorical, dist.MixtureNormal)  # fields with a trailing axis of classes / components
VECTOR = (dist.MultivariateNormal, dist.Independent)  # targets are vectors: no cdf, no CRPS
DISCRETE = (dist.Poisson, dist.NegativeBinomial, dist.Bernoulli)


def _target_shape(name, theta) -> tuple[int, ...]:
    """The shape y must have: the theta's batch shape (its fields broadcast together, less the trailing
    class / component axis of a Categorical or mixture) times one example's event shape."""
    if isinstance(theta, VECTOR):
        return tuple(dist.event_shape(theta))
    shapes = [np.shape(f) for f in jax.tree_util.tree_leaves(theta)]
    if isinstance(theta, _TRAILING):
        shapes = [s[:-1] for s in shapes]
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ValueError(f"{name}: the fields of {type(theta).__name__} have shapes {shapes} that do not "
                         f"broadcast together") from None


def _support(theta):
    if isinstance(theta, dist.Categorical):
        return supports.labels(int(np.shape(theta.logits)[-1]))
    if isinstance(theta, dist.Independent):
        return _support(theta.base)
    return _SUPPORT.get(type(theta), supports.real)


def check_targets(name: str, theta, y) -> None:
    """Raise a ValueError unless ``y`` has exactly the theta's batch x event shape, holds at least one
    example, and (when its values are concrete) lies on the theta's support (``families._support``)."""
    dist.registry.ops(theta)  # a TypeError naming the theta types for anything else
    want, shape = _target_shape(name, theta), tuple(np.shape(y))
    if shape != want:
        raise ValueError(
            f"{name}: y has shape {shape} but {type(theta).__name__} predicts targets of shape {want} "
            f"(its batch x event shape); scores never broadcast y against theta: pass y with shape {want}")
    if math.prod(want) == 0:
        raise ValueError(f"{name}: there are no examples (y and theta have shape {want})")
    if is_concrete(y):
        supports.validate(name, _support(theta), np.atleast_1d(np.asarray(y)))


def _promoted(theta, y, *, labels: bool = False):
    """theta's fields in a float dtype (integers promoted; bfloat16 / float16 computed in float32) and
    broadcast to the batch shape, y in that dtype (labels stay integers), and the dtype to return."""
    out = jnp.result_type(*jax.tree_util.tree_leaves(theta), float)
    compute = jnp.promote_types(out, jnp.float32)
    batch = _target_shape("score", theta)

    def field(f):
        f = jnp.asarray(f, compute)
        trailing = np.shape(f)[-1:] if isinstance(theta, _TRAILING) else ()
        return jnp.broadcast_to(f, batch + trailing)
    if not isinstance(theta, VECTOR):
        theta = jax.tree_util.tree_map(field, theta)
    y = jnp.asarray(y) if labels else jnp.asarray(y, compute)
    return theta, y, out


# ----------------------------------------------------------------------------- CRPS

class SampleEstimate(NamedTuple):
    """A Monte Carlo estimate and its standard error."""

    estimate: jax.Array
    standard_error: jax.Array


def _scalar_only(name, theta):
    if isinstance(theta, VECTOR):
        raise TypeError(f"{name}: the CRPS is defined for scalar targets; {type(theta).__name__} has vector "
                        f"targets (its multivariate generalisation, the energy score, is not provided)")
    if isinstance(theta, dist.Categorical):
        raise TypeError(f"{name}: a Categorical's classes have no order, so it has no CRPS; use brier(theta, y)")


def crps(theta, y, *, key=None, num_samples: int = 1000):
    """The continuous ranked probability score ``int (F(t) - 1{y <= t})^2 dt`` per example, >= 0.

    Closed forms (``mle_jax._crps``) for Normal, Laplace, Student t, Gamma, Poisson, negative
    binomial, mixture of Normals and Bernoulli (where it is the Brier score). Any other theta with
    scalar targets and a ``sample`` (Beta, von Mises) needs ``key`` and returns ``crps_sample``'s
    ``SampleEstimate``. Vector targets (MultivariateNormal, Independent) and Categorical (no order)
    are a TypeError. Support: y as ``check_targets`` requires (exact shape, on the theta's support).
    scoringrules: ``crps_normal``, ``crps_laplace``, ``crps_t``, ``crps_gamma``, ``crps_poisson``,
    ``crps_negbinom``, ``crps_mixnorm``.
    """
    _scalar_only("crps", theta)
    fn = CRPS_CLOSED_FORM.get(type(theta))
    if fn is None:
        if key is None:
            raise ValueError(f"crps: no closed form for {type(theta).__name__}; pass key= for the sample-based "
                             f"estimate with its standard error")
        return crps_sample(key, theta, y, num_samples)
    check_targets("crps", theta, y)
    theta, y, out = _promoted(theta, y)
    return fn(theta, y).astype(out)


def crps_sample(key, theta, y, num_samples: int = 1000) -> SampleEstimate:
    """``1/m sum_i d(x_i, y) - 1/(2 m (m-1)) sum_{i != j} d(x_i, x_j)`` from m draws per example (unbiased),
    with the standard error of its first-order (Hoeffding) projection ``h_i = d(x_i, y) - mean_j d(x_i, x_j)``.

    ``d(a, b) = |a - b|``; for a von Mises theta the angular distance ``|angle(a - b)|`` in [0, pi]
    (the circular CRPS of Grimit et al., 2006), so that y and y + 2 pi score the same."""
    _scalar_only("crps_sample", theta)
    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) or num_samples < 2:
        raise ValueError(f"crps_sample: num_samples must be an integer >= 2; got {num_samples!r}")
    check_targets("crps_sample", theta, y)
    theta, y, out = _promoted(theta, y)
    estimate, error = _crps_sample(key, theta, y, int(num_samples))
    return SampleEstimate(estimate.astype(out), error.astype(out))


def _angle(d):
    """``d`` wrapped to [-pi, pi]: the signed angular difference."""
    return jnp.arctan2(jnp.sin(d), jnp.cos(d))


def _distance(theta):
    circular = isinstance(theta, dist.VonMises)
    return (lambda a, b: jnp.abs(_angle(a - b))) if circular else (lambda a, b: jnp.abs(a - b))


@_jit(static_argnums=3)
def _crps_sample(key, theta, y, num_samples):
    d = _distance(theta)

    def one(k, t, y_i):
        xs = jax.vmap(dist.sample, in_axes=(0, None))(jax.random.split(k, num_samples), t).astype(y_i.dtype)
        pair = d(xs[:, None], xs[None, :])
        h = d(xs, y_i) - jnp.sum(pair, axis=1) / (num_samples - 1)
        estimate = jnp.mean(d(xs, y_i)) - 0.5 * jnp.sum(pair) / (num_samples * (num_samples - 1))
        return estimate, jnp.std(h, ddof=1) / math.sqrt(num_samples)
    flat = jax.tree_util.tree_map(lambda f: f.reshape(-1), theta)
    est, err = jax.vmap(one)(jax.random.split(key, y.size), flat, y.reshape(-1))
    return est.reshape(y.shape), err.reshape(y.shape)


# ----------------------------------------------------------------------------- PIT and coverage

def _discrete_cdf(theta, y):
    """``Pr(Y <= y)`` for the count and binary families (left-continuous steps at the integers)."""
    if isinstance(theta, dist.Poisson):
        return poisson_cdf(theta, y)
    if isinstance(theta, dist.NegativeBinomial):
        return nb_cdf(theta, y)
    return jnp.where(y >= 1, 1.0, jnp.where(y >= 0, jax.nn.sigmoid(-theta.logits), 0.0))  # Bernoulli


@_jit
def _randomised_pit(theta, y, key):
    upper, lower = _discrete_cdf(theta, y), _discrete_cdf(theta, y - 1)
    return lower + jax.random.uniform(key, jnp.shape(y), y.dtype) * (upper - lower)


@_jit
def _continuous_pit(theta, y):
    return jnp.exp(dist.log_cdf(theta, y))


def pit(theta, y, *, key=None):
    """The probability integral transform ``F(y | theta)`` in [0, 1]: uniform when y ~ theta.

    For counts and binary targets (Poisson, negative binomial, Bernoulli) F jumps, so the
    randomised PIT ``F(y - 1) + V (F(y) - F(y - 1))`` with ``V ~ U(0, 1)`` drawn from ``key``
    (required) is exactly uniform. Continuous families use ``exp(log_cdf)`` (scipy's ``cdf``);
    a theta type without a ``log_cdf`` (von Mises, MultivariateNormal) is a TypeError.
    """
    if isinstance(theta, dist.Categorical):
        raise TypeError("pit: a Categorical's classes have no order; use calibration(theta, y)")
    if not isinstance(theta, DISCRETE) and dist.registry.ops(theta).log_cdf is None:
        raise TypeError(f"pit: {type(theta).__name__} has no log_cdf, so no PIT")
    if isinstance(theta, DISCRETE) and key is None:
        raise ValueError(f"pit: {type(theta).__name__} is discrete; pass key= for the randomised PIT")
    check_targets("pit", theta, y)
    theta, y, out = _promoted(theta, y)
    u = _randomised_pit(theta, y, key) if isinstance(theta, DISCRETE) else _continuous_pit(theta, y)
    return u.astype(out)


def coverage(theta, y, level: float = 0.95):
    """Whether each y lies in the central ``level`` predictive interval ``[F^-1(a/2), F^-1(1 - a/2)]``;
    its mean is the empirical coverage, which should be near ``level``. Needs a ``quantile``."""
    if dist.registry.ops(theta).quantile is None:
        raise TypeError(f"coverage: {type(theta).__name__} has no quantile function, so no central interval")
    check_targets("coverage", theta, y)
    theta, y, _ = _promoted(theta, y)
    return _coverage(theta, y, float(level))


@_jit(static_argnums=2)
def _coverage(theta, y, level):
    lower, upper = dist.interval(theta, level)
    return (lower <= y) & (y <= upper)


# ----------------------------------------------------------------------------- classification

def _classification(name, theta, y):
    if not isinstance(theta, (dist.Bernoulli, dist.Categorical)):
        raise TypeError(f"{name} needs a Bernoulli or Categorical theta; got {type(theta).__name__}")
    check_targets(name, theta, y)
    return _promoted(theta, y, labels=isinstance(theta, dist.Categorical))


def brier(theta, y):
    """The Brier score ``sum_k (p_k - 1{y = k})^2`` per example, y a label (0/1 for a Bernoulli,
    an integer in [0, K) for a Categorical). For a Bernoulli this is ``2 (lambda - y)^2`` summed
    over both classes; we report the usual binary form ``(lambda - y)^2`` (sklearn's ``brier_score_loss``)."""
    theta, y, out = _classification("brier", theta, y)
    return _brier(theta, y).astype(out)


@_jit
def _brier(theta, y):
    p = dist.probs(theta)
    if isinstance(theta, dist.Bernoulli):
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

    Bernoulli: the confidence is ``Pr(y = 1)`` and the frequency the fraction of ones (sklearn's
    ``calibration_curve``). Categorical: top-label, the confidence ``max_k p_k`` and the frequency
    the accuracy of the argmax. ``ECE = sum_b (n_b / N) |mean confidence_b - frequency_b|``.
    """
    _check_bins("calibration", bins)
    theta, y, _ = _classification("calibration", theta, y)
    return Calibration(*_calibration(theta, y, int(bins)))


@_jit(static_argnums=2)
def _calibration(theta, y, bins):
    p = dist.probs(theta)
    if isinstance(theta, dist.Bernoulli):
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

    Always ``nll`` (mean NLL per example) and ``n``. Bernoulli / Categorical: ``accuracy``,
    ``brier``, ``ece``; with soft Bernoulli labels y in [0, 1] the accuracy is the expected
    agreement ``y`` where the mode is 1 and ``1 - y`` where it is 0 (the hard accuracy for 0/1
    labels), and the Brier score ``(lambda - y)^2``. Scalar targets: ``crps`` (closed form, or
    sampled with ``key``), ``mae`` and ``rmse`` of the predictive mean (for a von Mises the
    angular error ``angle(y - mean)`` in [-pi, pi]), ``coverage`` of the central ``level`` interval
    where a quantile function exists, and ``pit_ks`` (the Kolmogorov distance of the PIT values
    from uniform; discrete families need ``key``).
    """
    _check_bins("evaluate", bins)
    if not 0.0 < level < 1.0:
        raise ValueError(f"evaluate: level must lie in (0, 1); got {level!r}")
    out = {"n": int(np.shape(y)[0]) if np.ndim(y) else 1, "nll": float(recipe.mean_nll(params, x, y))}
    theta = recipe.predict(params, x)
    is_class = isinstance(theta, (dist.Bernoulli, dist.Categorical))
    if not is_class and (np.ndim(y) != 1 or isinstance(theta, VECTOR)):
        return out
    theta, y, _ = _promoted(theta, y, labels=isinstance(theta, dist.Categorical))
    if is_class:
        names, fn = ("accuracy", "brier", "ece"), _classification_metrics
    else:
        names, fn = _scalar_metric_names(theta, key is not None), _scalar_metrics
    values = fn(theta, y, key if key is not None else jax.random.PRNGKey(0), names, level, int(bins))
    out.update((name, float(value)) for name, value in zip(names, values))
    return out


def _scalar_metric_names(theta, keyed):
    ops = dist.registry.ops(theta)
    names = ["mae", "rmse"]
    if type(theta) in CRPS_CLOSED_FORM or keyed:
        names.insert(0, "crps")
    if ops.quantile is not None:
        names.append("coverage")
    if (isinstance(theta, DISCRETE) and keyed) or (not isinstance(theta, DISCRETE) and ops.log_cdf is not None):
        names.append("pit_ks")
    return tuple(names)


@_jit(static_argnums=(3, 4, 5))
def _classification_metrics(theta, y, key, names, level, bins):
    mode = jax.vmap(dist.mode)(theta)
    if isinstance(theta, dist.Bernoulli):  # expected agreement with a (possibly soft) label
        hits = jnp.where(mode == 1, y, 1.0 - y)
    else:
        hits = (mode == y).astype(theta.logits.dtype)
    return jnp.mean(hits), jnp.mean(_brier(theta, y)), _calibration(theta, y, bins)[0]


@_jit(static_argnums=(3, 4, 5))
def _scalar_metrics(theta, y, key, names, level, bins):
    """The metrics in ``names``, in one compiled function."""
    crps_key, pit_key = jax.random.split(key)
    error = y - jax.vmap(dist.mean)(theta)
    if isinstance(theta, dist.VonMises):
        error = _angle(error)
    values = {"mae": jnp.mean(jnp.abs(error)), "rmse": jnp.sqrt(jnp.mean(jnp.square(error)))}
    if "crps" in names:
        fn = CRPS_CLOSED_FORM.get(type(theta))
        values["crps"] = jnp.mean(fn(theta, y) if fn is not None else _crps_sample(crps_key, theta, y, 1000)[0])
    if "coverage" in names:
        values["coverage"] = jnp.mean(_coverage(theta, y, level))
    if "pit_ks" in names:
        u = _randomised_pit(theta, y, pit_key) if isinstance(theta, DISCRETE) else _continuous_pit(theta, y)
        values["pit_ks"] = ks_uniform(u)
    return tuple(values[name] for name in names)


@_jit
def ks_uniform(u):
    """The Kolmogorov distance ``sup_t |ECDF(t) - t|`` of values u in [0, 1] from the uniform."""
    u = jnp.sort(u.reshape(-1))
    n = u.shape[0]
    return jnp.maximum(jnp.max(jnp.arange(1, n + 1) / n - u), jnp.max(u - jnp.arange(n) / n))
