"""``log Phi(x)`` (``normal.log_ndtr``) and its derivative ``phi(x) / Phi(x)`` against mpmath at 60 digits through
both tails and the cut points (Mills' series from -10 in float32 / -20 in float64, the upper form from 0), and the
public paths built on it (the Normal's and the log-normal's ``log_cdf`` / ``log_sf``, a censored Normal's NLL and
its gradient) at the edges against scipy.stats and mpmath.

Tolerances in ulps of the reference: 5 for the value everywhere (``Phi(-|x|)`` is XLA's erfc taken back to x
itself, ``normal.ndtr_minus_abs``: without that the upper tail, ``log Phi(x) ~ -Phi(-x)``, was 0.5 x^2 ulps off);
``4 + 3 x^2 / 4`` for the derivative above the series' cut, 4 below it (the series). Above the cut the derivative
is ``exp(-x^2/2 - log(2 pi)/2 - log Phi)``: the exponent's rounding (``x^2/2`` is 600 at x = 35) is M's relative
error, 0.3-0.55 x^2 ulps measured. JAX's own ``log_ndtr`` (the form before) is 7% off at x = 8 in float64, 4% at 5 in float32, 2e-11 at
-20 in float64, 3.5e-13 at -30."""

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest
from scipy import stats

import mle_jax as mj
from mle_jax.distributions import LogNormal, Normal, log_cdf, log_sf
from mle_jax.distributions.normal import log_ndtr

pytestmark = pytest.mark.deep  # mpmath references and three compiled programs per dtype: ~1.4 s each on the shared machine

DTYPES = ["float32", "float64"]
CUT = {"float32": -10.0, "float64": -20.0}


def _mp_log_ndtr(x):
    """``(log Phi(x), phi(x) / Phi(x))`` at 60 digits (``log1p(-Phi(-x))`` above 0: ``1 - Phi(-x)`` at 60 digits
    would round the complement away beyond x = 16)."""
    with mp.workdps(60):
        t = mp.mpf(float(x))
        value = mp.log1p(-mp.ncdf(-t)) if t > 0 else mp.log(mp.ncdf(t))
        return float(value), float(mp.npdf(t) / mp.ncdf(t))


def _grid(dtype):
    """Points through both tails, the series' cut (and one ulp either side), 0 and the old upper cuts (5, 8)."""
    cut = CUT[dtype]
    top = 12.5 if dtype == "float32" else 37.5  # Phi(-x) is still a normal float here (and flushed to 0 at top + 1)
    at = [cut, 0.0, 5.0, 8.0, 0.55, -0.55]
    edges = [np.nextafter(np.asarray(v, dtype), np.asarray(s, dtype)) for v in at for s in (-np.inf, np.inf)]
    far = [-1e4, -1e3, -100.0, 1.5 * cut, -37.5, -30.0, -25.0]
    xs = np.concatenate([np.linspace(2 * cut, top, 160), far, at, edges, [1e-30, -1e-30, top + 1.0]])
    return np.unique(np.asarray(xs, dtype))


def _ulps(got, want, dtype):
    """``|got - want|`` in ulps of ``want``; where ``want`` is below the smallest normal float (XLA flushes such
    results to 0) an error up to that smallest normal counts as 0."""
    finfo = np.finfo(dtype)
    err = np.abs(np.asarray(got, np.float64) - want)
    sub = np.abs(want) < finfo.tiny
    return np.where(sub, np.where(err <= finfo.tiny, 0.0, np.inf), err / (finfo.eps * np.where(sub, 1.0, np.abs(want))))


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_ndtr_and_its_derivative_within_rounding_of_mpmath(dtype):
    """Value and derivative on one grid, one compiled call per dtype; the edges -inf (value -inf), +inf (0, slope
    0) and NaN (NaN, NaN)."""
    xs = _grid(dtype)
    ref = np.array([_mp_log_ndtr(v) for v in xs])
    with jax.enable_x64(dtype == "float64"):
        f = jax.jit(jax.vmap(jax.value_and_grad(log_ndtr)))
        value, slope = f(jnp.asarray(xs))
        edge_value, edge_slope = f(jnp.asarray([-np.inf, np.inf, np.nan], dtype))
    assert value.dtype == slope.dtype == jnp.dtype(dtype)
    square = np.square(xs.astype(np.float64))
    value_tol = 5.0
    slope_tol = np.where(xs > CUT[dtype], 4.0 + 0.75 * square, 4.0)
    value_ulps, slope_ulps = _ulps(value, ref[:, 0], dtype), _ulps(slope, ref[:, 1], dtype)
    bad = (value_ulps > value_tol) | (slope_ulps > slope_tol)
    assert not bad.any(), list(zip(xs[bad], value_ulps[bad], slope_ulps[bad]))
    edge_value, edge_slope = np.asarray(edge_value), np.asarray(edge_slope)
    assert edge_value[0] == -np.inf and edge_value[1] == 0.0 and np.isnan(edge_value[2])
    assert edge_slope[1] == 0.0 and np.isnan(edge_slope[2])


def _z_points(dtype):
    """Standardised points where each form of log Phi is at its edge; ``y = 1.5 + 2 z`` is exact for all of them."""
    z = [-30.0, -25.0, -20.5, -20.0, -10.5, -10.0, -3.0, 0.25, 2.0, 5.0, 7.5, 8.0, 12.0]
    return np.asarray(z + ([20.0, 30.0, 37.0] if dtype == "float64" else []), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_normal_and_log_normal_tails_against_mpmath_and_scipy(dtype):
    """``log_cdf`` and ``log_sf`` of ``Normal(1.5, 2)`` at ``y = 1.5 + 2 z`` against mpmath, and of
    ``LogNormal(0, 1)`` at ``y = exp(z)`` (its z is ``log y``, one rounding) against ``scipy.stats.lognorm`` at the
    same y, each tail at the far side of the other."""
    z = _z_points(dtype)
    y = 1.5 + 2.0 * z
    y_log = np.exp(z.astype(np.float64)).astype(dtype)
    keep = np.isfinite(y_log) & (y_log > 0)
    with jax.enable_x64(dtype == "float64"):
        theta = Normal(jnp.full(z.shape, 1.5, dtype), jnp.full(z.shape, 2.0, dtype))
        lt = LogNormal(jnp.zeros(int(keep.sum()), dtype), jnp.ones(int(keep.sum()), dtype))

        @jax.jit
        def tails(y, y_log):
            return log_cdf(theta, y), log_sf(theta, y), log_cdf(lt, y_log), log_sf(lt, y_log)

        got = [np.asarray(g, np.float64) for g in tails(jnp.asarray(y), jnp.asarray(y_log[keep]))]
    eps, tiny = np.finfo(dtype).eps, np.finfo(dtype).tiny
    zz = np.square(z.astype(np.float64))
    # z is exact for the Normal: mpmath at z (scipy's own log_ndtr is ~0.3 z^2 ulps off above 0: 259 at z = 30);
    # the log-normal's z = log y is one rounding, which moves Phi(-|z|) by ~z^2/2 ulps: scipy at the same y
    ref = np.array([_mp_log_ndtr(v)[0] for v in z])
    ref_sf = np.array([_mp_log_ndtr(-v)[0] for v in z])
    for g, want, tol in ((got[0], ref, 5.0), (got[1], ref_sf, 5.0),
                         (got[2], stats.lognorm.logcdf(y_log[keep].astype(np.float64), 1.0), 5 + zz[keep]),
                         (got[3], stats.lognorm.logsf(y_log[keep].astype(np.float64), 1.0), 5 + zz[keep])):
        np.testing.assert_array_less(np.abs(g - want), tol * eps * np.abs(want) + tiny)


@pytest.mark.parametrize("dtype", DTYPES)
def test_censored_normal_nll_and_gradient_in_both_tails(dtype):
    """``mj.losses.censored(raw, y, mj.normal(1.0))``: a right-censored ``y`` (``-log Phi(raw - y)``) and a
    left-censored one (``-log Phi(y - raw)``) at ``raw = 0``, the NLL and its gradient in ``raw`` (the censored
    Normal's written derivative, ``-/+ M``) against mpmath."""
    z = _z_points(dtype)
    sides = np.concatenate([np.ones_like(z), -np.ones_like(z)])
    y = np.stack([np.concatenate([-z, z]), sides], axis=1).astype(dtype)
    ref = np.array([_mp_log_ndtr(v) for v in z])
    want = -np.concatenate([ref[:, 0], ref[:, 0]])
    want_slope = np.concatenate([-ref[:, 1], ref[:, 1]])
    with jax.enable_x64(dtype == "float64"):
        family = mj.normal(1.0)

        @jax.jit
        def nll_and_slope(raw, y):
            return jax.value_and_grad(lambda r: mj.losses.censored(r, y, family).sum())(raw), \
                mj.losses.censored(raw, y, family)

        (_, slope), nll = nll_and_slope(jnp.zeros(len(y), dtype), jnp.asarray(y))
    eps, tiny = np.finfo(dtype).eps, np.finfo(dtype).tiny
    zz = np.square(np.concatenate([z, z]).astype(np.float64))
    far = np.concatenate([z, z]) <= CUT[dtype]
    np.testing.assert_array_less(np.abs(np.asarray(nll, np.float64) - want), 5 * eps * np.abs(want) + tiny)
    slope_tol = np.where(far, 4.0, 4.0 + 0.75 * zz)
    np.testing.assert_array_less(np.abs(np.asarray(slope, np.float64) - want_slope),
                                 slope_tol * eps * np.abs(want_slope) + tiny)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_is_computed_in_float32(dtype):
    """Half precision takes float32's forms and rounds once (Veltkamp's split overflows float16 at |x| > 16, Mills'
    series' coefficients at 110410): value and slope within one rounding of mpmath's, at -12 (the series) too."""
    xs = np.asarray([-12.0, -3.0, 0.0, 2.0, 3.5], np.float32)  # log Phi(3.5) = -2.3e-4, a normal float16
    ref = np.array([_mp_log_ndtr(v) for v in xs])
    value, slope = jax.jit(jax.vmap(jax.value_and_grad(log_ndtr)))(jnp.asarray(xs, dtype))
    assert value.dtype == slope.dtype == jnp.dtype(dtype)
    eps = float(jnp.finfo(dtype).eps)
    np.testing.assert_allclose(np.asarray(value, np.float64), ref[:, 0], rtol=eps)
    np.testing.assert_allclose(np.asarray(slope, np.float64), ref[:, 1], rtol=eps)


def test_integer_arguments_give_floats():
    """Integers (int8 ... int64) are read in JAX's default float, as scipy reads them: a float, not the value cast
    back to the integer dtype (int8 gave 0 for log Phi(-3) = -6.6)."""
    from scipy import special as sp
    for dt in (np.int8, np.int16, np.int32):
        got = log_ndtr(jnp.asarray([-3, 0, 2], dt))
        assert jnp.issubdtype(got.dtype, jnp.floating)
        np.testing.assert_allclose(got, sp.log_ndtr(np.array([-3.0, 0.0, 2.0])), rtol=2e-7)
