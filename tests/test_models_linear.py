"""mj.models.linear: values and derivatives equal to ``x @ w + b`` and numpy; Newton's Hessian is X'WX."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mle_jax as mj


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("raw_shape", [(), pytest.param((3,), marks=pytest.mark.deep)])  # several outputs: tensordot
def test_value_and_gradient_match_the_dot(dtype, raw_shape):
    with jax.enable_x64(dtype == jnp.float64):
        _value_and_gradient(dtype, raw_shape)


def _value_and_gradient(dtype, raw_shape):
    rng = np.random.default_rng(1)
    n, d = 50, 4
    x = rng.normal(size=(n, d))
    w = rng.normal(size=(d, *raw_shape))
    b = rng.normal(size=raw_shape)
    y = rng.normal(size=(n, *raw_shape))
    m = mj.models.linear(d, raw_shape, dtype=dtype)
    p = {"w": jnp.asarray(w, dtype), "b": jnp.asarray(b, dtype)}
    assert jax.tree.map(jnp.shape, m.init(None)) == jax.tree.map(jnp.shape, p)
    xs, ys = jnp.asarray(x, dtype), jnp.asarray(y, dtype)
    tol = 1e-5 if dtype == jnp.float32 else 1e-12

    def loss(apply, q):  # a weighted square loss: its gradient in w is X' diag(y) (eta - y)
        eta = jax.vmap(apply, (None, 0))(q, xs)
        return 0.5 * jnp.sum(ys * (eta - ys) ** 2)

    eta_np = np.tensordot(x, w, axes=1) + b
    np.testing.assert_allclose(jax.jit(jax.vmap(m.apply, (None, 0)))(p, xs), eta_np, rtol=tol, atol=tol)
    # each in one compiled program (op by op: about 105 compiles a dtype)
    g = jax.jit(jax.grad(lambda q: loss(m.apply, q)))(p)
    g_ref = jax.jit(jax.grad(lambda q: loss(lambda q, x_i: x_i @ q["w"] + q["b"], q)))(p)
    r = y * (eta_np - y)
    np.testing.assert_allclose(g["w"], np.tensordot(x, r, axes=(0, 0)), rtol=10 * tol, atol=10 * tol)
    np.testing.assert_allclose(g["b"], r.sum(0), rtol=10 * tol, atol=10 * tol)
    for k in g:
        np.testing.assert_allclose(g[k], g_ref[k], rtol=10 * tol, atol=10 * tol)
    # forward mode and second order too (Newton's per-example Jacobians and HVPs)
    h = jax.jit(jax.hessian(lambda q: loss(m.apply, q)))(p)
    h_ref = jax.jit(jax.hessian(lambda q: loss(lambda q, x_i: x_i @ q["w"] + q["b"], q)))(p)
    jax.tree.map(lambda a, c: np.testing.assert_allclose(a, c, rtol=10 * tol, atol=10 * tol), h, h_ref)


def test_no_intercept(x64):
    m = mj.models.linear(2, intercept=False, dtype=jnp.float64)
    assert set(m.init(None)) == {"w"}
    assert float(m.apply({"w": jnp.array([2.0, 3.0])}, jnp.array([1.0, -1.0]))) == -1.0


def test_newton_and_inference_hessian_is_x_w_x(x64):
    """Logistic: at the Newton MLE the gradient is 0 and mj.inference's observed information is X'WX."""
    rng = np.random.default_rng(3)
    n, d = 300, 3
    x = rng.normal(size=(n, d))
    y = (rng.random(n) < 1 / (1 + np.exp(-(x @ np.array([0.5, -1.0, 0.25]) + 0.3)))).astype(float)
    r = mj.recipe(mj.models.linear(d, dtype=jnp.float64).apply, mj.bernoulli())
    p0 = r.init(mj.models.linear(d, dtype=jnp.float64).init(None))
    res = mj.fit(r, p0, jnp.asarray(x), jnp.asarray(y), mj.newton(), steps=50,
                 objective=mj.Objective(tol=1e-12), run=mj.Run(progress=False))
    w, b = np.asarray(res.params.model["w"]), float(res.params.model["b"])
    X = np.column_stack([np.ones(n), x])  # the flat order of inference's cov: "b", then "w"
    mu = 1 / (1 + np.exp(-(X @ np.append(b, w))))
    np.testing.assert_allclose(X.T @ (y - mu), 0, atol=1e-7)
    inf = mj.inference(r, res.params, jnp.asarray(x), jnp.asarray(y))
    np.testing.assert_allclose(inf.cov, np.linalg.inv(X.T @ (X * (mu * (1 - mu))[:, None])), rtol=1e-6)


@pytest.mark.parametrize("args, match", [
    ((0,), "d"), ((2.5,), "d"), ((True,), "d"), ((3, (0,)), "raw_shape"), ((3, 4), "raw_shape"),
])
def test_bad_sizes_raise(args, match):
    with pytest.raises(ValueError, match=match):
        mj.models.linear(*args)


def test_wrong_example_shape_raises():
    m = mj.models.linear(3)
    with pytest.raises(ValueError, match="shape"):
        m.apply(m.init(None), jnp.zeros(4))
