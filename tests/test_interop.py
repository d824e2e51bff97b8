"""mj.to_tfp, mj.to_distrax, mj.from_tfp (each type's own twins, found through the registry) against TFP's
and distrax's own log_prob; mj.take."""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mle_jax as mj
from mle_jax.distributions import _twins, registry

tfd = _twins.tfd()  # imported once through the library, which scopes the substrate's import warnings
distrax = _twins.distrax()

N = 3
RNG = np.random.default_rng(1)


def pos(*shape):
    return jnp.asarray(RNG.uniform(0.5, 3.0, size=(N,) + shape), jnp.float32)


def real(*shape):
    return jnp.asarray(RNG.normal(size=(N,) + shape), jnp.float32)


def targets(*values):
    return jnp.asarray(values)


TRIL = jnp.tril(real(3, 3)) + 2.0 * jnp.broadcast_to(jnp.eye(3), (N, 3, 3))
# batched thetas (N = 3 examples), targets on their support, and whether distrax has a twin
THETAS = {
    "Normal": (mj.Normal(real(), pos()), targets(0.5, -2.0, 7.0), True),
    "Bernoulli": (mj.Bernoulli(real()), targets(0, 1, 1), True),
    "Categorical": (mj.Categorical(real(4)), targets(0, 3, 2), True),
    "Poisson": (mj.Poisson(real()), targets(0.0, 1.0, 9.0), False),
    "Laplace": (mj.Laplace(real(), pos()), targets(0.5, -2.0, 7.0), True),
    "StudentT": (mj.StudentT(pos(), real(), pos()), targets(0.5, -2.0, 30.0), False),
    "Gamma": (mj.Gamma(pos(), pos()), targets(0.1, 1.0, 4.0), True),
    "Beta": (mj.Beta(pos(), pos()), targets(0.01, 0.5, 0.9), True),
    "VonMises": (mj.VonMises(real(), pos()), targets(0.5, -3.0, 3.1), True),
    "NegativeBinomial": (mj.NegativeBinomial(pos(), real()), targets(0.0, 2.0, 11.0), False),
    "Binomial": (mj.Binomial(jnp.array([3.0, 10.0, 12.0]), real()), targets(0.0, 2.0, 12.0), False),
    "MixtureNormal": (mj.MixtureNormal(real(2), real(2), pos(2)), targets(0.5, -2.0, 7.0), True),
    "MultivariateNormal": (mj.MultivariateNormal(real(3), TRIL), real(3), True),
    "Independent": (mj.Independent(mj.Normal(real(2), pos(2))), real(2), True),
    "Independent-Categorical": (mj.Independent(mj.Categorical(real(2, 3))), jnp.array([[0, 2], [1, 1], [2, 0]]), True),
    "Dirichlet": (mj.Dirichlet(pos(3)), jnp.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1], [0.05, 0.05, 0.9]]), True),
    "PlackettLuce": (mj.PlackettLuce(pos(4)), jnp.array([[0, 1, 2, 3], [3, 1, 0, 2], [2, 0, 3, 1]]), False),
    "Exponential": (mj.Exponential(pos()), targets(0.1, 1.0, 4.0), False),
    "Weibull": (mj.Weibull(pos(), pos()), targets(0.1, 1.0, 4.0), False),
    "LogNormal": (mj.LogNormal(real(), pos()), targets(0.1, 1.0, 4.0), False),
}


def foreign(fn, *args):
    """Call into TFP / distrax, whose internals broadcast ranks (our conftest makes that an error)."""
    with jax.numpy_rank_promotion("allow"):
        return fn(*args)


@pytest.mark.parametrize("name", THETAS)
@pytest.mark.deep
def test_twins_have_the_same_log_prob(name):
    theta, y, in_distrax = THETAS[name]

    @jax.jit
    def together(theta, y):
        ours = jax.vmap(mj.log_prob)(theta, y)
        back = mj.from_tfp(mj.to_tfp(theta))
        tfp_log_prob = foreign(lambda: mj.to_tfp(theta).log_prob(y))
        return ours, tfp_log_prob, in_distrax and foreign(lambda: mj.to_distrax(theta).log_prob(y)), back

    ours, tfp_log_prob, distrax_log_prob, back = together(theta, y)
    assert ours.shape == (N,) and np.all(np.isfinite(ours))
    np.testing.assert_allclose(ours, tfp_log_prob, rtol=2e-5, atol=2e-5)
    if in_distrax:
        np.testing.assert_allclose(ours, distrax_log_prob, rtol=2e-5, atol=2e-5)
    assert type(back) is type(theta)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), back, theta)


def test_one_example_converts_to_batch_shape_scalar():
    theta = mj.take(THETAS["Categorical"][0], 1)
    dist = mj.to_tfp(theta)
    assert tuple(dist.batch_shape) == () and tuple(dist.event_shape) == ()
    np.testing.assert_allclose(foreign(dist.log_prob, 2), mj.log_prob(theta, jnp.asarray(2)), rtol=1e-6)


FOREIGN = {  # TFP distributions built as users build them: other parameterisations, broadcast parameters
    "Normal broadcast": (tfd.Normal(jnp.zeros(3), 2.0), jnp.array([0.5, -1.0, 3.0])),
    "Bernoulli probs": (tfd.Bernoulli(probs=jnp.array([0.1, 0.5, 0.9])), jnp.array([1, 0, 1])),
    "Categorical probs": (tfd.Categorical(probs=jnp.array([0.2, 0.3, 0.5])), jnp.asarray(2)),
    "Poisson rate": (tfd.Poisson(rate=jnp.array([0.5, 4.0])), jnp.array([3.0, 0.0])),
    "Gamma log_rate": (tfd.Gamma(2.0, log_rate=jnp.array([0.0, 1.0])), jnp.array([0.5, 2.0])),
    "NegativeBinomial probs": (tfd.NegativeBinomial(3.0, probs=jnp.array([0.2, 0.7])), jnp.array([1.0, 5.0])),
    "MVN diag": (tfd.MultivariateNormalDiag(jnp.ones(2), jnp.array([0.5, 2.0])), jnp.array([0.0, 1.0])),
    "MVN negative diagonal": (tfd.MultivariateNormalTriL(scale_tril=jnp.array([[-1.0, 0.0], [0.5, 2.0]])),
                              jnp.array([0.3, -1.0])),
    "Mixture": (tfd.MixtureSameFamily(tfd.Categorical(probs=jnp.array([0.3, 0.7])),
                                      tfd.Normal(jnp.array([-1.0, 1.0]), 0.5)), jnp.asarray(0.2)),
    "Independent": (tfd.Independent(tfd.Laplace(jnp.zeros((2, 3)), 1.0), 1), jnp.ones((2, 3))),
}


@pytest.mark.parametrize("name", FOREIGN)
def test_from_tfp_keeps_the_log_prob(name):
    dist, y = FOREIGN[name]

    @jax.jit
    def together(y):
        theta = mj.from_tfp(dist)
        ours = jax.vmap(mj.log_prob)(theta, y) if len(dist.batch_shape) else mj.log_prob(theta, y)
        return ours, foreign(dist.log_prob, y)

    ours, theirs = together(y)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_kl_of_converted_thetas_equals_tfp():
    p, q = tfd.Normal(jnp.array([0.0, 1.0]), 2.0), tfd.Normal(1.0, jnp.array([0.5, 3.0]))
    ours, theirs = jax.jit(lambda: (jax.vmap(mj.kl)(mj.from_tfp(p), mj.from_tfp(q)),
                                    foreign(tfd.kl_divergence, p, q)))()
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_unconvertible_raise_clearly():
    with pytest.raises(TypeError, match="no mle_jax theta for tensorflow_probability Logistic"):
        mj.from_tfp(tfd.Logistic(0.0, 1.0))
    with pytest.raises(TypeError, match="no mle_jax theta"):
        mj.from_tfp(tfd.Independent(tfd.Normal(jnp.zeros((2, 3)), 1.0), 2))
    with pytest.raises(TypeError, match="distrax has no Poisson; use mj.to_tfp"):
        mj.to_distrax(THETAS["Poisson"][0])
    with pytest.raises(TypeError, match="no TFP twin for tuple"):
        mj.to_tfp((1.0, 2.0))


def test_every_twin_is_registered_in_both_directions():
    """Every type with a TFP twin converts back from the TFP class names it registers, and the names
    the registry dispatches on are TFP's own classes."""
    tables = {kind: table for kind, table in registry._OPS.items() if table.to_tfp is not None}
    assert {kind.__name__ for kind in tables} == {name.split("-")[0] for name in THETAS}
    for kind, table in tables.items():
        assert table.from_tfp is not None and table.tfp_names, kind
        assert all(isinstance(getattr(tfd, name), type) for name in table.tfp_names), kind


def test_missing_twins_use_the_documented_fallback():
    with pytest.raises(TypeError, match="mj.to_tfp: no TFP twin for Empirical"):
        mj.to_tfp(mj.empirical(jnp.array([0.5, 1.0])))
    with pytest.raises(TypeError, match="mj.to_distrax: no distrax twin for Empirical"):
        mj.to_distrax(mj.empirical(jnp.array([0.5, 1.0])))
    with pytest.raises(TypeError, match="distrax has no Poisson; use mj.to_tfp"):  # inside an Independent too
        mj.to_distrax(mj.Independent(mj.Poisson(jnp.zeros(2))))
    with pytest.raises(TypeError, match="no TFP twin for Normal .Normal is a tensorflow_probability distribution"):
        mj.to_tfp(tfd.Normal(0.0, 1.0))
    with pytest.raises(TypeError, match="no mle_jax theta for distrax Normal"):  # a name alone does not convert
        mj.from_tfp(distrax.Normal(0.0, 1.0))
    with pytest.raises(TypeError, match="MixtureSameFamily of Laplace components; convertible: .*MixtureSameFamily"):
        mj.from_tfp(tfd.MixtureSameFamily(tfd.Categorical(logits=jnp.zeros(2)), tfd.Laplace(jnp.zeros(2), 1.0)))
    with pytest.raises(TypeError, match="Independent of 2 reinterpreted axes"):
        mj.from_tfp(tfd.Independent(tfd.Normal(jnp.zeros((2, 3)), 1.0), 2))


def test_missing_extra_names_it(monkeypatch):
    for name in [m for m in sys.modules if m.startswith(("tensorflow_probability", "distrax"))]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "distrax", None)
    with pytest.raises(ImportError, match=r"pip install 'mle_jax\[tfp\]'"):
        mj.to_tfp(THETAS["Normal"][0])
    with pytest.raises(ImportError, match=r"pip install 'mle_jax\[distrax\]'"):
        mj.to_distrax(THETAS["Normal"][0])


def test_take_picks_examples():
    theta = THETAS["MixtureNormal"][0]
    one = mj.take(theta, 1)
    assert type(one) is mj.MixtureNormal and one.loc.shape == (2,)
    np.testing.assert_array_equal(one.scale, theta.scale[1])
    np.testing.assert_array_equal(mj.take(theta, -1).logits, theta.logits[2])
    np.testing.assert_array_equal(mj.take(theta, slice(1, None)).loc, theta.loc[1:])
    np.testing.assert_array_equal(mj.take(theta, jnp.array([2, 0])).loc, theta.loc[jnp.array([2, 0])])
    nested = mj.take(THETAS["Independent"][0], 0)
    assert nested.base.loc.shape == (2,)
    traced = jax.jit(mj.take)(THETAS["Normal"][0], 5)
    assert np.isnan(traced.loc) and np.isnan(traced.scale)  # never silently the last example


def test_take_matches_the_recipe_per_example():
    r = mj.recipe(lambda p, x: p * x, mj.normal("softplus"))
    params = r.init(jnp.array([1.0, 0.5]))
    x, y = jnp.array([[1.0], [2.0], [-3.0]]), jnp.array([0.5, 0.5, 0.5])
    theta = r.predict(params, x)
    np.testing.assert_allclose(mj.log_prob(mj.take(theta, 2), y[2]), r.log_prob(params, x, y)[2], rtol=1e-6)


@pytest.mark.parametrize("index, error, text", [
    (3, IndexError, "index 3 is out of range for a theta of 3 examples"),
    (-4, IndexError, "index -4 is out of range"),
    (jnp.array([0, 7]), IndexError, "index 7"),
    (1.0, TypeError, "must be an integer"),
])
def test_take_rejects_bad_indices(index, error, text):
    with pytest.raises(error, match=text):
        mj.take(THETAS["Normal"][0], index)


def test_take_rejects_non_batches():
    with pytest.raises(ValueError, match="holds one example"):
        mj.take(mj.Normal(jnp.float32(0.0), jnp.float32(1.0)), 0)
    with pytest.raises(ValueError, match="disagree on the number of examples"):
        mj.take(mj.Normal(jnp.zeros(2), jnp.ones(3)), 0)
    with pytest.raises(TypeError, match=r"not an mle_jax theta; convert it with mj.from_tfp"):
        mj.take(tfd.Normal(jnp.zeros(2), 1.0), 0)
