"""The Binomial theta (successes out of n trials, on the logits) and the ``mj.binomial()`` family.

References: scipy.stats.binom (logpmf, logcdf, logsf, ppf, moments), the sum over the support (KL, the
expected information), and statsmodels' binomial GLM on ``column_stack([k, n - k])``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import stats
from scipy.special import expit

import mle_jax as mj

_PARAMS = [(10, 0.3), (1, -2.0), (50, -4.0), (1e6, 0.1), (1e4, 8.0), (0, 1.0), (20, -30.0), (8, np.inf),
           (8, -np.inf), (1e6, 0.0)]


def _grid():
    rows = [(n, z, y) for n, z in _PARAMS for y in [0, 1, 3, n // 2, n - 1, n, n + 1, -1, 2.5, 500_123]]
    return [np.array(c) for c in zip(*rows)]


@jax.jit
def _moments(theta, y):
    d = mj.distributions
    return d.log_prob(theta, y), d.mean(theta), d.variance(theta), d.mode(theta)


@jax.jit
def _tails(theta, y, q):
    d = mj.distributions
    return d.log_cdf(theta, y), d.log_sf(theta, y), d.quantile(theta, q)


def test_binomial_log_prob_and_moments_against_scipy():
    """float32; pi = 0 / 1 are the point masses at 0 / n; at n = 1e6 (y = 500123) the saddle-point form
    keeps float32's digits where the plain form adds terms of 7e5."""
    n, z, y = (a.astype(np.float32) for a in _grid())
    got = [np.asarray(v, np.float64) for v in _moments(mj.Binomial(n, z), y)]
    n, z, y = (a.astype(np.float64) for a in (n, z, y))  # the reference at the rounded inputs
    ref = stats.binom(n, expit(z))
    np.testing.assert_allclose(got[0], ref.logpmf(y), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[1], ref.mean(), rtol=1e-5)
    np.testing.assert_allclose(got[2], ref.var(), rtol=1e-5, atol=1e-30)
    # a mode: no count has a larger mass
    support = np.arange(0, 60)
    small = n <= 50
    best = stats.binom.logpmf(support[None, :], n[small, None], expit(z[small, None])).max(axis=1)
    np.testing.assert_allclose(ref.logpmf(got[3])[small], best, rtol=1e-12)


@pytest.mark.deep
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_binomial_tails_and_quantile_against_scipy(dtype, request):
    if dtype == "float64":
        request.getfixturevalue("x64")
    n, z, y = (a.astype(dtype) for a in _grid())
    q = np.resize(np.array([0, 1e-20, 0.01, 0.3, 0.5, 0.9, 1 - 1e-4, 1]), len(y)).astype(dtype)
    got = [np.asarray(v, np.float64) for v in _tails(mj.Binomial(n, z), y, q)]
    n, z, y, q = (a.astype(np.float64) for a in (n, z, y, q))
    ref = stats.binom(n, expit(z))
    # float32: the incomplete beta at a = b = 5e5 (n = 1e6) holds the log CDF to 1e-4
    rtol, atol = (1e-4, np.where(n >= 1e6, 2e-4, 1e-5)) if dtype == "float32" else (1e-9, np.full_like(n, 1e-10))
    for value, expected in [(got[0], ref.logcdf(y)), (got[1], ref.logsf(y))]:
        finite = np.isfinite(expected)  # scipy underflows below 1e-308 (log -7e5 at n = 1e6)
        gap = np.abs(value[finite] - expected[finite])
        assert (gap <= atol[finite] + rtol * np.abs(expected[finite])).all(), (value, expected)
        assert ((value[~finite] < -700) | (value[~finite] == expected[~finite])).all()
    np.testing.assert_array_equal(got[2], ref.ppf(q))


@pytest.mark.deep
def test_binomial_kl_fisher_and_twin(x64):
    """KL(same n) and the expected information in the logits against sums over the support."""
    p, q = mj.Binomial(jnp.float64(12.0), jnp.float64(0.7)), mj.Binomial(jnp.float64(12.0), jnp.float64(-1.1))
    k = np.arange(13)
    lp, lq = stats.binom.logpmf(k, 12, expit(0.7)), stats.binom.logpmf(k, 12, expit(-1.1))
    np.testing.assert_allclose(mj.kl(p, q), np.sum(np.exp(lp) * (lp - lq)), rtol=1e-12)
    assert np.isinf(mj.kl(mj.Binomial(jnp.float64(13.0), jnp.float64(0.7)), q))
    # -E[d^2/dz^2 log Pr(k)] by the sum over k
    hess = jax.vmap(jax.hessian(lambda z, k: mj.log_prob(mj.Binomial(12.0, z), k)), in_axes=(None, 0))
    expected = -np.sum(np.exp(lp) * np.asarray(hess(jnp.float64(0.7), jnp.asarray(k, jnp.float64))))
    np.testing.assert_allclose(mj.distributions.registry.fisher(p)[1, 1], expected, rtol=1e-12)
    tfd = pytest.importorskip("tensorflow_probability.substrates.jax").distributions
    np.testing.assert_allclose(mj.to_tfp(p).log_prob(5.0), stats.binom.logpmf(5, 12, expit(0.7)), rtol=1e-12)
    assert isinstance(mj.from_tfp(tfd.Binomial(12.0, probs=0.3)), mj.Binomial)


@pytest.mark.deep
def test_binomial_family_loss_and_refused_targets():
    logits = jnp.array([0.2, -1.0, 3.0])
    y = np.array([[3, 10], [0, 0], [5, 5]], np.float32)
    np.testing.assert_allclose(mj.losses.binomial(logits, y),
                               -stats.binom.logpmf(y[:, 0], y[:, 1], expit(np.asarray(logits, np.float64))),
                               rtol=2e-6, atol=1e-7)
    for bad, word in [([[3, 2]], "successes <= trials"), ([[1.5, 3]], "successes 1.5"), ([[-1, 3]], "successes -1"),
                      ([[1, -1]], "trials -1"), ([[1, 2.5]], "trials 2.5")]:
        with pytest.raises(ValueError, match=word):
            mj.losses.binomial(jnp.array([0.2]), np.array(bad, np.float32))
    # traced targets off the support: -inf, never a finite log-likelihood
    family = mj.binomial()
    off = jax.jit(jax.vmap(family.log_prob, in_axes=(None, 0, 0)))({}, jnp.zeros(2), jnp.array([[3.0, 2], [1, 2.5]]))
    np.testing.assert_array_equal(off, [-np.inf, -np.inf])


def _llf_mpmath(eta, k, n):
    import mpmath as mp
    with mp.workdps(40):
        return float(mp.fsum(mp.log(mp.binomial(int(b), int(a))) - a * mp.log1p(mp.exp(-mp.mpf(e)))
                             - (b - a) * mp.log1p(mp.exp(mp.mpf(e))) for e, a, b in zip(eta, k, n)))


@pytest.mark.deep
def test_binomial_glm_matches_statsmodels(x64):
    """Trials from 1 to 30 and, on 40 rows, 1e3 to 1e6 (the free part's centred form at large counts, where a fit
    spends its steps): L-BFGS and Newton reach statsmodels' coefficients, and the NLL a full-batch fit evaluates
    (the free part plus the data term summed once) and reports is statsmodels' log-likelihood."""
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(21)
    x = np.column_stack([np.ones(400), rng.normal(size=(400, 2))])
    trials = rng.integers(1, 30, size=400)
    trials[:40] = np.round(10.0 ** rng.uniform(3, 6, size=40))
    succ = rng.binomial(trials, expit(x @ np.array([-0.4, 0.8, -1.2])))
    ref = sm.GLM(np.column_stack([succ, trials - succ]), x, family=sm.families.Binomial()).fit(tol=1e-14)
    y = np.column_stack([succ, trials]).astype(np.float64)
    r = mj.recipe(lambda w, x_i: x_i @ w, mj.binomial())
    xj, yj = jnp.asarray(x), jnp.asarray(y)
    for optimizer, steps in ((optax.lbfgs(), 300), (mj.newton(), 50)):
        res = mj.fit(r, r.init(jnp.zeros(3)), xj, yj, optimizer, steps=steps, objective=mj.Objective(tol=1e-10),
                     run=mj.Run(progress=False))
        np.testing.assert_allclose(res.params.model, ref.params, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(-float(r.nll(res.params, xj, yj)), ref.llf, rtol=1e-10)
        split = r.objective(res.params, xj, yj, data=r.data_term(yj))[0]
        np.testing.assert_allclose(-float(split), _llf_mpmath(x @ np.asarray(res.params.model), succ, trials),
                                   rtol=1e-13)  # statsmodels' gammaln terms keep 7e-12 of it here
        np.testing.assert_allclose(-res.history[-1] * len(y), ref.llf, rtol=1e-6)  # the mean NLL, in float32


def _mp_binomial(n, y, z):
    """mpmath's ``(log Pr(y), d/dz, d2/dz2)`` of ``Binomial(n, sigmoid(z))``: the log-pmf from ``loggamma``, the
    slope ``y sig(-z) - (n - y) sig(z)`` and the curvature ``-n sig(z) sig(-z)``."""
    import mpmath as mp
    with mp.workdps(60):
        n, y, z = mp.mpf(float(n)), mp.mpf(float(y)), mp.mpf(float(z))
        sig, sig_neg = 1 / (1 + mp.exp(-z)), 1 / (1 + mp.exp(z))
        value = (mp.loggamma(n + 1) - mp.loggamma(y + 1) - mp.loggamma(n - y + 1) - y * mp.log1p(mp.exp(-z))
                 - (n - y) * mp.log1p(mp.exp(z)))
        return float(value), float(y * sig_neg - (n - y) * sig), float(-n * sig * sig_neg)


@pytest.mark.deep  # the mpmath reference and a compile per dtype (~1.3 s)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_binomial_log_prob_near_the_counts_own_logit_is_within_the_inputs_rounding(dtype):
    """``log_prob`` (``r.nll``'s, one form per row: ``log_prob_free + data_term``) and the full-batch fit's
    ``log_prob_free`` plus ``data_term`` (the objective a fit evaluates and reports) within ``|w| < 1/4`` of the
    counts' own logit, n from 1e5 to 1e9: off mpmath by at most 3 times what the rounding of z alone moves it
    (``eps (|log Pr| + |z d/dz|)``). The free part's ``log1p(p expm1(w)) - p w`` keeps ``eps n p |w|``: 580
    (float64) and 1900 (float32) times that at n = 1e9 (the full-batch sum's, before it took the series too:
    4206 float32 roundings of the log-pmf at n = 1e9, y = 3e8, w = 1e-3); the KL as two series of one sign each
    does not."""
    from mle_jax.distributions import binomial as b
    rows = np.array([[n, np.floor(n * f), np.log(np.floor(n * f) / (n - np.floor(n * f))) + w]
                     for n in (1e5, 1e7, 1e9) for f in (0.5, 1 / 3, 0.01, 0.3)
                     for w in (1e-4, -1e-3, 1e-2, -0.2, 0.24)])
    rows = rows.astype(dtype).astype(float)
    with jax.enable_x64(dtype == "float64"):
        got = jax.jit(lambda n, y, z: (b.log_prob(b.Binomial(n, z), y), b.log_prob_free(n, z, y) + b.data_term(n, y)))(
            *(jnp.asarray(c, dtype) for c in rows.T))
    truth, slope, _ = np.array([_mp_binomial(*r) for r in rows]).T
    rounding = np.finfo(dtype).eps * (np.maximum(np.abs(truth), 1.0) + np.abs(slope * rows[:, 2]))
    for form in got:
        error = np.abs(np.asarray(form, float) - truth)
        assert np.all(error <= 3 * rounding), error / rounding


@pytest.mark.deep  # the mpmath reference and a compile per dtype
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_binomial_slope_near_the_counts_own_logit_has_no_cancellation(dtype):
    """d/dz and d2/dz2 (``jax.hessian``) of ``log_prob`` and the full-batch ``log_prob_free`` at ``z = z0 + w``,
    ``z0 = log(y / (n - y))``, ``|w|`` from 1e-11 to 1e-3, y at n / 2, n / 2 + 1, n / 2 - 3 (z0 near 0) and 0.3 n,
    n = 1e6 (float32) and 1e12 (float64): the slope within 4 times what the rounding of z alone moves it
    (``eps (|d/dz| + |z d2/dz2|)``), the curvature within 8 roundings (mpmath). ``y - n sigmoid(z)`` keeps ``eps n``:
    at n = 1e12, y = n / 2, w = 1e-11 the slope was 4e-8 off (1e8 roundings), the centred
    ``-+ n p q expm1(w) / (1 + p expm1(w))`` is not; z0 as one ``log1p`` of the counts' exact difference over a
    count (``log`` of the rounded ratio kept half a rounding of 1: 2e-6 and 4e-6 of the slope at y = n / 2 + 1 and
    n / 2 - 3, w = 1e-11)."""
    import mpmath as mp
    from mle_jax.distributions import binomial as b
    n = 1e6 if dtype == "float32" else 1e12
    ws = (1e-5, -1e-4, 1e-3) if dtype == "float32" else (1e-11, -1e-9, 1e-6, 1e-3)
    with mp.workdps(40):
        rows = np.array([[n, y, float(mp.log(mp.mpf(y) / (n - y)) + w)]
                         for y in (n / 2, n / 2 + 1, n / 2 - 3, 0.3 * n) for w in ws]).astype(dtype).astype(float)
    with jax.enable_x64(dtype == "float64"):
        def kernel(n, z, y):
            return b.log_prob(b.Binomial(n, z), y)
        cols = [jnp.asarray(c, dtype) for c in (rows[:, 0], rows[:, 2], rows[:, 1])]
        got = jax.jit(jax.vmap(lambda n, z, y: [d(f, argnums=1)(n, z, y) for f in (kernel, b.log_prob_free)
                                                for d in (jax.grad, jax.hessian)]))(*cols)
    _, slope, curvature = np.array([_mp_binomial(*r) for r in rows]).T
    eps = float(np.finfo(dtype).eps)
    rounding = eps * (np.abs(slope) + np.abs(rows[:, 2] * curvature))
    for d_z, d_zz in (got[:2], got[2:]):
        assert np.all(np.abs(np.asarray(d_z, float) - slope) <= 4 * rounding), np.abs(d_z - slope) / rounding
        np.testing.assert_allclose(np.asarray(d_zz, float), curvature, rtol=8 * eps)


@pytest.mark.deep  # the mpmath reference and three compiles per dtype
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_binomial_log_prob_and_its_derivatives_at_the_edges(dtype):
    """``log_prob``, d/dz and d2/dz2 against mpmath for n = 1 to 1e9, y = 0, 1, 10 (either side of the saddle point's
    switch), n / 2, n - 1 and n, logits from -90 to 90 (pi near 0 and 1): the value to 64 roundings of its size
    and of z's (the product form's ``m log s`` cancels against ``y log pi``), the slope to 8 of its terms, the
    curvature ``-n sig(z) sig(-z)`` to 8 roundings (slope and curvature 0 where the dtype flushes them); scipy's
    logpmf where it is exact."""
    from mle_jax.distributions import binomial as b
    eps, tiny = float(np.finfo(dtype).eps), float(np.finfo(dtype).tiny)
    rows = np.array([[n, y, z] for n in (1.0, 9.0, 20.0, 1e4, 1e6, 1e9)
                     for y in sorted({0.0, 1.0, 10.0, n // 2, n - 1, n}) if 0 <= y <= n
                     for z in (-90.0, -30.0, -5.0, -0.5, 0.0, 1.0, 8.0, 30.0, 90.0)])
    rows = rows.astype(dtype).astype(float)
    with jax.enable_x64(dtype == "float64"):
        def lp(n, z, y):
            return b.log_prob(b.Binomial(n, z), y)
        cols = [jnp.asarray(c, dtype) for c in (rows[:, 0], rows[:, 2], rows[:, 1])]
        value, d_z, d_zz = (np.asarray(jax.jit(jax.vmap(f))(*cols), float) for f in
                            (lp, jax.grad(lp, argnums=1), jax.grad(jax.grad(lp, argnums=1), argnums=1)))
    n, y, z = rows.T
    truth, slope, curvature = np.array([_mp_binomial(*r) for r in rows]).T
    size = y / (1 + np.exp(z)) + (n - y) / (1 + np.exp(-z))
    assert np.all(np.abs(value - truth) <= 64 * eps * (np.maximum(np.abs(truth), 1.0) + np.abs(slope * z)))
    assert np.all(np.abs(d_z - slope) <= 8 * eps * size + n * 4 * tiny)
    assert np.all(np.abs(d_zz - curvature) <= 8 * eps * np.abs(curvature) + n * 4 * tiny)
    moderate = (n <= 1e6) & (np.abs(z) <= 8)
    np.testing.assert_allclose(value[moderate], stats.binom.logpmf(y, n, expit(z))[moderate],
                               rtol=2e-5 if dtype == "float32" else 1e-9, atol=1e-5 if dtype == "float32" else 1e-9)


@pytest.mark.parametrize("dtype", ["float32", pytest.param("float64", marks=pytest.mark.deep)])
def test_binomial_free_slope_in_the_far_tail_is_the_closed_form(dtype):
    """The full-batch fit's free part's d/dz where ``z - log(y / (n - y))`` passes ``0.9 log(max float)`` (float32:
    80) with n p up to 1e5: ``y sig(-z) - (n - y) sig(z)`` (mpmath), where ``n p expm1(w)`` overflowed (float32:
    -inf at n = 1e6, y = 10, z = 90; NaN at n = 1e9, y = 1e5, z = 100); ``log_prob``'s the same."""
    from mle_jax.distributions import binomial as b
    rows = np.array([[1e6, 10.0, 90.0], [1e6, 10.0, 79.0], [1e9, 1e5, 100.0], [1e9, 1e9 - 1e5, -100.0],
                     [1e9, 1e5, -100.0], [1e6, 1e6 - 10.0, -750.0], [1e6, 10.0, 750.0]]).astype(dtype).astype(float)
    with jax.enable_x64(dtype == "float64"):
        cols = [jnp.asarray(c, dtype) for c in (rows[:, 0], rows[:, 2], rows[:, 1])]
        free = jax.jit(jax.vmap(jax.grad(b.log_prob_free, argnums=1)))(*cols)
        full = jax.jit(jax.vmap(jax.grad(lambda n, z, y: b.log_prob(b.Binomial(n, z), y), argnums=1)))(*cols)
    slope = np.array([_mp_binomial(*r)[1] for r in rows])
    for got in (free, full):
        np.testing.assert_allclose(np.asarray(got, float), slope, rtol=4 * float(np.finfo(dtype).eps))
