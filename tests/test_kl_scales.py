"""Closed-form KLs of the scale families against mpmath at 40 digits where the two scales (rates) are close and
tiny or huge: ``log a - log b`` at a = 1e-20 (1 + 1e-8) kept ``eps |log a|`` of a difference of 1e-8, 2e-7 relative
of a KL of 5e-17 (now ``special.log_ratio``), and where the ratio is far from 1 or would overflow (1e-30 against
1e30). References at the parameters as the dtype holds them."""

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

import mle_jax as mj

mp.mp.dps = 40
L = mp.log


def _kls(a, b):
    """(name, p, q, reference KL(p || q)) with the scale (rate) a in p and b in q."""
    A, B = mp.mpf(float(a)), mp.mpf(float(b))
    half = mp.mpf(1) / 2
    return [
        ("exponential", mj.Exponential(a), mj.Exponential(b), L(A / B) + B / A - 1),
        ("normal", mj.Normal(0 * a, a), mj.Normal(0 * b, b), L(B / A) + A ** 2 / (2 * B ** 2) - half),
        ("log_normal", mj.LogNormal(0 * a, a), mj.LogNormal(0 * b, b), L(B / A) + A ** 2 / (2 * B ** 2) - half),
        ("laplace", mj.Laplace(0 * a, a), mj.Laplace(0 * b, b), L(B / A) + A / B - 1),
        ("gamma", mj.Gamma(0 * a + 3, a), mj.Gamma(0 * b + 3, b), 3 * (L(A / B) + B / A - 1)),
        ("weibull", mj.Weibull(0 * a + 2, a), mj.Weibull(0 * b + 2, b), (A / B) ** 2 - 1 - 2 * L(A / B)),
    ]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_scale_family_kls_against_mpmath(dtype):
    delta = 1e-8 if dtype == "float64" else 1e-3
    pairs = [(s, s * (1 + delta)) for s in (1e-20, 1.0, 1e20)] + [(1e-20, 3e-20), (2.0, 0.7), (1e-30, 1e30), (1e30, 1e-30)]
    rtol = 1e-12 if dtype == "float64" else 2e-6
    with jax.enable_x64(dtype == "float64"):
        for a, b in pairs:
            a32, b32 = jnp.asarray(a, dtype), jnp.asarray(b, dtype)
            for name, p, q, ref in _kls(a32, b32):
                got = float(jax.jit(mj.kl)(p, q))
                ref = float(ref)
                if not np.isfinite(ref) or ref > float(np.finfo(dtype).max):
                    assert got == np.inf or got > 1e30, (name, a, b, got)
                    continue
                assert abs(got - ref) <= rtol * ref, (dtype, name, a, b, got, ref)
