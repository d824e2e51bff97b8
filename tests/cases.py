"""One table of cases for every theta type: the theta, its scipy / mpmath reference and target grids
that include the tails and the boundary of the support.

Each `Case` carries float64 NumPy parameters; tests cast them to the dtype under test and compare
with the reference evaluated (in float64) at the *rounded* parameters and targets, so the tolerance
measures the library's arithmetic, not the rounding of its inputs. The tolerances are the ones
promised in docs/reliability.md (``TOL``).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable, NamedTuple

import jax
import mpmath as mp
import numpy as np
from scipy import special, stats

import mle_jax as mj
from mle_jax.distributions import registry

# (rtol, atol) per dtype: log densities / entropies, and log CDFs (docs/reliability.md, "Tolerances")
TOL = {"float32": (1e-5, 1e-5), "float64": (1e-10, 1e-10)}
CDF_TOL = {"float32": (1e-4, 1e-5), "float64": (1e-9, 1e-10)}


GRID = 8  # every grid is padded to this length, so one compiled program serves every case of a type


class Case(NamedTuple):
    theta: Any                      # float64 NumPy parameters
    logpdf: Callable                # theta (float64) -> y -> reference log density / mass
    grid: np.ndarray                # targets, tails and support boundary included
    integer: bool = False           # targets are counts or labels
    entropy: Callable | None = None  # theta -> reference entropy (nats)
    logcdf: Callable | None = None   # theta -> y -> reference log CDF
    logsf: Callable | None = None
    atol32: float = 0.0             # extra float32 atol where the value is a difference of large terms


def quiet(fn, *args):
    """A reference value with scipy's warnings (overflow in an unused branch, ...) silenced here only."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return fn(*args)


def _frozen(make):
    """Reference functions from a frozen scipy distribution ``make(theta)``."""
    return (lambda t: lambda y: quiet(make(t).logpdf, y), lambda t: lambda y: quiet(make(t).logcdf, y),
            lambda t: lambda y: quiet(make(t).logsf, y))


def _counts(make):
    return lambda t: lambda y: quiet(make(t).logpmf, y)


_norm = _frozen(lambda t: stats.norm(t.loc, t.scale))
_laplace = _frozen(lambda t: stats.laplace(t.loc, t.scale))
_t = _frozen(lambda t: stats.t(t.df, t.loc, t.scale))
_gamma = _frozen(lambda t: stats.gamma(t.concentration, scale=1 / t.rate))
_beta = _frozen(lambda t: stats.beta(t.concentration1, t.concentration0))
_ald = _frozen(lambda t: stats.laplace_asymmetric(np.sqrt(t.q / (1 - t.q)), t.loc, t.scale / np.sqrt(t.q * (1 - t.q))))
_poisson = _counts(lambda t: stats.poisson(np.exp(t.log_rate)))  # noqa: E731
_expon = _frozen(lambda t: stats.expon(scale=1 / t.rate))
_weibull = _frozen(lambda t: stats.weibull_min(t.concentration, scale=t.scale))
_lognorm = _frozen(lambda t: stats.lognorm(t.scale, scale=np.exp(t.loc)))


def _nbinom(theta):
    """``nbinom.logpmf`` in 40 digits (scipy's own loses 2e-7 at total_count = 1e8: lgamma(1e8) is 1.7e9)."""
    mp.mp.dps = 40
    r, z = mp.mpf(float(theta.total_count)), mp.mpf(float(theta.logits))
    log_pi = -mp.log1p(mp.exp(-z))
    log_1mpi = -mp.log1p(mp.exp(z))
    return lambda ys: np.array([float(mp.loggamma(y + r) - mp.loggamma(r) - mp.loggamma(y + 1) + r * log_1mpi
                                      + y * log_pi) for y in np.atleast_1d(ys)])


def _mp_log(v):
    return float(mp.log(v)) if v > 0 else -np.inf


def _count_tails(cdf):
    """``(log cdf, log sf)`` references of a count distribution from ``cdf(k)`` (60 digits) at integer k,
    with the limits below 0 and at infinity; non-integer y is floored, as scipy does."""
    def pair(y):
        if np.isnan(y):
            return np.nan, np.nan
        if y < 0 or y == np.inf:
            return (-np.inf, 0.0) if y < 0 else (0.0, -np.inf)
        c, s = cdf(int(np.floor(y)))
        return _mp_log(c), _mp_log(s)
    return (lambda t: lambda ys: np.array([pair(y)[0] for y in np.atleast_1d(ys)]),
            lambda t: lambda ys: np.array([pair(y)[1] for y in np.atleast_1d(ys)]))


def _poisson_tails(theta):
    """``Q(k + 1, lambda)`` and ``P(k + 1, lambda)`` in 60 digits (the series where it converges)."""
    mp.mp.dps = 60
    lam = mp.exp(mp.mpf(float(theta.log_rate)))

    def cdf(k):
        q = mp.gammainc(k + 1, lam, mp.inf, regularized=True)
        return q, (1 - q if k + 1 <= lam else mp.gammainc(k + 1, 0, lam, regularized=True))
    return cdf


def _nbinom_tails(theta):
    """The cdf as the sum of the masses in 60 digits (the grids reach y = 60), the sf as its complement."""
    mp.mp.dps = 60
    r, z = mp.mpf(float(theta.total_count)), mp.mpf(float(theta.logits))
    log_p, log_q = -mp.log1p(mp.exp(z)), -mp.log1p(mp.exp(-z))

    def cdf(k):
        c = mp.fsum(mp.exp(mp.loggamma(j + r) - mp.loggamma(r) - mp.loggamma(j + 1) + r * log_p + j * log_q)
                    for j in range(k + 1))
        return c, 1 - c
    return cdf


def _tails(make):
    return (lambda t: _count_tails(make(t))[0](t), lambda t: _count_tails(make(t))[1](t))


_poisson_cdf, _poisson_sf = _tails(_poisson_tails)
_nbinom_cdf, _nbinom_sf = _tails(_nbinom_tails)
_binom = _frozen(lambda t: stats.binom(t.total_count, special.expit(t.logits)))
_binom = (lambda t: lambda y: quiet(stats.binom(t.total_count, special.expit(t.logits)).logpmf, y),) + _binom[1:]
def _zip(kind):
    """Zero-inflated Poisson references: ``log(g [y = 0] + (1 - g) p(y))``, its log CDF and log SF, by scipy."""
    def make(t):
        log_g, log_1mg = -np.logaddexp(0, -float(t.gate_logits)), -np.logaddexp(0, float(t.gate_logits))
        base = stats.poisson(np.exp(float(t.base.log_rate)))

        def at(y):
            y = np.asarray(y, np.float64)
            with np.errstate(divide="ignore"):
                if kind == "pmf":
                    return np.where(y == 0, np.logaddexp(log_g, log_1mg + base.logpmf(y)), log_1mg + base.logpmf(y))
                if kind == "cdf":
                    return np.where(y >= 0, np.logaddexp(log_g, log_1mg + base.logcdf(y)), -np.inf)
                return np.where(y >= 0, log_1mg + base.logsf(y), 0.0)
        return at
    return make


_bernoulli_refs = (lambda t: _bernoulli_tails(t)[0](t), lambda t: _bernoulli_tails(t)[1](t))


def _bernoulli_tails(theta):
    z = float(theta.logits)
    return _count_tails(lambda k: (1.0, 0.0) if k >= 1 else (float(special.expit(-z)), float(special.expit(z))))


def mp_entropy(theta) -> float:
    """Closed-form entropies in 40-digit arithmetic (scipy's lose digits at large parameters)."""
    mp.mp.dps = 40

    def f(v):
        return mp.mpf(float(v))
    if isinstance(theta, mj.Normal):
        return float(mp.log(f(theta.scale)) + f(0.5) + mp.log(2 * mp.pi) / 2)
    if isinstance(theta, mj.Laplace):
        return float(1 + mp.log(2 * f(theta.scale)))
    if isinstance(theta, mj.AsymmetricLaplace):
        return float(1 - mp.log(f(theta.q)) - mp.log1p(-f(theta.q)) + mp.log(f(theta.scale)))
    if isinstance(theta, mj.StudentT):
        nu = f(theta.df)
        return float((nu + 1) / 2 * (mp.digamma((nu + 1) / 2) - mp.digamma(nu / 2))
                     + mp.log(mp.sqrt(nu) * mp.beta(nu / 2, f(0.5))) + mp.log(f(theta.scale)))
    if isinstance(theta, mj.Gamma):
        a = f(theta.concentration)
        return float(a - mp.log(f(theta.rate)) + mp.loggamma(a) + (1 - a) * mp.digamma(a))
    if isinstance(theta, mj.Exponential):
        return float(1 - mp.log(f(theta.rate)))
    if isinstance(theta, mj.Weibull):
        k = f(theta.concentration)
        return float(mp.euler * (1 - 1 / k) + mp.log(f(theta.scale) / k) + 1)
    if isinstance(theta, mj.LogNormal):
        return float(f(theta.loc) + f(0.5) + mp.log(f(theta.scale)) + mp.log(2 * mp.pi) / 2)
    if isinstance(theta, mj.Beta):
        a, b = f(theta.concentration1), f(theta.concentration0)
        return float(mp.log(mp.beta(a, b)) - (a - 1) * mp.digamma(a) - (b - 1) * mp.digamma(b)
                     + (a + b - 2) * mp.digamma(a + b))
    if isinstance(theta, mj.VonMises):
        k = f(theta.concentration)
        return float(mp.log(2 * mp.pi * mp.besseli(0, k)) - k * mp.besseli(1, k) / mp.besseli(0, k))
    if isinstance(theta, mj.Bernoulli):
        return float(stats.bernoulli(special.expit(theta.logits)).entropy())
    if isinstance(theta, mj.Categorical):
        return float(stats.entropy(softmax(theta.logits)))
    raise TypeError(type(theta).__name__)


def softmax(logits):
    """``softmax`` with +inf logits at their limit (the +inf classes share the mass)."""
    z = np.asarray(logits, np.float64)
    if np.isposinf(z).any():
        z = np.where(np.isposinf(z), 0.0, -np.inf)
    return special.softmax(z)


def _categorical_logpmf(theta):
    logp = quiet(np.log, softmax(theta.logits))
    k = len(logp)
    return lambda ys: np.array([logp[int(y)] if (y == int(y) and 0 <= y < k) else -np.inf for y in np.atleast_1d(ys)])


def _bernoulli_logpmf(theta):
    z = float(theta.logits)
    return lambda ys: np.array([-np.logaddexp(0.0, -(2 * y - 1) * z) if y in (0, 1) else -np.inf
                                for y in np.atleast_1d(ys)])


def _von_mises_logpdf(theta):
    k = float(theta.concentration)
    return lambda y: np.asarray(k * (np.cos(y - theta.loc) - 1) - math.log(2 * math.pi) - np.log(special.i0e(k)))


def _mixture_logpdf(theta):
    w = special.log_softmax(np.asarray(theta.logits, np.float64))
    return lambda ys: np.array([special.logsumexp(w + stats.norm(theta.loc, theta.scale).logpdf(y))
                                for y in np.atleast_1d(ys)])


def padded(grid):
    """The grid repeated at its last point up to ``GRID`` entries."""
    grid = np.asarray(grid, np.float64)
    return np.concatenate([grid, np.full(GRID - len(grid), grid[-1])])


def _case(theta, family, grid, **kw):
    logpdf, logcdf, logsf = family
    return Case(theta, logpdf, np.asarray(grid, np.float64), entropy=mp_entropy, logcdf=logcdf, logsf=logsf, **kw)


f = np.float64
CASES = {
    "normal-standard": _case(mj.Normal(f(0), f(1)), _norm, [-30, -5, -1, 0, 0.5, 3, 37]),
    "normal-shifted": _case(mj.Normal(f(2.5), f(0.3)), _norm, [2.5 - 0.3e4, -1, 2.5, 2.7, 9, 2.5 + 0.3e4]),
    "normal-wide": _case(mj.Normal(f(-4), f(50)), _norm, [-1e4, -4, 0, 120, 5e5]),
    "normal-tiny-scale": _case(mj.Normal(f(0), f(1e-30)), _norm, [-3e-30, 0, 1e-30, 3e-30]),
    "laplace": _case(mj.Laplace(f(0.5), f(2)), _laplace, [-1e3, -3, 0.5, 1, 40]),
    "laplace-tiny-scale": _case(mj.Laplace(f(0), f(1e-30)), _laplace, [-3e-30, 0, 3e-30]),
    "asymmetric-laplace": Case(mj.AsymmetricLaplace(f(0.5), f(2), f(0.25)), _ald[0], np.array([-1e3, -3, 0.5, 1, 40]),
                               entropy=mp_entropy, logcdf=_ald[1],
                               logsf=_ald[2]),
    "student-t-3": _case(mj.StudentT(f(3), f(0.5), f(2)), _t, [-1e4, -20, -1, 0.5, 2, 1e3]),
    "student-t-2-far-tail": _case(mj.StudentT(f(2), f(0), f(1)), _t, [-1e20, -1e6, -3, 0, 3, 1e6]),
    "student-t-1e8": _case(mj.StudentT(f(1e8), f(0), f(1)), _t, [-30, -3, 0, 0.5, 3]),
    "gamma-2": _case(mj.Gamma(f(2), f(1)), _gamma, [1e-30, 0.01, 1, 5, 200]),
    "gamma-1-at-0": _case(mj.Gamma(f(1), f(1)), _gamma, [0, 1e-3, 1, 30]),
    "gamma-small": _case(mj.Gamma(f(0.5), f(3)), _gamma, [1e-20, 0.1, 2, 20]),
    "gamma-1e5": _case(mj.Gamma(f(1e5), f(1)), _gamma, [9.9e4, 1e5, 1.01e5]),
    "exponential": _case(mj.Exponential(f(2)), _expon, [0, 1e-30, 0.5, 10, 300]),
    "exponential-tiny-rate": _case(mj.Exponential(f(1e-20)), _expon, [1e-30, 1, 1e20, 1e22]),
    "weibull": _case(mj.Weibull(f(1.5), f(2)), _weibull, [0, 1e-30, 0.3, 2, 40]),
    "weibull-1-at-0": _case(mj.Weibull(f(1), f(0.5)), _weibull, [0, 1e-3, 1, 30]),
    "weibull-small-shape": _case(mj.Weibull(f(0.3), f(1)), _weibull, [0, 1e-20, 0.5, 1e4]),
    "weibull-large-shape": _case(mj.Weibull(f(50), f(1)), _weibull, [0.5, 0.9, 1, 1.05, 1.2]),
    "log-normal": _case(mj.LogNormal(f(0.5), f(0.8)), _lognorm, [0, 1e-30, 0.01, 1, 5, 1e6]),
    "log-normal-narrow": _case(mj.LogNormal(f(0), f(1e-3)), _lognorm, [0.996, 1, 1.001, 1.01]),
    "beta-2-3": _case(mj.Beta(f(2), f(3)), _beta, [1e-30, 0.01, 0.4, 0.9, 1 - 1e-6]),
    "beta-1-2-at-0": _case(mj.Beta(f(1), f(2)), _beta, [0, 0.25, 0.5]),
    "beta-half": _case(mj.Beta(f(0.5), f(0.5)), _beta, [1e-6, 0.3, 0.999]),
    "beta-1e5": _case(mj.Beta(f(1e5), f(1e5)), _beta, [0.499, 0.5, 0.5005], atol32=3e-2),  # (a + b) 1.5e-7
    "poisson": Case(mj.Poisson(f(1.5)), _poisson,
                    np.array([0, 1, 4, 30.0]), integer=True, logcdf=_poisson_cdf, logsf=_poisson_sf),
    "poisson-zero-rate": Case(mj.Poisson(f(-np.inf)), _counts(lambda t: stats.poisson(0.0)), np.array([0, 1.0]),
                              integer=True, logcdf=lambda t: lambda y: np.zeros_like(y),
                              logsf=lambda t: lambda y: np.full_like(y, -np.inf)),
    "poisson-large": Case(mj.Poisson(f(6)), _poisson,
                          np.array([0, 380, 403, 1000.0]), integer=True, atol32=2e-4, logcdf=_poisson_cdf,
                          logsf=_poisson_sf),
    "poisson-tiny-rate": Case(mj.Poisson(f(-30)), _poisson, np.array([0, 1, 3, 10.0]), integer=True,
                              logcdf=_poisson_cdf, logsf=_poisson_sf),
    "negative-binomial": Case(mj.NegativeBinomial(f(3.5), f(0.3)), _nbinom, np.array([0, 1, 5, 60.0]), integer=True,
                              logcdf=_nbinom_cdf, logsf=_nbinom_sf),
    "negative-binomial-1e8": Case(mj.NegativeBinomial(f(1e8), f(1 - math.log(1e8))), _nbinom,
                                  np.array([0, 1, 3, 10.0]), integer=True, atol32=2e-5, logcdf=_nbinom_cdf,
                                  logsf=_nbinom_sf),
    "negative-binomial-zero": Case(mj.NegativeBinomial(f(10), f(-np.inf)), lambda t: lambda y: np.where(y == 0, 0.0, -np.inf),
                                   np.array([0, 2.0]), integer=True),
    "binomial": Case(mj.Binomial(f(10), f(0.3)), _binom[0], np.array([0, 1, 4, 10.0]), integer=True,
                     logcdf=_binom[1], logsf=_binom[2]),
    "binomial-1e6": Case(mj.Binomial(f(1e6), f(0)), _binom[0], np.array([499_000, 500_000, 500_123, 1e6]), integer=True,
                         atol32=2e-4, logcdf=_binom[1], logsf=_binom[2]),
    "zero-inflated-poisson": Case(mj.ZeroInflated(f(0.4), mj.Poisson(f(1.2))), _zip("pmf"), np.array([0, 1, 5, 30.0]),
                                  integer=True, logcdf=_zip("cdf"), logsf=_zip("sf")),
    "bernoulli-moderate": Case(mj.Bernoulli(f(0.7)), _bernoulli_logpmf, np.array([0, 1.0]), True, mp_entropy,
                            *_bernoulli_refs),
    "bernoulli-negative": Case(mj.Bernoulli(f(-3)), _bernoulli_logpmf, np.array([0, 1.0]), True, mp_entropy,
                            *_bernoulli_refs),
    "bernoulli-zero": Case(mj.Bernoulli(f(0)), _bernoulli_logpmf, np.array([0, 1.0]), True, mp_entropy,
                            *_bernoulli_refs),
    "bernoulli-inf": Case(mj.Bernoulli(f(np.inf)), _bernoulli_logpmf, np.array([0, 1.0]), True, mp_entropy,
                            *_bernoulli_refs),
    "categorical-3": Case(mj.Categorical(np.array([0.2, -1, 2])), _categorical_logpmf, np.array([0, 1, 2.0]),
                          True, mp_entropy),
    "categorical-wide": Case(mj.Categorical(np.array([30.0, -30, 0, 5])), _categorical_logpmf,
                             np.array([0, 1, 2, 3.0]), True, mp_entropy),
    "categorical-inf-logit": Case(mj.Categorical(np.array([np.inf, 0, 0])), _categorical_logpmf,
                                  np.array([0, 1, 2.0]), True, mp_entropy),
    "categorical-masked": Case(mj.Categorical(np.array([0.5, -np.inf, 1.0])), _categorical_logpmf,
                               np.array([0, 1, 2.0]), True, mp_entropy),
    "von-mises": Case(mj.VonMises(f(0.3), f(2)), _von_mises_logpdf, np.array([-3, 0.3, 1, 3.0]), entropy=mp_entropy),
    "von-mises-1e6": Case(mj.VonMises(f(0), f(1e6)), _von_mises_logpdf, np.array([-1e-3, 0, 5e-4, 0.1]),
                          entropy=mp_entropy),
    "von-mises-uniform": Case(mj.VonMises(f(0), f(0)), _von_mises_logpdf, np.array([-3, 0, 2.0]), entropy=mp_entropy),
    "mixture-normal": Case(mj.MixtureNormal(np.array([0.3, -0.2]), np.array([-1.0, 2]), np.array([0.5, 1.5])),
                           _mixture_logpdf, np.array([-40, -1, 0.5, 2, 30.0])),
}

# labels and values off the support: the theta-level log_prob is -inf there (the recipe raises earlier)
OFF_SUPPORT = {
    "categorical": (mj.Categorical(np.array([0.0, 1, 2])), [-1, 3, 1.7]),
    "bernoulli": (mj.Bernoulli(f(0.3)), [-1, 2, 1.5]),
    "poisson": (mj.Poisson(f(0.5)), [-1, 2.5]),
    "negative-binomial": (mj.NegativeBinomial(f(3), f(0.2)), [-1, 0.5]),
    "binomial": (mj.Binomial(f(10), f(0.2)), [-1, 0.5, 11]),
    "zero-inflated": (mj.ZeroInflated(f(0.3), mj.Poisson(f(0.5))), [-1, 2.5]),
    "gamma": (mj.Gamma(f(2), f(1)), [-1e-30, -3]),
    "exponential": (mj.Exponential(f(2)), [-1e-30, -3]),
    "weibull": (mj.Weibull(f(1.5), f(2)), [-1e-30, -3]),
    "log-normal": (mj.LogNormal(f(0), f(1)), [0, -1e-30, -3]),
    "beta": (mj.Beta(f(2), f(3)), [-0.1, 1.5]),
}


def scipy_entropy(theta):
    """The reference entropy of any case's theta (kept for older tests)."""
    return mp_entropy(theta)


@jax.jit
def evaluate(theta, grid):
    """Every function a theta type has, in one compiled program per type, dtype and grid length."""
    table = registry.entries(theta)
    out = {"log_prob": jax.vmap(mj.log_prob, in_axes=(None, 0))(theta, grid)}
    for name in ("log_cdf", "log_sf"):
        if getattr(table, name) is not None:
            out[name] = jax.vmap(getattr(mj, name), in_axes=(None, 0))(theta, grid)
    if table.entropy is not None:
        out["entropy"] = mj.entropy(theta)
    return out


@jax.jit
def evaluate_many(thetas, grids):
    """``evaluate`` over a stack of thetas of one type (leading axis) and their grids: one compiled program
    serves every case of a type and dtype (``groups``), instead of one per case and test worker."""
    return jax.vmap(evaluate)(thetas, grids)


def groups(names):
    """The case names grouped by theta type and field shapes (the cases ``evaluate_many`` can stack),
    as ``{label: [names]}``; the label is the type's name, with the shapes where a type has two groups."""
    by_key: dict = {}
    for name in sorted(names):
        theta = CASES[name].theta
        shapes = tuple(np.shape(leaf) for leaf in jax.tree_util.tree_leaves(theta))
        by_key.setdefault((type(theta).__name__, shapes), []).append(name)
    counts: dict = {}
    for kind, _ in by_key:
        counts[kind] = counts.get(kind, 0) + 1
    return {(kind if counts[kind] == 1 else f"{kind}-{'x'.join(str(s) for s in shapes[0]) or 'scalar'}"): names
            for (kind, shapes), names in by_key.items()}


def stack(thetas):
    """Thetas of one type and shapes stacked along a new leading axis."""
    return jax.tree_util.tree_map(lambda *fields: np.stack(fields), *thetas)


# theta types whose targets are vectors (padded() pads scalar grids): grids of GRID rows, for test_properties.py
def _mvn_frozen(t):
    return stats.multivariate_normal(t.loc, t.scale_tril @ t.scale_tril.T)


_VECTORS = np.array([[0.0, 0.0], [0.5, -1.0], [3.0, -4.0], [-20.0, 10.0], [1e3, 1e3], [0.1, 0.2], [-1.0, 2.0],
                     [7.0, 0.0]])
VECTOR_CASES = {
    "multivariate-normal": Case(mj.MultivariateNormal(np.array([0.5, -1.0]), np.array([[1.5, 0.0], [0.3, 0.4]])),
                                lambda t: lambda ys: _mvn_frozen(t).logpdf(ys), _VECTORS,
                                entropy=lambda t: _mvn_frozen(t).entropy()),
    "independent-normal": Case(mj.Independent(mj.Normal(np.array([0.2, -1.0]), np.array([1.0, 3.0]))),
                               lambda t: lambda ys: stats.norm(t.base.loc, t.base.scale).logpdf(ys).sum(-1), _VECTORS,
                               entropy=lambda t: stats.norm(t.base.loc, t.base.scale).entropy().sum()),
}


def _pl_logpmf(t):
    """The Plackett-Luce product formula in float64: prod_j exp(s_{pi_j}) / sum_{m >= j} exp(s_{pi_m})."""
    w = np.exp(np.asarray(t.logits, np.float64) - np.max(t.logits))
    return lambda ys: np.array([sum(math.log(w[int(y[j])] / w[np.asarray(y[j:], int)].sum()) for j in range(len(y)))
                                for y in np.asarray(ys)])


def _pl_entropy(t):
    import itertools
    lp = _pl_logpmf(t)(np.array(list(itertools.permutations(range(len(t.logits))))))
    return float(-np.sum(np.exp(lp) * lp))


def _dirichlet_logpdf(t):
    """``dirichlet.logpdf`` at the rows renormalised in float64 (scipy asks |sum - 1| < 1e-9; a float32 row
    is off by 1e-8, which moves the log density by (a_0 - K) 1e-8 only)."""
    return lambda ys: stats.dirichlet(t.concentration).logpdf((np.asarray(ys) / np.sum(ys, axis=1)[:, None]).T)


_SIMPLEX = np.array([[0.2, 0.3, 0.5], [1 / 3, 1 / 3, 1 / 3], [1e-6, 0.5, 0.5 - 1e-6], [0.98, 0.01, 0.01],
                     [0.05, 0.9, 0.05], [0.6, 0.2, 0.2], [0.25, 0.25, 0.5], [0.1, 0.7, 0.2]])
_RANKINGS = np.array([[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1], [1, 3, 0, 2], [0, 2, 1, 3], [3, 0, 1, 2],
                      [2, 1, 0, 3], [1, 0, 3, 2]])
VECTOR_CASES["dirichlet"] = Case(mj.Dirichlet(np.array([0.7, 2.5, 4.0])),
                                 _dirichlet_logpdf,
                                 _SIMPLEX, entropy=lambda t: stats.dirichlet(t.concentration).entropy())
VECTOR_CASES["plackett-luce"] = Case(mj.PlackettLuce(np.array([0.3, -1.2, 2.0, 0.5])), _pl_logpmf, _RANKINGS,
                                     integer=True, entropy=_pl_entropy)

# registered theta types with no case, and why (test_families_table.py: every other type has one)
NO_CASE = {"Empirical": "Dirac deltas at the data: no density; its mean and cross-entropy in test_information.py"}
