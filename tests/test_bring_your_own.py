"""Bring your own likelihood: mj.register(T, ..., example=) checks what it is given, a registered user type
(a Gumbel, a Rayleigh) works with every generic function, and mj.family builds a Family from it that fits,
predicts, scores and infers like a built-in: all against scipy.stats and numerical references."""

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import integrate, special, stats

import mle_jax as mj
from mle_jax.distributions import registry

EULER = float(np.euler_gamma)


class Gumbel(NamedTuple):
    """The (maximum) Gumbel distribution: scipy's ``gumbel_r(loc, scale)``."""

    loc: Any
    scale: Any


def _z(t, y):
    return (y - t.loc) / t.scale


def _gumbel_log_prob(t, y):
    z = _z(t, y)
    return -jnp.log(t.scale) - z - jnp.exp(-z)


def _gumbel_sample(key, t):
    return t.loc + t.scale * jax.random.gumbel(key, jnp.shape(t.loc), jnp.result_type(t.loc))


def _gumbel_fisher(t):
    """In (loc, scale): ``[[1, g - 1], [g - 1, (1 - g)^2 + pi^2/6]] / scale^2``, g Euler's constant."""
    c = jnp.array([[1.0, EULER - 1.0], [EULER - 1.0, (1.0 - EULER) ** 2 + math.pi ** 2 / 6]])
    return c / jnp.square(t.scale)


GUMBEL = dict(
    log_prob=_gumbel_log_prob, sample=_gumbel_sample, mode=lambda t: t.loc,
    mean=lambda t: t.loc + EULER * t.scale, variance=lambda t: (math.pi * t.scale) ** 2 / 6,
    entropy=lambda t: jnp.log(t.scale) + EULER + 1.0,
    log_cdf=lambda t, y: -jnp.exp(-_z(t, y)), log_sf=lambda t, y: jnp.log(-jnp.expm1(-jnp.exp(-_z(t, y)))),
    quantile=lambda t, q: t.loc - t.scale * jnp.log(-jnp.log(q)), fisher=_gumbel_fisher)


class Rayleigh(NamedTuple):
    """scipy's ``rayleigh(scale=sigma)`` on y > 0."""

    sigma: Any


RAYLEIGH = dict(
    log_prob=lambda t, y: jnp.where(y > 0, jnp.log(jnp.where(y > 0, y, 1.0)) - 2 * jnp.log(t.sigma)
                                    - 0.5 * jnp.square(y / t.sigma), -jnp.inf),
    sample=lambda key, t: t.sigma * jnp.sqrt(-2.0 * jnp.log1p(-jax.random.uniform(key, jnp.shape(t.sigma)))),
    mode=lambda t: t.sigma, mean=lambda t: t.sigma * math.sqrt(math.pi / 2), support="positive")


@pytest.fixture(scope="module", autouse=True)
def registered():
    """Register the user types (checked) for this module only: the registry is otherwise fixed at import."""
    mj.register(Gumbel, example=Gumbel(1.0, 2.0), **GUMBEL)
    mj.register(Rayleigh, example=Rayleigh(1.5), **RAYLEIGH)
    yield
    registry._OPS.pop(Gumbel, None)
    registry._OPS.pop(Rayleigh, None)


LOC, SCALE, Y = np.array([0.5, -1.0, 3.0]), np.array([1.0, 0.3, 2.5]), np.array([0.2, -0.4, 9.0])


def test_a_registered_type_works_with_every_generic_function(x64):
    theta, y, ref = Gumbel(jnp.asarray(LOC), jnp.asarray(SCALE)), jnp.asarray(Y), stats.gumbel_r(LOC, SCALE)
    np.testing.assert_allclose(mj.log_prob(theta, y), ref.logpdf(Y), rtol=1e-12)
    np.testing.assert_allclose(mj.mode(theta), LOC)
    np.testing.assert_allclose(mj.mean(theta), ref.mean(), rtol=1e-12)
    np.testing.assert_allclose(mj.entropy(theta), ref.entropy(), rtol=1e-12)
    lo, hi = mj.interval(theta, 0.9)
    np.testing.assert_allclose(np.stack([lo, hi]), np.stack(ref.interval(0.9)), rtol=1e-10)
    np.testing.assert_allclose(mj.pit(theta, y), ref.cdf(Y), rtol=1e-12)
    np.testing.assert_array_equal(mj.coverage(theta, y, 0.9), (ref.ppf(0.05) <= Y) & (Y <= ref.ppf(0.95)))
    # sampled CRPS (no closed form registered) within 4 standard errors of the integral of (F - 1{y <= t})^2
    est = mj.crps(theta, y, key=jax.random.PRNGKey(0), num_samples=400)
    exact = [integrate.quad(lambda t, i=i: (ref.cdf(t)[i] - (Y[i] <= t)) ** 2, -40, 80, points=[Y[i]], limit=200)[0]
             for i in range(3)]
    assert np.all(np.abs(np.asarray(est.estimate) - exact) < 4 * np.asarray(est.standard_error))
    # draws: Kolmogorov distance from scipy's cdf, below the 1e-6 false-alarm bound
    one = Gumbel(jnp.float64(0.5), jnp.float64(2.0))
    draws = jax.vmap(mj.sample, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(1), 4000), one)
    assert stats.kstest(np.asarray(draws), stats.gumbel_r(0.5, 2.0).cdf).statistic < math.sqrt(math.log(2e6) / 8000)
    # kl_mc against the integral of p log(p / q)
    p, q = Gumbel(jnp.float64(0.0), jnp.float64(1.0)), Gumbel(jnp.float64(0.5), jnp.float64(1.5))
    fp, fq = stats.gumbel_r(0.0, 1.0), stats.gumbel_r(0.5, 1.5)
    kl = integrate.quad(lambda t: fp.pdf(t) * (fp.logpdf(t) - fq.logpdf(t)), -10, 40)[0]
    estimate, error = mj.kl_mc(jax.random.PRNGKey(2), p, q, num_samples=4000)
    assert abs(float(estimate) - kl) < 4 * float(error)


@pytest.mark.deep
def test_interval_by_sampling_where_there_is_no_quantile(x64):
    theta = Rayleigh(jnp.asarray([0.5, 2.0]))
    with pytest.raises(TypeError, match="Rayleigh has no quantile; pass key="):
        mj.interval(theta, 0.9)
    lo, hi = mj.interval(theta, 0.9, key=jax.random.PRNGKey(3), num_samples=20_000)
    ref = stats.rayleigh(scale=np.array([0.5, 2.0]))
    # the sample quantile's standard error: sqrt(q (1 - q) / n) / f(F^-1(q)); 5 of them
    for end, q in ((lo, 0.05), (hi, 0.95)):
        tol = 5 * math.sqrt(q * (1 - q) / 20_000) / ref.pdf(ref.ppf(q))
        assert np.all(np.abs(np.asarray(end) - ref.ppf(q)) < tol)
    np.testing.assert_allclose(mj.log_prob(theta, jnp.asarray([0.3, 1.0])), ref.logpdf([0.3, 1.0]), rtol=1e-12)
    with pytest.raises(ValueError, match="> 0"):  # the registered support checks the scores' targets
        mj.crps(theta, jnp.asarray([-1.0, 1.0]), key=jax.random.PRNGKey(0))


def test_register_reports_a_density_that_does_not_normalise():
    with pytest.raises(ValueError, match=r"register\(Gumbel\): log_prob integrates to 1.105\d* over the support "
                                         r"real, not 1 \(tolerance 0.001\)"):
        mj.register(Gumbel, example=Gumbel(1.0, 2.0), **{**GUMBEL, "log_prob": lambda t, y: _gumbel_log_prob(t, y) + 0.1})
    assert registry.entries(Gumbel(1.0, 2.0)).log_prob is _gumbel_log_prob  # the checked table stays
    with pytest.raises(TypeError, match="check=True needs example="):
        mj.register(Gumbel, check=True, **GUMBEL)


BAD = [
    ("sample", lambda key, t: _gumbel_sample(key, t) * 1.2, "sample disagrees with log_prob: the Kolmogorov distance"),
    ("mean", lambda t: t.loc, "mean is 1; integrating exp"),
    ("variance", lambda t: t.scale ** 2, "variance is 4; integrating exp"),
    ("mode", lambda t: t.loc + 0.5, "mode is 1.5 with log_prob"),
    ("entropy", lambda t: jnp.log(t.scale), "entropy is 0.693147; integrating"),
    ("log_cdf", lambda t, y: -jnp.exp(-(y - t.loc)), "log_cdf at y = "),
    ("log_sf", lambda t, y: jnp.log(-jnp.expm1(-jnp.exp(-(y - t.loc)))), "log_sf at y = "),
    ("quantile", lambda t, q: t.loc + q, "quantile at q = 0.05 is 1.05"),
]


@pytest.mark.parametrize("entry, wrong, message", BAD, ids=[b[0] for b in BAD])
def test_register_reports_each_entry_that_disagrees_with_log_prob(entry, wrong, message):
    with pytest.raises(ValueError, match=rf"register\(Gumbel\): {message}"):
        mj.register(Gumbel, example=Gumbel(1.0, 2.0), **{**GUMBEL, entry: wrong})


@pytest.mark.deep
@pytest.mark.parametrize("example", [
    mj.Normal(1.0, 0.01), mj.Gamma(0.5, 2.0), mj.Gamma(30.0, 0.1), mj.Laplace(0.0, 2.0), mj.StudentT(1.5, 0.0, 1.0),
    mj.Beta(0.5, 3.0), mj.Poisson(3.5), mj.NegativeBinomial(2.0, 0.3), mj.Bernoulli(0.3), mj.VonMises(2.5, 2.0),
    mj.Categorical(jnp.asarray([0.0, 1.0, -1.0])), mj.MultivariateNormal(jnp.zeros(2), jnp.eye(2))],
    ids=lambda t: type(t).__name__)
def test_the_checks_pass_every_builtin(example):
    """No false alarms: the built-ins' tables, at singular (Gamma(0.5), Beta(0.5, 3)), heavy-tailed (Student t
    with df 1.5: infinite variance, not integrated), narrow, discrete, circular (one period around a mode near
    pi) and vector-target examples."""
    mj.check_registration(example)


# ----------------------------------------------------------------------------- mj.family

def _gumbel_theta(fp, raw):
    return Gumbel(raw[0], mj.links.softplus.forward(raw[1]))


def _softplus_inverse(s):
    return s + math.log(-math.expm1(-s))


def _data(n=300, seed=5):
    return stats.gumbel_r(1.2, 0.7).rvs(size=n, random_state=np.random.default_rng(seed))


def _numeric_hessian(fn, v, h=1e-4):
    d = len(v)
    out = np.zeros((d, d))
    for a in range(d):
        for b in range(d):
            ea, eb = np.eye(d)[a] * h, np.eye(d)[b] * h
            out[a, b] = (fn(v + ea + eb) - fn(v + ea - eb) - fn(v - ea + eb) + fn(v - ea - eb)) / (4 * h * h)
    return out


@pytest.mark.deep
def test_a_user_family_at_scipys_mle_nll_inference_and_predict(x64):
    fam = mj.family("gumbel", theta=_gumbel_theta, raw_shape=(2,))
    assert fam.name == "gumbel()" and repr(fam) == "Family(gumbel())"
    yv = _data()
    loc, scale = stats.gumbel_r.fit(yv)
    v_hat = np.array([loc, _softplus_inverse(scale)])
    r = mj.recipe(lambda p, x_i: p, fam)
    x, y = jnp.zeros((len(yv), 1)), jnp.asarray(yv)
    params = r.init(jnp.asarray(v_hat))
    # the per-example losses are scipy's; scipy's MLE is a maximum of our likelihood (gradient ~0)
    raw = jnp.tile(jnp.asarray(v_hat), (len(yv), 1))
    np.testing.assert_allclose(mj.losses.nll(fam, raw, y), -stats.gumbel_r(loc, scale).logpdf(yv), rtol=1e-12)
    grad = jax.grad(lambda p: r.nll(p, x, y))(params)
    assert float(jnp.max(jnp.abs(grad.model))) < 1e-6
    # observed and robust (HC0) standard errors against a numerical Hessian of scipy's log likelihood
    def terms(v):  # each example's NLL under scipy
        return -stats.gumbel_r(v[0], np.logaddexp(0.0, v[1])).logpdf(yv)
    hessian = _numeric_hessian(lambda v: np.sum(terms(v)), v_hat)
    bread = np.linalg.inv(hessian)
    h = 1e-6
    scores = np.stack([(terms(v_hat + e) - terms(v_hat - e)) / (2 * h) for e in np.eye(2) * h], axis=1)
    np.testing.assert_allclose(mj.inference(r, params, x, y).se.model, np.sqrt(np.diag(bread)), rtol=1e-5)
    robust = bread @ scores.T @ scores @ bread
    np.testing.assert_allclose(mj.inference(r, params, x, y, cov="robust").se.model, np.sqrt(np.diag(robust)),
                               rtol=1e-4)
    # expected: the registered Fisher information, against its integral under scipy's density
    f = stats.gumbel_r(loc, scale)
    def d_loc(t):
        return (1 - np.exp(-(t - loc) / scale)) / scale
    def d_scale(t):
        z = (t - loc) / scale
        return (-1 + z - z * np.exp(-z)) / scale
    info = np.array([[integrate.quad(lambda t: f.pdf(t) * a(t) * b(t), -20, 60)[0] for b in (d_loc, d_scale)]
                     for a in (d_loc, d_scale)])
    jac = np.diag([1.0, special.expit(v_hat[1])])
    expected = np.linalg.inv(len(yv) * jac @ info @ jac)
    np.testing.assert_allclose(mj.inference(r, params, x, y, cov="expected").se.model,
                               np.sqrt(np.diag(expected)), rtol=1e-6)
    # predict: the theta of each example, and the recipe's interval from the registered quantile
    theta = r.predict(params, x[:2])
    assert type(theta) is Gumbel
    np.testing.assert_allclose(theta.scale, [scale, scale], rtol=1e-12)
    lo, hi = r.interval(params, x[:1], 0.9)
    np.testing.assert_allclose([lo[0], hi[0]], f.interval(0.9), rtol=1e-10)


@pytest.mark.deep
def test_a_user_family_fitted_with_mj_fit_matches_scipys_mle(x64):
    yv = _data(2000, seed=7)
    loc, scale = stats.gumbel_r.fit(yv)
    fam = mj.family("gumbel", theta=_gumbel_theta, raw_shape=(2,))
    r = mj.recipe(lambda p, x_i: p, fam)
    res = mj.fit(r, r.init(jnp.zeros(2)), jnp.zeros((len(yv), 1)), jnp.asarray(yv), optax.lbfgs(), steps=200,
                 objective=mj.Objective(tol=1e-10))
    got = np.asarray(res.params.model)
    np.testing.assert_allclose([got[0], np.logaddexp(0.0, got[1])], [loc, scale], rtol=1e-4)


def test_a_user_family_with_its_own_parameter_and_support():
    """A learned global sigma (init=) and the positive support: off-support targets are named before any jit."""
    fam = mj.family("rayleigh", theta=lambda fp, raw: Rayleigh(mj.links.softplus.forward(fp["sigma"] + raw)),
                    support="positive", init={"sigma": 0.5})
    assert fam.init(jnp.float32) == {"sigma": 0.5}
    raw, y = jnp.zeros(3), jnp.asarray([0.5, 1.0, 2.0])
    sigma = float(np.logaddexp(0.0, 0.5))
    np.testing.assert_allclose(mj.losses.nll(fam, raw, y, {"sigma": jnp.float32(0.5)}),
                               -stats.rayleigh(scale=sigma).logpdf([0.5, 1.0, 2.0]), rtol=1e-5)
    with pytest.raises(ValueError, match=r"rayleigh\(\): y -1.0 at index 1 is not > 0"):
        mj.losses.nll(fam, raw, jnp.asarray([0.5, -1.0, 2.0]), {"sigma": jnp.float32(0.5)})


@pytest.mark.parametrize("call, error, message", [
    (lambda: mj.family("normal", theta=_gumbel_theta), ValueError, "'normal' is a built-in family"),
    (lambda: mj.family("gumbel", theta=None), TypeError, "theta must be a function"),  # type: ignore[arg-type]
    (lambda: mj.family("gumbel", theta=_gumbel_theta, raw_shape=(2,), support="simplex"), ValueError,
     r"support must be a Support or one of \['real'"),
    (lambda: mj.family("gumbel", theta=lambda fp, raw: (raw, raw), raw_shape=(2,)), TypeError,
     "tuple is not a theta type of mle_jax"),
    (lambda: mj.family("gumbel", theta=_gumbel_theta, raw_shape=(2,), event_shape=(3,)), ValueError,
     r"shape"),
])
def test_family_refuses_what_it_cannot_build(call, error, message):
    with pytest.raises(error, match=message):
        call()


class Geometric(NamedTuple):
    """Failures before the first success: scipy's ``geom(p, loc=-1)`` on {0, 1, 2, ...}."""

    p: Any


GEOMETRIC = dict(log_prob=lambda t, k: jnp.where(k >= 0, jnp.log(t.p) + k * jnp.log1p(-t.p), -jnp.inf),
                 sample=lambda key, t: jnp.floor(jnp.log(jax.random.uniform(key, jnp.shape(t.p))) / jnp.log1p(-t.p)),
                 mean=lambda t: (1 - t.p) / t.p, mode=lambda t: jnp.zeros_like(t.p),
                 log_cdf=lambda t, k: jnp.log(-jnp.expm1((jnp.floor(k) + 1) * jnp.log1p(-t.p))),
                 support="nonnegative_integer", discrete=True)


def test_a_discrete_user_type_is_summed_over_its_support(x64):
    mj.register(Geometric, example=Geometric(0.3), **GEOMETRIC)
    try:
        theta, k = Geometric(jnp.asarray([0.3, 0.8])), jnp.asarray([4, 0])
        ref = stats.geom(np.array([0.3, 0.8]), loc=-1)
        np.testing.assert_allclose(mj.log_prob(theta, k), ref.logpmf([4, 0]), rtol=1e-12)
        u = np.asarray(mj.pit(theta, k, key=jax.random.PRNGKey(0)))  # randomised: between F(k - 1) and F(k)
        assert np.all((ref.cdf([3, -1]) <= u) & (u <= ref.cdf([4, 0])))
        with pytest.raises(ValueError, match=r"register\(Geometric\): log_prob sums to 0.7 over the support "
                                             r"nonnegative_integer"):
            mj.register(Geometric, example=Geometric(0.3),
                        **{**GEOMETRIC, "log_prob": lambda t, k: jnp.log(t.p) + (k + 1) * jnp.log1p(-t.p)})
        with pytest.raises(ValueError, match="support nonnegative_integer holds whole numbers only, but discrete=False"):
            mj.register(Geometric, example=Geometric(0.3), **{**GEOMETRIC, "discrete": False})
    finally:
        registry._OPS.pop(Geometric, None)
