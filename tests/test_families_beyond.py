"""Families beyond the lecture, each against scipy.stats; fits that recover known parameters."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads
from scipy import integrate, special, stats

import mle_jax as mj

# theta, scipy frozen distribution, grid (with the tails), discrete?
CASES = {
    "poisson": (mj.Poisson(jnp.float32(math.log(3.5))), stats.poisson(3.5), np.array([0, 1, 3, 7, 20, 60]), True),
    "poisson-large": (mj.Poisson(jnp.float32(math.log(400.0))), stats.poisson(400.0),
                      np.array([300, 400, 520]), True),
    "laplace": (mj.Laplace(jnp.float32(0.5), jnp.float32(1.5)), stats.laplace(0.5, 1.5),
                np.array([-300.0, -2.0, 0.5, 1.0, 40.0]), False),
    "student_t": (mj.StudentT(jnp.float32(3.0), jnp.float32(-1.0), jnp.float32(2.0)), stats.t(3.0, -1.0, 2.0),
                  np.array([-1e4, -5.0, -1.0, 0.3, 80.0]), False),
    "gamma": (mj.Gamma(jnp.float32(2.5), jnp.float32(1.5)), stats.gamma(2.5, scale=1 / 1.5),
              np.array([1e-6, 0.1, 1.0, 3.0, 40.0]), False),
    "beta": (mj.Beta(jnp.float32(2.0), jnp.float32(5.0)), stats.beta(2.0, 5.0),
             np.array([1e-6, 0.05, 0.3, 0.9, 1 - 1e-4]), False),
    "von_mises": (mj.VonMises(jnp.float32(0.7), jnp.float32(4.0)), stats.vonmises(4.0, loc=0.7),
                  np.array([-3.0, -1.0, 0.7, 2.0, 3.1]), False),
}


def _y(name, v):
    return jnp.asarray(v, jnp.int32 if CASES[name][3] else jnp.float32)


@pytest.mark.parametrize("name", sorted(CASES))
def test_log_prob_matches_scipy(name):
    theta, ref, grid, discrete = CASES[name]
    got = np.array([float(mj.log_prob(theta, _y(name, v))) for v in grid])
    want = ref.logpmf(grid) if discrete else ref.logpdf(grid)
    # y log(lambda) - lambda - log y! cancels terms of size ~2000 at lambda = 400: float32 keeps 1e-4 of it
    atol = 5e-4 if name == "poisson-large" else 1e-5
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=atol)
    batched = jax.jit(jax.vmap(mj.log_prob, (None, 0)))(theta, _y(name, grid))
    np.testing.assert_allclose(batched, got, rtol=1e-6, atol=atol)


def test_poisson_large_counts_in_float64(x64):
    theta = mj.Poisson(jnp.float64(math.log(400.0)))
    grid = np.array([300, 400, 520])
    got = np.array([float(mj.log_prob(theta, jnp.int32(v))) for v in grid])
    np.testing.assert_allclose(got, stats.poisson(400.0).logpmf(grid), rtol=1e-11)


@pytest.mark.parametrize("name", sorted(CASES))
def test_moments_mode_and_samples(name):
    theta, ref, _, discrete = CASES[name]
    if name != "von_mises":
        np.testing.assert_allclose(mj.mean(theta), ref.mean(), rtol=1e-5)
        np.testing.assert_allclose(mj.variance(theta), ref.var(), rtol=1e-4)
    keys = jax.random.split(jax.random.PRNGKey(0), 4000)
    draws = np.asarray(jax.vmap(mj.sample, (0, None))(keys, theta), np.float64)
    if name == "von_mises":
        circ_mean = np.angle(np.mean(np.exp(1j * draws)))
        assert abs(circ_mean - 0.7) < 0.05
        assert stats.kstest(draws, ref.cdf).pvalue > 1e-3
    else:
        assert stats.kstest(draws, ref.cdf).pvalue > 1e-3 or discrete
        assert abs(draws.mean() - ref.mean()) < 5 * ref.std() / math.sqrt(len(draws))
    # the mode maximises the density
    m = float(mj.mode(theta))
    lp = lambda v: float(mj.log_prob(theta, _y(name, v)))
    step = 1 if discrete else 1e-2
    tol = 5e-4 if name == "poisson-large" else 1e-6  # at an integer rate, lambda - 1 ties with lambda
    assert lp(m) >= lp(m + step) - tol and lp(m) >= lp(m - step) - tol


@pytest.mark.parametrize("name", [n for n in sorted(CASES) if n != "poisson-large"])
def test_entropy_matches_scipy(name):
    theta, ref, _, _ = CASES[name]
    if name.startswith("poisson"):
        pytest.skip("the Poisson entropy has no closed form")
    np.testing.assert_allclose(mj.entropy(theta), ref.entropy(), rtol=1e-5, atol=1e-6)


PAIRS = {
    "poisson": (mj.Poisson(jnp.float32(1.0)), mj.Poisson(jnp.float32(0.3))),
    "laplace": (mj.Laplace(jnp.float32(0.0), jnp.float32(1.0)), mj.Laplace(jnp.float32(0.8), jnp.float32(2.0))),
    "gamma": (mj.Gamma(jnp.float32(2.0), jnp.float32(1.0)), mj.Gamma(jnp.float32(3.0), jnp.float32(2.0))),
    "beta": (mj.Beta(jnp.float32(2.0), jnp.float32(3.0)), mj.Beta(jnp.float32(1.5), jnp.float32(1.5))),
    "von_mises": (mj.VonMises(jnp.float32(0.2), jnp.float32(3.0)), mj.VonMises(jnp.float32(-0.5), jnp.float32(1.0))),
}


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_kl_closed_form_against_monte_carlo(name):
    p, q = PAIRS[name]
    estimate, se = mj.kl_mc(jax.random.PRNGKey(3), p, q, 40_000)
    assert abs(float(estimate) - float(mj.kl(p, q))) < 4 * float(se) + 1e-6
    assert abs(float(mj.kl(p, p))) < 1e-5


def test_laplace_kl_against_integration():
    p, q = PAIRS["laplace"]
    # trapezoid rule with nodes on the kinks at 0 and 0.8: error O(h^2) ~ 1e-7 at h = 1e-3; it cannot warn
    v = np.linspace(-40, 40, 80001)
    f = stats.laplace(0, 1).pdf(v) * (stats.laplace(0, 1).logpdf(v) - stats.laplace(0.8, 2).logpdf(v))
    np.testing.assert_allclose(mj.kl(p, q), integrate.trapezoid(f, v), rtol=1e-5)


def test_von_mises_stable_for_large_concentration():
    theta = mj.VonMises(jnp.float32(0.0), jnp.float32(500.0))
    np.testing.assert_allclose(mj.log_prob(theta, jnp.float32(0.01)), stats.vonmises(500.0).logpdf(0.01), rtol=1e-5)
    assert np.isfinite(mj.entropy(theta))
    # any real angle is valid: the density is periodic
    np.testing.assert_allclose(mj.log_prob(theta, jnp.float32(0.01 + 4 * math.pi)), mj.log_prob(theta, jnp.float32(0.01)),
                               rtol=1e-4)


@pytest.mark.parametrize("family", [mj.laplace(0.5), mj.laplace("softplus"), mj.student_t(3.0, "learned"),
                                    mj.student_t("learned", "softplus"), mj.gamma(), mj.beta(), mj.von_mises(),
                                    mj.poisson()], ids=lambda f: f.name)
def test_family_log_prob_equals_theta_log_prob_and_grads(family):
    raw = jnp.array([0.3, -0.2], jnp.float32)[:family.raw_shape[0]] if family.raw_shape else jnp.float32(0.3)
    fp = family.init(jnp.float32)
    y = {"poisson()": jnp.float32(2.0), "beta()": jnp.float32(0.3), "gamma()": jnp.float32(1.2)}.get(
        family.name, jnp.float32(0.9))
    np.testing.assert_allclose(family.log_prob(fp, raw, y), mj.log_prob(family.theta(fp, raw), y), rtol=1e-5)
    check_grads(lambda r: family.log_prob(fp, r, y), (raw,), order=2, modes=["rev"], eps=1e-2, rtol=2e-2)


def _fit(family, model_params, x, y, steps=400, lr=0.05):
    r = mj.recipe(lambda p, x_i: p, family)
    res = mj.fit(r, r.init(model_params), x, y, optax.adam(lr), steps=steps)
    return r, res


def test_fits_recover_known_parameters():
    rng = np.random.default_rng(0)
    n = 4000
    x = jnp.zeros((n, 1), jnp.float32)
    # Poisson: the MLE of the rate is the sample mean
    counts = rng.poisson(6.0, size=n)
    r, res = _fit(mj.poisson(), jnp.float32(0.0), x, jnp.asarray(counts, jnp.int32))
    np.testing.assert_allclose(np.exp(res.params.model), counts.mean(), rtol=1e-3)
    # Laplace with a learned scale: mu -> the median, b -> the mean absolute deviation about it
    v = rng.laplace(1.0, 2.0, size=n).astype(np.float32)
    r, res = _fit(mj.laplace("learned"), jnp.float32(0.0), x, jnp.asarray(v), steps=3000, lr=0.02)
    theta = r.predict(res.params, x[:1])
    np.testing.assert_allclose(theta.loc[0], np.median(v), atol=0.02)
    np.testing.assert_allclose(theta.scale[0], np.mean(np.abs(v - np.median(v))), rtol=0.01)
    # Gamma and Beta against scipy's maximum likelihood fits
    g = rng.gamma(3.0, 1 / 2.0, size=n).astype(np.float32)
    r, res = _fit(mj.gamma(), jnp.zeros(2), x, jnp.asarray(g), steps=3000)
    theta = r.predict(res.params, x[:1])
    a, _, scale = stats.gamma.fit(g, floc=0)
    np.testing.assert_allclose([theta.concentration[0], theta.rate[0]], [a, 1 / scale], rtol=1e-2)
    b = rng.beta(2.0, 5.0, size=n).astype(np.float32)
    r, res = _fit(mj.beta(), jnp.zeros(2), x, jnp.asarray(b), steps=3000)
    theta = r.predict(res.params, x[:1])
    a1, a0, _, _ = stats.beta.fit(b, floc=0, fscale=1)
    np.testing.assert_allclose([theta.concentration1[0], theta.concentration0[0]], [a1, a0], rtol=1e-2)
    # von Mises: angles given as any real number (wrapped data shifted by 2 pi k)
    ang = stats.vonmises(5.0, loc=2.5).rvs(size=n, random_state=1) + 2 * np.pi * rng.integers(-3, 3, size=n)
    r, res = _fit(mj.von_mises(), jnp.array([2.0, 0.0]), x, jnp.asarray(ang, jnp.float32), steps=3000)
    theta = r.predict(res.params, x[:1])
    kappa, loc, _ = stats.vonmises.fit(np.mod(ang + np.pi, 2 * np.pi) - np.pi, fscale=1)
    np.testing.assert_allclose([theta.loc[0], theta.concentration[0]], [loc, kappa], rtol=1e-2)


def test_student_t_is_robust_to_outliers():
    rng = np.random.default_rng(1)
    x = rng.uniform(-2, 2, size=300).astype(np.float32)
    y = (2.0 * x + 0.1 * rng.normal(size=300)).astype(np.float32)
    y[:15] += 30.0  # gross outliers
    model = lambda p, x_i: p[0] * x_i + p[1]
    fits = {}
    for name, family in {"normal": mj.normal("learned"), "t": mj.student_t(2.0, "learned")}.items():
        r = mj.recipe(model, family)
        fits[name] = mj.fit(r, r.init(jnp.zeros(2)), x, y, optax.adam(0.05), steps=3000).params.model
    assert abs(float(fits["t"][0]) - 2.0) < 0.05
    assert abs(float(fits["normal"][0]) - 2.0) > abs(float(fits["t"][0]) - 2.0)


@pytest.mark.parametrize("family, y, match", [
    (mj.poisson(), [0.0, 2.0, -1.0], r"-1\.0 at index 2 is not a count"),
    (mj.poisson(), [0.0, 2.5, 1.0], r"2\.5 at index 1"),
    (mj.beta(), [0.3, 1.0, 0.5], r"1\.0 at index 1 is not in the open interval"),
    (mj.gamma(), [1.0, 0.0], r"0\.0 at index 1 is not > 0"),
])
def test_support_violations_are_clear_errors(family, y, match):
    r = mj.recipe(lambda p, x_i: p, family)
    raw = jnp.float32(0.0) if not family.raw_shape else jnp.zeros(2)
    with pytest.raises(ValueError, match=match):
        r.nll(r.init(raw), jnp.zeros((len(y), 1)), jnp.asarray(y, jnp.float32))


def test_angles_as_any_real_number_are_fine():
    r = mj.recipe(lambda p, x_i: p, mj.von_mises())
    out = r.nll(r.init(jnp.zeros(2)), jnp.zeros((3, 1)), jnp.array([-20.0, 0.0, 100.0]))
    assert np.isfinite(out)


def test_negative_binomial_against_scipy_and_moments():
    theta = mj.NegativeBinomial(jnp.float32(2.5), jnp.float32(0.4))
    ref = stats.nbinom(2.5, special.expit(-0.4))
    grid = np.array([0, 1, 4, 15, 80])
    got = [float(mj.log_prob(theta, jnp.int32(v))) for v in grid]
    np.testing.assert_allclose(got, ref.logpmf(grid), rtol=1e-5)
    np.testing.assert_allclose([mj.mean(theta), mj.variance(theta)], [ref.mean(), ref.var()], rtol=1e-5)
    keys = jax.random.split(jax.random.PRNGKey(0), 20000)
    draws = np.asarray(jax.vmap(mj.sample, (0, None))(keys, theta))
    assert abs(draws.mean() - ref.mean()) < 5 * ref.std() / math.sqrt(len(draws))
    assert abs(draws.var() / ref.var() - 1) < 0.1
    pmf = ref.pmf(np.arange(60))
    assert int(mj.mode(theta)) == int(np.argmax(pmf))


def test_negative_binomial_fit_recovers_dispersion():
    rng = np.random.default_rng(2)
    r_true, mean_true = 2.0, 5.0
    y = rng.negative_binomial(r_true, r_true / (r_true + mean_true), size=6000)
    x = jnp.zeros((len(y), 1), jnp.float32)
    fam = mj.negative_binomial("learned")
    rec = mj.recipe(lambda p, x_i: p, fam)
    res = mj.fit(rec, rec.init(jnp.float32(0.0)), x, jnp.asarray(y, jnp.int32), optax.adam(0.05), steps=3000)
    theta = rec.predict(res.params, x[:1])
    np.testing.assert_allclose(mj.mean(theta)[0], y.mean(), rtol=1e-2)
    np.testing.assert_allclose(theta.total_count[0], r_true, rtol=0.1)
    per = mj.negative_binomial("per_example")
    np.testing.assert_allclose(per.log_prob({}, jnp.array([1.0, 0.5]), jnp.float32(2.0)),
                               mj.log_prob(per.theta({}, jnp.array([1.0, 0.5])), jnp.float32(2.0)), rtol=1e-6)


def test_mixture_normal_against_scipy_mode_and_fit():
    theta = mj.MixtureNormal(jnp.array([0.0, 1.0]), jnp.array([-1.0, 2.0]), jnp.array([0.5, 0.7]))
    w = special.softmax([0.0, 1.0])
    pdf = lambda v: w[0] * stats.norm(-1, 0.5).pdf(v) + w[1] * stats.norm(2, 0.7).pdf(v)
    grid = np.array([-30.0, -1.0, 0.3, 2.0, 25.0])
    got = [float(mj.log_prob(theta, jnp.float32(v))) for v in grid[1:4]]
    np.testing.assert_allclose(got, np.log(pdf(grid[1:4])), rtol=1e-5)
    assert np.isfinite(float(mj.log_prob(theta, jnp.float32(-30.0))))  # logsumexp: no underflow to -inf
    # the mass on a grid of step 1e-3 (a 500th of the narrowest scale; the smooth density makes the
    # trapezoid rule's error negligible) over 11 scales beyond the outer modes
    v = np.linspace(-10, 10, 20001)
    log_density = jax.vmap(mj.log_prob, (None, 0))(theta, jnp.asarray(v, jnp.float32))
    mass = integrate.trapezoid(np.exp(np.asarray(log_density, np.float64)), v)
    np.testing.assert_allclose(mass, 1.0, rtol=1e-5)
    fine = np.linspace(-4, 5, 200001)
    np.testing.assert_allclose(float(mj.mode(theta)), fine[np.argmax(pdf(fine))], atol=1e-4)
    np.testing.assert_allclose(mj.mean(theta), w @ np.array([-1.0, 2.0]), rtol=1e-6)
    # fit an unconditional 2-component mixture to data
    rng = np.random.default_rng(3)
    data = np.where(rng.uniform(size=4000) < 0.3, rng.normal(-2, 0.5, 4000), rng.normal(1.5, 0.8, 4000))
    x = jnp.zeros((4000, 1), jnp.float32)
    rec = mj.recipe(lambda p, x_i: p, mj.mixture_normal(2))
    res = mj.fit(rec, rec.init(jnp.array([0.0, 0.0, -1.0, 1.0, 0.0, 0.0])), x, jnp.asarray(data, jnp.float32),
                 optax.adam(0.05), steps=3000)
    t = rec.predict(res.params, x[:1])
    order = np.argsort(np.asarray(t.loc[0]))
    np.testing.assert_allclose(np.asarray(t.loc[0])[order], [-2, 1.5], atol=0.1)
    np.testing.assert_allclose(np.asarray(t.scale[0])[order], [0.5, 0.8], atol=0.1)
    np.testing.assert_allclose(np.asarray(jax.nn.softmax(t.logits[0]))[order], [0.3, 0.7], atol=0.03)
