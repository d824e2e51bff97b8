"""Session 46, the GLM fit at 1e4 x 20: ``models.linear``'s batched twin (the plain dot's gradient for a small
float64 design) and the intercept-only start checked once per data set (the recipe's check memory)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import special

import mle_jax as mj
from mle_jax import glm_start, models

N, D = 200, 4


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, D))
    w, b = rng.normal(size=D) * 0.3, 0.2
    y = rng.poisson(np.exp(x @ w + b)).astype(np.float64)
    return x, y, w, b


@pytest.mark.deep  # four small programs compiled (about 1 s)
def test_rows_twin_value_and_gradient(x64):
    """The twin's value is the vmapped ``apply``'s to the bit; the recipe's NLL and gradient through it equal the
    Poisson's closed forms (``sum mu - y eta + log y!``, ``X'(mu - y)``) and the vmapped path's (float32: no twin)."""
    x, y, w, b = _data()
    m = models.linear(D)
    rows = models.linear_rows(m.apply)
    p = {"w": jnp.asarray(w), "b": jnp.asarray(b)}
    eta = jax.jit(rows)(p, jnp.asarray(x))
    assert eta.shape == (N,)
    assert bool(jnp.all(eta == jax.jit(jax.vmap(m.apply, (None, 0)))(p, jnp.asarray(x))))  # same dot, same bits
    eta_np = x @ w + b
    mu = np.exp(eta_np)
    r = mj.recipe(m.apply, mj.poisson())
    params = r.init(p)
    value, grad = jax.jit(jax.value_and_grad(lambda q: r.nll(q, x, y)))(params)
    np.testing.assert_allclose(float(value), np.sum(mu - y * eta_np + special.gammaln(y + 1)), rtol=1e-12)
    np.testing.assert_allclose(grad.model["w"], x.T @ (mu - y), rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(grad.model["b"], np.sum(mu - y), rtol=1e-11, atol=1e-11)
    # the vmapped multiply-reduce (the form the twin replaces): the same gradient to rounding
    vm = mj.recipe(lambda q, x_i: m.apply(q, x_i), mj.poisson())  # a wrapper is not linear's: vmapped
    assert models.linear_rows(vm.model) is None
    grad_vm = jax.jit(jax.grad(lambda q: vm.nll(q, x, y)))(vm.init(p))
    np.testing.assert_allclose(grad.model["w"], grad_vm.model["w"], rtol=1e-12, atol=1e-12)


def test_rows_twin_is_used_only_where_the_dot_is_faster(x64):
    """Float64 up to ``DOT_BYTES``: the twin; float32, a bigger design, several raw outputs, another function: None;
    a wrong width or missing params: the vmapped ``apply``'s own errors. Traced only (``eval_shape``)."""
    m = models.linear(D)
    rows = models.linear_rows(m.apply)
    p64 = {"w": jnp.zeros(D), "b": jnp.zeros(())}

    def shape(q, x):  # the twin's output shape and dtype, or None where it declines
        out = []
        jax.eval_shape(lambda q, x: out.append(rows(q, x)), q, x)
        return None if out[0] is None else (out[0].shape, out[0].dtype)
    assert shape(p64, np.zeros((3, D))) == ((3,), jnp.float64)
    assert shape({"w": jnp.zeros(D, jnp.float32), "b": jnp.zeros((), jnp.float32)},
                 np.zeros((3, D), np.float32)) is None
    big = models.DOT_BYTES // (8 * D) + 1  # one row past the bound (a shape only: nothing is allocated)
    assert shape(p64, jax.ShapeDtypeStruct((big, D), jnp.float64)) is None
    assert shape(p64, jax.ShapeDtypeStruct((big - 1, D), jnp.float64)) == ((big - 1,), jnp.float64)
    assert shape({"w": jnp.ones(D), "b": jnp.zeros(())}, np.ones((2, D), np.int32)) == ((2,), jnp.float64)
    assert models.linear_rows(models.linear(D, (3,)).apply) is None
    assert models.linear_rows(lambda q, x_i: x_i @ q["w"]) is None
    with pytest.raises(ValueError, match=r"one example must have shape \(4,\)"):
        shape(p64, np.zeros((3, D + 1)))
    with pytest.raises(ValueError, match="params need 'b'"):
        shape({"w": jnp.zeros(D)}, np.zeros((3, D)))
    no_b = models.linear_rows(models.linear(D, intercept=False).apply)
    assert jax.eval_shape(no_b, {"w": jnp.zeros(D)}, np.zeros((2, D))).shape == (2,)


@pytest.mark.deep  # three fit programs compiled (about 2 s)
def test_start_checked_once_per_data_set(x64):
    """A start found finite is remembered for the same y (the next fit does not wait for it); a boundary start
    (every y 0: log 0) is never remembered and raises at every fit; weights are always checked."""
    x, y, _, _ = _data(1)
    r = mj.recipe(models.linear(D).apply, mj.poisson())
    p = r.init({"w": jnp.zeros(D), "b": jnp.zeros(())})
    xj, yj = jnp.asarray(x), jnp.asarray(y)
    opt = optax.lbfgs()
    key = (glm_start._kind(r), D, (), False, jnp.dtype(jnp.float64))  # the start's static arguments
    fits = [mj.fit(r, p, xj, yj, opt, steps=200, objective=mj.Objective(tol=1e-9), run=mj.Run(progress=False),
                   start="intercept_only") for _ in range(2)]
    assert r.memory.started([yj], key)
    for res in fits:  # the score equations X'(y - mu) = 0 at the MLE, whichever fit
        mu = np.exp(x @ np.asarray(res.params.model["w"]) + float(res.params.model["b"]))
        np.testing.assert_allclose(np.c_[np.ones(N), x].T @ (y - mu), 0.0, atol=1e-6 * N)
    zeros = jnp.zeros(N)
    for _ in range(2):
        with pytest.raises(ValueError, match="boundary"):
            mj.fit(r, p, xj, zeros, opt, steps=5, run=mj.Run(progress=False), start="intercept_only")
    assert not r.memory.started([zeros], key)
    with pytest.raises(ValueError, match="boundary"):  # the weights keep only rows with y = 0
        mj.fit(r, p, xj, yj, opt, steps=5, weights=jnp.asarray(y == 0, jnp.float64), run=mj.Run(progress=False),
               start="intercept_only")
