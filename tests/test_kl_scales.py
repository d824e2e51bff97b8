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


def _al_kl(p, r):
    """KL of two asymmetric Laplaces by mpmath quadrature of ``p log(p / r)`` (pieces split at both locations)."""
    def log_density(m, s, t):
        return lambda x: mp.log(t * (1 - t) / s) - (x - m) / s * (t - (1 if x < m else 0))
    (m, s, t), other = [[mp.mpf(float(v)) for v in th] for th in (p, r)]
    lp, lr = log_density(m, s, t), log_density(*other)
    width = s * 80 / min(t, 1 - t)
    return mp.quad(lambda x: mp.exp(lp(x)) * (lp(x) - lr(x)), sorted({m - width, m, other[0], m + width}))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_asymmetric_laplace_kl_against_quadrature(dtype):
    """The plain closed form kept only rounding near p = r: 3.3e-16 for 5e-17 at scales 1 + 1e-8 apart (1.2e-15 at
    scales of 1e-20); every term now vanishes at p = r on its own."""
    small = 1e-8 if dtype == "float64" else 1e-3
    pairs = [((0, 1, 0.5), (0, 1, 0.3)), ((0, 1, 0.01), (0, 1, 0.02)), ((5, 2, 0.3), (-5, 3, 0.7)),
             ((0, 1, 0.5), (0, 1 + small, 0.5)), ((0, 1e-20, 0.3), (0, 1e-20 * (1 + small), 0.3)),
             ((0, 1, 0.3), (small, 1, 0.3)), ((0, 1, 0.3), (-small, 1, 0.3)), ((0, 1, 0.3), (0, 1, 0.3 + small)),
             ((0, 1, 0.3), (small, 1 + small, 0.3 - small)), ((0, 1, 0.5), (100, 0.01, 0.5))]
    rtol = 1e-12 if dtype == "float64" else 2e-5
    with jax.enable_x64(dtype == "float64"):
        for p, r in pairs:
            p32, r32 = (tuple(jnp.asarray(v, dtype) for v in th) for th in (p, r))
            got = float(jax.jit(mj.kl)(mj.AsymmetricLaplace(*p32), mj.AsymmetricLaplace(*r32)))
            ref = float(_al_kl(p32, r32))
            assert abs(got - ref) <= rtol * ref, (dtype, p, r, got, ref)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_weibull_at_extreme_scales_against_mpmath(dtype):
    """``log(y/s)`` from the ratio: ``log y - log s`` kept ``eps |log s|``, times k in ``z^k`` (float32 k = 50,
    s = 1e-30, y = 3e-30: log_prob and log_sf 1.2e-4 relative off, log_cdf at 1.01 s 3e-5)."""
    rows = [(50.0, s, s * c) for s in (1e-30, 1e30) for c in (1.01, 3.0, 0.5)] + [(200.0, 1e10, 1.01e10), (1e-3, 1e-30, 1e-20)]
    pts = np.asarray(rows, dtype)
    with jax.enable_x64(dtype == "float64"):
        k, s, y = (jnp.asarray(pts[:, i]) for i in range(3))
        got = jax.jit(lambda k, s, y: [f(mj.Weibull(k, s), y) for f in (mj.log_prob, mj.log_cdf, mj.log_sf)])(k, s, y)
    tol = 1e-12 if dtype == "float64" else 4e-6
    for i, (kk, ss, yy) in enumerate(pts.astype(float)):
        K, S, Y = (mp.mpf(v) for v in (kk, ss, yy))
        z = (Y / S) ** K
        refs = (L(K / S) + (K - 1) * L(Y / S) - z, L(-mp.expm1(-z)), -z)
        for g, r in zip((float(a[i]) for a in got), refs):
            assert abs(g - float(r)) <= tol * max(abs(float(r)), 1.0), (dtype, kk, ss, yy, g, float(r))
