"""Special functions and the Gamma, Beta, Student t, Poisson and negative binomial types at extreme
parameters (issue 19): huge shapes, tiny and huge rates, infinite df and targets, NaN targets.

References are independent of mle_jax: mpmath at 40 digits, scipy, closed forms (Beta(a, a) at 1/2
is 1/2; the t CDF by quadrature of its density), and Temme's coefficients
derived again here in exact rational arithmetic. Each function is evaluated once per dtype on a
batch of points (one compiled call)."""

from fractions import Fraction

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest
from scipy import special, stats

import mle_jax as mj
from mle_jax.distributions import incomplete

mp.mp.dps = 40
DTYPES = ["float32", "float64"]
TOL = {"float32": dict(rtol=1e-5, atol=1e-5), "float64": dict(rtol=1e-10, atol=1e-10)}
CDF_TOL = {"float32": dict(rtol=1e-4, atol=1e-5), "float64": dict(rtol=1e-9, atol=1e-10)}


def _rounded(values, dtype):
    """The points as the dtype under test holds them (references are taken there)."""
    return np.asarray(values, dtype)


# --- Temme's coefficients, derived again ------------------------------------------------------------

def _temme_rows(rows, terms):
    """``c_k(eta)`` power series (DLMF 8.12.9-8.12.11) by exact series arithmetic: ``lambda - 1 = eps(eta)``
    reverts ``eta^2/2 = eps - log(1 + eps)``; ``c_0 = 1/eps - 1/eta``, ``c_k = c_{k-1}'/eta + (-1)^k g_k/eps``."""
    size = terms + 2 * rows + 4

    def mul(a, b):
        return [sum(a[i] * b[n - i] for i in range(n + 1)) for n in range(size)]

    def inv(a):
        out = [1 / a[0]]
        for n in range(1, size):
            out.append(-sum(a[k] * out[n - k] for k in range(1, n + 1)) / a[0])
        return out

    def sqrt1(a):
        out = [Fraction(1)]
        for n in range(1, size):
            out.append((a[n] - sum(out[k] * out[n - k] for k in range(1, n))) / 2)
        return out

    def compose(a, e):
        out, power = [Fraction(0)] * size, [Fraction(1)] + [Fraction(0)] * (size - 1)
        for n in range(size):
            out = [o + a[n] * p for o, p in zip(out, power)]
            power = mul(power, e)
        return out

    q = [Fraction(2 * (-1) ** n, n) for n in range(2, size + 2)]  # 2 (e - log(1 + e)) / e^2
    inv_sqrt_q = inv(sqrt1(q))
    eps = [Fraction(0), Fraction(1)] + [Fraction(0)] * (size - 2)
    for _ in range(size):
        eps = [Fraction(0)] + compose(inv_sqrt_q, eps)[:size - 1]
    inv_r = inv(eps[1:] + [Fraction(0)])
    # Stirling's Gamma*(a) ~ sum g_k a^-k = exp(sum_n B_2n / (2n (2n - 1) a^(2n - 1)))
    bern = [Fraction(1, 6), Fraction(-1, 30), Fraction(1, 42), Fraction(-1, 30), Fraction(5, 66)]
    log_g = [Fraction(0)] * (rows + 1)
    for n, b in enumerate(bern, start=1):
        if 2 * n - 1 <= rows:
            log_g[2 * n - 1] = b / (2 * n * (2 * n - 1))
    g = [Fraction(1)] + [Fraction(0)] * rows
    for k in range(1, rows + 1):  # g' = (log g)' g
        g[k] = sum(j * log_g[j] * g[k - j] for j in range(1, k + 1)) / k
    c, out = inv_r[1:], [inv_r[1:]]
    for k in range(1, rows):
        assert c[1] + (-1) ** k * g[k] * inv_r[0] == 0  # the pole at eta = 0 cancels
        c = [(m + 2) * c[m + 2] + (-1) ** k * g[k] * inv_r[m + 1] for m in range(len(c) - 3)]
        out.append(c)
    return [[float(v) for v in row[:terms]] for row in out]


def test_temme_coefficients_are_derived_exactly():
    rows = _temme_rows(5, 12)
    np.testing.assert_allclose([row[:12] for row in incomplete._TEMME[:5]], rows, rtol=1e-14, atol=1e-300)
    assert incomplete._TEMME[0][:3] == (-1 / 3, 1 / 12, -4 / 270)  # DLMF 8.12.10 (c_0 = -1/3 + eta/12 - ...)
    assert incomplete._TEMME[1][0] == pytest.approx(-1 / 540, rel=1e-15)


# --- cause 2: the incomplete gamma at huge a ---------------------------------------------------------

GAMMA_POINTS = [(1e8, 1e8), (1e8, 1e8 + 1e4), (1e8, 1e8 - 3e4), (1e12, 1e12 + 2e6), (1e30, 1e30),
                (1e4, 1.04e4), (1e4, 0.96e4), (100.0, 100.0), (100.0, 80.0), (150.0, 180.0), (99.0, 99.0),
                (50.0, 70.0), (1e3, 1.3e3), (1e3, 700.0)]


def _gamma_reference(a, x):
    """``(log P, log Q)``: mpmath where it converges (a <= 1e4), scipy's own asymptotic code above."""
    if a <= 1e4:
        a_, x_ = mp.mpf(float(a)), mp.mpf(float(x))
        return (float(mp.log(mp.gammainc(a_, 0, x_, regularized=True))),
                float(mp.log(mp.gammainc(a_, x_, mp.inf, regularized=True))))
    return float(np.log(special.gammainc(a, x))), float(np.log(special.gammaincc(a, x)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.deep
def test_incomplete_gamma_at_huge_shapes(dtype):
    """x64 ``log_cdf(Gamma(1e8, 1), 1e8)`` was -1.0749 (10,000 terms of a series needing 90,000)."""
    with jax.enable_x64(dtype == "float64"):
        a = _rounded([p[0] for p in GAMMA_POINTS], dtype)
        x = _rounded([p[1] for p in GAMMA_POINTS], dtype)
        theta = mj.Gamma(jnp.asarray(a), jnp.ones_like(jnp.asarray(a)))
        got_cdf, got_sf = jax.jit(lambda t, y: (mj.log_cdf(t, y), mj.log_sf(t, y)))(theta, jnp.asarray(x))
    ref = np.array([_gamma_reference(ai, xi) for ai, xi in zip(a.astype(float), x.astype(float))])
    np.testing.assert_allclose(got_cdf, ref[:, 0], **CDF_TOL[dtype])
    np.testing.assert_allclose(got_sf, ref[:, 1], **CDF_TOL[dtype])


@pytest.mark.deep  # 4-10 s of compiling: CI's deep phase, for README's 5-minute suite
def test_incomplete_gamma_gradients_through_temme(x64):
    """The expansion is closed form: its derivatives are JAX's, checked against mpmath's."""
    a, x = 400.0, 410.0
    got = jax.grad(lambda a, x: incomplete.log_gammainc(a, x), argnums=(0, 1))(jnp.float64(a), jnp.float64(x))

    def ref(a_, x_):
        return mp.log(mp.gammainc(a_, 0, x_, regularized=True))
    want = (mp.diff(lambda v: ref(v, mp.mpf(x)), mp.mpf(a)), mp.diff(lambda v: ref(mp.mpf(a), v), mp.mpf(x)))
    np.testing.assert_allclose(got, [float(w) for w in want], rtol=1e-8)


@pytest.mark.deep
@pytest.mark.parametrize("dtype", DTYPES)
def test_incomplete_gamma_loops_stay_far_inside_their_budget(dtype, monkeypatch):
    """With Temme's expansion near x = a for a >= 100, the series and the fraction converge within a
    few hundred terms everywhere: a budget of 400 (the library's is 2,000) leaves no NaN on a grid of
    a from 1e-3 to 1e12 and x/a from 1e-3 to 1e3."""
    monkeypatch.setattr(incomplete, "_MAX_TERMS", 400)
    ratios = np.concatenate([np.geomspace(1e-3, 1e3, 31), [0.76, 0.99, 1.0, 1.01, 1.26]])
    a, ratio = np.meshgrid(np.geomspace(1e-3, 1e12, 46), ratios)
    with jax.enable_x64(dtype == "float64"):
        a_, x_ = jnp.asarray(a.ravel(), dtype), jnp.asarray((a * ratio).ravel(), dtype)
        x_ = jnp.where(jnp.isfinite(x_), x_, jnp.finfo(dtype).max)
        log_p, log_q = jax.jit(lambda a, x: (incomplete.log_gammainc(a, x), incomplete.log_gammaincc(a, x)))(a_, x_)
    assert not np.isnan(log_p).any() and not np.isnan(log_q).any()


@pytest.mark.deep
def test_a_loop_that_does_not_converge_is_nan(monkeypatch):
    """A series or fraction stopped by its budget is NaN, never a truncated sum."""
    monkeypatch.setattr(incomplete, "_MAX_TERMS", 3)
    monkeypatch.setattr(incomplete, "_BETA_MAX_TERMS", 3)
    assert np.isnan(incomplete.log_gammainc(jnp.float32(50.0), jnp.float32(50.0)))
    assert np.isnan(mj.log_cdf(mj.Beta(jnp.float32(50.0), jnp.float32(50.0)), jnp.float32(0.5)))


# --- cause 3: the incomplete beta at huge concentrations (float64) ----------------------------------

def test_float32_incomplete_beta_at_huge_concentrations_is_exact_by_symmetry():
    """float32 Beta(1e10, 1e10) at 1/2 was -0.384 (the fraction's ``a + 2m`` cannot be told apart), then NaN (the
    fraction refused past its budget); Temme's expansion near the mean (session 47) gives 1/2 on both sides, to
    a few ulps, up to 1e30."""
    a = jnp.array([1e4, 1e6, 1e8, 1e10, 1e20, 1e30], jnp.float32)
    half = jnp.full_like(a, 0.5)
    lower, upper = jax.jit(lambda a: (mj.log_cdf(mj.Beta(a, a), half), mj.log_sf(mj.Beta(a, a), half)))(a)
    np.testing.assert_allclose(lower, np.full(6, -np.log(2.0)), rtol=4 * np.finfo(np.float32).eps)
    np.testing.assert_allclose(upper, np.full(6, -np.log(2.0)), rtol=4 * np.finfo(np.float32).eps)


def test_incomplete_beta_at_huge_concentrations(x64):
    """Beta(a, a) at 1/2 is 1/2 exactly (symmetry); Beta(1e10, 1e10) was off by 1.4e-6 (docs: 1e-9)."""
    a = jnp.array([1e4, 1e6, 1e8, 1e10])
    got = jax.jit(lambda a: mj.log_cdf(mj.Beta(a, a), jnp.full_like(a, 0.5)))(a)
    np.testing.assert_allclose(got, np.full(4, -np.log(2.0)), rtol=1e-10)


def _t_log_cdf(z, df):
    """``log F(z)`` of the standard t from mpmath's incomplete beta (40 digits):
    ``F(-|z|) = I_x(nu/2, 1/2)/2``, ``x = nu/(nu + z^2)``."""
    nu, z = mp.mpf(df), mp.mpf(z)
    tail = mp.betainc(nu / 2, mp.mpf(0.5), 0, nu / (nu + z * z), regularized=True) / 2
    return float(mp.log(tail) if z < 0 else mp.log1p(-tail))


@pytest.mark.deep
def test_student_t_cdf_at_huge_df(x64):
    """x64 Student t CDF at df 1e10 was off by 4e-7 relative (``1 - (a + b) x/(a + 1)`` kept 7 digits)
    and at 1e12 by 5.7e-4 (the fraction stopped at 10,000 steps near its threshold)."""
    df = np.array([1e10, 1e10, 1e10, 1e12, 1e12, 1e8, 1e11, 1e6, 1e9])
    z = np.array([-1.0, 2.5, -6.0, -1.0, 3.0, -4.0, -1.7, -30.0, -25.0])
    theta = mj.StudentT(jnp.asarray(df), jnp.zeros(9), jnp.ones(9))
    got = jax.jit(mj.log_cdf)(theta, jnp.asarray(z))
    np.testing.assert_allclose(got, [_t_log_cdf(zi, di) for zi, di in zip(z, df)], rtol=1e-11)


# --- cause 13 / 25: cancellations in float32 and float64 ---------------------------------------------

def _beta_entropy(a, b):
    a, b = mp.mpf(a), mp.mpf(b)
    return float(mp.log(mp.beta(a, b)) - (a - 1) * mp.digamma(a) - (b - 1) * mp.digamma(b)
                 + (a + b - 2) * mp.digamma(a + b))


def _beta_kl(ap, bp, aq, bq):
    ap, bp, aq, bq = (mp.mpf(v) for v in (ap, bp, aq, bq))
    return float(mp.log(mp.beta(aq, bq)) - mp.log(mp.beta(ap, bp)) + (ap - aq) * mp.digamma(ap)
                 + (bp - bq) * mp.digamma(bp) + (aq - ap + bq - bp) * mp.digamma(ap + bp))


def _gamma_kl(ap, bp, aq, bq):
    ap, bp, aq, bq = (mp.mpf(v) for v in (ap, bp, aq, bq))
    return float((ap - aq) * mp.digamma(ap) - mp.loggamma(ap) + mp.loggamma(aq)
                 + aq * (mp.log(bp) - mp.log(bq)) + ap * (bq - bp) / bp)


def _poisson_kl(lp, lq):
    lp, lq = mp.mpf(lp), mp.mpf(lq)
    return float(mp.exp(lp) * (lp - lq) - mp.exp(lp) + mp.exp(lq))


def _nb_log_pmf(r, z, y):
    r, z, y = mp.mpf(r), mp.mpf(z), mp.mpf(y)
    return float(mp.loggamma(y + r) - mp.loggamma(r) - mp.loggamma(y + 1)
                 - r * mp.log1p(mp.exp(z)) + y * (z - mp.log1p(mp.exp(z))))


@pytest.mark.deep
@pytest.mark.parametrize("dtype", DTYPES)
def test_entropy_and_kl_where_terms_cancel(dtype):
    """f32 ``entropy(Beta(1, 1e8))`` was -18.42 (truth -17.42: a + b rounded to b), KL Gamma(1e7) to
    Gamma(1e-3) inf, KL Beta(0.001, 1e4) to Beta(0.001, 2) 0.0156 (truth 0.0078), KL Poisson(40) to
    Poisson(-50) inf; x64 Beta entropy was off by the small shape from 1e16 on."""
    big = 1e8 if dtype == "float32" else 1e17
    ent = _rounded([[1.0, big], [2.5, 1e12], [0.3, 1e6], [1e5, 1e5], [20.0, 3e7]], dtype)
    beta_kl = _rounded([[0.001, 1e4, 0.001, 2.0], [1e5, 1e5, 1.001e5, 1e5], [2.0, 3.0, 0.5, 0.5],
                        [0.5, 1e6, 3.0, 1e6]], dtype)
    gamma_kl = _rounded([[1e7, 1.0, 1e-3, 1.0], [1e-3, 1.0, 1e7, 1.0], [1e5, 1.0, 1.001e5, 2.0],
                         [3.0, 1e-20, 4.0, 1e-20]], dtype)
    poisson_kl = _rounded([[40.0, -50.0], [-50.0, 40.0], [3.0, 3.5], [0.0, -20.0]], dtype)
    with jax.enable_x64(dtype == "float64"):
        args = [jnp.asarray(v) for v in (ent, beta_kl, gamma_kl, poisson_kl)]

        def run(ent, bk, gk, pk):
            return (mj.entropy(mj.Beta(ent[:, 0], ent[:, 1])),
                    mj.kl(mj.Beta(bk[:, 0], bk[:, 1]), mj.Beta(bk[:, 2], bk[:, 3])),
                    mj.kl(mj.Gamma(gk[:, 0], gk[:, 1]), mj.Gamma(gk[:, 2], gk[:, 3])),
                    mj.kl(mj.Poisson(pk[:, 0]), mj.Poisson(pk[:, 1])))
        got = jax.jit(run)(*args)
    refs = ([_beta_entropy(*r) for r in ent.astype(float)], [_beta_kl(*r) for r in beta_kl.astype(float)],
            [_gamma_kl(*r) for r in gamma_kl.astype(float)], [_poisson_kl(*r) for r in poisson_kl.astype(float)])
    for g, r in zip(got, refs):
        np.testing.assert_allclose(g, r, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_negative_binomial_with_large_count_and_total(dtype):
    """f32 NB(1e6, 0) at 1e6 was -8.125 (truth -8.1733): terms of 1.4e6 cancelled."""
    pts = _rounded([[1e6, 0.0, 1e6], [1e6, 0.0, 1.002e6], [5e4, 1.0, 1.4e5], [12.0, 3.0, 300.0],
                    [1e3, -2.0, 200.0], [40.0, 0.5, 10.0]], dtype)
    with jax.enable_x64(dtype == "float64"):
        p = jnp.asarray(pts)
        got = jax.jit(lambda p: mj.log_prob(mj.NegativeBinomial(p[:, 0], p[:, 1]), p[:, 2]))(p)
    ref = [_nb_log_pmf(*row) for row in pts.astype(float)]
    # float32 was atol 1e-4: the deviance took log(n pi) (eps log(n) per unit of y), now log(m/k) from the ratio
    np.testing.assert_allclose(got, ref, **TOL[dtype])


# --- cause 14: Gamma at tiny and huge rates -------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_gamma_uses_log_rate_plus_log_y(dtype):
    """``b y`` underflows at 1e-8 * 1e-30 and 1e-30 * 1e-30 in float32; ``log b + log y`` does not."""
    cdf_pts = _rounded([[2.5, 1e-8, 1e-30], [0.5, 1e-20, 1e-25], [3.0, 1e20, 1e-19]], dtype)
    pdf_pts = _rounded([[1e-3, 1e-30, 1e-30], [2.0, 1e-20, 1e-20], [40.0, 1e-30, 3e31]], dtype)
    with jax.enable_x64(dtype == "float64"):
        c, d = jnp.asarray(cdf_pts), jnp.asarray(pdf_pts)
        got_cdf, got_pdf = jax.jit(lambda c, d: (mj.log_cdf(mj.Gamma(c[:, 0], c[:, 1]), c[:, 2]),
                                                 mj.log_prob(mj.Gamma(d[:, 0], d[:, 1]), d[:, 2])))(c, d)
        overflow = mj.log_prob(mj.Gamma(jnp.asarray(2.0, dtype), jnp.asarray(1e30, dtype)), jnp.asarray(1e30, dtype))
    ref_cdf = [float(mp.log(mp.gammainc(mp.mpf(a), 0, mp.mpf(b) * mp.mpf(y), regularized=True)))
               for a, b, y in cdf_pts.astype(float)]
    ref_pdf = [float(a * mp.log(b) + (a - 1) * mp.log(y) - b * y - mp.loggamma(a))
               for a, b, y in (map(mp.mpf, row) for row in pdf_pts.astype(float))]
    np.testing.assert_allclose(got_cdf, ref_cdf, **CDF_TOL[dtype])
    np.testing.assert_allclose(got_pdf, ref_pdf, **TOL[dtype])
    expected = -np.inf if dtype == "float32" else 2 * np.log(1e30) + np.log(1e30) - 1e60
    np.testing.assert_allclose(overflow, expected, rtol=1e-12)  # -1e60 is below float32's range: -inf


# --- cause 16: non-finite arguments --------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.deep
def test_infinite_and_nan_arguments(dtype):
    """Student t and Gamma CDFs at +-inf were NaN, ``log_prob(StudentT(4, 0, 1e-30), -1e30)`` NaN,
    ``StudentT(inf, ...)`` NaN, ``log_cdf(Beta, nan)`` 0 and ``pit(Beta, nan)`` 1.0."""
    normal = stats.norm(0.5, 2.0)
    z = np.array([-40.0, -3.0, 0.0, 0.7, 5.0])
    with jax.enable_x64(dtype == "float64"):
        f = lambda v: jnp.asarray(v, dtype)  # noqa: E731

        def run(ys, tiny_scale, far, z, nan, key):
            two = lambda v: f([v, v])  # noqa: E731
            tails = [fn(theta, ys) for theta in (mj.StudentT(two(4.0), two(0.0), two(1.0)), mj.Gamma(two(2.0), two(1.0)))
                     for fn in (mj.log_cdf, mj.log_sf)]
            t, g, beta = mj.StudentT(f(4.0), f(0.0), f(1.0)), mj.Gamma(f(2.0), f(1.0)), mj.Beta(f(2.0), f(3.0))
            inf_t = mj.StudentT(jnp.full(5, jnp.inf, dtype), jnp.full(5, 0.5, dtype), jnp.full(5, 2.0, dtype))
            nans = jnp.stack([mj.log_cdf(beta, nan), mj.log_sf(beta, nan), mj.pit(beta, nan), mj.log_prob(beta, nan),
                              mj.log_cdf(g, nan), mj.log_sf(g, nan), mj.log_prob(g, nan), mj.log_cdf(t, nan),
                              mj.log_prob(mj.Poisson(f(1.0)), nan), mj.log_prob(mj.NegativeBinomial(f(3.0), f(0.0)), nan)])
            draws = mj.sample(key, mj.StudentT(jnp.full(2000, jnp.inf, dtype), jnp.zeros(2000, dtype), jnp.ones(2000, dtype)))
            overflow_grad = jax.grad(lambda s: mj.log_prob(mj.StudentT(f(4.0), f(0.0), s), far))(tiny_scale)
            return dict(tails=jnp.stack(tails), overflow=mj.log_prob(mj.StudentT(f(4.0), f(0.0), tiny_scale), far),
                        overflow_grad=overflow_grad,
                        pdf=mj.log_prob(inf_t, z), cdf=mj.log_cdf(inf_t, z), entropy=mj.entropy(inf_t),
                        variance=mj.variance(inf_t), nans=nans, draws=draws)
        got = jax.jit(run)(f([-np.inf, np.inf]), f(1e-30), f(-1e30), f(z), f(np.nan), jax.random.PRNGKey(0))
    np.testing.assert_array_equal(got["tails"], [[-np.inf, 0.0], [0.0, -np.inf]] * 2)
    # z = -1e60 overflows float32; log|y - mu| - log s does not
    scale, y, nu = mp.mpf(float(np.asarray(1e-30, dtype))), mp.mpf(float(np.asarray(-1e30, dtype))), mp.mpf(4)
    ref = (mp.loggamma((nu + 1) / 2) - mp.loggamma(nu / 2) - mp.log(mp.sqrt(nu * mp.pi) * scale)
           - (nu + 1) / 2 * mp.log1p((y / scale) ** 2 / nu))
    np.testing.assert_allclose(got["overflow"], float(ref), **TOL[dtype])
    # d/ds [-(nu + 1)/2 log(z^2/nu) - log s] = nu/s, finite where z is not (was NaN through inf * 0)
    np.testing.assert_allclose(got["overflow_grad"], 4 / float(scale), rtol=1e-5)
    # df = inf is the Normal
    np.testing.assert_allclose(got["pdf"], normal.logpdf(z), **TOL[dtype])
    np.testing.assert_allclose(got["cdf"], normal.logcdf(z), **CDF_TOL[dtype])
    np.testing.assert_allclose(got["entropy"], np.full(5, normal.entropy()), **TOL[dtype])
    np.testing.assert_allclose(got["variance"], np.full(5, 4.0), **TOL[dtype])
    assert np.isfinite(got["draws"]).all() and stats.kstest(np.asarray(got["draws"], float), "norm").pvalue > 1e-4
    assert np.isnan(got["nans"]).all()


@pytest.mark.deep  # 4-10 s of compiling: CI's deep phase, for README's 5-minute suite
@pytest.mark.parametrize("dtype", DTYPES)
def test_betaln_forms_and_digamma_gaps_at_their_branch_edges(dtype):
    """``betaln`` (Stirling above 10 in both, ``lgamma(x) - lgamma_diff(x, y)`` below), ``betaln_small`` (min <= 10,
    up to x = 10 against y = 1e8), ``digamma_gap`` and the Beta score's shared ``_digamma_gaps`` against mpmath
    at 40 digits, on both sides of 10; the negative binomial at y = 9 with r = 1e7 (``betaln_small`` at x = 10)
    and r = 0.5 with y = 1e5, the binomial at y = 9 of n = 1e6."""
    from mle_jax.distributions import beta as beta_module
    from mle_jax.distributions import special as sp_module

    pairs = _rounded([[0.3, 2.0], [9.5, 1e6], [10.0, 1e8], [1e-3, 5.0], [3.0, 9.0], [2.5, 40.0], [10.0, 10.0],
                      [50.0, 1e4], [1e4, 1e4], [12.0, 0.7]], dtype)
    small = pairs[np.minimum(pairs[:, 0], pairs[:, 1]) <= 10]
    nb = _rounded([[1e7, 0.5, 9.0], [0.5, 3.0, 1e5], [7.0, -1.0, 9.0], [10.0, 0.0, 9.0]], dtype)
    with jax.enable_x64(dtype == "float64"):
        p, s, q = jnp.asarray(pairs), jnp.asarray(small), jnp.asarray(nb)
        got = jax.jit(lambda p, s, q: (sp_module.betaln(p[:, 0], p[:, 1]), sp_module.betaln_small(s[:, 0], s[:, 1]),
                                       sp_module.digamma_gap(p[:, 0], p[:, 1]),
                                       beta_module._digamma_gaps(p[:, 0], p[:, 1]),
                                       mj.log_prob(mj.NegativeBinomial(q[:, 0], q[:, 1]), q[:, 2]),
                                       mj.log_prob(mj.Binomial(q[:, 2] * 0 + 1e6, q[:, 1]), q[:, 2])))(p, s, q)
    got = jax.tree.map(lambda v: np.asarray(v, np.float64), got)

    def betaln(a, b):
        return float(mp.log(mp.beta(mp.mpf(a), mp.mpf(b))))

    def gap(x, d):
        return float(mp.digamma(mp.mpf(x) + mp.mpf(d)) - mp.digamma(mp.mpf(x)))

    def binom(n, z, y):
        n, z, y = mp.mpf(n), mp.mpf(z), mp.mpf(y)
        return float(mp.log(mp.binomial(n, y)) - y * mp.log1p(mp.exp(-z)) - (n - y) * mp.log1p(mp.exp(z)))
    pf = pairs.astype(float)
    np.testing.assert_allclose(got[0], [betaln(a, b) for a, b in pf], **TOL[dtype])
    np.testing.assert_allclose(got[1], [betaln(a, b) for a, b in small.astype(float)], **TOL[dtype])
    np.testing.assert_allclose(got[2], [gap(a, b) for a, b in pf], **TOL[dtype])
    np.testing.assert_allclose(got[3][0], [gap(a, b) for a, b in pf], **TOL[dtype])
    np.testing.assert_allclose(got[3][1], [gap(b, a) for a, b in pf], **TOL[dtype])
    tol = TOL[dtype] if dtype == "float64" else dict(rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(got[4], [_nb_log_pmf(*row) for row in nb.astype(float)], **tol)
    np.testing.assert_allclose(got[5], [binom(1e6, z, y) for _, z, y in nb.astype(float)], **tol)
# --- rounding that differs by device (a GPU's FMA contraction, fast exp/log, flush-to-zero) -----------

@pytest.mark.parametrize("dtype", DTYPES)
def test_temme_expansion_does_not_cancel_huge_exponents(dtype, monkeypatch):
    """Temme's Mills ratio ``phi(v)/Phi(-v)`` was ``exp(-v^2/2 - log(2 pi)/2 - log Phi(-v))``: at a = 1e12,
    x = 0.76 a (float32) the two exponents are -3e10 each and one rounding apart (4,096 there) is
    ``exp(4096) = inf`` and a NaN log P, which an H200 produced where this CPU's rounding cancelled
    exactly. Emulated here: ``log Phi(-v)`` one ulp lower, as another device's log or FMA may round it
    (the old code NaN'd at a = 1e12 in float32); the values stay finite and within the dtype's
    tolerance of the unperturbed ones (themselves checked against mpmath above)."""
    a = np.array([1e3, 1e6, 1e9, 1e12])
    x = 0.76 * a
    with jax.enable_x64(dtype == "float64"):
        args = jnp.asarray(a, dtype), jnp.asarray(x, dtype)
        exact = jax.jit(lambda a, x: incomplete.log_gammainc(a, x))(*args)
        unperturbed = incomplete._log_ndtr_mills

        def one_ulp_lower(v):
            log_tail, mills = unperturbed(v)
            return jnp.nextafter(log_tail, -jnp.inf), mills
        monkeypatch.setattr(incomplete, "_log_ndtr_mills", one_ulp_lower)
        perturbed = jax.jit(lambda a, x: (incomplete.log_gammainc(a, x), incomplete.log_gammaincc(a, x)))(*args)
    assert np.isfinite(perturbed[0]).all() and not np.isnan(perturbed[1]).any()
    tol = dict(rtol=1e-5) if dtype == "float32" else dict(rtol=1e-12)
    np.testing.assert_allclose(perturbed[0], exact, **tol)
    np.testing.assert_allclose(exact[0], np.log(special.gammainc(a[0], x[0])), **tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_ndtr_and_mills_ratio_on_both_sides_of_the_asymptotic_series(dtype):
    """``(log Phi(-v), phi(v)/Phi(-v))`` against mpmath, across the switch to Mills' asymptotic series
    (10 in float32, 20 in float64) and out to v = 2.6e5 (Temme's expansion at a = 1e12)."""
    v = _rounded([0.0, 0.5, 5.0, 9.99, 10.0, 15.0, 19.99, 20.0, 1e3, 2.6e5], dtype)
    want_log = [float(mp.log(mp.ncdf(-mp.mpf(float(t))))) for t in v]
    want_mills = [float(mp.npdf(mp.mpf(float(t))) / mp.ncdf(-mp.mpf(float(t)))) for t in v]
    with jax.enable_x64(dtype == "float64"):
        log_tail, mills = jax.jit(incomplete._log_ndtr_mills)(jnp.asarray(v))
    np.testing.assert_allclose(log_tail, want_log, **TOL[dtype])
    np.testing.assert_allclose(mills, want_mills, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_normal_mills_ratio_and_its_slope_across_the_series_cut_and_at_its_edges(dtype):
    """``normal.mills_ratio(t, log Phi(t))`` (one compare: the series on t or the cut) and its derivative in t
    (the second derivative of ``log Phi``: ``M' = -M (t + M)``) against mpmath on both sides of the cut (-10 / -20)
    out to -1e4; at t = -inf NaN (0/0: an impossible tail, as jax's own log_ndtr gives), NaN at NaN, 0 at +inf;
    ``log_phi = inf`` (a discarded entry) finite with a finite derivative on both sides of the cut."""
    from mle_jax.distributions.normal import log_ndtr, mills_ratio
    mp.mp.dps = 40
    t = _rounded([-1e4, -1e3, -40.0, -20.5, -20.0, -19.99, -10.5, -10.0, -9.99, -5.0, 0.0, 3.0], dtype)
    m_ref = [mp.npdf(mp.mpf(float(v))) / mp.ncdf(mp.mpf(float(v))) for v in t]
    want = np.array([float(m) for m in m_ref])
    want_slope = np.array([float(-m * (mp.mpf(float(v)) + m)) for v, m in zip(t, m_ref)])
    with jax.enable_x64(dtype == "float64"):
        def m(v):
            return mills_ratio(v, log_ndtr(v))
        got, slope = jax.jit(jax.vmap(jax.value_and_grad(m)))(jnp.asarray(t))
        edges = jax.jit(jax.vmap(m))(jnp.asarray([-np.inf, np.nan, np.inf], dtype))
        flagged = jax.jit(jax.vmap(jax.value_and_grad(lambda v: mills_ratio(v, jnp.asarray(np.inf, v.dtype)))))(
            jnp.asarray([-1e3, -30.0, -5.0, 0.0, 4.0], dtype))
    rtol = 2e-6 if dtype == "float32" else 1e-12
    far = t <= (-10.0 if dtype == "float32" else -20.0)  # the series at and below the cut, as jax's log_ndtr's own
    np.testing.assert_allclose(np.asarray(got, np.float64)[far], want[far], rtol=rtol)
    # above it exp(-t^2/2 - log(2 pi)/2 - log Phi) carries log Phi's absolute rounding (2e-6 at -9.99 in float32)
    np.testing.assert_allclose(np.asarray(got, np.float64)[~far], want[~far], rtol=5 * rtol)
    # M' = -M (t + M) cancels (t + M ~ -1/t): the series keeps all of it (its derivative at the cut included: a
    # min(t, cut) there gave half of it); above the cut autodiff of the exp form
    np.testing.assert_allclose(np.asarray(slope, np.float64)[far], want_slope[far], rtol=10 * rtol)
    np.testing.assert_allclose(np.asarray(slope, np.float64)[~far], want_slope[~far], rtol=1e-3 if dtype == "float32"
                               else 1e-9, atol=1e-30)
    edges = np.asarray(edges, np.float64)
    assert np.isnan(edges[0]) and np.isnan(edges[1]) and edges[2] == 0.0
    assert np.all(np.isfinite(flagged[0])) and np.all(np.isfinite(flagged[1]))
    np.testing.assert_array_equal(np.asarray(flagged[0])[2:], 0.0)


@pytest.mark.deep
@pytest.mark.parametrize("dtype", DTYPES)
def test_normal_mills_ratio_far_tail_to_ulps_and_past_the_square_of_t(dtype):
    """Below the cut ``normal.mills_ratio`` is ``-t (1/S)`` (``special.mills_inverse_series``: one division): M and
    its slope ``M' = -M (t + M)`` within 3 ulps of mpmath on a dense grid from the cut to -1e8 (``-r / (u S)``, two
    divisions, left the slope 5 ulps off in both dtypes), and past the range of ``t^2`` M is ``-t`` with slope -1
    (``r = 1/t`` squared flushed to 0 and gave ``inf`` from t = -1.9e19 in float32, -1.5e154 in float64; the
    unselected exp's NaN argument made the slope NaN)."""
    from mle_jax.distributions.normal import log_ndtr, mills_ratio
    mp.mp.dps = 60
    cut = 10.0 if dtype == "float32" else 20.0
    t = _rounded(-np.concatenate([np.linspace(cut, 3 * cut, 60), np.geomspace(3 * cut, 1e8, 40)]), dtype)
    m_ref = [mp.npdf(mp.mpf(float(v))) / mp.ncdf(mp.mpf(float(v))) for v in t]
    want = np.array([float(m) for m in m_ref])
    want_slope = np.array([float(-m * (mp.mpf(float(v)) + m)) for v, m in zip(t, m_ref)])
    huge = _rounded([-1e20, -1e30] if dtype == "float32" else [-1e160, -1e300], dtype)
    with jax.enable_x64(dtype == "float64"):
        def m(v):
            return mills_ratio(v, log_ndtr(v))
        got, slope = jax.jit(jax.vmap(jax.value_and_grad(m)))(jnp.asarray(t))
        far_m, far_slope = jax.jit(jax.vmap(jax.value_and_grad(m)))(jnp.asarray(huge))
    ulp = np.finfo(dtype).eps
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=3 * ulp, atol=0)
    np.testing.assert_allclose(np.asarray(slope, np.float64), want_slope, rtol=3 * ulp, atol=0)
    np.testing.assert_allclose(np.asarray(far_m, np.float64), -huge.astype(np.float64), rtol=ulp, atol=0)
    np.testing.assert_array_equal(np.asarray(far_slope), -1.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_lgamma1p_ratio_and_exprel_against_references(dtype):
    """``special.lgamma1p_ratio`` (``lgamma(1 + a) / a`` by its Taylor series, a <= 0.2) against mpmath, relative,
    down to a = 1e-30 (Lanczos's form is 2e-4 off at 1e-3 in float32), its slope ``(psi(1 + a) - lgamma(1 + a)/a)
    / a`` included; ``special.exprel`` against ``scipy.special.exprel`` on both sides of its series' switch (0.1)."""
    from mle_jax.distributions.special import exprel, lgamma1p_ratio
    a = _rounded([1e-30, 1e-8, 1e-4, 1e-3, 1e-2, 0.05, 0.1, 0.2], dtype)
    with mp.workdps(80):  # 1 + 1e-30 at 40 digits would keep 10 of a's
        want = [mp.loggamma(1 + mp.mpf(float(v))) / mp.mpf(float(v)) for v in a]
        want_slope = [float((mp.digamma(1 + mp.mpf(float(v))) - w) / mp.mpf(float(v))) for v, w in zip(a, want)]
        want = [float(v) for v in want]
    w = _rounded([-30.0, -1.0, -0.1, -0.0999, -1e-3, 0.0, 1e-7, 0.0999, 0.1, 2.0, 50.0], dtype)
    with jax.enable_x64(dtype == "float64"):
        got, slope = jax.vmap(jax.value_and_grad(lgamma1p_ratio))(jnp.asarray(a))
        rel = jax.vmap(exprel)(jnp.asarray(w))
    rtol = 1e-6 if dtype == "float32" else 1e-14
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=rtol)
    np.testing.assert_allclose(np.asarray(slope, np.float64), want_slope, rtol=100 * rtol)
    np.testing.assert_allclose(np.asarray(rel, np.float64), special.exprel(np.asarray(w, np.float64)), rtol=rtol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gamma_glm_shift_has_no_cancellation(dtype):
    """The Gamma GLM's shift ``a log a - a - lgamma(a)`` (summed N times in the NLL) against mpmath for a in
    [0.05, 50]: within 2 float32 / 6 float64 ulps of ``max(|shift|, 1)`` for a >= 1 (the plain sum lost 44 float32
    ulps at 1 <= a < 10: ``a log a`` and ``lgamma(a)`` cancel), within 10 below 1 (``lgamma`` of one sign there, as
    jax's); its derivative ``log a - psi(a)`` to 2e-5 / 1e-12 relative."""
    from mle_jax.distributions import gamma as gamma_mod
    a = _rounded(np.concatenate([np.geomspace(0.05, 50, 150), [1.0, 2.0, 7.3, 9.99, 10.0]]), dtype)
    ref = np.array([float(x * mp.log(x) - x - mp.loggamma(x)) for x in map(mp.mpf, a.astype(np.float64))])
    dref = np.array([float(mp.log(x) - mp.digamma(x)) for x in map(mp.mpf, a.astype(np.float64))])
    with jax.enable_x64(dtype == "float64"):
        got, grad = jax.jit(jax.vmap(jax.value_and_grad(gamma_mod.mean_shift)))(jnp.asarray(a))
        assert got.dtype == jnp.dtype(dtype)
    ulps = np.abs(np.asarray(got, np.float64) - ref) / np.spacing(np.maximum(np.abs(ref), 1.0).astype(dtype))
    big = a >= 1
    assert ulps[big].max() <= (2 if dtype == "float32" else 6), (a[big][np.argmax(ulps[big])], ulps[big].max())
    assert ulps[~big].max() <= 10, (a[~big][np.argmax(ulps[~big])], ulps[~big].max())
    np.testing.assert_allclose(np.asarray(grad, np.float64), dref, rtol=2e-5 if dtype == "float32" else 1e-12)


@pytest.mark.deep  # the mpmath reference (~2 s)
@pytest.mark.parametrize("dtype", DTYPES)
def test_gamma_entropy_has_no_cancellation(dtype):
    """The Gamma entropy's ``h(a) = lgamma(a) + a + (1 - a) psi(a)`` (``mj.Gamma(a, 1)``'s entropy) against mpmath
    and scipy's ``gamma.entropy`` for a in [1, 1000]: within 2 ulps of ``h`` (the plain sum cancelled to 13.6
    float32 and 12.7 float64 ulps between 1 and 10, and Stirling's series at a = 10 kept 14 float64 ulps); below 1,
    where ``h`` crosses 0 at 0.475, within 6 roundings of ``|h| + |a h'(a)|`` (a's own rounding)."""
    a = _rounded(np.concatenate([np.geomspace(0.01, 1000, 200), np.linspace(1, 21, 201)]), dtype)
    with mp.workdps(40):
        ref = np.array([float(mp.loggamma(x) + x + (1 - x) * mp.digamma(x)) for x in map(mp.mpf, a.astype(float))])
        slope = np.array([float(x * ((1 - x) * mp.polygamma(1, x) + 1)) for x in map(mp.mpf, a.astype(float))])
    with jax.enable_x64(dtype == "float64"):
        got = jax.jit(mj.distributions.entropy)(mj.Gamma(jnp.asarray(a), jnp.ones(len(a), dtype)))
        assert got.dtype == jnp.dtype(dtype)
    err = np.abs(np.asarray(got, np.float64) - ref) / float(np.finfo(dtype).eps)
    big = a >= 1
    assert np.max(err[big] / np.abs(ref[big])) <= 2, a[big][np.argmax(err[big] / np.abs(ref[big]))]
    assert np.max(err[~big] / (np.abs(ref) + np.abs(slope))[~big]) <= 6
    np.testing.assert_allclose(ref, stats.gamma.entropy(a.astype(float)), rtol=1e-13, atol=1e-13)
