"""Information theory: identities, Monte Carlo KL, empirical distributions, KL -> NLL."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

import mle_jax as mj

PAIRS = {
    "normal": (mj.Normal(jnp.float32(0.3), jnp.float32(1.2)), mj.Normal(jnp.float32(-0.5), jnp.float32(0.8))),
    "bernoulli": (mj.Bernoulli(jnp.float32(1.1)), mj.Bernoulli(jnp.float32(-0.4))),
    "categorical": (mj.Categorical(jnp.array([0.5, -1.0, 2.0, 0.0])), mj.Categorical(jnp.array([0.0, 0.3, 1.0, -0.2]))),
    "independent": (mj.Independent(mj.Normal(jnp.array([0.0, 1.0]), jnp.array([1.0, 2.0]))),
                    mj.Independent(mj.Normal(jnp.array([0.5, 0.0]), jnp.array([1.5, 1.0])))),
}


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_identities(name):
    p, q = PAIRS[name]
    np.testing.assert_allclose(mj.cross_entropy(p, q), mj.entropy(p) + mj.kl(p, q), rtol=1e-6)
    assert abs(float(mj.kl(p, p))) < 1e-6 and float(mj.kl(p, p)) >= -1e-6
    assert float(mj.kl(p, q)) > 0 and float(mj.kl(q, p)) > 0


@pytest.mark.parametrize("name", sorted(PAIRS))
@pytest.mark.deep
def test_monte_carlo_kl_within_four_standard_errors(name):
    p, q = PAIRS[name]
    estimate, se = mj.kl_mc(jax.random.PRNGKey(1), p, q, 20_000)
    assert se > 0
    assert abs(float(estimate) - float(mj.kl(p, q))) < 4 * float(se)


def test_kl_is_nonnegative_on_random_pairs():
    rng = np.random.default_rng(0)
    for _ in range(50):
        p = mj.Categorical(jnp.asarray(rng.normal(scale=3, size=5), jnp.float32))
        q = mj.Categorical(jnp.asarray(rng.normal(scale=3, size=5), jnp.float32))
        assert float(mj.kl(p, q)) >= 0.0
        np.testing.assert_allclose(mj.kl(p, q), stats.entropy(special.softmax(np.asarray(p.logits, np.float64)),
                                                               special.softmax(np.asarray(q.logits, np.float64))),
                                   rtol=1e-4, atol=1e-6)


@pytest.mark.deep  # a few seconds of compiling: CI's deep phase, for README's 5-minute suite
def test_empirical_labels_and_decomposition():
    y = jnp.array([0, 2, 2, 1, 2, 0, 2, 2], jnp.int32)
    q = mj.empirical(y, 4)
    np.testing.assert_allclose(mj.probs(q), [2 / 8, 1 / 8, 5 / 8, 0.0], rtol=1e-6)
    assert q.logits[3] == -jnp.inf
    np.testing.assert_allclose(mj.entropy(q), stats.entropy([2, 1, 5]), rtol=1e-6)
    model = mj.Categorical(jnp.array([0.1, -0.3, 0.8, 0.2]))
    dec = mj.nll_decomposition(y, model)
    nll = -np.mean([np.log(special.softmax([0.1, -0.3, 0.8, 0.2])[int(v)]) for v in y])
    np.testing.assert_allclose(dec.mean_nll, nll, rtol=1e-6)
    np.testing.assert_allclose(dec.mean_nll, dec.entropy + dec.kl, rtol=1e-6)
    grad_h = jax.grad(lambda z: mj.nll_decomposition(y, mj.Categorical(z)).entropy)(model.logits)
    assert np.all(np.asarray(grad_h) == 0.0)
    grad_kl = jax.grad(lambda z: mj.nll_decomposition(y, mj.Categorical(z)).kl)(model.logits)
    grad_nll = jax.grad(lambda z: mj.nll_decomposition(y, mj.Categorical(z)).mean_nll)(model.logits)
    np.testing.assert_allclose(grad_kl, grad_nll, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError):
        mj.empirical(jnp.array([0, 5]), 3)


def test_empirical_real_data_cross_entropy_is_mean_nll():
    y = jnp.asarray(np.random.default_rng(1).normal(2.0, 0.5, size=100), jnp.float32)
    theta = mj.Normal(jnp.float32(1.8), jnp.float32(0.7))
    np.testing.assert_allclose(mj.cross_entropy(mj.empirical(y), theta),
                               -np.mean(stats.norm(1.8, 0.7).logpdf(np.asarray(y))), rtol=1e-6)
    np.testing.assert_allclose(mj.mean(mj.empirical(y)), np.mean(np.asarray(y)), rtol=1e-6)
    with pytest.raises(NotImplementedError, match="Dirac"):
        mj.log_prob(mj.empirical(y), y[0])


def test_entropy_bits_and_base():
    theta = mj.Categorical(jnp.zeros(8))
    np.testing.assert_allclose(mj.entropy(theta, base=2), 3.0, rtol=1e-6)
    np.testing.assert_allclose(mj.entropy(theta), math.log(8), rtol=1e-6)
