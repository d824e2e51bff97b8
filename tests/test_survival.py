"""Exponential, Weibull and log-normal (issue 21, "magnitudes and survival"): every function against scipy.stats
(``expon``, ``weibull_min``, ``lognorm``) in float32 and float64 with the tails, KL and CRPS against numerical
integration, the Fisher information against quadrature, the TFP twins, and right-censored fits against
scipy's censored MLE (``scipy.stats.CensoredData``). log_prob / log_cdf / log_sf / entropy of the cases in
tests/cases.py run in test_distributions.py."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree
from scipy import integrate, optimize, stats

import mle_jax as mj
from mle_jax.distributions import isf, registry

f = np.float64
THETAS = {  # name: (theta in float64, frozen scipy distribution)
    "exponential": (mj.Exponential(f(2.0)), stats.expon(scale=0.5)),
    "exponential-tiny-rate": (mj.Exponential(f(1e-20)), stats.expon(scale=1e20)),
    "weibull": (mj.Weibull(f(1.5), f(2.0)), stats.weibull_min(1.5, scale=2.0)),
    "weibull-small-shape": (mj.Weibull(f(0.3), f(1.0)), stats.weibull_min(0.3)),
    "weibull-large-shape": (mj.Weibull(f(40.0), f(3.0)), stats.weibull_min(40.0, scale=3.0)),
    "log-normal": (mj.LogNormal(f(0.5), f(0.8)), stats.lognorm(0.8, scale=math.exp(0.5))),
    "log-normal-wide": (mj.LogNormal(f(-3.0), f(2.5)), stats.lognorm(2.5, scale=math.exp(-3.0))),
}
Q = np.array([1e-30, 1e-6, 0.3, 0.5, 0.99])      # quantile levels (1e-30: the far lower tail)
P = np.array([1e-30, 1e-6, 0.3, 0.5, 0.01])      # upper-tail levels for isf (1 - 1e-30 rounds to 1)
TOL = {"float32": 2e-5, "float64": 1e-11}


def _weibull_mode(k, s):
    return s * ((k - 1) / k) ** (1 / k) if k > 1 else 0.0


def _mode(theta, frozen):
    """The mode in closed form from scipy's parameters (scipy has none)."""
    if isinstance(theta, mj.Exponential):
        return 0.0
    if isinstance(theta, mj.Weibull):
        return _weibull_mode(float(theta.concentration), float(theta.scale))
    return math.exp(float(theta.loc) - float(theta.scale) ** 2)


@jax.jit
def _functions(theta, q, p):
    return {"quantile": jax.vmap(mj.quantile, (None, 0))(theta, q), "isf": jax.vmap(isf, (None, 0))(theta, p),
            "mean": mj.mean(theta), "variance": mj.variance(theta), "mode": mj.mode(theta)}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(THETAS))
def test_quantile_isf_and_moments_against_scipy(name, dtype):
    """At the parameters rounded to the dtype, so the tolerance measures the arithmetic."""
    theta, _ = THETAS[name]
    with jax.enable_x64(dtype == "float64"):
        cast = jax.tree_util.tree_map(lambda v: jnp.asarray(v, dtype), theta)
        rounded = jax.tree_util.tree_map(lambda v: np.float64(v), cast)
        frozen = {"Exponential": lambda t: stats.expon(scale=1 / t.rate),
                  "Weibull": lambda t: stats.weibull_min(t.concentration, scale=t.scale),
                  "LogNormal": lambda t: stats.lognorm(t.scale, scale=np.exp(t.loc))}[type(theta).__name__](rounded)
        q, p = np.asarray(Q, dtype).astype(f), np.asarray(P, dtype).astype(f)
        got = _functions(cast, jnp.asarray(q, dtype), jnp.asarray(p, dtype))
        assert got["quantile"].dtype == jnp.dtype(dtype)
        info = np.finfo(dtype)

        def close(value, reference):
            """Within the dtype's tolerance; inf where the reference overflows, 0 where it underflows."""
            reference = np.asarray(reference, np.float64)
            expected = np.where(reference > info.max, np.inf, np.where(reference < info.tiny, 0.0, reference))
            np.testing.assert_allclose(value, expected, rtol=TOL[dtype], atol=info.tiny)
        close(got["quantile"], frozen.ppf(q))
        close(got["isf"], frozen.isf(p))
        close(got["mean"], frozen.mean())
        close(got["mode"], _mode(rounded, frozen))
        if not name.startswith("weibull-large"):  # scipy's var cancels there (see the next test)
            close(got["variance"], frozen.var())


@pytest.mark.deep
def test_weibull_variance_at_large_shapes_without_cancelling():
    """``s^2 [Gamma(1 + 2/k) - Gamma(1 + 1/k)^2]`` against 40-digit mpmath, in float32, at k up to 1e7
    (scipy's float64 ``var`` loses 1% at 1e7; the limit is ``(pi s / k)^2 / 6``)."""
    import mpmath as mp
    mp.mp.dps = 40
    ks = [0.5, 3.0, 9.0, 11.0, 40.0, 1e4, 1e7]
    got = jax.vmap(lambda k: mj.variance(mj.Weibull(k, jnp.float32(2.0))))(jnp.asarray(ks, jnp.float32))
    for k, g in zip(ks, np.asarray(got)):
        kk = mp.mpf(float(np.float32(k)))
        ref = 4 * (mp.gamma(1 + 2 / kk) - mp.gamma(1 + 1 / kk) ** 2)
        np.testing.assert_allclose(g, float(ref), rtol=2e-5)


def _integrate(fn, lower, upper, points=None):
    value, _ = integrate.quad(fn, lower, upper, epsabs=1e-14, epsrel=1e-10, limit=400, points=points)
    return value


def _over_positive(fn):
    """``int_0^inf fn(y) dy`` as ``int fn(e^x) e^x dx`` over the real line (the densities span decades)."""
    with np.errstate(all="ignore"):  # scipy's pdf overflows in branches it discards, far out
        return _integrate(lambda x: fn(math.exp(x)) * math.exp(x) if -700 < x < 700 else 0.0, -np.inf, np.inf)


KL_PAIRS = {
    "exponential": (mj.Exponential(f(2.0)), mj.Exponential(f(0.7))),
    "weibull": (mj.Weibull(f(1.5), f(2.0)), mj.Weibull(f(0.8), f(1.2))),
    "weibull-near": (mj.Weibull(f(2.0), f(1.0)), mj.Weibull(f(2.05), f(1.01))),
    "log-normal": (mj.LogNormal(f(0.5), f(0.8)), mj.LogNormal(f(-0.2), f(1.3))),
}


def _scipy(theta):
    if isinstance(theta, mj.Exponential):
        return stats.expon(scale=1 / float(theta.rate))
    if isinstance(theta, mj.Weibull):
        return stats.weibull_min(float(theta.concentration), scale=float(theta.scale))
    return stats.lognorm(float(theta.scale), scale=math.exp(float(theta.loc)))


@pytest.mark.parametrize("name", sorted(KL_PAIRS))
def test_kl_against_numerical_integration(name, x64):
    p, q = KL_PAIRS[name]
    fp, fq = _scipy(p), _scipy(q)
    reference = _over_positive(lambda y: fp.pdf(y) * (fp.logpdf(y) - fq.logpdf(y)) if fp.pdf(y) > 0 else 0.0)
    np.testing.assert_allclose(mj.kl(p, q), reference, rtol=1e-8, atol=1e-12)
    assert float(mj.kl(p, p)) == 0.0


def test_kl_near_equal_weibulls_in_float32():
    """The two non-negative terms of the Weibull KL do not cancel: at shapes 1 part in 1e4 apart, float32 keeps
    the value (~1e-8) to 1e-3 against float64."""
    p32, q32 = mj.Weibull(jnp.float32(2.0), jnp.float32(1.0)), mj.Weibull(jnp.float32(2.0002), jnp.float32(1.0))
    with jax.enable_x64(True):
        ref = float(mj.kl(mj.Weibull(f(2.0), f(1.0)), mj.Weibull(f(np.float32(2.0002)), f(1.0))))
    np.testing.assert_allclose(mj.kl(p32, q32), ref, rtol=1e-3)


CRPS_THETAS = {"exponential": mj.Exponential(f(1.7)), "log-normal": mj.LogNormal(f(0.3), f(0.9)),
               "log-normal-narrow": mj.LogNormal(f(1.0), f(0.05))}


@pytest.mark.parametrize("name", sorted(CRPS_THETAS))
def test_crps_against_numerical_integration(name, x64):
    """``int (F(t) - 1{y <= t})^2 dt`` by quadrature, at y near 0, inside the support and far out."""
    theta = CRPS_THETAS[name]
    frozen = _scipy(theta)
    ys = np.array([1e-6, 0.2, float(frozen.median()), 4.0, 60.0])
    got = mj.crps(jax.tree_util.tree_map(lambda v: jnp.full(ys.shape, v), theta), jnp.asarray(ys))
    for y, g in zip(ys, np.asarray(got)):
        reference = _integrate(lambda t: frozen.cdf(t) ** 2, 0.0, y) + _integrate(lambda t: frozen.sf(t) ** 2, y, np.inf)
        np.testing.assert_allclose(g, reference, rtol=1e-8, atol=1e-12)


@pytest.mark.deep  # Monte Carlo
def test_weibull_crps_is_the_sampled_estimate():
    """No closed form: ``crps`` needs ``key`` and returns the sample estimate, within 5 standard errors of
    the quadrature (k = 1 checks it against the Exponential's closed form too)."""
    with pytest.raises(ValueError, match="no closed form for Weibull"):
        mj.crps(mj.Weibull(1.5, 2.0), 1.0)
    frozen = stats.weibull_min(1.5, scale=2.0)
    ref = _integrate(lambda t: frozen.cdf(t) ** 2, 0, 1.0) + _integrate(lambda t: frozen.sf(t) ** 2, 1.0, np.inf)
    est = mj.crps(mj.Weibull(jnp.float32(1.5), jnp.float32(2.0)), jnp.float32(1.0), key=jax.random.PRNGKey(0),
                  num_samples=4000)
    assert abs(float(est.estimate) - ref) < 5 * float(est.standard_error)
    np.testing.assert_allclose(mj.crps(mj.Exponential(0.5), 1.0), _integrate(
        lambda t: stats.expon(scale=2).cdf(t) ** 2, 0, 1) + _integrate(lambda t: stats.expon(scale=2).sf(t) ** 2,
                                                                        1, np.inf), rtol=1e-5)


FISHER = {"exponential": mj.Exponential(f(1.7)), "weibull": mj.Weibull(f(1.5), f(2.0)),
          "weibull-small-shape": mj.Weibull(f(0.6), f(0.5)), "log-normal": mj.LogNormal(f(0.3), f(0.9))}


@pytest.mark.parametrize("name", sorted(FISHER))
def test_fisher_is_the_expected_negative_hessian(name, x64):
    """``-E[d^2 log_prob / d theta^2]`` against scipy's density, the Hessian by autodiff at every node of a
    trapezoid rule in ``x = log y`` over the central ``1 - 2e-30`` of the mass (one vmapped call; the rule
    converges geometrically for an integrand this smooth that vanishes at both ends)."""
    theta = FISHER[name]
    flat, unravel = ravel_pytree(theta)
    frozen = _scipy(theta)
    x = np.linspace(math.log(frozen.ppf(1e-30)), math.log(frozen.isf(1e-30)), 6001)
    y = np.exp(x)
    hess = jax.jit(jax.vmap(jax.hessian(lambda v, y: mj.log_prob(unravel(v), y)), (None, 0)))(flat, jnp.asarray(y))
    weights = np.full(x.size, x[1] - x[0])
    weights[[0, -1]] *= 0.5
    ref = -np.einsum("n,nij->ij", weights * frozen.pdf(y) * y, np.asarray(hess))
    np.testing.assert_allclose(registry.fisher(theta), ref, rtol=1e-8, atol=1e-12)


@pytest.mark.deep  # Monte Carlo
@pytest.mark.parametrize("name", sorted(THETAS))
def test_sample_follows_the_distribution(name):
    """A Kolmogorov-Smirnov test of 2000 float32 draws against scipy's cdf (p > 1e-4), and their mean
    within 5 standard errors where the variance is finite and moderate."""
    theta, frozen = THETAS[name]
    cast = jax.tree_util.tree_map(lambda v: jnp.full((2000,), v, jnp.float32), theta)
    draws = np.asarray(jax.jit(mj.sample)(jax.random.PRNGKey(1), cast), np.float64)
    assert draws.dtype == np.float64 and (draws >= 0).all()
    assert stats.kstest(draws, frozen.cdf).pvalue > 1e-4


@pytest.mark.deep  # importing TensorFlow Probability's JAX substrate costs ~10 s
def test_tfp_twins_agree_and_convert_back():
    pytest.importorskip("tensorflow_probability")
    y = jnp.asarray([0.3, 1.0, 7.0], jnp.float32)
    for theta in (mj.Exponential(jnp.float32(2.0)), mj.Weibull(jnp.float32(1.5), jnp.float32(2.0)),
                  mj.LogNormal(jnp.float32(0.5), jnp.float32(0.8))):
        batch = jax.tree_util.tree_map(lambda v: jnp.full((3,), v), theta)
        twin = mj.to_tfp(batch)
        np.testing.assert_allclose(twin.log_prob(y), jax.vmap(mj.log_prob)(batch, y), rtol=1e-5)
        np.testing.assert_allclose(twin.log_survival_function(y), jax.vmap(mj.log_sf)(batch, y), rtol=1e-5)
        back = mj.from_tfp(twin)
        assert type(back) is type(theta)
        for a, b in zip(back, batch):
            np.testing.assert_allclose(a, b, rtol=1e-6)
        with pytest.raises(TypeError, match="distrax"):
            mj.to_distrax(theta)


def test_the_tails_are_exact_in_float32():
    """log_sf of the Exponential is -rate y, of the Weibull -(y/s)^k; the log-normal's is log_ndtr: none is
    log(0) where the probability underflows, and the log cdf is exact where it is tiny."""
    e, w, ln = mj.Exponential(jnp.float32(3.0)), mj.Weibull(jnp.float32(2.0), jnp.float32(0.5)), \
        mj.LogNormal(jnp.float32(0.0), jnp.float32(0.5))
    np.testing.assert_allclose(mj.log_sf(e, jnp.float32(1e4)), -3e4, rtol=1e-7)
    np.testing.assert_allclose(mj.log_sf(w, jnp.float32(100.0)), -(200.0 ** 2), rtol=1e-6)
    np.testing.assert_allclose(mj.log_sf(ln, jnp.float32(1e8)), stats.lognorm(0.5).logsf(1e8), rtol=1e-5)
    np.testing.assert_allclose(mj.log_cdf(w, jnp.float32(1e-20)), stats.weibull_min(2.0, scale=0.5).logcdf(1e-20),
                               rtol=1e-6)
    np.testing.assert_allclose(mj.log_cdf(ln, jnp.float32(1e-8)), stats.lognorm(0.5).logcdf(1e-8), rtol=1e-5)
    np.testing.assert_allclose(isf(e, jnp.float32(1e-30)), -math.log(1e-30) / 3, rtol=1e-6)


def test_family_links_and_losses():
    """The families' raw outputs: the log-rate, the log-scale (with a learned, per-example or fixed shape)
    and mu of log y; ``mj.losses`` takes the shape and the scale as values."""
    y = jnp.asarray([0.4, 2.0, 5.0])
    raw = jnp.asarray([0.3, -0.2, 1.1])
    np.testing.assert_allclose(mj.losses.exponential(raw, y), -stats.expon(scale=np.exp(-raw)).logpdf(y),
                               rtol=1e-5)
    np.testing.assert_allclose(mj.losses.weibull(raw, y, concentration=1.7),
                               -stats.weibull_min(1.7, scale=np.exp(raw)).logpdf(y), rtol=1e-5)
    np.testing.assert_allclose(mj.losses.weibull(raw, y, concentration=jnp.asarray(1.7)),
                               -stats.weibull_min(1.7, scale=np.exp(raw)).logpdf(y), rtol=1e-5)
    np.testing.assert_allclose(mj.losses.log_normal(raw, y, scale=0.6),
                               -stats.lognorm(0.6, scale=np.exp(raw)).logpdf(y), rtol=1e-5)
    per = jnp.stack([raw, jnp.asarray([0.0, 1.0, -1.0])], axis=1)
    k = np.log1p(np.exp([0.0, 1.0, -1.0])) + np.finfo(np.float32).eps
    np.testing.assert_allclose(mj.losses.weibull(per, y, concentration="per_example"),
                               -stats.weibull_min(k, scale=np.exp(raw)).logpdf(y), rtol=1e-5)
    assert mj.weibull().name == "weibull(concentration='learned')"
    assert mj.log_normal("learned").name == "log_normal(scale='learned')"
    for bad in (lambda: mj.weibull("fixed"), lambda: mj.weibull(-1.0), lambda: mj.log_normal(0.0),
                lambda: mj.weibull(init_concentration=0.0)):
        with pytest.raises(ValueError):
            bad()


# ----------------------------------------------------------------------------- right-censored fits

def _survival_data(seed=0, n=300):
    """Weibull(1.4, 2.0) event times, right-censored at uniform(0, 4) times (about a third censored)."""
    rng = np.random.default_rng(seed)
    t = 2.0 * rng.weibull(1.4, n)
    c = rng.uniform(0.0, 4.0, n)
    return np.minimum(t, c), (t > c).astype(np.float64)


def _tight(func, x0, args=(), disp=0):
    return optimize.fmin(func, x0, args=args, disp=0, xtol=1e-12, ftol=1e-14, maxiter=20000, maxfun=40000)


def _fit(family, start, y):
    r = mj.recipe(lambda p, x_i: p["b"], family)
    x = jnp.zeros((y.shape[0], 1))
    res = mj.fit(r, r.init({"b": jnp.float64(start)}), x, jnp.asarray(y), optax.lbfgs(), steps=300,
                 objective=mj.Objective(tol=1e-10))
    return res.params, -float(r.nll(res.params, x, jnp.asarray(y)))


@pytest.mark.deep
def test_right_censored_fits_match_scipy(x64):
    """``mj.censored(mj.weibull())`` / ``exponential()`` / ``log_normal("learned")`` on (time, +1 if censored)
    against ``scipy.stats.<dist>.fit(CensoredData(...), floc=0)`` (Nelder-Mead to 1e-12): the parameters to
    1e-5 and the maximised log-likelihoods to 1e-9 relative (ours evaluated by scipy too)."""
    time, censored = _survival_data()
    y = np.stack([time, censored], axis=1)
    data = stats.CensoredData(uncensored=time[censored == 0], right=time[censored == 1])

    def scipy_loglik(frozen):
        return float(np.sum(frozen.logpdf(time[censored == 0])) + np.sum(frozen.logsf(time[censored == 1])))

    c, _, scale = stats.weibull_min.fit(data, floc=0, optimizer=_tight)
    params, ll = _fit(mj.censored(mj.weibull()), 0.0, y)
    k = float(jax.nn.softplus(params.family["concentration"]) + np.finfo(np.float64).eps)
    np.testing.assert_allclose([k, math.exp(float(params.model["b"]))], [c, scale], rtol=1e-5)
    np.testing.assert_allclose(ll, scipy_loglik(stats.weibull_min(k, scale=math.exp(float(params.model["b"])))),
                               rtol=1e-12)
    assert ll >= scipy_loglik(stats.weibull_min(c, scale=scale)) - 1e-9 * abs(ll)

    _, scale = stats.expon.fit(data, floc=0, optimizer=_tight)
    params, ll = _fit(mj.censored(mj.exponential()), 0.0, y)
    rate_mle = (censored == 0).sum() / time.sum()  # the closed form: events / total time at risk
    np.testing.assert_allclose(math.exp(float(params.model["b"])), [1 / scale, rate_mle], rtol=1e-5)

    s, _, scale = stats.lognorm.fit(data, floc=0, optimizer=_tight)
    params, ll = _fit(mj.censored(mj.log_normal("learned")), 0.0, y)
    sigma = float(jax.nn.softplus(params.family["scale"]) + np.finfo(np.float64).eps)
    np.testing.assert_allclose([sigma, float(params.model["b"])], [s, math.log(scale)], rtol=1e-5, atol=1e-7)
    assert ll >= scipy_loglik(stats.lognorm(s, scale=scale)) - 1e-9 * abs(ll)


EXP_EDGES = [(0.3, 1.7), (-2.0, 0.0), (100.0, 0.0), (200.0, 0.0), (100.0, 1e-30), (150.0, 1e-37), (-80.0, 1e30),
             (1.0, -1.0), (1.0, -1e-30), (-3.0, np.inf), (1.0, np.nan)]


@pytest.mark.deep
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_exponential_family_kernel_at_extremes_against_the_closed_form(dtype, request):
    """``mj.exponential()``'s fused ``z - exp(z) y`` (``((y e) e) e``, e = exp(z/3), with its written derivatives)
    against the closed form in float64 log space, ``z - exp(z + log y)``: y = 0 at z = 100 and 200 (exp(z) is
    inf in float32: no inf * 0), exp(z) y finite where exp(z) overflows (1e-30 at z = 100, 1e-37 at 150), -inf
    below 0, NaN at NaN; d/dz = 1 - exp(z) y, d2/dz2 = -exp(z) y, d/dy = -exp(z); and a masked-out example
    whose target is off the support (-1, NaN) leaves the summed gradient finite."""
    if dtype == "float64":
        request.getfixturevalue("x64")
    dt = jnp.dtype(dtype)
    family = mj.exponential()
    z = np.array([e[0] for e in EXP_EDGES])
    y = np.array([e[1] for e in EXP_EDGES])
    with np.errstate(divide="ignore", invalid="ignore"):
        hazard = np.where(y > 0, np.exp(z + np.log(np.where(y > 0, y, 1.0))), 0.0)
    expected = np.where(y >= 0, z - hazard, np.where(np.isnan(y), np.nan, -np.inf))
    lp = jax.vmap(family.log_prob, in_axes=(None, 0, 0))
    got = np.asarray(lp({}, jnp.asarray(z, dt), jnp.asarray(y, dt)), np.float64)
    rtol = 3e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got, expected, rtol=rtol)
    on = y >= 0
    one = lambda r, t: family.log_prob({}, r, t)  # noqa: E731
    d1 = jax.vmap(jax.grad(one))(jnp.asarray(z[on], dt), jnp.asarray(y[on], dt))
    d2 = jax.vmap(jax.grad(jax.grad(one)))(jnp.asarray(z[on], dt), jnp.asarray(y[on], dt))
    np.testing.assert_allclose(np.asarray(d1, np.float64), 1.0 - hazard[on], rtol=rtol)
    np.testing.assert_allclose(np.asarray(d2, np.float64), -hazard[on], rtol=rtol)
    small = on & (np.abs(z) < 50)
    dy = jax.vmap(jax.grad(one, argnums=1))(jnp.asarray(z[small], dt), jnp.asarray(y[small], dt))
    np.testing.assert_allclose(np.asarray(dy, np.float64), -np.exp(z[small]), rtol=rtol)
    keep = np.isfinite(y) | np.isnan(y)  # y = inf is on the support: its -inf value has a -inf derivative
    mask = jnp.asarray(np.isfinite(expected[keep]))
    grad = jax.grad(lambda r: -jnp.sum(jnp.where(mask, lp({}, r, jnp.asarray(y[keep], dt)), 0.0)))(
        jnp.asarray(z[keep], dt))
    np.testing.assert_allclose(np.asarray(grad, np.float64), np.where(mask, hazard[keep] - 1.0, 0.0), rtol=rtol)


@pytest.mark.deep
def test_censored_gamma_one_evaluation_matches_scipy():
    """``gamma.censored_log_prob`` (the density as the incomplete gamma's prefix less log y, one evaluation for all
    sides) against scipy's logpdf / logcdf / logsf, edges included (y = 0, y < 0, NaN, a side off -1/0/+1), and its
    gradient in (a, b) against central differences of scipy's; one jitted program for the whole grid."""
    from mle_jax.distributions import Gamma
    from mle_jax.distributions.gamma import censored_log_prob
    a = np.array([0.3, 1.0, 2.5, 50.0, 150.0, 1e-3, 12.0, 0.7, 1.0, 3.0, 2.0, 2.0])
    b = np.array([1.3, 0.7, 2.0, 1.0, 1.0, 1.0, 0.5, 2.0, 1.5, 1.0, 1.0, 1.0])
    y = np.array([0.2, 1.5, 0.9, 48.0, 160.0, 0.5, 30.0, 1e-30, 0.0, -1.0, np.nan, 1.0])
    a4, b4, y4, s4 = np.tile(a, 4), np.tile(b, 4), np.tile(y, 4), np.repeat([0.0, -1.0, 1.0, 2.0], len(a))

    def scipy_ll(a, b):
        with np.errstate(all="ignore"):
            out = np.select([s4 == 0, s4 == -1, s4 == 1], [f(y4, a, scale=1 / b) for f in (
                stats.gamma.logpdf, stats.gamma.logcdf, stats.gamma.logsf)], -np.inf)
        out[np.isnan(y4) & (s4 != 2.0)] = np.nan
        return out

    with jax.enable_x64(True):
        one = jax.vmap(lambda a, b, y, s: censored_log_prob(Gamma(a, b), y, s))
        got, grads = jax.jit(lambda *v: (one(*v), jax.vmap(jax.grad(
            lambda a, b, y, s: one(a[None], b[None], y[None], s[None])[0], (0, 1)))(*v)))(a4, b4, y4, s4)
    np.testing.assert_allclose(got, scipy_ll(a4, b4), rtol=1e-12, atol=1e-12)
    usable = (y4 > 0) & (s4 != 2.0)
    for k, g in enumerate(grads):
        h = 1e-6 * (a4, b4)[k]
        up, down = (scipy_ll(a4 + (k == 0) * h * sgn, b4 + (k == 1) * h * sgn)[usable] for sgn in (1, -1))
        np.testing.assert_allclose(np.asarray(g)[usable], (up - down) / (2 * h[usable]), rtol=1e-6, atol=1e-8)
