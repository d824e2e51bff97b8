"""mj.solver: a pure fit. Equals fit step for step, under jit and vmap; implicit gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import mle_jax as mj


def _poisson(b=3, n=40, seed=0):
    """``b`` Poisson GLM data sets sharing one design."""
    rng = np.random.default_rng(seed)
    x = np.stack([np.ones(n), rng.normal(size=n)], axis=1).astype(np.float32)
    y = rng.poisson(np.exp(x @ np.array([0.5, 0.3])), size=(b, n)).astype(np.float32)
    r = mj.recipe(lambda p, x_i: x_i @ p["w"], mj.poisson())
    return r, r.init({"w": jnp.zeros(2, jnp.float32)}), jnp.asarray(x), jnp.asarray(y)


def _close(a, b, rtol=1e-5, atol=1e-6):
    for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=rtol, atol=atol)


@pytest.mark.deep  # a few seconds of compiling: CI's deep phase, for README's 5-minute suite
def test_vmapped_solve_equals_separate_fits():
    """Equal to float32 rounding: on the CPU to 1e-5; a GPU sums the vmapped and the single problems in
    other orders, which 60 Adam steps carry to about 5e-5 relative, hence 2e-4 (a wrong batching is off by
    orders more)."""
    r, p, x, ys = _poisson()
    opt = optax.adam(0.05)
    solve = mj.solver(r, opt, steps=60)
    params, history = jax.jit(jax.vmap(solve, in_axes=(None, None, 0)))(p, x, ys)
    assert history.loss.shape == (3, 60)
    for i in range(3):
        f = mj.fit(r, p, x, ys[i], opt, 60)
        _close(jax.tree_util.tree_map(lambda a: a[i], params.model), f.params.model, rtol=2e-4)
        np.testing.assert_allclose(np.asarray(history.loss[i]), f.history, rtol=2e-4)
        assert int(history.steps[i]) == f.steps_run == 60 and int(history.result[i]) == 0


@pytest.mark.deep
def test_tol_stops_each_problem_where_fit_does_and_freezes_it():
    """With tol, each problem of a vmapped solve stops at its own step (as its fit does) and stays there."""
    r, p, x, ys = _poisson(b=3)
    opt = optax.lbfgs()
    solve = mj.solver(r, opt, steps=100, tol=1e-4)
    params, history = jax.vmap(solve, in_axes=(None, None, 0))(p, x, ys)
    for i in range(3):
        f = mj.fit(r, p, x, ys[i], opt, 100, objective=mj.Objective(tol=1e-4))
        assert f.stopped == mj.Stop.CONVERGED and bool(history.converged[i])
        assert int(history.steps[i]) == f.steps_run
        np.testing.assert_allclose(np.asarray(history.loss[i, :f.steps_run]), f.history, rtol=1e-5)
        assert np.isnan(np.asarray(history.loss[i, f.steps_run:])).all()
        _close(jax.tree_util.tree_map(lambda a: a[i], params.model), f.params.model)
    one = solve(p, x, ys[0])  # eagerly, alone
    assert one[1].stopped == mj.Stop.CONVERGED


@pytest.mark.deep
def test_vmap_over_starts_and_weights():
    r, p, x, ys = _poisson(b=1)
    y = ys[0]
    solve = mj.solver(r, optax.lbfgs(), steps=100, tol=1e-5)
    starts = r.init({"w": jnp.array([[0.0, 0.0], [1.0, -1.0], [-0.5, 0.5]], jnp.float32)})
    found, h = jax.vmap(lambda q: solve(q, x, y))(starts)
    assert bool(h.converged.all())
    np.testing.assert_allclose(np.asarray(found.model["w"]), np.asarray(found.model["w"][:1]).repeat(3, 0), atol=1e-4)
    w = jnp.asarray(np.random.default_rng(1).integers(0, 3, size=(2, y.shape[0])).astype(np.float32))
    by_weights, _ = jax.vmap(lambda wi: solve(p, x, y, weights=wi))(w)
    for i in range(2):
        f = mj.fit(r, p, x, y, optax.lbfgs(), 100, weights=w[i], objective=mj.Objective(tol=1e-5))
        _close(by_weights.model["w"][i], f.params.model["w"], rtol=1e-4, atol=1e-5)


@pytest.mark.deep
def test_implicit_gradient_is_the_least_squares_hat_matrix():
    """For a Normal linear model, d beta_hat / d y = (X'WX)^{-1} X'W (a closed form) and d beta_hat / d w_i
    = (X'WX)^{-1} x_i r_i, both through jax.jacobian of a solve (implicit differentiation)."""
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        n = 12
        x = np.stack([np.ones(n), rng.normal(size=n)], axis=1)
        y = x @ np.array([1.0, 2.0]) + rng.normal(size=n)
        w = rng.uniform(0.5, 2.0, size=n)
        r = mj.recipe(lambda p, x_i: x_i @ p["w"], mj.normal(1.0))
        p = r.init({"w": jnp.zeros(2)})
        solve = mj.solver(r, optax.lbfgs(), steps=100, tol=1e-10)

        def beta(y_, w_):
            return solve(p, jnp.asarray(x), y_, weights=w_)[0].model["w"]
        dy, dw = jax.jit(jax.jacobian(beta, argnums=(0, 1)))(jnp.asarray(y), jnp.asarray(w))
        xtwx_inv = np.linalg.inv(x.T @ (w[:, None] * x))
        b = xtwx_inv @ x.T @ (w * y)
        np.testing.assert_allclose(np.asarray(beta(jnp.asarray(y), jnp.asarray(w))), b, rtol=1e-7)
        np.testing.assert_allclose(np.asarray(dy), xtwx_inv @ x.T * w, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(np.asarray(dw), xtwx_inv @ (x * (y - x @ b)[:, None]).T, rtol=1e-6, atol=1e-9)
        # the derivative with respect to the start is zero at the optimum
        ds = jax.grad(lambda q: solve(q, jnp.asarray(x), jnp.asarray(y))[0].model["w"].sum())(p)
        np.testing.assert_array_equal(np.asarray(ds.model["w"]), 0.0)


@pytest.mark.deep
def test_non_finite_loss_returns_fits_last_finite_parameters():
    """A rate a_t = a_0 - 0.3 t (Poisson, y = 0: the mean loss is a, its gradient 1) leaves the support at
    a known step: log(a) is NaN there. Each problem of a vmapped solve stops at its own step, as its fit."""
    r = mj.recipe(lambda p, x_i: jnp.log(p["a"]), mj.poisson())
    x, y = jnp.zeros((6, 1), jnp.float32), jnp.zeros(6, jnp.float32)
    starts = r.init({"a": jnp.array([1.0, 1.6], jnp.float32)})
    opt = optax.sgd(0.3)
    params, history = jax.vmap(mj.solver(r, opt, steps=20), in_axes=(0, None, None))(starts, x, y)
    np.testing.assert_array_equal(np.asarray(history.steps), [5, 7])  # 1, .7, .4, .1, -.2 and two more steps
    for i in range(2):
        f = mj.fit(r, r.init({"a": starts.model["a"][i]}), x, y, opt, 20)
        assert f.stopped == mj.Stop.NON_FINITE and int(history.result[i]) == 3 and not bool(history.finite[i])
        assert int(history.steps[i]) == f.steps_run
        _close(params.model["a"][i], f.params.model["a"])
        np.testing.assert_allclose(np.asarray(history.loss[i, :f.steps_run - 1]), f.history[:-1], rtol=1e-6)


@pytest.mark.deep
def test_minibatches_and_keyed_models_match_fit():
    r, p, x, ys = _poisson(b=1)
    steps, key = mj.Minibatches(8, epochs=3), jax.random.PRNGKey(4)
    got, h = jax.jit(mj.solver(r, optax.adam(0.05), steps))(p, x, ys[0], key=key)
    f = mj.fit(r, p, x, ys[0], optax.adam(0.05), steps, key=key)
    _close(got.model, f.params.model)
    assert int(h.steps) == f.steps_run == 15


def test_bad_inputs_are_named_before_anything_runs():
    r, p, x, ys = _poisson(b=1)
    with pytest.raises(ValueError, match="steps"):
        mj.solver(r, optax.adam(0.1), steps=0)
    with pytest.raises(ValueError, match="tol"):
        mj.solver(r, optax.adam(0.1), steps=5, tol=-1.0)
    with pytest.raises(ValueError, match="reduction"):
        mj.solver(r, optax.adam(0.1), steps=5, reduction="max")
    with pytest.raises(TypeError, match="factory"):
        mj.solver(r, optax.adam, steps=5)
    solve = mj.solver(r, optax.adam(0.1), steps=5)
    with pytest.raises(ValueError, match="examples"):
        solve(p, x, ys[0][:-1])
    with pytest.raises(ValueError, match="key"):
        solve(p, x, ys[0], key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError):  # a negative count: the family's support, checked eagerly
        solve(p, x, ys[0].at[0].set(-1.0))
    with pytest.raises(TypeError, match="Params"):
        solve({"w": jnp.zeros(2)}, x, ys[0])


@pytest.mark.deep
def test_vmapped_wald_and_robust_covariances_equal_statsmodels():
    """experiments/coverage's per-data-set intervals: mj.inference's Hessian and meat, vmapped over data
    sets fitted by one vmapped solve, give statsmodels' GLM observed and HC0 standard errors."""
    sm = pytest.importorskip("statsmodels.api")
    from experiments.coverage import simulate, wald_and_robust

    with jax.enable_x64(True):
        for model, family, sm_family in (("logistic", mj.bernoulli(), sm.families.Binomial()),
                                         ("Poisson", mj.poisson(), sm.families.Poisson())):
            x, y = simulate(model, 3, 50, seed=7)
            r = mj.recipe(lambda p, x_i: x_i @ p["b"], family)
            solve = mj.solver(r, optax.lbfgs(), 100, tol=1e-10)
            params, history = jax.vmap(solve, in_axes=(None, 0, 0))(r.init({"b": jnp.zeros(2)}), x, y)
            assert bool(history.converged.all())
            cov, robust = wald_and_robust(r, params, jnp.asarray(x), jnp.asarray(y))
            for i in range(3):
                ref = sm.GLM(y[i], x[i], family=sm_family)
                np.testing.assert_allclose(np.asarray(params.model["b"][i]), ref.fit(tol=1e-12).params, atol=1e-7)
                np.testing.assert_allclose(np.sqrt(np.diag(cov[i])), ref.fit(tol=1e-12).bse, rtol=1e-6)
                np.testing.assert_allclose(np.sqrt(np.diag(robust[i])), ref.fit(tol=1e-12, cov_type="HC0").bse,
                                           rtol=1e-6)
