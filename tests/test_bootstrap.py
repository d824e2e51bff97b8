"""mj.bootstrap: replicates equal a NumPy / statsmodels refit of the same resamples; the ideal se of a mean."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import mle_jax as mj
from mle_jax.bootstrap import counts


def _normal_mean(n_rows=30, seed=0):
    y = np.random.default_rng(seed).gamma(2.0, 1.5, size=n_rows).astype(np.float32)  # skewed
    r = mj.recipe(lambda p, x_i: p["mu"], mj.normal(1.0))
    return r, r.init({"mu": jnp.asarray(y.mean())}), jnp.zeros((n_rows, 1), jnp.float32), jnp.asarray(y)


@pytest.mark.deep
def test_replicates_are_the_means_of_their_resamples_and_se_the_ideal_one():
    """The MLE of a Normal mean is the mean: each replicate equals the mean of its own resample (NumPy,
    the same counts), se and the percentile interval are those of the reference replicates, and the se
    is near the ideal bootstrap se sqrt(sum (y_i - ybar)^2 / N^2) (Monte Carlo error about 1.6%)."""
    r, p, x, y = _normal_mean()
    b = mj.bootstrap(r, p, x, y, optax.lbfgs(), 30, n=2000, key=jax.random.key(1), tol=1e-6, chunk_size=500)
    y64 = np.asarray(y, np.float64)
    ref = np.array([np.average(y64, weights=np.asarray(counts(k, y.shape[0]))) for k in b.keys])
    assert b.params.model["mu"].shape == (2000,)
    np.testing.assert_allclose(np.asarray(b.params.model["mu"]), ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(b.se.model["mu"], ref.std(ddof=1), rtol=1e-4)
    lower, upper = b.conf_int(0.9)
    np.testing.assert_allclose([lower.model["mu"], upper.model["mu"]], np.quantile(ref, [0.05, 0.95]), rtol=1e-4)
    ideal = np.sqrt(np.mean((y64 - y64.mean()) ** 2) / y64.size)
    assert abs(b.se.model["mu"] / ideal - 1) < 0.08


@pytest.mark.deep
def test_logistic_replicates_match_statsmodels_frequency_weighted_fits():
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(3)
    n_rows = 80
    x = np.stack([np.ones(n_rows), rng.normal(size=n_rows)], axis=1)
    y = (rng.uniform(size=n_rows) < 1 / (1 + np.exp(-(x @ np.array([0.2, 1.0]))))).astype(np.float32)
    r = mj.recipe(lambda p, x_i: x_i @ p["w"], mj.bernoulli())
    x32 = jnp.asarray(x, jnp.float32)
    start = mj.fit(r, r.init({"w": jnp.zeros(2)}), x32, y, optax.lbfgs(), 100, objective=mj.Objective(tol=1e-6))
    b = mj.bootstrap(r, start.params, x32, y, optax.lbfgs(), 100, n=6, key=jax.random.key(0), tol=1e-6)
    for i, k in enumerate(b.keys):
        c = np.asarray(counts(k, n_rows))
        ref = sm.GLM(y, x, family=sm.families.Binomial(), freq_weights=c).fit().params
        np.testing.assert_allclose(np.asarray(b.params.model["w"][i]), ref, rtol=1e-3, atol=1e-3)


@pytest.mark.deep  # 4-10 s of compiling: CI's deep phase, for README's 5-minute suite
def test_chunks_and_masks():
    """The chunk size does not change a replicate (each draws from its own key); masked rows are never drawn."""
    r, p, x, y = _normal_mean(n_rows=12)
    # sgd(1.0) on the mean loss (mu - y)^2 / 2 (weighted mean) reaches the weighted mean in one step
    one = mj.bootstrap(r, p, x, y, optax.sgd(1.0), 2, n=10, key=jax.random.key(2))
    chunked = mj.bootstrap(r, p, x, y, optax.sgd(1.0), 2, n=10, key=jax.random.key(2), chunk_size=3)
    np.testing.assert_array_equal(np.asarray(one.params.model["mu"]), np.asarray(chunked.params.model["mu"]))
    mask = np.arange(12) % 3 != 0
    c = np.asarray(counts(jax.random.key(5), 12, np.flatnonzero(mask)))
    assert c.sum() == mask.sum() and not c[~mask].any()
    masked = mj.bootstrap(r, p, x, y, optax.sgd(1.0), 2, n=4, key=jax.random.key(2), mask=mask)
    y64 = np.asarray(y, np.float64)
    for i, k in enumerate(masked.keys):
        w = np.asarray(counts(k, 12, np.flatnonzero(mask)))
        np.testing.assert_allclose(float(masked.params.model["mu"][i]), np.average(y64, weights=w), rtol=1e-5)


def test_bad_arguments():
    r, p, x, y = _normal_mean(n_rows=5)
    with pytest.raises(ValueError, match="n must be"):
        mj.bootstrap(r, p, x, y, optax.sgd(0.1), 5, n=1, key=jax.random.key(0))
    with pytest.raises(TypeError, match="key"):
        mj.bootstrap(r, p, x, y, optax.sgd(0.1), 5, n=4, key=None)
    with pytest.raises(ValueError, match="chunk_size"):
        mj.bootstrap(r, p, x, y, optax.sgd(0.1), 5, n=4, key=jax.random.key(0), chunk_size=0)
    with pytest.raises(ValueError, match="examples"):
        mj.bootstrap(r, p, x, y[:-1], optax.sgd(0.1), 5, n=4, key=jax.random.key(0))
    b = mj.bootstrap(r, p, x, y, optax.sgd(0.1), 5, n=4, key=jax.random.key(0))
    with pytest.raises(ValueError, match="level"):
        b.conf_int(1.5)
