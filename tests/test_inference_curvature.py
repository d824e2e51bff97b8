"""``mle_jax._curvature``'s one-pass Hessian and meat (``sandwich``) against brute force.

References: ``jax.hessian`` of the chunk's summed NLL (the Hessian) and the outer products of
per-example scores ``vmap(grad)`` of each example's own NLL (the meat, HC0 with frequency weights:
``sum_i m_i w_i s_i s_i'``), on a GLM with a learned family parameter (family columns), a categorical
(several raw outputs per example) and a nonlinear network (mean and scale); weights, a mask, and
chunks with a rest."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import mle_jax as mj
from mle_jax import _curvature as C
from mle_jax._params import partition


def _linear(p, x_i):
    return x_i @ p["w"] + p["b"]


def _brute(r, v, parts, live):
    """(H, B) by jax.hessian and by vmap(grad) of each example's NLL over the unmasked rows ``live``."""
    at = C._params_at(parts)
    h = jax.hessian(lambda u: r.reduce(at(u), live.x, live.y, live.w))(v)
    scores = jax.vmap(jax.grad(lambda u, x_i, y_i: r.reduce(at(u), x_i[None], y_i[None])), in_axes=(None, 0, 0))(
        v, live.x, live.y)
    return h, scores.T @ (live.w[:, None] * scores)


def _both(r, v, parts, data, live):
    return C.sandwich(r, v, parts, data, size=10), C.meat(r, v, parts, data, size=data.m.shape[0]), \
        _brute(r, v, parts, live)


RNG = np.random.default_rng(8)
N = 23
X = RNG.normal(size=(N, 3))
NET = mj.mlp([3, 4, 2], jnp.tanh)
CASES = {  # a GLM with a family parameter (family columns); a categorical (3 raw outputs); a network
    "gamma": (mj.recipe(_linear, mj.gamma("mean")), {"w": jnp.array([0.3, -0.2, 0.1]), "b": jnp.array(0.1)},
              RNG.gamma(2.0, size=N)),
    "categorical": (mj.recipe(_linear, mj.categorical(3)),
                    {"w": jnp.asarray(RNG.normal(size=(3, 3))), "b": jnp.zeros(3)},
                    RNG.integers(0, 3, N).astype(np.float64)),
    "mlp": (mj.recipe(NET.apply, mj.normal("softplus")), NET.init(jax.random.PRNGKey(0)), RNG.normal(size=N))}
W, M = RNG.uniform(0.5, 2, N), RNG.uniform(size=N) < 0.8


@pytest.mark.parametrize("case", ["gamma", pytest.param("categorical", marks=pytest.mark.deep),
                                  pytest.param("mlp", marks=pytest.mark.deep)])
@pytest.mark.deep  # a few seconds of compiling: CI's deep phase, for README's 5-minute suite
def test_sandwich_is_the_brute_force_hessian_and_meat(x64, case):
    r, p0, y = CASES[case]
    parts = partition(r.init(jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), p0)))
    v = ravel_pytree(parts.trained)[0]
    data = C.Data(jnp.asarray(X), jnp.asarray(y), jnp.asarray(W), jnp.asarray(M))
    live = C.Data(*(a[M] for a in data))
    (h, b), meat, (ref_h, ref_b) = jax.jit(lambda *a: _both(r, *a))(v, parts, data, live)
    for got, ref in ((h, ref_h), (b, ref_b), (meat, ref_b)):  # the meat alone: one chunk
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10 * float(jnp.max(jnp.abs(ref))))
