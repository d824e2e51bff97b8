"""Adversarial checks from the wave-9 audit (issue 22): each against an independent reference
(plain ``x @ w``, scipy, brute force). Cheap cases run in the README suite; sweeps are ``deep``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mle_jax as mj


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.bool_])
def test_linear_integer_and_bool_inputs_differentiate_like_the_dot(dtype):
    """models.linear's written derivative once failed on an int / bool x (a float0 tangent);
    the value and gradient must equal those of ``x @ w + b``."""
    x = jnp.asarray([2, 0, 1], dtype)
    m = mj.models.linear(3)
    p = {"w": jnp.asarray([0.3, -0.2, 0.5], jnp.float32), "b": jnp.asarray(0.1, jnp.float32)}

    def ref(p):
        return jnp.sin(x @ p["w"] + p["b"])

    def ours(p):
        return jnp.sin(m.apply(p, x))

    np.testing.assert_allclose(ours(p), ref(p), rtol=1e-6)
    got, want = jax.grad(ours)(p), jax.grad(ref)(p)
    np.testing.assert_allclose(got["w"], want["w"], rtol=1e-6)
    np.testing.assert_allclose(got["b"], want["b"], rtol=1e-6)
