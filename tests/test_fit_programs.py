"""Compiled fit programs keyed by what the optimizer computes (``mle_jax._cache.structure``): a fresh but equal
optimizer per fit (``fit(..., optax.lbfgs(), ...)`` in a loop) runs the program of the first, and an optimizer that
differs in any value (a learning rate, ``-0.0`` for ``0.0``, an array by identity) gets its own. References:
statsmodels' Poisson GLM MLE; a plain optax loop on the Poisson NLL written here in jax.numpy."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import statsmodels.api as sm

import mle_jax as mj
from mle_jax._cache import Same, structure

N, D = 400, 3
QUIET = mj.Run(progress=False)


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, D))
    return x, rng.poisson(np.exp(0.3 + x @ np.array([0.4, -0.3, 0.2]))).astype(np.float64)


LEARNING_RATE = 0.1


def _schedule_reading_a_global(count):
    return LEARNING_RATE


def test_structure_is_equal_only_for_the_same_computation():
    assert structure(optax.lbfgs()) == structure(optax.lbfgs())
    assert structure(mj.newton()) == structure(mj.newton())
    assert structure(optax.adam(1e-3)) == structure(optax.adam(1e-3))
    assert structure(optax.adam(1e-3)) != structure(optax.adam(1e-2))
    assert structure(optax.lbfgs(memory_size=5)) != structure(optax.lbfgs())
    assert structure(optax.sgd(0.1, momentum=0.0)) != structure(optax.sgd(0.1, momentum=-0.0))  # not 0.0 == -0.0
    assert structure(1) != structure(1.0) and structure(True) != structure(1)  # by type, not by ==
    rate = jnp.float32(1e-3)  # an array: by identity only (optax.adam(rate) makes a new -rate: never equal)
    assert structure(optax.scale(rate)) == structure(optax.scale(rate))
    assert structure(optax.scale(rate)) != structure(optax.scale(jnp.float32(1e-3)))
    assert structure(optax.adam(rate)) != structure(optax.adam(rate))
    shared = [1.0]  # a mutable object anywhere (written in place between fits): the optimizer by its identity
    one = optax.scale(shared)
    assert structure(one) == structure(one) and structure(optax.scale(shared)) != structure(optax.scale(shared))
    assert isinstance(structure(shared), Same) and isinstance(structure(one), Same)
    # a user's function anywhere (its globals rebound between fits): the optimizer by its identity
    assert structure(optax.sgd(_schedule_reading_a_global)) != structure(optax.sgd(_schedule_reading_a_global))
    array = np.array(1e-3)  # a NumPy array is written in place
    assert structure(optax.scale(array)) != structure(optax.scale(array))
    assert structure(optax.scale(1e-3)) == structure(optax.scale(1e-3)) != structure(optax.scale(2e-3))


def test_a_users_function_is_keyed_by_identity():
    """A user's transformation may read a module-level value that the script rebinds between fits: equal code,
    globals and closure would then compute something else, so a user's function is never shared by structure."""
    def closure(value):
        return lambda: value
    assert structure(closure(1e-3)) != structure(closure(1e-3))
    one = closure(1e-3)
    assert structure(one) == structure(one)


def _sgd_reading_a_global():
    return optax.GradientTransformation(lambda p: optax.EmptyState(),
                                        lambda u, s, p=None: (jax.tree.map(lambda g: -LEARNING_RATE * g, u), s))


def _wrapped_sgd_reading_a_global():
    inner = optax.sgd(1.0)

    @functools.wraps(inner.update)
    def update(updates, state, params=None):
        return jax.tree.map(lambda g: -LEARNING_RATE * g, updates), state
    return optax.GradientTransformation(inner.init, update)


@pytest.mark.parametrize("make", [
    pytest.param(_sgd_reading_a_global, id="a-users-transformation"),
    # optax's closure keyed by its structure with the user's function by identity (the same function) had run the
    # second fit with the first's rate compiled in (a silent 10x step); 6 s
    pytest.param(lambda: optax.sgd(_schedule_reading_a_global), id="optax-sgd-of-a-users-schedule",
                 marks=pytest.mark.deep),
    # functools.wraps(optax's update) copied optax's __module__: the user's update was keyed by its structure
    pytest.param(lambda: _wrapped_sgd_reading_a_global(), id="a-users-update-wrapped-as-optaxs", marks=pytest.mark.deep)])
def test_a_rebound_global_of_a_users_function_is_seen(x64, make):
    """Two fits with a fresh optimizer each, built on a user's function reading a module-level learning rate that
    the script rebinds between them: each fit's steps are plain gradient descent at its own rate (a loop written
    here), never the first fit's program."""
    global LEARNING_RATE
    x, y = _data()
    r = mj.recipe(mj.models.linear(D).apply, mj.poisson())
    p0 = r.init({"w": jnp.zeros(D), "b": jnp.zeros(())})
    loss = lambda m: r.mean_nll(p0._replace(model=m), x, y)  # noqa: E731
    try:
        for rate in (0.1, 0.01):
            LEARNING_RATE = rate
            res = mj.fit(r, p0, x, y, make(), steps=3, run=QUIET)
            m = p0.model
            for _ in range(3):
                m = jax.tree.map(lambda w, g: w - rate * g, m, jax.grad(loss)(m))
            np.testing.assert_allclose(res.params.model["w"], m["w"], rtol=1e-9, atol=1e-13)
    finally:
        LEARNING_RATE = 0.1


@pytest.mark.deep
def test_a_fresh_lbfgs_per_fit_compiles_nothing_and_reaches_statsmodels(x64):
    """Fits in a loop, each with a new ``optax.lbfgs()``: the second and third compile nothing (before: the loop
    and the optimizer's init again, 2-5 s each) and every one is statsmodels' Poisson MLE."""
    from compiles import compiles
    x, y = _data()
    r = mj.recipe(mj.models.linear(D).apply, mj.poisson())
    p0 = r.init({"w": jnp.zeros(D), "b": jnp.zeros(())})
    ref = sm.GLM(y, sm.add_constant(x), family=sm.families.Poisson()).fit(tol=1e-12).params
    for i in range(3):
        with compiles() as count:
            res = mj.fit(r, p0, x, y, optax.lbfgs(), steps=500, objective=mj.Objective(tol=1e-10), run=QUIET,
                         start="intercept_only")
        assert res.stopped == "converged"
        if i:
            assert count.n == 0
        got = np.concatenate([[float(res.params.model["b"])], np.asarray(res.params.model["w"])])
        np.testing.assert_allclose(got, ref, rtol=1e-7, atol=1e-9)


def _adam_reference(x, y, rate, steps):
    """``steps`` of optax's Adam at ``rate`` on the mean Poisson NLL ``mean(exp(eta) - y eta)`` (log y! dropped: no
    gradient), written here: what a fit with ``optax.adam(rate)`` must return."""
    x, y = jnp.asarray(x), jnp.asarray(y)

    def loss(p):
        eta = x @ p["w"] + p["b"]
        return jnp.mean(jnp.exp(eta) - y * eta)
    opt, p = optax.adam(rate), {"w": jnp.zeros(D), "b": jnp.zeros(())}
    state = opt.init(p)
    for _ in range(steps):
        updates, state = opt.update(jax.grad(loss)(p), state, p)
        p = optax.apply_updates(p, updates)
    return p


@pytest.mark.deep
def test_optimizers_that_differ_get_their_own_program(x64):
    """Adam at two learning rates on one recipe, alternated: each fit is its own rate's (a plain optax loop), never
    the program of the other."""
    x, y = _data(1)
    r = mj.recipe(mj.models.linear(D).apply, mj.poisson())
    p0 = r.init({"w": jnp.zeros(D), "b": jnp.zeros(())})
    refs = {rate: _adam_reference(x, y, rate, 30) for rate in (1e-2, 1e-1)}
    for rate in (1e-2, 1e-1, 1e-2, 1e-1):
        res = mj.fit(r, p0, x, y, optax.adam(rate), steps=30, run=QUIET)
        np.testing.assert_allclose(np.asarray(res.params.model["w"]), np.asarray(refs[rate]["w"]), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(float(res.params.model["b"]), float(refs[rate]["b"]), rtol=1e-9, atol=1e-12)
    assert not np.allclose(np.asarray(refs[1e-2]["w"]), np.asarray(refs[1e-1]["w"]), rtol=1e-3)
