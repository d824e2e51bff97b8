"""Is the predicted distribution any good? Proper scores, PIT and calibration, for any theta.

    crps(theta, y)         = int (F(t) - 1{y <= t})^2 dt = E|Y - y| - 1/2 E|Y - Y'|     (lower is better)
    pit(theta, y)          = F(y); randomised u = F(y-) + V (F(y) - F(y-)), V ~ U(0, 1), for counts
    brier(theta, y)        = sum_k (p_k - 1{y = k})^2
    calibration(theta, y)  = the reliability diagram's bins and ECE = sum_b (n_b / N) |conf_b - freq_b|
    coverage(theta, y)     = the fraction of y inside the central predictive interval

Each function works on one example or on a batch (theta's fields and y with the same leading axes)
and returns the per-example score; average it yourself. A calibrated model has PIT values
uniform on [0, 1] and a reliability diagram on the diagonal. References: Gneiting and Raftery
(2007), JASA 102; Jordan, Krueger and Lerch (2019), J. Stat. Softw. 90 (the closed forms);
Czado, Gneiting and Held (2009), Biometrics 65 (randomised PIT); Guo et al. (2017), ICML (ECE).
"""

from __future__ import annotations

import math
from functools import partial, wraps
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import betainc, betaln, gammainc, gammaincc, gammaln, i0e, i1e, ndtr

from . import distributions as dist
from .checks import is_concrete

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


_INV_SQRT_PI = 1.0 / math.sqrt(math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _normal_abs_mean(m, s):
    """``E|X| for X ~ N(m, s^2)``: ``m (2 Phi(m/s) - 1) + 2 s phi(m/s)``."""
    z = m / s
    return m * (2.0 * ndtr(z) - 1.0) + 2.0 * s * _INV_SQRT_2PI * jnp.exp(-0.5 * z * z)


def _crps_normal(t, y):
    return _normal_abs_mean(y - t.loc, t.scale) - t.scale * _INV_SQRT_PI


def _crps_laplace(t, y):
    a = jnp.abs(y - t.loc)
    return a + t.scale * jnp.exp(-a / t.scale) - 0.75 * t.scale


def _crps_student_t(t, y):
    """``s [z (2F(z) - 1) + 2 f(z) (nu + z^2)/(nu - 1) - 2 sqrt(nu) B(1/2, nu - 1/2) / ((nu - 1) B(1/2, nu/2)^2)]``;
    infinite for nu <= 1 (no mean)."""
    nu, z = t.df, (y - t.loc) / t.scale
    tail = 0.5 * betainc(0.5 * nu, 0.5, nu / (nu + z * z))  # Pr(T > |z|)
    cdf = jnp.where(z < 0, tail, 1.0 - tail)
    log_pdf = gammaln(0.5 * (nu + 1)) - gammaln(0.5 * nu) - 0.5 * jnp.log(nu * math.pi) \
        - 0.5 * (nu + 1) * jnp.log1p(z * z / nu)
    const = 2.0 * jnp.sqrt(nu) * jnp.exp(betaln(0.5, nu - 0.5) - 2.0 * betaln(0.5, 0.5 * nu)) / (nu - 1)
    value = t.scale * (z * (2 * cdf - 1) + 2 * jnp.exp(log_pdf) * (nu + z * z) / (nu - 1) - const)
    return jnp.where(nu > 1, value, jnp.inf)


def _crps_gamma(t, y):
    """``y (2 F_a(y) - 1) - (a/b)(2 F_{a+1}(y) - 1) - 1 / (b B(1/2, a))`` with ``F_a`` the Gamma(a, b) cdf."""
    a, b = t.concentration, t.rate
    by = b * jnp.maximum(y, 0.0)
    return (y * (2 * gammainc(a, by) - 1) - a / b * (2 * gammainc(a + 1, by) - 1)
            - jnp.exp(-betaln(0.5, a)) / b)


def _crps_poisson(t, y):
    """``(y - l)(2F(y) - 1) + 2 l f(floor y) - l e^{-2l} (I_0(2l) + I_1(2l))``."""
    lam, k = jnp.exp(t.log_rate), jnp.floor(y)
    cdf = jnp.where(y >= 0, gammaincc(jnp.maximum(k, 0) + 1, lam), 0.0)
    pmf = jnp.where(y >= 0, jnp.exp(k * t.log_rate - lam - gammaln(jnp.maximum(k, 0) + 1)), 0.0)
    return (y - lam) * (2 * cdf - 1) + 2 * lam * pmf - lam * (i0e(2 * lam) + i1e(2 * lam))


def _nb_cdf(r, success, y):
    """``Pr(Y <= y) = I_p(r, floor(y) + 1)`` with p the success probability (scipy's ``nbinom.cdf``)."""
    return jnp.where(y >= 0, betainc(r, jnp.floor(jnp.maximum(y, 0)) + 1, success), 0.0)


_T = np.arange(-150, 151) * 0.03  # exp-sinh nodes in float64: s from e^-70 to e^70, step 0.03 in t


def _hyp2f1_nb(n, z_abs):
    """``2F1(n + 1, 1/2; 2; -z)`` for z >= 0, from ``(2/pi) int_0^inf (1 + s^2)^-2 ((1 + s^2)/(1 + (1 + z) s^2))^(n+1)
    2 ds`` (Euler's integral with t = sin^2, s = tan), by the exp-sinh rule, exact to double precision."""
    n, z_abs = jnp.asarray(n)[..., None], jnp.asarray(z_abs)[..., None]
    t = jnp.asarray(_T, n.dtype).reshape((1,) * (n.ndim - 1) + (-1,))
    s = jnp.exp(0.5 * math.pi * jnp.sinh(t))
    ds = s * 0.5 * math.pi * jnp.cosh(t) * 0.03
    log_s2 = jnp.log1p(s * s)
    log_g = -2.0 * log_s2 + (n + 1) * (log_s2 - jnp.log1p((1 + z_abs) * s * s))
    return (4.0 / math.pi) * jnp.sum(jnp.exp(log_g) * ds, axis=-1)


def _crps_negative_binomial(t, y):
    """``y (2F(y) - 1) - n(1-p)/p^2 [p (2 F_{n+1}(y - 1) - 1) + 2F1(n + 1, 1/2; 2; -4(1-p)/p^2)]``,
    p the success probability ``sig(-logits)``."""
    n, p = t.total_count, jax.nn.sigmoid(-t.logits)
    q = jax.nn.sigmoid(t.logits)
    hyp = _hyp2f1_nb(n, 4.0 * q / (p * p))
    return (y * (2 * _nb_cdf(n, p, y) - 1)
            - n * q / (p * p) * (p * (2 * _nb_cdf(n + 1, p, y - 1) - 1) + hyp))


def _crps_mixture(t, y):
    """``sum_i w_i A(y - mu_i, s_i) - 1/2 sum_ij w_i w_j A(mu_i - mu_j, sqrt(s_i^2 + s_j^2))``, A = E|N(m, s^2)|."""
    w = jax.nn.softmax(t.logits, axis=-1)
    first = jnp.sum(w * _normal_abs_mean(jnp.asarray(y)[..., None] - t.loc, t.scale), axis=-1)
    pair = _normal_abs_mean(t.loc[..., :, None] - t.loc[..., None, :],
                            jnp.sqrt(jnp.square(t.scale[..., :, None]) + jnp.square(t.scale[..., None, :])))
    return first - 0.5 * jnp.sum(w[..., :, None] * w[..., None, :] * pair, axis=(-2, -1))


def _crps_bernoulli(t, y):
    return jnp.square(jax.nn.sigmoid(t.logits) - y)


CRPS_CLOSED_FORM = {kind: _jit(fn) for kind, fn in {
    dist.Normal: _crps_normal, dist.Laplace: _crps_laplace, dist.StudentT: _crps_student_t,
    dist.Gamma: _crps_gamma, dist.Poisson: _crps_poisson, dist.NegativeBinomial: _crps_negative_binomial,
    dist.MixtureNormal: _crps_mixture, dist.Bernoulli: _crps_bernoulli,
}.items()}


class SampleEstimate(NamedTuple):
    """A Monte Carlo estimate and its standard error."""

    estimate: jax.Array
    standard_error: jax.Array


def crps(theta, y, *, key=None, num_samples: int = 1000):
    """The continuous ranked probability score ``int (F(t) - 1{y <= t})^2 dt`` per example.

    Closed forms for Normal, Laplace, Student t, Gamma, Poisson, negative binomial, mixture of
    Normals and Bernoulli (where it is the Brier score). Any other theta with a ``sample``
    (scalar targets) needs ``key`` and returns ``crps_sample``'s ``SampleEstimate``.
    scoringrules: ``crps_normal``, ``crps_laplace``, ``crps_t``, ``crps_gamma``, ``crps_poisson``,
    ``crps_negbinom``, ``crps_mixnorm``.
    """
    fn = CRPS_CLOSED_FORM.get(type(theta))
    if fn is not None:
        return fn(theta, jnp.asarray(y, jnp.result_type(*jax.tree_util.tree_leaves(theta), float)))
    if key is None:
        raise ValueError(f"crps: no closed form for {type(theta).__name__}; pass key= for the sample-based "
                         f"estimate with its standard error")
    return crps_sample(key, theta, y, num_samples)


def crps_sample(key, theta, y, num_samples: int = 1000) -> SampleEstimate:
    """``1/m sum_i |x_i - y| - 1/(2 m (m-1)) sum_{i != j} |x_i - x_j|`` from m draws per example (unbiased),
    with the standard error of its first-order (Hoeffding) projection ``h_i = |x_i - y| - mean_j |x_i - x_j|``."""
    if num_samples < 2:
        raise ValueError(f"crps_sample: num_samples must be >= 2; got {num_samples}")
    return SampleEstimate(*_crps_sample(key, theta, jnp.asarray(y), num_samples))


@_jit(static_argnums=3)
def _crps_sample(key, theta, y, num_samples):

    def one(k, t, y_i):
        xs = jax.vmap(dist.sample, in_axes=(0, None))(jax.random.split(k, num_samples), t).astype(jnp.result_type(float))
        pair = jnp.abs(xs[:, None] - xs[None, :])
        h = jnp.abs(xs - y_i) - jnp.sum(pair, axis=1) / (num_samples - 1)
        estimate = jnp.mean(jnp.abs(xs - y_i)) - 0.5 * jnp.sum(pair) / (num_samples * (num_samples - 1))
        return estimate, jnp.std(h, ddof=1) / math.sqrt(num_samples)
    if y.ndim == 0:
        return one(key, theta, y)
    return jax.vmap(one)(jax.random.split(key, y.shape[0]), theta, y)


# ----------------------------------------------------------------------------- PIT and coverage

def _discrete_cdf(theta, y):
    """``Pr(Y <= y)`` for the count and binary families (left-continuous steps at the integers)."""
    if isinstance(theta, dist.Poisson):
        return jnp.where(y >= 0, gammaincc(jnp.floor(jnp.maximum(y, 0)) + 1, jnp.exp(theta.log_rate)), 0.0)
    if isinstance(theta, dist.NegativeBinomial):
        return _nb_cdf(theta.total_count, jax.nn.sigmoid(-theta.logits), y)
    return jnp.where(y >= 1, 1.0, jnp.where(y >= 0, jax.nn.sigmoid(-theta.logits), 0.0))  # Bernoulli


DISCRETE = (dist.Poisson, dist.NegativeBinomial, dist.Bernoulli)


@_jit
def _randomised_pit(theta, y, key):
    upper, lower = _discrete_cdf(theta, y), _discrete_cdf(theta, y - 1)
    return lower + jax.random.uniform(key, jnp.shape(y), y.dtype) * (upper - lower)


@_jit
def _continuous_pit(theta, y):
    return jnp.exp(dist.log_cdf(theta, y))


def pit(theta, y, *, key=None):
    """The probability integral transform ``F(y | theta)``: uniform on [0, 1] when y ~ theta.

    For counts and binary targets (Poisson, negative binomial, Bernoulli) F jumps, so the
    randomised PIT ``F(y - 1) + V (F(y) - F(y - 1))`` with ``V ~ U(0, 1)`` drawn from ``key``
    (required) is exactly uniform. Continuous families use their ``log_cdf``.
    """
    if isinstance(theta, DISCRETE):
        if key is None:
            raise ValueError(f"pit: {type(theta).__name__} is discrete; pass key= for the randomised PIT")
        return _randomised_pit(theta, jnp.asarray(y, jnp.result_type(*jax.tree_util.tree_leaves(theta), float)), key)
    if isinstance(theta, dist.Categorical):
        raise TypeError("pit: a Categorical's classes have no order; use calibration(theta, y)")
    try:
        return _continuous_pit(theta, y)
    except (KeyError, NotImplementedError, TypeError, AttributeError) as error:
        raise TypeError(f"pit: {type(theta).__name__} has no log_cdf") from error


def coverage(theta, y, level: float = 0.95):
    """Whether each y lies in the central ``level`` predictive interval ``[F^-1(a/2), F^-1(1 - a/2)]``;
    its mean is the empirical coverage, which should be near ``level``."""
    return _coverage(theta, y, float(level))


@_jit(static_argnums=2)
def _coverage(theta, y, level):
    lower, upper = dist.interval(theta, level)
    return (lower <= y) & (y <= upper)


# ----------------------------------------------------------------------------- classification

def _class_probs(theta):
    if not isinstance(theta, (dist.Bernoulli, dist.Categorical)):
        raise TypeError(f"brier / calibration need a Bernoulli or Categorical theta; got {type(theta).__name__}")
    return dist.probs(theta)


@_jit
def brier(theta, y):
    """The Brier score ``sum_k (p_k - 1{y = k})^2`` per example. For a Bernoulli this is
    ``2 (lambda - y)^2`` summed over both classes; we report the usual binary form ``(lambda - y)^2``
    (sklearn's ``brier_score_loss``)."""
    p = _class_probs(theta)
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


def calibration(theta, y, bins: int = 15) -> Calibration:
    """Expected calibration error over ``bins`` equal-width bins of [0, 1].

    Bernoulli: the confidence is ``Pr(y = 1)`` and the frequency the fraction of ones (sklearn's
    ``calibration_curve``). Categorical: top-label, the confidence ``max_k p_k`` and the frequency
    the accuracy of the argmax. ``ECE = sum_b (n_b / N) |mean confidence_b - frequency_b|``.
    """
    if not isinstance(bins, int) or bins < 1:
        raise ValueError(f"calibration: bins must be a positive integer; got {bins!r}")
    return Calibration(*_calibration(theta, y, bins))


@_jit(static_argnums=2)
def _calibration(theta, y, bins):
    p = _class_probs(theta)
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
    ``brier``, ``ece``. Scalar targets: ``crps`` (closed form, or sampled with ``key``), ``mae``
    and ``rmse`` of the predictive mean, ``coverage`` of the central ``level`` interval where a
    quantile function exists, and ``pit_ks`` (the Kolmogorov distance of the PIT values from
    uniform; discrete families need ``key``).
    """
    theta = recipe.predict(params, x)
    y = jnp.asarray(y)
    out = {"n": int(y.shape[0]), "nll": float(recipe.mean_nll(params, x, y))}
    if isinstance(theta, (dist.Bernoulli, dist.Categorical)):
        names, fn = ("accuracy", "brier", "ece"), _classification_metrics
    elif y.ndim == 1:
        names = _scalar_metric_names(theta, key is not None)
        fn = _scalar_metrics
    else:
        return out
    values = fn(theta, y, key if key is not None else jax.random.PRNGKey(0), names, level, bins)
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
    hits = (jax.vmap(dist.mode)(theta) == y).astype(jnp.result_type(theta.logits, float))
    return jnp.mean(hits), jnp.mean(brier(theta, y)), _calibration(theta, y, bins)[0]


@_jit(static_argnums=(3, 4, 5))
def _scalar_metrics(theta, y, key, names, level, bins):
    """The metrics in ``names``, in one compiled function."""
    crps_key, pit_key = jax.random.split(key)
    error = y - jax.vmap(dist.mean)(theta)
    values = {"mae": jnp.mean(jnp.abs(error)), "rmse": jnp.sqrt(jnp.mean(jnp.square(error)))}
    if "crps" in names:
        fn = CRPS_CLOSED_FORM.get(type(theta))
        values["crps"] = jnp.mean(fn(theta, y.astype(error.dtype)) if fn is not None
                                  else _crps_sample(crps_key, theta, y, 1000)[0])
    if "coverage" in names:
        values["coverage"] = jnp.mean(coverage(theta, y, level))
    if "pit_ks" in names:
        u = (_randomised_pit(theta, y.astype(error.dtype), pit_key) if isinstance(theta, DISCRETE)
             else _continuous_pit(theta, y))
        values["pit_ks"] = ks_uniform(u)
    return tuple(values[name] for name in names)


@_jit
def ks_uniform(u):
    """The Kolmogorov distance ``sup_t |ECDF(t) - t|`` of values u in [0, 1] from the uniform."""
    u = jnp.sort(u.reshape(-1))
    n = u.shape[0]
    return jnp.maximum(jnp.max(jnp.arange(1, n + 1) / n - u), jnp.max(u - jnp.arange(n) / n))
