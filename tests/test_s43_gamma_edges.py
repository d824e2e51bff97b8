"""Session 43: the Gamma at its edges. The Bregman divergence of lgamma (the Gamma, Beta and Dirichlet KL) and the
Gamma KL between close pairs against mpmath at 50 digits, each over a whole grid in one compiled program per dtype."""

import itertools

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

from mle_jax.distributions import gamma, normal
from mle_jax.distributions.special import lgamma_bregman


def _mp_bregman(a, b):
    """``lgamma(b) - lgamma(a) - (b - a) psi(a)`` at 50 digits."""
    a, b = mp.mpf(float(a)), mp.mpf(float(b))
    return float(mp.loggamma(b) - mp.loggamma(a) - (b - a) * mp.digamma(a))


def _mp_gamma_kl(ap, bp, aq, bq):
    ap, bp, aq, bq = (mp.mpf(float(v)) for v in (ap, bp, aq, bq))
    return float((ap - aq) * mp.digamma(ap) - mp.loggamma(ap) + mp.loggamma(aq) + aq * (mp.log(bp) - mp.log(bq))
                 + ap * (bq - bp) / bp)


def _close_pairs(dtype):
    """Shapes 1e-3..1e3, the second shape ``a (1 +- g)`` for relative gaps g of 1e-6..1 (as rounded in the dtype)."""
    a = np.geomspace(1e-3, 1e3, 13).astype(dtype)
    g = np.array([1e-6, 1e-4, 1e-2, 0.3, 1.0])
    a, g, s = (v.ravel() for v in np.meshgrid(a, g, [-1.0, 1.0], indexing="ij"))
    b = (a * (1.0 + s * g)).astype(dtype)
    keep = b > 0
    return a[keep], b[keep]


@pytest.mark.deep
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lgamma_bregman_and_gamma_kl_close_pairs_against_mpmath(dtype):
    """``B(d, a) = lgamma(a + d) - lgamma(a) - d psi(a)`` to a few roundings of itself at every shape (the plain
    difference of lgammas below 10 kept ``eps lgamma(a)``: 1e6 relative at a gap of 1e-6 in float32, 5e-3 in float64;
    Stirling's form above 10 two terms of ``d/(2a)``), exactly 0 at ``d = 0``; the Gamma KL of those pairs, rates 1
    and ``1 + 1e-4``, within 1e-5 (float32) / 1e-12 (float64) (KL(Gamma(9.99, 1) || Gamma(10, 1.0001)) was 7.79e-6
    for 4.31e-6 in float32; equal means at shape 1000, 2.5e-9, 2e-4 off), 0 at p = q. One program per dtype."""
    with jax.enable_x64(dtype == np.float64), mp.workdps(50):
        a, b = _close_pairs(dtype)
        rate = np.array([1.0, 1.0 + 1e-4], dtype)
        cells = np.array([(p, 1.0, q, r) for (p, q), r in itertools.product(zip(a, b), rate)]
                         + [(9.99, 1.0, 10.0, 1.0001)], dtype)

        def f(a, b, cells):
            kl = jax.vmap(lambda v: gamma.kl(gamma.Gamma(v[0], v[1]), gamma.Gamma(v[2], v[3])))
            return (lgamma_bregman(b - a, a, b), lgamma_bregman(0.0 * a, a, a), kl(cells),
                    kl(cells[:, jnp.array([0, 1, 0, 1])]))

        out = jax.jit(f)(jnp.asarray(a), jnp.asarray(b), jnp.asarray(cells))
        value, zero, kl, same = (np.asarray(v, np.float64) for v in out)
        want = np.array([_mp_bregman(p, q) for p, q in zip(a, b)])
        want_kl = np.array([_mp_gamma_kl(*row) for row in cells])
    np.testing.assert_allclose(value, want, rtol=10 * np.finfo(dtype).eps)
    assert np.all(zero == 0.0) and np.all(same == 0.0)
    np.testing.assert_allclose(kl, want_kl, rtol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("module, theta", [(gamma, gamma.Gamma(jnp.ones(3), jnp.ones(3))),
                                           (normal, normal.Normal(jnp.zeros(3), jnp.ones(3)))])
def test_censored_log_prob_refuses_a_side_of_another_shape(module, theta):
    """A direct call with a (3, 1) or scalar side against a (3,) y broadcast to a (3, 3) or silently mixed result;
    now a ValueError naming both shapes, before any tracing (``mj.censored``'s own tests call it with the right ones)."""
    y = jnp.array([0.5, 1.0, 2.0])
    for side in (jnp.zeros((3, 1)), jnp.asarray(0.0), jnp.zeros(1)):
        with pytest.raises(ValueError, match=r"side has shape \(.*\) but y has shape \(3,\)"):
            module.censored_log_prob(theta, y, side)
