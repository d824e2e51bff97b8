"""Properties of every scalar theta type, drawn by hypothesis, against scipy.stats and mpmath.

Parameters are drawn from ranges that include the extremes of docs/reliability.md (scales of 1e-30
and 1e30, degrees of freedom up to 1e8, concentrations up to 1e5 and down to 0.01, counts near
int32's limit, zero rates, infinite logits), in float32 and float64. References are evaluated in
float64 at the rounded parameters; the tolerances are ``cases.TOL`` / ``cases.CDF_TOL``.
Checked: log_prob, log_cdf, log_sf, entropy and mean against the references; KL >= 0 and
CE = H + KL; finite gradients wherever the value is finite; eager == jit. Samples pass a KS test
at fixed seeds. Every function is compiled once per type and dtype (``cases.evaluate``), so each
example costs only the reference. A batched theta (B examples on leading axes) of every type gives
what ``jax.vmap`` over its examples gives, for every generic function the type has.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import special, stats

import mle_jax as mj
from cases import CDF_TOL, GRID, NO_CASE, TOL, VECTOR_CASES, evaluate, mp_entropy, quiet
from families_table import FAMILIES
from mle_jax.distributions import registry

SETTINGS = settings(max_examples=3, deadline=None, derandomize=True)


def _log_uniform(lo, hi, extremes=()):
    """Positive floats spread over [lo, hi] in log scale, plus named extremes."""
    return st.one_of(st.sampled_from(list(extremes) or [lo, hi]),
                     st.floats(math.log(lo), math.log(hi)).map(math.exp))


# type name -> (parameter strategy, theta builder, scipy builder or None, target strategy builder)
def _real_targets(theta):
    loc, scale = float(theta[0]), float(theta[1])
    return st.lists(st.floats(-50, 50), min_size=GRID, max_size=GRID).map(
        lambda zs: [loc + scale * z for z in zs])


TYPES = {
    "Normal": (st.tuples(st.floats(-1e3, 1e3), _log_uniform(1e-30, 1e30, [1e-30, 1.0, 1e30])),
               lambda p: mj.Normal(*p), lambda p: stats.norm(p[0], p[1]), _real_targets),
    "Laplace": (st.tuples(st.floats(-1e3, 1e3), _log_uniform(1e-30, 1e30, [1e-30, 1.0, 1e30])),
                lambda p: mj.Laplace(*p), lambda p: stats.laplace(p[0], p[1]), _real_targets),
    "AsymmetricLaplace": (st.tuples(st.floats(-1e3, 1e3), _log_uniform(1e-30, 1e30, [1e-30, 1.0, 1e30]),
                                    st.sampled_from([0.01, 0.25, 0.5, 0.9, 0.99])),
                          lambda p: mj.AsymmetricLaplace(*p),
                          lambda p: stats.laplace_asymmetric(math.sqrt(p[2] / (1 - p[2])), p[0],
                                                             p[1] / math.sqrt(p[2] * (1 - p[2]))), _real_targets),
    "StudentT": (st.tuples(_log_uniform(0.5, 1e8, [0.5, 1.0, 2.0, 1e4, 1e8]), st.floats(-10, 10),
                           _log_uniform(1e-3, 1e3)),
                 lambda p: mj.StudentT(*p), lambda p: stats.t(p[0], p[1], p[2]),
                 lambda p: _real_targets((p[1], p[2]))),
    "Gamma": (st.tuples(_log_uniform(0.05, 1e5, [0.05, 1.0, 2.0, 1e5]), _log_uniform(1e-2, 1e2)),
              lambda p: mj.Gamma(*p), lambda p: stats.gamma(p[0], scale=1 / p[1]),
              lambda p: st.lists(_log_uniform(1e-20, 1e6), min_size=GRID, max_size=GRID)),
    "Beta": (st.tuples(_log_uniform(0.1, 1e3, [0.5, 1.0, 2.0, 1e3]), _log_uniform(0.1, 1e3, [0.5, 1.0, 3.0])),
             lambda p: mj.Beta(*p), lambda p: stats.beta(p[0], p[1]),
             lambda p: st.lists(st.floats(1e-30, 1 - 1e-6), min_size=GRID, max_size=GRID)),
    "Poisson": (st.tuples(st.one_of(st.sampled_from([-np.inf, 0.0, 25.0]), st.floats(-5, 10))),
                lambda p: mj.Poisson(*p), lambda p: stats.poisson(np.exp(p[0])),
                lambda p: st.lists(st.integers(0, 3000).map(float), min_size=GRID, max_size=GRID)),
    "Exponential": (st.tuples(_log_uniform(1e-20, 1e20, [1e-20, 1.0, 1e20])),
                    lambda p: mj.Exponential(*p), lambda p: stats.expon(scale=1 / p[0]),
                    lambda p: st.lists(_log_uniform(1e-20, 1e6), min_size=GRID, max_size=GRID)),
    "Weibull": (st.tuples(_log_uniform(0.2, 30.0, [0.2, 1.0, 30.0]), _log_uniform(1e-2, 1e2)),
                lambda p: mj.Weibull(*p), lambda p: stats.weibull_min(p[0], scale=p[1]),
                lambda p: st.lists(_log_uniform(1e-20, 1e6), min_size=GRID, max_size=GRID)),
    "LogNormal": (st.tuples(st.floats(-5, 5), _log_uniform(0.05, 1e2, [0.05, 1.0, 1e2])),
                  lambda p: mj.LogNormal(*p), lambda p: stats.lognorm(p[1], scale=math.exp(p[0])),
                  lambda p: st.lists(st.floats(-30, 30), min_size=GRID, max_size=GRID).map(  # y within float32
                      lambda zs: [math.exp(min(max(p[0] + p[1] * z, -80.0), 80.0)) for z in zs])),
    "VonMises": (st.tuples(st.floats(-3, 3), _log_uniform(1e-6, 1e6, [0.0, 1e-6, 1.0, 1e6])),
                 lambda p: mj.VonMises(*p), None,
                 lambda p: st.lists(st.floats(-math.pi, math.pi), min_size=GRID, max_size=GRID)),
}


def _rounded(values, dtype):
    return [float(np.asarray(v, dtype)) for v in values]


def _in_range(value, dtype):
    """A float64 reference as the dtype holds it: +-inf past its largest finite number."""
    big = float(np.finfo(dtype).max)
    return math.copysign(math.inf, value) if abs(value) > big else value


def _reference_logpdf(name, frozen, params, ys):
    if name == "VonMises":
        loc, k = params
        return k * (np.cos(np.asarray(ys) - loc) - 1) - math.log(2 * math.pi) - np.log(special.i0e(k))
    method = frozen.logpmf if name == "Poisson" else frozen.logpdf
    return quiet(method, np.asarray(ys))


def _close(got, ref, tol, what):
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    both_inf = np.isinf(ref) & (got == ref)
    finite_ref = np.isfinite(ref)
    np.testing.assert_allclose(np.where(both_inf | ~finite_ref, 0, got), np.where(both_inf | ~finite_ref, 0, ref),
                               rtol=tol[0], atol=tol[1], err_msg=what)


# the float64 draws of the incomplete-function and Stirling types run in CI's deep phase (float32, the harder
# dtype, in README's suite): 4-5 s of compiling each, for README's 5-minute budget
_DEEP_FLOAT64 = {"Beta", "Gamma", "Poisson", "StudentT"}


@pytest.mark.parametrize("name, dtype", [
    pytest.param(name, dtype, marks=pytest.mark.deep) if dtype == "float64" and name in _DEEP_FLOAT64
    else (name, dtype) for name in sorted(TYPES) for dtype in ("float32", "float64")])
@SETTINGS
@given(data=st.data())
def test_functions_against_references(name, dtype, data):
    params_st, build, scipy_of, targets_of = TYPES[name]
    np_dtype = np.dtype(dtype)
    params = _rounded(data.draw(params_st), np_dtype)
    ys = _rounded(data.draw(targets_of(params)), np_dtype)
    with jax.enable_x64(dtype == "float64"):
        theta = build([jnp.asarray(p, dtype) for p in params])
        values = evaluate(theta, jnp.asarray(ys, dtype))
        frozen = scipy_of(params) if scipy_of else None
        ref = _reference_logpdf(name, frozen, params, ys)
        _close(values["log_prob"], ref, TOL[dtype], f"log_prob {name}{params}")
        if "log_cdf" in values and frozen is not None:  # the von Mises CDF: tests/test_quantiles.py (mpmath)
            _close(values["log_cdf"], quiet(frozen.logcdf, np.asarray(ys)), CDF_TOL[dtype], f"log_cdf {params}")
            _close(values["log_sf"], quiet(frozen.logsf, np.asarray(ys)), CDF_TOL[dtype], f"log_sf {params}")
        if "entropy" in values:
            _close(values["entropy"], mp_entropy(theta), TOL[dtype], f"entropy {params}")
        if frozen is not None and np.isfinite(quiet(frozen.mean)):  # a mean past the dtype's range is inf there
            _close(mj.mean(theta), _in_range(quiet(frozen.mean), np_dtype), TOL[dtype], f"mean {params}")


# pairs for KL >= 0 and CE = H + KL: (parameter strategy, builder)
PAIRS = {
    "Normal": (st.tuples(st.floats(-5, 5), _log_uniform(1e-30, 1e30, [1e-30, 1e30])), mj.Normal),
    "Laplace": (st.tuples(st.floats(-5, 5), _log_uniform(1e-10, 1e10)), mj.Laplace),
    "Gamma": (st.tuples(_log_uniform(0.01, 1e5, [1e5]), _log_uniform(1e-2, 1e2)), mj.Gamma),
    "AsymmetricLaplace": (st.tuples(st.floats(-5, 5), _log_uniform(1e-10, 1e10), st.floats(0.01, 0.99)),
                          mj.AsymmetricLaplace),
    "Beta": (st.tuples(_log_uniform(0.05, 1e5, [1e5]), _log_uniform(0.05, 1e5, [1e5])), mj.Beta),
    "Poisson": (st.tuples(st.one_of(st.just(-np.inf), st.floats(-10, 10))), mj.Poisson),
    "VonMises": (st.tuples(st.floats(-3, 3), _log_uniform(1e-6, 1e6, [0.0, 1e6])), mj.VonMises),
    "Exponential": (st.tuples(_log_uniform(1e-20, 1e20, [1e-20, 1e20])), mj.Exponential),
    "Weibull": (st.tuples(_log_uniform(0.05, 1e3, [1e3]), _log_uniform(1e-3, 1e3)), mj.Weibull),
    "LogNormal": (st.tuples(st.floats(-5, 5), _log_uniform(1e-10, 1e10)), mj.LogNormal),
    "Bernoulli": (st.tuples(st.one_of(st.sampled_from([-np.inf, np.inf, -100.0]), st.floats(-30, 30))),
                  mj.Bernoulli),
}


@jax.jit
def _information(p, q):
    out = {"kl": mj.kl(p, q), "kl_pp": mj.kl(p, p)}
    if mj.distributions.registry.entries(p).entropy is not None:
        out["h"], out["ce"] = mj.entropy(p), mj.cross_entropy(p, q)
    return out


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(PAIRS))
@SETTINGS
@given(data=st.data())
@pytest.mark.deep
def test_kl_nonnegative_and_cross_entropy_identity(name, dtype, data):
    params_st, build = PAIRS[name]
    a, b = data.draw(params_st), data.draw(params_st)
    with jax.enable_x64(dtype == "float64"):
        p, q = build(*[jnp.asarray(v, dtype) for v in a]), build(*[jnp.asarray(v, dtype) for v in b])
        out = {k: float(v) for k, v in _information(p, q).items()}
    assert out["kl"] >= 0.0, (a, b, out)
    assert out["kl_pp"] >= 0.0 and out["kl_pp"] <= TOL[dtype][1] * max(1.0, abs(out.get("h", 1.0))), out
    if "h" in out and math.isfinite(out["kl"]) and math.isfinite(out["h"]):
        scale = abs(out["h"]) + abs(out["kl"]) + 1.0
        assert abs(out["ce"] - (out["h"] + out["kl"])) <= 10 * TOL[dtype][0] * scale, (a, b, out)


@jax.jit
def _value_and_grads(theta, y):
    return jax.value_and_grad(mj.log_prob)(theta, y)


@pytest.mark.parametrize("name", ["Normal", "Laplace", "StudentT", "Gamma", "Beta", "VonMises"])
@SETTINGS
@given(data=st.data())
@pytest.mark.deep
def test_gradients_finite_where_the_value_is(name, data):
    params_st, build, _, targets_of = TYPES[name]
    params = _rounded(data.draw(params_st), np.dtype("float32"))
    y = _rounded(data.draw(targets_of(params)), np.dtype("float32"))[0]
    theta = build([jnp.float32(p) for p in params])
    value, grads = _value_and_grads(theta, jnp.float32(y))
    if np.isfinite(value):
        assert all(np.isfinite(g) for g in jax.tree_util.tree_leaves(grads)), (params, y, grads)
        eager = mj.log_prob(theta, jnp.float32(y))
        np.testing.assert_allclose(eager, value, rtol=TOL["float32"][0], atol=TOL["float32"][1])


KS_CASES = [
    (mj.Normal(0.5, 2.0), stats.norm(0.5, 2.0).cdf),
    (mj.Laplace(-1.0, 0.3), stats.laplace(-1.0, 0.3).cdf),
    (mj.StudentT(3.0, 0.0, 1.0), stats.t(3.0).cdf),
    (mj.Gamma(0.3, 2.0), stats.gamma(0.3, scale=0.5).cdf),
    (mj.Beta(0.5, 3.0), stats.beta(0.5, 3.0).cdf),
    (mj.VonMises(0.0, 0.0), stats.uniform(-math.pi, 2 * math.pi).cdf),
    (mj.VonMises(0.0, 1e-7), stats.uniform(-math.pi, 2 * math.pi).cdf),
    (mj.VonMises(0.0, 2.0), stats.vonmises(2.0).cdf),
    (mj.VonMises(0.0, 1e6), stats.norm(0.0, 1e-3).cdf),  # N(0, 1/k) to O(1/k) = 1e-6 in the CDF
]


@pytest.mark.parametrize("index", range(len(KS_CASES)))
@pytest.mark.deep
def test_samples_pass_a_ks_test(index):
    theta, cdf = KS_CASES[index]
    theta = jax.tree_util.tree_map(jnp.float32, theta)
    keys = jax.random.split(jax.random.PRNGKey(index), 2000)
    draws = np.asarray(jax.jit(jax.vmap(mj.sample, in_axes=(0, None)))(keys, theta), np.float64)
    assert stats.kstest(draws, cdf).pvalue > 1e-3


@pytest.mark.parametrize("theta", [mj.Poisson(jnp.float32(2.0)), mj.Poisson(jnp.float32(25.0)),
                                   mj.NegativeBinomial(jnp.float32(4.0), jnp.float32(0.5))],
                         ids=["poisson-2", "poisson-e25", "nbinom"])
@pytest.mark.deep
def test_counts_are_float_and_match_their_mean(theta):
    """Counts are floats of the parameters' dtype, never a saturated int32; their mean is right."""
    keys = jax.random.split(jax.random.PRNGKey(3), 4000)
    draws = jax.jit(jax.vmap(mj.sample, in_axes=(0, None)))(keys, theta)
    assert draws.dtype == jnp.float32 and mj.mode(theta).dtype == jnp.float32
    mean, var = float(mj.mean(theta)), float(mj.variance(theta))
    assert abs(float(np.mean(np.asarray(draws, np.float64))) - mean) < 5 * math.sqrt(var / 4000)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(VECTOR_CASES))
@pytest.mark.deep
def test_vector_cases_against_references(name, dtype):
    """The theta types whose targets are vectors (tests/cases.py's VECTOR_CASES): log_prob on a grid of
    GRID rows and entropy, against scipy at the rounded parameters."""
    case = VECTOR_CASES[name]
    with jax.enable_x64(dtype == "float64"):
        theta = jax.tree.map(lambda a: jnp.asarray(a, dtype), case.theta)
        grid = jnp.asarray(case.grid, dtype)
        values = evaluate(theta, grid)
    rounded = jax.tree.map(lambda a: np.asarray(a, np.float64), theta)
    ys = np.asarray(grid, np.float64)
    _close(values["log_prob"], case.logpdf(rounded)(ys), TOL[dtype], f"log_prob {name}")
    _close(values["entropy"], case.entropy(rounded), TOL[dtype], f"entropy {name}")


# ----------------------------------------------------------------------------- batched thetas
# A batched theta (every field with a leading axis of B examples, as r.predict returns) must give
# exactly what jax.vmap of the same generic function over the B examples gives: one value per example,
# never a sum over the batch or an event axis taken for a batch axis (issue 19, cause 17).

BATCH = 3
_unit = st.floats(-3, 3)


def _fields(*strategies):
    """B examples' parameters, each a tuple drawn from ``strategies``."""
    return st.lists(st.tuples(*strategies), min_size=BATCH, max_size=BATCH)


def _mvn(rows):
    loc = [r[:2] for r in rows]
    tril = [[[math.exp(r[2]), 0.0], [r[3], math.exp(r[4])]] for r in rows]
    return mj.MultivariateNormal(np.array(loc), np.array(tril))


def _columns(kind, rows, *groups):
    """``kind`` built from per-example rows, the fields in ``groups`` of consecutive entries."""
    arrays, start = [], 0
    for size in groups:
        part = np.array([r[start:start + size] for r in rows])
        arrays.append(part[:, 0] if size == 1 else part)
        start += size
    return kind(*arrays)


BATCHED = {
    "Normal": (_fields(_unit, _log_uniform(1e-3, 1e3)), lambda r: _columns(mj.Normal, r, 1, 1)),
    "Laplace": (_fields(_unit, _log_uniform(1e-3, 1e3)), lambda r: _columns(mj.Laplace, r, 1, 1)),
    "AsymmetricLaplace": (_fields(_unit, _log_uniform(1e-3, 1e3), st.floats(0.05, 0.95)),
                          lambda r: _columns(mj.AsymmetricLaplace, r, 1, 1, 1)),
    "StudentT": (_fields(_log_uniform(0.5, 100), _unit, _log_uniform(0.1, 10)),
                 lambda r: _columns(mj.StudentT, r, 1, 1, 1)),
    "Gamma": (_fields(_log_uniform(0.1, 100), _log_uniform(0.1, 10)), lambda r: _columns(mj.Gamma, r, 1, 1)),
    "Beta": (_fields(_log_uniform(0.1, 100), _log_uniform(0.1, 100)), lambda r: _columns(mj.Beta, r, 1, 1)),
    "Poisson": (_fields(_unit), lambda r: _columns(mj.Poisson, r, 1)),
    "Exponential": (_fields(_log_uniform(0.1, 10)), lambda r: _columns(mj.Exponential, r, 1)),
    "Weibull": (_fields(_log_uniform(0.2, 20), _log_uniform(0.1, 10)), lambda r: _columns(mj.Weibull, r, 1, 1)),
    "LogNormal": (_fields(_unit, _log_uniform(0.1, 10)), lambda r: _columns(mj.LogNormal, r, 1, 1)),
    "NegativeBinomial": (_fields(_log_uniform(0.5, 100), _unit), lambda r: _columns(mj.NegativeBinomial, r, 1, 1)),
    "ZeroInflated": (_fields(_unit, _unit), lambda r: mj.ZeroInflated(np.array([a for a, _ in r]),
                                                                     mj.Poisson(np.array([b for _, b in r])))),
    "Binomial": (_fields(_log_uniform(1, 100), _unit),
                 lambda r: _columns(mj.Binomial, [(math.floor(a), b) for a, b in r], 1, 1)),
    "VonMises": (_fields(_unit, _log_uniform(1e-3, 100)), lambda r: _columns(mj.VonMises, r, 1, 1)),
    "Bernoulli": (_fields(_unit), lambda r: _columns(mj.Bernoulli, r, 1)),
    "Categorical": (_fields(_unit, _unit, _unit), lambda r: _columns(mj.Categorical, r, 3)),
    "MixtureNormal": (_fields(_unit, _unit, _unit, _unit, _log_uniform(0.1, 10), _log_uniform(0.1, 10)),
                      lambda r: _columns(mj.MixtureNormal, r, 2, 2, 2)),
    "MultivariateNormal": (_fields(_unit, _unit, _unit, _unit, _unit), _mvn),
    "Independent": (_fields(_unit, _unit, _log_uniform(0.1, 10), _log_uniform(0.1, 10)),
                    lambda r: mj.Independent(_columns(mj.Normal, r, 2, 2))),
    "Dirichlet": (_fields(_log_uniform(0.5, 50), _log_uniform(0.5, 50), _log_uniform(0.5, 50)),
                  lambda r: _columns(mj.Dirichlet, r, 3)),
    "PlackettLuce": (_fields(_unit, _unit, _unit), lambda r: _columns(mj.PlackettLuce, r, 3)),
}


# tails and quantiles by incomplete-function loops (elementwise; each compile of their loops costs seconds): left
# out here (tests/test_count_quantiles.py checks the count quantiles)
_LOOPED_TAILS = {"Beta", "Binomial", "Gamma", "NegativeBinomial", "Poisson", "StudentT", "ZeroInflated"}


def _generic(theta, other, y, q, upper):
    """Every generic function the type has, at one theta (or one batch of them); ``log_tail`` is
    ``log_sf`` where ``upper`` and ``log_cdf`` elsewhere (one incomplete-function loop, not two)."""
    table = mj.distributions.registry.entries(theta)
    out = {"log_prob": mj.log_prob(theta, y)}
    if table.log_cdf is not None and type(theta).__name__ not in _LOOPED_TAILS:
        out["log_tail"] = mj.log_tail(theta, y, upper)
    if table.quantile is not None and type(theta).__name__ not in _LOOPED_TAILS:
        out["quantile"] = mj.quantile(theta, q)
    for name in ("mean", "mode", "variance", "entropy"):
        if getattr(table, name) is not None:
            out[name] = getattr(mj, name)(theta)
    if mj.distributions.registry.kl_fn(theta, other) is not None:
        out["kl"] = mj.kl(theta, other)
    return out


# float64 as well for the types whose fields carry axes of one example (classes, components, outputs)
_EVENT_AXES = {"Categorical", "MixtureNormal", "MultivariateNormal", "Independent", "Dirichlet", "PlackettLuce"}
_COUNTS_AND_LABELS = {"Bernoulli", "Categorical", "NegativeBinomial", "Poisson", "PlackettLuce"}
_EVENT_AXES = {"Categorical", "MixtureNormal", "MultivariateNormal", "Independent"}
_COUNTS_AND_LABELS = {"Bernoulli", "Binomial", "Categorical", "NegativeBinomial", "Poisson", "ZeroInflated"}


def _target(theta):
    """A point of the support for one example (no draw: compiling the samplers costs seconds):
    the mode for labels and counts, else the mean where it is finite and the mode where it is not."""
    if type(theta).__name__ in _COUNTS_AND_LABELS or registry.entries(theta).mean is None:  # rankings: no mean
        return mj.mode(theta)
    return jnp.where(jnp.isfinite(mj.mean(theta)), mj.mean(theta), mj.mode(theta))


@jax.jit
def _batched_and_looped(theta, other, q, upper):
    y = jax.vmap(_target)(theta)
    q = jnp.broadcast_to(q.reshape(q.shape + (1,) * (y.ndim - 1)), y.shape)
    upper = jnp.broadcast_to(upper.reshape(q.shape[:1] + (1,) * (y.ndim - 1)), y.shape)
    return _generic(theta, other, y, q, upper), jax.vmap(_generic)(theta, other, y, q, upper)


# every registered theta type (tests/cases.py's NO_CASE aside): one without an entry in BATCHED fails
REGISTERED = sorted(t.__name__ for t in registry._OPS if t.__name__ not in NO_CASE)


def test_every_theta_type_has_its_properties_checked():
    """BATCHED holds every registered theta type, those the family table's families give included; the
    reference and KL tables hold no type the registry does not."""
    assert set(BATCHED) == set(REGISTERED), set(REGISTERED) ^ set(BATCHED)
    assert {e.theta.__name__ for e in FAMILIES.values()} <= set(BATCHED)
    assert set(TYPES) | set(PAIRS) | set(_EVENT_AXES) <= set(REGISTERED)


@pytest.mark.parametrize("dtype,name", [("float32", name) for name in REGISTERED]
                         + [("float64", name) for name in sorted(_EVENT_AXES)])
@settings(max_examples=2, deadline=None, derandomize=True)
@given(data=st.data())
@pytest.mark.deep
def test_batched_theta_equals_vmap_over_its_examples(name, dtype, data):
    assert name in BATCHED, f"{name}: a registered theta type with no batched strategy in BATCHED"
    rows_st, build = BATCHED[name]
    with jax.enable_x64(dtype == "float64"):
        theta = jax.tree.map(lambda a: jnp.asarray(a, dtype), build(data.draw(rows_st)))
        other = jax.tree.map(lambda a: jnp.roll(a, 1, axis=0), theta)
        q = jnp.asarray([0.1, 0.5, 0.93], dtype)
        batched, looped = _batched_and_looped(theta, other, q, jnp.array([True, False, True]))
        if name in _EVENT_AXES:  # one draw per example (the scalar types' samplers are elementwise)
            assert mj.sample(jax.random.PRNGKey(0), theta).shape == batched["log_prob"].shape + \
                tuple(mj.event_shape(mj.take(theta, 0)))
    assert sorted(batched) == sorted(looped)
    rtol = 1e-5 if dtype == "float32" else 1e-12
    for fn in batched:
        assert batched[fn].shape == looped[fn].shape, (name, fn, batched[fn].shape, looped[fn].shape)
        np.testing.assert_allclose(np.asarray(batched[fn], np.float64), np.asarray(looped[fn], np.float64),
                                   rtol=rtol, atol=rtol, err_msg=f"{name}.{fn}")
