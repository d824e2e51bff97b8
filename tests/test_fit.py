"""fit: the optax loop fused in lax.scan, its guards, minibatches, early stopping."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import mle_jax as mj
from compiles import compiles


def linear(p, x):
    return p["w"] @ x + p["b"]


def _logistic_data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    logits = x @ np.array([1.5, -1.0, 0.5]) - 0.3
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logits))).astype(np.int32)
    return x, y


def _logistic_and_statsmodels():
    """The logistic data, statsmodels' Logit fit of them (the reference maximum) and the recipe to fit."""
    sm = pytest.importorskip("statsmodels.api")
    x, y = _logistic_data()
    return x, y, sm.Logit(y, sm.add_constant(x)).fit(disp=0), mj.recipe(linear, mj.bernoulli())


def test_second_fit_does_not_compile():
    x, y = _logistic_data()
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y)
    r = mj.recipe(linear, mj.bernoulli())
    opt = optax.adam(0.05)
    params = r.init({"w": jnp.zeros(3), "b": jnp.float32(0.0)})
    first = mj.fit(r, params, x, y, opt, steps=50)
    with compiles() as count:
        second = mj.fit(r, params, x, y, opt, steps=50)
    assert count.n == 0
    np.testing.assert_array_equal(first.history, second.history)
    assert first.history.shape == (50,) and first.history[-1] < first.history[0]


def test_logistic_regression_reaches_statsmodels_maximum(x64):
    x, y, ref, r = _logistic_and_statsmodels()
    params = r.init({"w": jnp.zeros(3, jnp.float64), "b": jnp.float64(0.0)})
    res = mj.fit(r, params, jnp.asarray(x), jnp.asarray(y), optax.lbfgs(), steps=50,
                 objective=mj.Objective(reduction="sum"))
    loglik = -float(r.nll(res.params, jnp.asarray(x), jnp.asarray(y)))
    assert abs(loglik - ref.llf) <= 1e-6 * abs(ref.llf)
    np.testing.assert_allclose(res.params.model["w"], ref.params[1:], rtol=1e-4)


def test_logistic_regression_float32_adam_close_to_statsmodels():
    x, y, ref, r = _logistic_and_statsmodels()
    params = r.init({"w": jnp.zeros(3), "b": jnp.float32(0.0)})
    res = mj.fit(r, params, jnp.asarray(x, jnp.float32), jnp.asarray(y), optax.adam(0.05), steps=2000)
    loglik = -float(r.nll(res.params, jnp.asarray(x, jnp.float32), jnp.asarray(y)))
    assert abs(loglik - ref.llf) <= 1e-5 * abs(ref.llf)


def test_nan_guard_keeps_last_finite_parameters():
    # plain gradient descent with a huge learning rate on a fixed-sigma Normal overflows to inf
    x = jnp.linspace(-1.0, 1.0, 32)
    y = 3.0 * x
    r = mj.recipe(lambda p, xi: p * xi, mj.normal(1.0))
    res = mj.fit(r, r.init(jnp.float32(0.0)), x, y, optax.sgd(1e3), steps=100)
    assert res.stopped == "non_finite"
    assert not np.isfinite(res.history[-1]) and np.all(np.isfinite(res.history[:-1]))
    step = len(res.history) - 1
    assert f"step {step}" in res.message
    assert np.isfinite(res.params.model)
    # the returned parameters are those of the last finite loss: replaying reproduces it
    np.testing.assert_allclose(r.mean_nll(res.params, x, y), res.history[-2], rtol=1e-5)


@pytest.mark.deep  # a few seconds of compiling: CI's deep phase, for README's 5-minute suite
def test_minibatch_epochs_and_reproducible_shuffles():
    x, y = _logistic_data(n=256)
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y)
    r = mj.recipe(linear, mj.bernoulli())
    params = r.init({"w": jnp.zeros(3), "b": jnp.float32(0.0)})
    opt = optax.sgd(0.1)
    a = mj.fit(r, params, x, y, opt, mj.Minibatches(32, epochs=3), key=jax.random.PRNGKey(1))
    b = mj.fit(r, params, x, y, opt, mj.Minibatches(32, epochs=3), key=jax.random.PRNGKey(1))
    c = mj.fit(r, params, x, y, opt, mj.Minibatches(32, epochs=3), key=jax.random.PRNGKey(2))
    assert a.history.shape == (24,) and a.epoch_history.shape == (3,)
    np.testing.assert_array_equal(a.history, b.history)
    assert not np.array_equal(a.history, c.history)
    np.testing.assert_allclose(a.epoch_history, a.history.reshape(3, 8).mean(axis=1), rtol=1e-6)
    # the first step's loss is the mean NLL of the first batch of the first shuffle
    perm = jax.random.permutation(jax.random.fold_in(jax.random.PRNGKey(1), 0), 256)[:32]
    np.testing.assert_allclose(a.history[0], r.mean_nll(params, x[perm], y[perm]), rtol=1e-6)
    with pytest.raises(ValueError, match="key"):
        mj.fit(r, params, x, y, opt, mj.Minibatches(32, epochs=1))


def test_early_stopping_keeps_best_validation_step():
    rng = np.random.default_rng(5)
    # an over-parameterised polynomial regression that overfits 20 points
    xs = rng.uniform(-1, 1, size=60)
    feats = np.stack([xs**k for k in range(12)], axis=1).astype(np.float32)
    ys = (np.sin(3 * xs) + 0.3 * rng.normal(size=60)).astype(np.float32)
    r = mj.recipe(lambda p, xi: p @ xi, mj.normal(0.3))
    params = r.init(jnp.zeros(12))
    train, val = (feats[:20], ys[:20]), (jnp.asarray(feats[20:]), jnp.asarray(ys[20:]))
    res = mj.fit(r, params, *train, optax.adam(0.05), steps=4000,
                 validation=mj.Validation(*val, every=10, patience=20))
    assert res.stopped == "early_stopping"
    vals = res.val_history
    best = int(vals[np.argmin(vals[:, 1]), 0])
    assert res.best_step == best
    np.testing.assert_allclose(r.mean_nll(res.params, *val), vals[:, 1].min(), rtol=1e-5)
    assert len(res.history) < 4000


def test_fit_rejects_bad_data_and_options():
    r = mj.recipe(linear, mj.bernoulli())
    params = r.init({"w": jnp.zeros(3), "b": jnp.float32(0.0)})
    x = jnp.zeros((4, 3))
    with pytest.raises(ValueError, match="bernoulli"):
        mj.fit(r, params, x, jnp.array([0, 1, 2, 0]), optax.sgd(0.1), steps=1)
    with pytest.raises(ValueError, match="steps"):
        mj.fit(r, params, x, jnp.array([0, 1, 1, 0]), optax.sgd(0.1))
    with pytest.raises(TypeError, match="unexpected keyword argument 'patience'"):
        mj.fit(r, params, x, jnp.array([0, 1, 1, 0]), optax.sgd(0.1), steps=3, patience=2)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'stepz'"):
        mj.fit(r, params, x, jnp.array([0, 1, 1, 0]), optax.sgd(0.1), stepz=3)  # type: ignore[call-arg]


@pytest.mark.deep
def test_weighted_fit_matches_duplicated_data():
    x, y = _logistic_data(n=50)
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y)
    r = mj.recipe(linear, mj.bernoulli())
    params = r.init({"w": jnp.zeros(3), "b": jnp.float32(0.0)})
    w = jnp.where(jnp.arange(50) < 10, 2.0, 1.0)
    a = mj.fit(r, params, x, y, optax.lbfgs(), steps=40, weights=w)
    xd, yd = jnp.concatenate([x, x[:10]]), jnp.concatenate([y, y[:10]])
    b = mj.fit(r, params, xd, yd, optax.lbfgs(), steps=40)
    np.testing.assert_allclose(a.params.model["w"], b.params.model["w"], rtol=1e-4, atol=1e-5)


@pytest.mark.deep
def test_tol_stops_at_convergence_and_skips_the_rest(x64):
    x, y, ref, r = _logistic_and_statsmodels()
    params = r.init({"w": jnp.zeros(3, jnp.float64), "b": jnp.float64(0.0)})
    xj, yj = jnp.asarray(x), jnp.asarray(y)
    res = mj.fit(r, params, xj, yj, optax.lbfgs(), steps=500, objective=mj.Objective(tol=1e-9))
    assert res.stopped == "converged" and "converged at step" in res.message
    assert len(res.history) < 100
    grad = jax.grad(lambda p: r.mean_nll(p, xj, yj))(res.params)
    assert float(optax.tree_utils.tree_norm(grad)) <= 1e-9
    assert abs(-float(r.nll(res.params, xj, yj)) - ref.llf) <= 1e-9 * abs(ref.llf)
    with pytest.raises(ValueError, match="Objective: tol must be a number > 0"):
        mj.Objective(tol=0.0)
