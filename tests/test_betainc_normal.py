"""The incomplete beta at large ``a`` and ``b`` (Temme's uniform expansion, ``incomplete._log_betainc_normal``):
Beta ``log_cdf`` / ``log_sf`` and their slopes against scipy's ``betainc`` (float64, Boost's), float32 and float64.

float32 takes the expansion from ``min(a, b) = 1e3`` on, float64 from 1e7. The fraction it replaces was NaN for
float32 Beta(1e8, 1e8) near its mean (its ``a + 2m`` rounded by 8; refused beyond ~8,000 steps) and for float64
concentrations above ~1e11 (its step budget), and in float32 kept about ``eps sqrt(a + b)`` of the value (4e-4 at
Beta(1e7, 1e7)). A CDF at ``a + b = 2e8`` moves by ~1e-3 sd for one float32 ulp of ``x``: the bound below is in
those units, ``eps (1 + kappa)`` with ``kappa = |d log I / d logit x| / |log I|`` (the value for an ``x`` a few ulps
away; ``log_betainc`` receives ``log x`` and ``log(1 - x)``, whose ``exp`` is itself an ulp off)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

import mle_jax as mj


def _grid(dtype, sizes, ratios, offsets):
    """(a, b, x) over the concentrations and ``x`` at ``offsets`` standard deviations from the mean, ``x`` as the
    dtype holds it."""
    rows = []
    for a in sizes:
        for ratio in ratios:
            b = a * ratio
            mean, sd = a / (a + b), np.sqrt(a * b / (a + b + 1)) / (a + b)
            for k in offsets:
                x = float(np.asarray(mean + k * sd, dtype))
                if 0 < x < 1:
                    rows.append((a, b, x))
    return np.array(rows).T


def _scipy_log_tails(a, b, x):
    """scipy's ``(log I, log(1 - I))``, each side's log from the smaller of ``I`` and ``1 - I`` (``log1p``)."""
    cdf, sf = special.betainc(a, b, x), special.betaincc(a, b, x)
    with np.errstate(divide="ignore"):  # log(0) on the side not taken
        return np.where(cdf < sf, np.log(cdf), np.log1p(-sf)), np.where(sf <= cdf, np.log(sf), np.log1p(-cdf))


def _log_tails(dtype, a, b, x):
    """``(log_cdf, log_sf)`` in one ``log_tail`` call (one compiled incomplete beta)."""
    with jax.enable_x64(dtype == "float64"):
        upper = jnp.asarray(np.repeat([False, True], len(a)))
        got = jax.jit(lambda a, b, x: mj.log_tail(mj.Beta(a, b), x, upper))(
            *(jnp.asarray(np.tile(v, 2), dtype) for v in (a, b, x)))
        return np.split(np.asarray(got, np.float64), 2)


@pytest.mark.deep
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_large_concentrations_against_scipy(dtype):
    """float32 at a in 1e3 .. 1e9 (main: NaN from 1e8 on, 1.1e-3 relative at Beta(1e7, 1.4e6)); float64 where
    ``min(a, b) >= 1e7`` up to 1e13 (main: NaN above ~1e11). Within ``3.6 eps (1 + kappa)`` relative (measured:
    2.4 float32, 2.5 float64). Beta(a, a) at 1/2 is ``log(1/2)`` exactly (symmetry; scipy's own value is 1e-3 off
    at a = 1e12 in float64): to 4 eps at a up to 1e12 (float32) and 1e16 (float64)."""
    sizes = (1e3, 1e4, 1e6, 1e7, 1e8, 1e9) if dtype == "float32" else (1e7, 1e9, 1e10)
    a, b, x = _grid(dtype, sizes, (1.0, 3.0, 1 / 7, 1e3), (-30, -5, -1, -0.1, 0.0, 0.3, 2, 8))
    if dtype == "float64":  # the expansion's rows (below 1e7 the fraction, unchanged)
        a, b, x = (v[np.minimum(a, b) >= 1e7] for v in (a, b, x))
    huge = np.array([1e8, 1e10, 1e12] if dtype == "float32" else [1e12, 1e14, 1e16])
    n = len(a)
    log_cdf, log_sf = _log_tails(dtype, np.concatenate([a, huge]), np.concatenate([b, huge]),
                                 np.concatenate([x, np.full(3, 0.5)]))
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(np.concatenate([log_cdf[n:], log_sf[n:]]), np.full(6, -np.log(2.0)), rtol=4 * eps)
    log_density = stats.beta.logpdf(x, a, b) + np.log(x) + np.log1p(-x)
    for got, want in zip((log_cdf[:n], log_sf[:n]), _scipy_log_tails(a, b, x)):
        # scipy's value leaves its normal range, and float32's log its own, beyond these
        kept = (want > -600) & (want < -np.finfo(dtype).tiny)
        with np.errstate(all="ignore"):  # where want is 0 or tiny (not kept)
            kappa = np.exp(log_density - want) / np.abs(want)
            err = np.abs(got - want) / np.abs(want)
        assert np.isfinite(got).all()
        assert (err[kept] <= 3.6 * eps * (1 + kappa[kept])).all(), np.max(err[kept] / (eps * (1 + kappa[kept])))


def _scales(a, b):
    """How far ``a``, ``b`` and ``x`` move the CDF by about one standard deviation of its argument (the mean
    ``a/(a + b)`` moves by ``b/(a + b)^2`` per unit of ``a``)."""
    sd = np.sqrt(a * b / (a + b + 1)) / (a + b)
    return sd * (a + b) ** 2 / b, sd * (a + b) ** 2 / a, sd


def _scipy_slopes(a, b, x):
    """Central differences (5 points) of scipy's ``log I_x(a, b)`` in ``a``, ``b`` and ``x``, steps 1e-3 of
    ``_scales`` (the value moves on that scale: truncation error ~1e-13 of the slope)."""
    rows = []
    for k, h in enumerate(s * 1e-3 for s in _scales(a, b)):
        def f(t, k=k):
            args = [a, b, x]
            args[k] = args[k] + t
            return _scipy_log_tails(*args)[0]
        rows.append((8 * (f(h) - f(-h)) - (f(2 * h) - f(-2 * h))) / (12 * h))
    return rows


@pytest.mark.deep
def test_large_concentration_slopes_against_scipy():
    """float32 ``log_cdf``'s slopes in a, b and x where the expansion runs (min(a, b) >= 1e3; main: NaN at 1e8),
    against differences of scipy's value: each slope times its ``_scales`` within ``4 eps (1 + kappa)(1 + |slope|
    scale)`` (measured: 0.80 in a, 0.72 in b; in x ``kappa`` plus the density's own ``|d log f / d logit x|``, 0.50). float64's (min(a, b) >= 1e7) agreed with the fraction's to 1.5e-10 at min(a, b) = 1e5 (the expansion
    taken there by hand)."""
    a, b, x = _grid("float32", (1e3, 1e5, 1e8), (1.0, 1 / 7, 1e3), (-8, -1, 0.0, 0.5, 3))
    grads = jax.jit(jax.vmap(jax.grad(lambda a, b, x: mj.log_cdf(mj.Beta(a, b), x), argnums=(0, 1, 2))))(
        *(jnp.asarray(v, jnp.float32) for v in (a, b, x)))
    want = _scipy_slopes(a, b, x)
    value = _scipy_log_tails(a, b, x)[0]
    kappa = np.exp(stats.beta.logpdf(x, a, b) + np.log(x) + np.log1p(-x) - value) / np.abs(value)
    # the slope in x is the density over I: the density's own condition number in x joins the CDF's
    pdf_kappa = np.abs((a - 1) * (1 - x) - (b - 1) * x)
    eps = np.finfo(np.float32).eps
    for got, ref, scale, cond in zip(grads, want, _scales(a, b), (kappa, kappa, kappa + pdf_kappa)):
        err = np.abs(np.asarray(got, np.float64) - ref) * scale
        assert (err <= 4 * eps * (1 + cond) * (1 + np.abs(ref) * scale)).all(), np.max(
            err / (eps * (1 + cond) * (1 + np.abs(ref) * scale)))
