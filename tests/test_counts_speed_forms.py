"""The speed forms of the negative binomial, binomial and Gamma densities (issue 22): one branch per example on
the data, no XLA ``lgamma`` / ``digamma`` per example. Each new form against mpmath at 40 digits (or a closed
form), float32 and float64, on both sides of its branch edge (counts 9 / 10, concentration 9.99 / 10) and at the
extremes (y = 0, huge counts, tiny and huge r, n = y, logits +-30 and +-inf). One compiled call per function and
dtype."""

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

import mle_jax as mj
from mle_jax.distributions import special

mp.mp.dps = 40
DTYPES = ["float32", "float64"]
# the family-level checks compile a vmapped gradient (3-5 s each): float32, where the forms are tightest, in the
# README suite, float64 in CI's deep phase
FAMILY_DTYPES = ["float32", pytest.param("float64", marks=pytest.mark.deep)]
TOL = {"float32": dict(rtol=1e-5, atol=1e-5), "float64": dict(rtol=1e-10, atol=1e-10)}
# where the value is the sum of terms of size y log r that cancel (y = 9 at r = 1e8), float32 keeps 1e-5 of them
SUM_TOL = {"float32": dict(rtol=1e-5, atol=1e-4), "float64": dict(rtol=1e-10, atol=1e-9)}


def _f(v, dtype):
    return np.asarray(v, dtype).astype(float)


def _lgamma_ratio(r, y):
    return mp.loggamma(y + r) - mp.loggamma(r) - mp.loggamma(y + 1)


def _nb(r, z, y):
    r, z, y = mp.mpf(r), mp.mpf(z), mp.mpf(y)
    return _lgamma_ratio(r, y) - r * mp.log1p(mp.exp(z)) + y * (z - mp.log1p(mp.exp(z)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_speed_helpers_against_mpmath(dtype):
    """``log_rising_ratio_small``, ``digamma_rise_small`` and its ``D / P`` form for y = 0..9 at r from 1e-20 to
    1e30 (no overflow, no cancellation), ``lgamma_minus_stirling`` across 10, ``digamma_gap_large`` with x below and above 10 (x = 1e7,
    d = 10: ``log1p`` of the increment), ``lgamma_digamma_lanczos`` on (0, 10] down to 1e-20 and at psi's root,
    and the shared ``log_sigmoid_pair`` / ``sigmoid_pair`` at +-30, +-100 and +-inf."""
    rs = [1e-20, 1e-3, 0.3, 1.0, 2.5, 9.99, 10.0, 1e4, 1e7, 1e30]
    r, y = (a.ravel() for a in np.meshgrid(_f(rs, dtype), np.arange(10.0)))
    xs = _f([1e-20, 1e-3, 0.5, 1.0, 1.4616321449683623, 2.0, 3.3, 9.99, 10.0, 10.5, 37.0, 1e4], dtype)
    gaps = _f([[0.5, 9.5], [3.0, 10.0], [9.99, 10.0], [10.0, 0.0], [10.0, 10.0], [1e7, 10.0], [1e4, 1e6]], dtype)
    small = _f([1e-20, 1e-3, 0.5, 1.0, 1.4616321449683623, 2.0, 3.3, 7.0, 9.99, 10.0], dtype)
    zs = _f([-np.inf, -100.0, -30.0, -1.0, 0.0, 2.0, 30.0, 100.0, np.inf], dtype)
    with jax.enable_x64(dtype == "float64"):
        def run(r, y, xs, gaps, small, zs):
            log_p, log_s = special.log_rising_ratio_small(r, y)
            return (y * log_s + log_p, (special.digamma_rise_small(r, y), special.digamma_rise_small_ratio(r, y)),
                    special.lgamma_minus_stirling(xs),
                    special.digamma_gap_large(gaps[:, 0], gaps[:, 1]), special.lgamma_digamma_lanczos(small),
                    special.log_sigmoid_pair(zs), special.sigmoid_pair(zs))
        got = jax.jit(run)(*(jnp.asarray(v, dtype) for v in (r, y, xs, gaps, small, zs)))
    got = jax.tree.map(lambda v: np.asarray(v, float), got)
    # scale: the result's own size, but the (y log r)-sized terms of the log ratio at huge r
    with mp.workdps(80):  # lgamma(1e30) is 7e31: 40 digits would leave 1e-8
        ratio = [float(_lgamma_ratio(mp.mpf(a), mp.mpf(b))) for a, b in zip(r, y)]
    scale = np.maximum(1.0, y * np.abs(np.log(r)))
    err = np.abs(got[0] - ratio) / scale
    assert err.max() < (3e-6 if dtype == "float32" else 1e-13), (err.max(), r[err.argmax()], y[err.argmax()])
    rise = [float(mp.digamma(mp.mpf(a) + b) - mp.digamma(mp.mpf(a))) for a, b in zip(r, y)]
    np.testing.assert_allclose(got[1][0], rise, rtol=TOL[dtype]["rtol"], atol=0)
    np.testing.assert_allclose(got[1][1], rise, rtol=TOL[dtype]["rtol"], atol=0)
    corr = [float(mp.loggamma(x) - ((mp.mpf(x) - 0.5) * mp.log(x) - x + mp.log(2 * mp.pi) / 2)) for x in xs]
    # below 10 the difference of lgamma and Stirling's terms, each up to -log x = 46 at x = 1e-20
    assert np.all(np.abs(got[2] - corr) <= TOL[dtype]["atol"] * np.maximum(1, -np.log(xs)))
    gap = [float(mp.digamma(mp.mpf(a) + mp.mpf(b)) - mp.digamma(mp.mpf(a))) for a, b in gaps]
    np.testing.assert_allclose(got[3], gap, rtol=TOL[dtype]["rtol"], atol=0)
    lg = [float(mp.loggamma(x)) for x in small]
    psi = [float(mp.digamma(x)) for x in small]
    np.testing.assert_allclose(got[4][0], lg, rtol=TOL[dtype]["rtol"], atol=TOL[dtype]["atol"])
    np.testing.assert_allclose(got[4][1], psi, rtol=TOL[dtype]["rtol"], atol=TOL[dtype]["atol"])
    tiny = np.finfo(dtype).tiny  # log sig(100) = -3.7e-44 is below float32's normal numbers (flushed to 0)
    log_sig = [float(-mp.log1p(mp.exp(-z))) if np.isfinite(z) else (0.0 if z > 0 else -np.inf) for z in zs]
    log_sig_neg = [float(-mp.log1p(mp.exp(z))) if np.isfinite(z) else (0.0 if z < 0 else -np.inf) for z in zs]
    np.testing.assert_allclose(got[5][0], log_sig, rtol=TOL[dtype]["rtol"], atol=tiny)
    np.testing.assert_allclose(got[5][1], log_sig_neg, rtol=TOL[dtype]["rtol"], atol=tiny)
    sig = [float(1 / (1 + mp.exp(-z))) if np.isfinite(z) else float(z > 0) for z in zs]
    sig_neg = [float(1 / (1 + mp.exp(z))) if np.isfinite(z) else float(z < 0) for z in zs]
    np.testing.assert_allclose(got[6][0], sig, rtol=TOL[dtype]["rtol"], atol=tiny)
    np.testing.assert_allclose(got[6][1], sig_neg, rtol=TOL[dtype]["rtol"], atol=tiny)


@pytest.mark.parametrize("dtype", FAMILY_DTYPES)
def test_negative_binomial_forms_and_their_derivatives_at_the_branch_edges(dtype):
    """``log_prob`` on both sides of y = 10 (the exact product below, the saddle point with ``G(r)`` for any r
    above: r = 0.3 and 9.99 with y = 10 and 1e5 are new there), tiny and huge r, y = 0 at logits +-inf; d/dr
    against mpmath's digamma, d/dz against the closed form ``y sig(-z) - r sig(z)``."""
    rows = _f([[r, z, y] for r in [1e-6, 0.3, 1.0, 9.99, 10.0, 37.0, 1e6]
               for y in [0.0, 1.0, 9.0, 10.0, 11.0, 250.0, 1e5] for z in [-4.0, 0.5]]
              + [[1e8, -17.0, 9.0], [1e8, -17.0, 10.0], [1e8, -17.0, 3e8]], dtype)
    edges = _f([[3.0, -np.inf, 0.0], [3.0, -np.inf, 4.0], [3.0, np.inf, 12.0], [3.0, 30.0, 0.0],
                [3.0, -30.0, 0.0], [3.0, 0.0, -1.0], [3.0, 0.0, 2.5]], dtype)
    with jax.enable_x64(dtype == "float64"):
        def f(r, z, y):
            return mj.log_prob(mj.NegativeBinomial(r, z), y)

        def run(p, e):
            grad = jax.vmap(jax.grad(f, argnums=(0, 1)))(p[:, 0], p[:, 1], p[:, 2])
            return f(p[:, 0], p[:, 1], p[:, 2]), grad, f(e[:, 0], e[:, 1], e[:, 2])
        value, (d_r, d_z), edge = jax.jit(run)(jnp.asarray(rows, dtype), jnp.asarray(edges, dtype))
    value, d_r, d_z, edge = (np.asarray(v, float) for v in (value, d_r, d_z, edge))
    r, z, y = rows.T
    truth = np.array([float(_nb(*row)) for row in rows])
    scale = np.maximum(1.0, y * np.abs(np.log(r)))  # the cancelling y log r of the product form
    tol = SUM_TOL[dtype]
    assert np.all(np.abs(value - truth) <= tol["atol"] * scale + tol["rtol"] * np.abs(truth))
    # d/dr = psi(y + r) - psi(r) + log sig(-z): mpmath's derivative of the reference
    ref_r = [float(mp.digamma(mp.mpf(b) + a) - mp.digamma(a) - mp.log1p(mp.exp(c))) for a, c, b in rows]
    np.testing.assert_allclose(d_r, ref_r, rtol=1e-4 if dtype == "float32" else 1e-9,
                               atol=1e-5 if dtype == "float32" else 1e-11)
    closed = y / (1 + np.exp(z)) - r / (1 + np.exp(-z))
    assert np.all(np.abs(d_z - closed) <= TOL[dtype]["rtol"] * np.maximum(1, np.maximum(y, r)))  # the two cancel
    np.testing.assert_allclose(edge, [0.0, -np.inf, -np.inf, float(-3 * mp.log1p(mp.exp(30))),
                                      float(-3 * mp.log1p(mp.exp(-30))), -np.inf, -np.inf], **TOL[dtype])


@pytest.mark.parametrize("dtype", FAMILY_DTYPES)
def test_binomial_forms_at_the_branch_edges(dtype):
    """``log_prob`` with the smaller count 9 / 10 of n = 19, 20, 1e6 (the exact product ``C(M + m, m)`` below,
    Loader's saddle point above), y = 0 and y = n (exactly ``n log sig(-+z)``), logits +-30 and +-inf; d/dz against
    the closed form ``y sig(-z) - (n - y) sig(z)``."""
    rows = _f([[n, z, y] for n, ys in [(19.0, [0.0, 9.0, 10.0, 19.0]), (20.0, [9.0, 10.0, 11.0, 20.0]),
                                       (1e6, [0.0, 9.0, 10.0, 5e5, 1e6 - 9.0, 1e6 - 10.0, 1e6])]
               for y in ys for z in [-30.0, -2.0, 0.0, 1.5, 30.0]], dtype)
    edges = _f([[5.0, -np.inf, 0.0], [5.0, -np.inf, 2.0], [5.0, np.inf, 5.0], [5.0, np.inf, 4.0],
                [5.0, 0.0, 6.0], [5.0, 0.0, 1.5]], dtype)
    with jax.enable_x64(dtype == "float64"):
        def f(n, z, y):
            return mj.log_prob(mj.Binomial(n, z), y)

        def run(p, e):
            return (f(p[:, 0], p[:, 1], p[:, 2]), jax.vmap(jax.grad(f, argnums=1))(p[:, 0], p[:, 1], p[:, 2]),
                    f(e[:, 0], e[:, 1], e[:, 2]))
        value, d_z, edge = jax.jit(run)(jnp.asarray(rows, dtype), jnp.asarray(edges, dtype))
    value, d_z, edge = (np.asarray(v, float) for v in (value, d_z, edge))
    n, z, y = rows.T

    def ref(n, z, y):
        n, z, y = mp.mpf(n), mp.mpf(z), mp.mpf(y)
        return float(mp.log(mp.binomial(n, y)) - y * mp.log1p(mp.exp(-z)) - (n - y) * mp.log1p(mp.exp(z)))
    truth = np.array([ref(*row) for row in rows])
    small = np.minimum(y, n - y)
    scale = np.maximum(1.0, small * np.log1p(n))  # the product form's cancelling m log(n - m + 1)
    tol = SUM_TOL[dtype]
    assert np.all(np.abs(value - truth) <= tol["atol"] * scale + tol["rtol"] * np.abs(truth))
    closed = y / (1 + np.exp(z)) - (n - y) / (1 + np.exp(-z))
    assert np.all(np.abs(d_z - closed) <= TOL[dtype]["rtol"] * np.maximum(1, n))  # y sig(-z) and n sig(z) cancel
    np.testing.assert_allclose(edge, [0.0, -np.inf, 0.0, -np.inf, -np.inf, -np.inf])


@pytest.mark.parametrize("dtype", FAMILY_DTYPES)
def test_gamma_density_and_score_across_the_concentration_edge(dtype):
    """``log_prob`` at a = 1e-6 ... 9.99 (the Lanczos form), 10 ... 1e7 (Stirling's), at y near and far from the
    mean, with d/da = log(b y) - psi(a) and d/db = a/b - y against mpmath."""
    rows = _f([[a, b, y] for a in [1e-6, 0.05, 0.7, 1.0, 2.0, 9.99, 10.0, 30.0, 1e7]
               for b in [0.01, 1.0, 40.0] for y in [1e-20, 0.3, 2.0, 1e3]], dtype)
    with jax.enable_x64(dtype == "float64"):
        def f(a, b, y):
            return mj.log_prob(mj.Gamma(a, b), y)

        def run(p):
            return f(p[:, 0], p[:, 1], p[:, 2]), jax.vmap(jax.grad(f, argnums=(0, 1)))(p[:, 0], p[:, 1], p[:, 2])
        value, (d_a, d_b) = jax.jit(run)(jnp.asarray(rows, dtype))
    value, d_a, d_b = (np.asarray(v, float) for v in (value, d_a, d_b))
    a, b, y = rows.T
    truth = [float(mp.mpf(p) * mp.log(q) + (mp.mpf(p) - 1) * mp.log(t) - mp.mpf(q) * t - mp.loggamma(p))
             for p, q, t in rows]
    # float32 rounds a log(b y) and b y, each up to 1e7 here: the tolerance is relative to the largest term
    scale = np.maximum.reduce([np.ones_like(a), np.abs(a * np.log(b * y)), b * y, np.abs(np.log(y)), np.abs(truth)])
    rtol = 2e-6 if dtype == "float32" else 1e-13
    assert np.all(np.abs(value - truth) <= rtol * scale), np.max(np.abs(value - truth) / scale)
    ref_a = [float(mp.log(q) + mp.log(t) - mp.digamma(p)) for p, q, t in rows]
    scale_a = np.maximum.reduce([np.ones_like(a), np.abs(np.log(b * y)), 1 / a])
    assert np.all(np.abs(d_a - ref_a) <= rtol * 4 * scale_a), np.max(np.abs(d_a - ref_a) / scale_a)
    assert np.all(np.abs(d_b - (a / b - y)) <= TOL[dtype]["rtol"] * np.maximum(a / b, y))  # a/b and y cancel


@pytest.mark.parametrize("dtype", FAMILY_DTYPES)
def test_beta_density_and_score_across_the_concentration_edges(dtype):
    """``special.betaln_digamma_gaps`` through ``mj.log_prob(mj.Beta)``: a, b from 1e-6 to 1e8 on both sides of 10
    (both below: Lanczos at a + b up to 20; one above: ``lgamma_diff``'s Stirling form and ``digamma_gap_large``; both
    above: Stirling's series), y near both ends; the value against mpmath, d/da = log y + psi(a + b) - psi(a) and
    d/db against the closed form with mpmath's digamma; at y = 0 and 1 the value against ``scipy.stats.beta``."""
    import scipy.stats as st

    conc = [1e-6, 1e-3, 0.3, 1.0, 9.99, 10.0, 19.0, 1e3, 1e8]
    rows = _f([[a, b, y] for a in conc for b in conc for y in [1e-6, 0.3, 1 - 1e-6]], dtype)
    edges = _f([[a, b, y] for a in [1e-3, 1.0, 2.0, 10.0] for b in [0.5, 1.0, 12.0] for y in [0.0, 1.0]], dtype)
    with jax.enable_x64(dtype == "float64"):
        def f(a, b, y):
            return mj.log_prob(mj.Beta(a, b), y)

        def run(p, e):
            return (f(p[:, 0], p[:, 1], p[:, 2]), jax.vmap(jax.grad(f, argnums=(0, 1)))(p[:, 0], p[:, 1], p[:, 2]),
                    f(e[:, 0], e[:, 1], e[:, 2]))
        value, (d_a, d_b), edge = jax.jit(run)(jnp.asarray(rows, dtype), jnp.asarray(edges, dtype))
    value, d_a, d_b, edge = (np.asarray(v, float) for v in (value, d_a, d_b, edge))
    rtol = 2e-6 if dtype == "float32" else 1e-13
    truth, ref_a, ref_b, scale, scale_a, scale_b = ([] for _ in range(6))
    for p, q, t in rows.astype(float):
        p, q, t = mp.mpf(p), mp.mpf(q), mp.mpf(t)
        log_b = mp.loggamma(p) + mp.loggamma(q) - mp.loggamma(p + q)
        truth.append(float((p - 1) * mp.log(t) + (q - 1) * mp.log1p(-t) - log_b))
        ref_a.append(float(mp.log(t) + mp.digamma(p + q) - mp.digamma(p)))
        ref_b.append(float(mp.log1p(-t) + mp.digamma(p + q) - mp.digamma(q)))
        # the result is a sum of terms each rounded to its own size: the tolerance is relative to the largest
        scale.append(float(max(1, abs((p - 1) * mp.log(t)), abs((q - 1) * mp.log1p(-t)), abs(log_b))))
        psi_ab = abs(mp.digamma(p + q))
        scale_a.append(float(max(1, abs(mp.log(t)), abs(mp.digamma(p)), psi_ab)))
        scale_b.append(float(max(1, abs(mp.log1p(-t)), abs(mp.digamma(q)), psi_ab)))
    for got, ref, size in ((value, truth, scale), (d_a, ref_a, scale_a), (d_b, ref_b, scale_b)):
        err = np.abs(got - np.array(ref)) / np.array(size)
        assert err.max() <= rtol, (err.max(), rows[err.argmax()])
    a, b, y = edges.astype(float).T
    np.testing.assert_allclose(edge, st.beta(a, b).logpdf(y), rtol=rtol, atol=rtol)  # +-inf exactly


@pytest.mark.deep
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_negative_binomial_one_total_count_for_a_batch(dtype):
    """One total count r for a whole batch (r keeps its shape: its functions are one scalar program behind an
    optimization barrier): the masses, the summed d/dr and d2/dr2 (the written rule differentiated) and d/dz against
    mpmath, on both sides of r = 10 and of y = 10."""
    y = np.asarray([0.0, 1.0, 9.0, 10.0, 11.0, 250.0, 1e5])
    z = np.asarray([-4.0, 0.5, 0.5, -1.0, 2.0, 0.5, 3.0])
    with jax.enable_x64(dtype == "float64"):
        def total(r, z, y):
            return jnp.sum(mj.log_prob(mj.NegativeBinomial(r, z), y))

        @jax.jit
        def run(r, z, y):
            return (mj.log_prob(mj.NegativeBinomial(r, z), y), jax.grad(total, argnums=(0, 1))(r, z, y),
                    jax.grad(jax.grad(total))(r, z, y))
        for r in [0.3, 9.99, 10.0, 1e6]:
            value, d_r, d_z, d2_r = (np.asarray(v, float) for v in
                                     jax.tree.leaves(run(jnp.asarray(r, dtype), jnp.asarray(z, dtype),
                                                         jnp.asarray(y, dtype))))
            R = mp.mpf(float(np.asarray(r, dtype)))
            truth = [float(_nb(R, a, b)) for a, b in zip(z, y)]
            scale = np.maximum(1.0, y * abs(float(mp.log(R))))
            tol = SUM_TOL[dtype]
            assert np.all(np.abs(value - truth) <= tol["atol"] * scale + tol["rtol"] * np.abs(truth)), (r, value)
            ref_r = float(sum(mp.digamma(b + R) - mp.digamma(R) - mp.log1p(mp.exp(a)) for a, b in zip(z, y)))
            ref_rr = float(sum(mp.psi(1, b + R) - mp.psi(1, R) for b in y))
            rtol = 1e-4 if dtype == "float32" else 1e-9
            assert abs(d_r - ref_r) <= rtol * max(1.0, abs(ref_r)), (r, d_r, ref_r)
            assert abs(d2_r - ref_rr) <= 10 * rtol * max(1e-3, abs(ref_rr)), (r, d2_r, ref_rr)
            np.testing.assert_allclose(d_z, y / (1 + np.exp(z)) - float(R) / (1 + np.exp(-z)),
                                       rtol=TOL[dtype]["rtol"], atol=TOL[dtype]["atol"] * max(1.0, float(R)))
