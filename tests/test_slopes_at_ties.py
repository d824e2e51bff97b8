"""Derivatives at the points where a branch changes: ``special.log_sigmoid_pair`` / ``sigmoid_pair`` at z = 0
(the logit every fit starts from) against ``jax.nn.log_sigmoid`` / ``sigmoid`` and closed forms, and the
negative binomial's and binomial's Hessians at logit 0 against the closed form. ``abs``, ``max`` and ``min``
have a one-sided or halved slope at their tie; these choose a branch by a select, so both sides are smooth."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special as sc

import mle_jax as mj
from mle_jax.distributions.special import log_sigmoid_pair, sigmoid_pair

Z = np.array([-30.0, -2.0, -1e-8, 0.0, 1e-8, 0.7, 30.0])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_pairs_first_and_second_derivatives(dtype):
    with jax.enable_x64(dtype == "float64"):
        z = jnp.asarray(Z, dtype)

        def slopes(f):
            return jax.vmap(jax.grad(f))(z), jax.vmap(jax.grad(jax.grad(f)))(z)
        got = jax.jit(lambda: {
            "log_sig": slopes(lambda v: log_sigmoid_pair(v)[0]), "log_sig_neg": slopes(lambda v: log_sigmoid_pair(v)[1]),
            "sig": slopes(lambda v: sigmoid_pair(v)[0]), "sig_neg": slopes(lambda v: sigmoid_pair(v)[1])})()
    s = sc.expit(Z)
    want = {"log_sig": (1 - s, -s * (1 - s)), "log_sig_neg": (-s, -s * (1 - s)),
            "sig": (s * (1 - s), s * (1 - s) * (1 - 2 * s)), "sig_neg": (-s * (1 - s), -s * (1 - s) * (1 - 2 * s))}
    tol = 8 * np.finfo(dtype).eps
    for name, (first, second) in want.items():
        np.testing.assert_allclose(got[name][0], first, rtol=tol, atol=tol, err_msg=name)
        np.testing.assert_allclose(got[name][1], second, rtol=tol, atol=tol, err_msg=name)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_count_hessians_at_logit_zero(dtype):
    """d2/dz2 and d2/dr dz of the negative binomial at z = 0 (its cross term read 0 for -1/2), and d2/dz2 of the
    binomial: ``-(y + r) s (1 - s)``, ``-s``, ``-n s (1 - s)`` at s = 1/2."""
    with jax.enable_x64(dtype == "float64"):
        nb, binom = jax.jit(lambda v, z: (
            jax.hessian(lambda v: mj.log_prob(mj.NegativeBinomial(v[0], v[1]), 3.0))(v),
            jax.grad(jax.grad(lambda z: mj.log_prob(mj.Binomial(5.0, z), 2.0)))(z)))(
            jnp.asarray([1e3, 0.0], dtype), jnp.asarray(0.0, dtype))
    tol = 16 * np.finfo(dtype).eps
    np.testing.assert_allclose(nb[1, 1], -(3.0 + 1e3) * 0.25, rtol=tol)
    np.testing.assert_allclose([nb[0, 1], nb[1, 0]], [-0.5, -0.5], rtol=tol)
    np.testing.assert_allclose(binom, -5 * 0.25, rtol=tol)
