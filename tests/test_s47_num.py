"""Session 47 edge numerics: the Beta CDFs at huge concentrations, the Beta entropy near the uniform, and the
Gamma tails' second derivatives in the rate. References are independent: scipy (Boost's incomplete beta), the
normal limit, mpmath at 50 digits, closed forms."""

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest
import scipy.special as sc
from scipy.stats import norm

import mle_jax as mj

DTYPES = [np.float32, np.float64]


@pytest.fixture(params=DTYPES, ids=["float32", "float64"])
def dtype(request):
    with jax.enable_x64(request.param == np.float64):
        yield request.param


def _beta_grid(c, dtype):
    """Points at the mean and k sd from it, each rounded to dtype (the references take the rounded point)."""
    sd = np.sqrt(0.25 / (2 * c + 1))
    ks = np.array([0.0, -0.3, 0.7, -1.0, 2.0, -3.0, 5.0, -8.0])
    return np.unique((0.5 + ks * sd).astype(dtype))


@pytest.mark.parametrize("c", [1e4, 1e6, 1e8])
def test_beta_cdfs_large_concentrations_match_scipy(dtype, c):
    """Beta(1e8, 1e8) in float32 read NaN at every x near the mean (the fraction's 1.6 sqrt(a + b) steps, each
    rounding a + 2m); 8e-3 off at 3e7, 5e-6 at 1e4. Boost's betainc (scipy) at the float32 point is the reference."""
    x = _beta_grid(c, dtype)
    theta = mj.Beta(jnp.asarray(c, dtype), jnp.asarray(c, dtype))
    lc, ls = np.asarray(mj.log_cdf(theta, jnp.asarray(x))), np.asarray(mj.log_sf(theta, jnp.asarray(x)))
    assert lc.dtype == dtype and np.all(np.isfinite(lc)) and np.all(np.isfinite(ls))
    xf = x.astype(np.float64)
    ref_c, ref_s = np.log(sc.betainc(c, c, xf)), np.log(sc.betaincc(c, c, xf))
    tol = 2e-6 if dtype == np.float32 else 1e-9
    np.testing.assert_allclose(lc, ref_c, rtol=tol, atol=tol)
    np.testing.assert_allclose(ls, ref_s, rtol=tol, atol=tol)


@pytest.mark.deep
@pytest.mark.parametrize("c", [1e12, 1e20, 1e30])
def test_beta_cdfs_beyond_the_fraction_match_the_normal_limit(dtype, c):
    """At a = b = c >= 1e12 the CDF is Phi((x - 1/2)/sd) to O(1/sqrt(a + b)) (Temme's c_0 term, below 1e-6):
    finite and exact where float32 was NaN (from a + b = 2.8e8 near the mean, and at every x from 1.8e19)."""
    sd = np.sqrt(0.25 / (2 * c + 1))
    x = np.unique(np.array([0.5, 0.5 - 2 * sd, 0.5 + 3 * sd, 0.5 - 30 * sd], dtype))
    theta = mj.Beta(jnp.asarray(c, dtype), jnp.asarray(c, dtype))
    lc, ls = np.asarray(mj.log_cdf(theta, jnp.asarray(x))), np.asarray(mj.log_sf(theta, jnp.asarray(x)))
    z = (x.astype(np.float64) - 0.5) / sd
    tol = 2e-6 if dtype == np.float32 else 1e-9
    np.testing.assert_allclose(lc, norm.logcdf(z), rtol=tol, atol=tol)
    np.testing.assert_allclose(ls, norm.logsf(z), rtol=tol, atol=tol)


def test_beta_far_tail_huge_concentrations_is_finite(dtype):
    """Beta(1e20, 1e20) at 0.3 was NaN in float32 (the fraction's (a + 2m)^2 overflowed): the large-deviation
    limit ``log I ~ a log(x/p) + b log((1 - x)/q) - log(sqrt(2 pi r) |x - p| / sqrt(pq))``, to 1e-12."""
    for c in (1e12, 1e20, 1e30):
        theta = mj.Beta(jnp.asarray(c, dtype), jnp.asarray(c, dtype))
        x = dtype(0.3)
        got = float(mj.log_cdf(theta, jnp.asarray(x)))
        xf = float(x)
        ref = (c * np.log(2 * xf) + c * np.log(2 * (1 - xf)) - 0.5 * np.log(2 * np.pi * 2 * c)
               - np.log(abs(xf - 0.5) / 0.5) + np.log(1 - xf))  # Laplace: the density at x over its log slope
        assert np.isfinite(got)
        np.testing.assert_allclose(got, ref, rtol=1e-6)


@pytest.mark.deep
def test_beta_quantile_huge_concentrations(dtype):
    """The quantile of Beta(1e8, 1e8) was 0.50099 at q = 1/2 in float32 (a NaN CDF inside the search)."""
    c = 1e8
    sd = np.sqrt(0.25 / (2 * c + 1))
    theta = mj.Beta(jnp.asarray(c, dtype), jnp.asarray(c, dtype))
    q = np.array([0.01, 0.3, 0.5, 0.9], dtype)
    got = np.asarray(mj.quantile(theta, jnp.asarray(q)))
    ref = 0.5 + sd * norm.ppf(q.astype(np.float64))
    spacing = np.finfo(dtype).eps * 0.5
    np.testing.assert_allclose(got, ref, rtol=0, atol=4 * spacing + 1e-4 * sd)


def _beta_entropy_mp(a, b):
    a, b = mp.mpf(float(a)), mp.mpf(float(b))
    return float(mp.log(mp.beta(a, b)) - (a - 1) * mp.digamma(a) - (b - 1) * mp.digamma(b)
                 + (a + b - 2) * mp.digamma(a + b))


def test_beta_entropy_near_uniform_relative(dtype):
    """The entropy vanishes at Beta(1, 1) and is -O((a-1)^2 + (b-1)^2) nearby; the direct form's terms are O(a - 1):
    float32 read +9e-7 at Beta(1, 1) and at Beta(1, 1 - 1e-6) (truth -5e-13), float64 5e-3 relative there."""
    mp.mp.dps = 50
    grid = [0.75, 0.9, 0.99, 1 - 1e-6, 1.0, 1 + 1e-6, 1.01, 1.1, 1.25]
    eps = np.finfo(dtype).eps
    assert float(mj.entropy(mj.Beta(jnp.asarray(1.0, dtype), jnp.asarray(1.0, dtype)))) == 0.0
    for a in grid:
        for b in grid:
            aa, bb = dtype(a), dtype(b)
            got = float(mj.entropy(mj.Beta(jnp.asarray(aa), jnp.asarray(bb))))
            ref = _beta_entropy_mp(aa, bb)
            assert got <= 0.0
            assert abs(got - ref) <= 64 * eps * abs(ref), (a, b, got, ref)


def test_beta_entropy_half_to_two(dtype):
    """On [0.5, 2]^2 outside the near-uniform square: within the documented tolerance of mpmath."""
    mp.mp.dps = 50
    grid = [0.5, 0.6, 0.74, 1.3, 1.7, 2.0]
    tol = 1e-5 if dtype == np.float32 else 1e-10
    for a in grid:
        for b in grid:
            aa, bb = dtype(a), dtype(b)
            got = float(mj.entropy(mj.Beta(jnp.asarray(aa), jnp.asarray(bb))))
            ref = _beta_entropy_mp(aa, bb)
            assert abs(got - ref) <= tol * max(abs(ref), 1.0)


@pytest.mark.deep
def test_gamma_log_sf_rate_hessian_closed_forms(dtype):
    """a = 1: log Q = -rate x (second derivative 0); a = 2: log Q = -rate x + log1p(rate x)
    (second derivative -x^2/(1 + rate x)^2), rate x from 1 to 1e4 (far into the upper tail), by jax.hessian and
    jax.jacfwd(jax.grad)."""
    eps = float(np.finfo(dtype).eps)
    rate, z = (v.ravel() for v in np.meshgrid([0.01, 1.0, 100.0], [1.0, 30.0, 1e3, 1e4]))
    x = z / rate
    for a in (1.0, 2.0):
        def f(r, xx):
            return mj.log_sf(mj.Gamma(jnp.asarray(a, dtype), r), xx)
        args = (jnp.asarray(rate, dtype), jnp.asarray(x, dtype))
        g = np.asarray(jax.vmap(jax.grad(f))(*args))
        hs = [np.asarray(jax.vmap(jax.hessian(f))(*args)), np.asarray(jax.vmap(jax.jacfwd(jax.grad(f)))(*args))]
        want_g = -x if a == 1.0 else -x + x / (1 + z)
        want_h = np.zeros_like(x) if a == 1.0 else -x * x / (1 + z) ** 2
        np.testing.assert_allclose(g, want_g, rtol=16 * eps)
        for h in hs:
            bound = 64 * eps * (np.abs(want_h) + x * x / (1 + z))
            assert np.all(np.abs(h - want_h) <= bound), (a, rate, z, h, want_h)


@pytest.mark.deep
def test_gamma_tails_hessian_matches_mpmath(dtype):
    """The full Hessian of log Q and log P in (concentration, rate) against mpmath's numerical second derivatives
    of log gammaincc / log gammainc at 40 digits, a in {0.5, 10, 100}, rate x from 1 to 1e4."""
    mp.mp.dps = 40
    tol = 2e-3 if dtype == np.float32 else 1e-8
    for upper in (True, False):
        fn = mj.log_sf if upper else mj.log_cdf
        for a in (0.5, 10.0, 100.0):
            for z in (1.0, 30.0, 1e3, 1e4):
                if not upper and z > 20 * a:
                    continue
                rate = 2.0
                x = z / rate

                def ref(aa, rr):
                    t = rr * x
                    return mp.log(mp.gammainc(aa, t, mp.inf, regularized=True) if upper
                                  else mp.gammainc(aa, 0, t, regularized=True))
                want = np.array([[mp.diff(lambda s: ref(s, mp.mpf(rate)), mp.mpf(a), 2),
                                  mp.diff(ref, (mp.mpf(a), mp.mpf(rate)), (1, 1))],
                                 [0.0, mp.diff(lambda s: ref(mp.mpf(a), s), mp.mpf(rate), 2)]], float)
                want[1, 0] = want[0, 1]
                f = lambda p: fn(mj.Gamma(p[0], p[1]), jnp.asarray(x, dtype))
                p = jnp.asarray([a, rate], dtype)
                for got in (np.asarray(jax.hessian(f)(p)), np.asarray(jax.jacfwd(jax.grad(f))(p))):
                    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * (1 + x * x), err_msg=f"{upper} {a} {z}")
