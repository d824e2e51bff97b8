"""from_density: a sympy density -> a derived, checked Family (scipy.stats is the reference)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp
from scipy import stats

import mle_jax as mj
from mle_jax._from_density import expm1, log1mexp, log1p, logaddexp, logsumexp, softplus
from mle_jax.derive import from_density
from mle_jax.distributions import registry

y = sp.Symbol("y", real=True)
k = sp.Symbol("k", integer=True, nonnegative=True)
mu = sp.Symbol("mu", real=True)
beta, sigma, p = (sp.Symbol(n, positive=True) for n in ("beta", "sigma", "p"))
z = (y - mu) / beta


@pytest.fixture(scope="module")
def families():
    made = {
        "gumbel": from_density(sp.exp(-z - sp.exp(-z)) / beta, y, {mu: "identity", beta: "softplus"}, name="gumbel",
                               register=True),
        "rayleigh": from_density(y / sigma**2 * sp.exp(-y**2 / (2 * sigma**2)), y, {sigma: "exp"},
                                 support="positive", name="rayleigh", register=True),
        "geometric": from_density(p * (1 - p)**k, k, {p: "sigmoid"}, support="nonnegative_integer",
                                  name="geometric", register=True),
    }
    yield made
    for fam in made.values():  # the registry is otherwise fixed at import (tests/cases.py covers it)
        registry._OPS.pop(fam.theta_type, None)


def _scipy(name, theta, yv):
    th = [np.asarray(t, np.float64) for t in theta]
    if name == "gumbel":
        return stats.gumbel_r.logpdf(yv, th[0], th[1])
    if name == "rayleigh":
        return stats.rayleigh.logpdf(yv, scale=th[0])
    return stats.geom.logpmf(yv + 1, th[0])  # scipy counts trials, this pmf counts failures


RAW = {"gumbel": np.array([[0.3, -0.5], [-2.0, 1.5], [4.0, -3.0]]), "rayleigh": np.array([-1.0, 0.2, 2.0]),
       "geometric": np.array([-3.0, 0.4, 5.0])}
TARGET = {"gumbel": np.array([1.7, -4.0, 30.0]), "rayleigh": np.array([0.05, 1.3, 40.0]),
          "geometric": np.array([0, 3, 250])}


@functools.partial(jax.jit, static_argnums=0)
def _evaluate(fam, raw, yv):
    theta = jax.vmap(fam.theta, in_axes=(None, 0))({}, raw)
    return jax.vmap(fam.log_prob, in_axes=(None, 0, 0))({}, raw, yv), theta, mj.log_prob(theta, yv)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("name", ["gumbel", "rayleigh", "geometric"])
def test_log_density_matches_scipy(families, name, dtype):
    fam = families[name]
    with jax.enable_x64(dtype == jnp.float64):
        raw = jnp.asarray(RAW[name], dtype)
        yv = jnp.asarray(TARGET[name], dtype if name != "geometric" else jnp.int32)
        got, theta, via_theta = _evaluate(fam, raw, yv)
        assert got.dtype == dtype
    ref = _scipy(name, theta, TARGET[name])
    rtol = 2e-5 if dtype == jnp.float32 else 1e-12
    np.testing.assert_allclose(np.asarray(got, np.float64), ref, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(np.asarray(via_theta, np.float64), ref, rtol=rtol, atol=rtol)
    with jax.enable_x64(dtype == jnp.float64):
        direct = fam.log_density(theta, jnp.asarray(TARGET[name], dtype))
    np.testing.assert_allclose(np.asarray(direct, np.float64), ref, rtol=rtol, atol=rtol)


def test_unregistered_by_default():
    fam = from_density(sp.exp(-(y - mu)**2 / 2) / sp.sqrt(2 * sp.pi), y, {mu: "identity"},
                       name="unit_normal", draws=1)
    assert fam.theta_type not in registry._OPS
    theta = fam.theta({}, jnp.float32(0.5))
    np.testing.assert_allclose(fam.log_density(theta, 1.0), stats.norm.logpdf(1.0, 0.5), rtol=1e-6)


def test_recipe_nll_is_scipys(families):
    fam = families["gumbel"]
    r = mj.recipe(lambda q, x: jnp.broadcast_to(q, (x.shape[0], 2)), fam, batched=True)
    q = jnp.array([0.5, 0.7], jnp.float32)
    x = jnp.zeros((4, 1), jnp.float32)
    yv = jnp.array([-1.0, 0.0, 2.0, 5.0], jnp.float32)
    scale = float(jax.nn.softplus(0.7)) + float(np.finfo(np.float32).eps)
    np.testing.assert_allclose(float(r.nll(r.init(q), x, yv)), -stats.gumbel_r.logpdf(yv, 0.5, scale).sum(),
                               rtol=1e-5)


def test_derivation_steps_notes_and_checks(families):
    d = families["gumbel"].derivation
    assert [s.title for s in d.steps][2:4] == ["likelihood of i.i.d. examples",
                                               "take the log (monotonic: same maximiser)"]
    assert d.checks.passed and d.checks.value_difference < 1e-6
    assert any("overflow risk" in note and "exp(" in note for note in d.notes)  # exp(-(y - mu)/beta)
    assert "softplus(f_2[i])" in d.text() and "\\prod" in d.latex()
    ray = families["rayleigh"].derivation
    assert sp.simplify(ray.constant + sp.log(y)) == 0  # -log y is free of sigma: dropped
    assert not ray.notes  # exp(-y^2 / (2 sigma^2)) is bounded: no overflow note
    assert families["geometric"].derivation.checks.passed


def test_wrong_normalisation_is_a_value_error():
    with pytest.raises(ValueError, match="does not integrate to 1.*integral is"):
        from_density(sp.exp(-z - sp.exp(-z)), y, {mu: "identity", beta: "softplus"}, name="no_1_over_beta")
    with pytest.raises(ValueError, match="does not sum to 1.*sum is"):
        from_density((1 - p)**k, k, {p: "sigmoid"}, support="nonnegative_integer", name="no_p")


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match="without a link.*beta"):
        from_density(sp.exp(-z - sp.exp(-z)) / beta, y, {mu: "identity"})
    with pytest.raises(ValueError, match="unknown support"):
        from_density(sp.exp(-y) , y, {mu: "identity"}, support="reals")
    with pytest.raises(ValueError, match="unknown link"):
        from_density(sp.exp(-(y - mu)**2 / 2) / sp.sqrt(2 * sp.pi), y, {mu: "tanh"})


def test_log1pexp_rewritten_finite_at_raw_200_in_float32():
    """The logistic density written with exp: log(1 + exp(mu - y)) becomes softplus, finite at mu = 200."""
    fam = from_density(sp.exp(-(y - mu)) / (1 + sp.exp(-(y - mu)))**2, y, {mu: "identity"}, name="logistic")
    assert "softplus" in " ".join(s.title for s in fam.derivation.steps)
    raw = jnp.array([200.0, -200.0, 0.5], jnp.float32)
    yv = jnp.zeros(3, jnp.float32)
    value, grad = jax.jit(jax.vmap(jax.value_and_grad(lambda r, t: fam.log_prob({}, r, t))))(raw, yv)
    assert value.dtype == jnp.float32 and np.all(np.isfinite(value)) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(value, stats.logistic.logpdf(0.0, np.asarray(raw, np.float64)), rtol=1e-6)


def test_unsafe_forms_are_rewritten():
    from mle_jax._from_density import _rewrite
    a, b, c, x = sp.symbols("a b c x", real=True)
    notes = []
    assert _rewrite(sp.log(sp.exp(a) + sp.exp(b)), notes) == logaddexp(a, b)
    lse = _rewrite(sp.log(sp.exp(a) + sp.exp(b) + 2 * sp.exp(c)), notes)
    assert isinstance(lse, logsumexp) and set(lse.args) == {a, b, c + sp.log(2)}
    assert _rewrite(sp.log(1 + sp.exp(x)), notes) == softplus(x)
    assert _rewrite(sp.log(1 - sp.exp(-x)), notes) == log1mexp(x)
    assert _rewrite(sp.log(1 + x**2), notes) == log1p(x**2)
    assert _rewrite(sp.exp(x) - 1 + a, notes) == expm1(x) + a
    assert _rewrite(sp.log(sp.factorial(k)), notes) == sp.loggamma(k + 1)
    assert len(notes) == 7
