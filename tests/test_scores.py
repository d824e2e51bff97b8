"""Proper scores and calibration against scoringrules / properscoring, scipy and hand computations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, special, stats

import mle_jax as mj
from mle_jax import scores

sr = pytest.importorskip("scoringrules")
ps = pytest.importorskip("properscoring")

Y_REAL = np.array([-40.0, -3.0, 0.2, 0.5, 1.5, 7.0, 55.0])
Y_POS = np.array([1e-4, 0.1, 0.5, 2.0, 9.0, 60.0])
Y_COUNT = np.array([0.0, 1.0, 3.0, 20.0, 150.0])


def _pairs(y, *settings):
    """Every y under each parameter setting: (theta fields, y) as flat arrays, one compile per family."""
    fields = [np.repeat(np.asarray(f, np.float64), len(y), axis=0) for f in zip(*settings)]
    return fields, np.tile(y, len(settings))


def _check(make, y, settings, reference):
    fields, ys = _pairs(y, *settings)
    want = np.concatenate([reference(y, *setting) for setting in settings])
    np.testing.assert_allclose(scores.crps(make(*map(jnp.asarray, fields)), ys), want, rtol=1e-10, atol=1e-12)


@pytest.mark.deep
def test_crps_closed_forms_against_scoringrules(x64):
    _check(mj.Normal, Y_REAL, [(0.5, 1.3), (-2.0, 1e-3)], lambda y, m, s: ps.crps_gaussian(y, m, s))
    _check(mj.Laplace, Y_REAL, [(0.5, 1.3), (3.0, 20.0)], lambda y, m, s: sr.crps_laplace(y, m, s))
    _check(mj.StudentT, Y_REAL, [(3.5, 0.5, 1.3), (1.2, 0.0, 2.0)], lambda y, d, m, s: sr.crps_t(y, d, m, s))
    _check(mj.Gamma, Y_POS, [(2.5, 1.3), (0.3, 4.0)], lambda y, a, b: sr.crps_gamma(y, a, rate=b))
    _check(mj.Poisson, Y_COUNT, [(np.log(0.01),), (np.log(40.0),)], lambda y, z: sr.crps_poisson(y, np.exp(z)))
    nb = [(0.5, 0.3), (0.1, 0.01), (50.0, 0.9)]  # (n, success probability p); logits = log((1 - p) / p)
    _check(mj.NegativeBinomial, Y_COUNT, [(n, np.log((1 - p) / p)) for n, p in nb],
           lambda y, n, z: sr.crps_negbinom(y, n, special.expit(-z)))
    w, mu, s = np.array([0.2, 0.5, 0.3]), np.array([-1.0, 0.5, 3.0]), np.array([0.5, 1.0, 2.0])
    n = len(Y_REAL)
    theta = mj.MixtureNormal(*(jnp.tile(jnp.asarray(a), (n, 1)) for a in (np.log(w), mu, s)))
    np.testing.assert_allclose(scores.crps(theta, Y_REAL), sr.crps_mixnorm(Y_REAL, mu, s, w), rtol=1e-10, atol=1e-12)


def test_scores_work_inside_a_callers_jit_and_grad(x64):
    theta_of = lambda m: mj.Normal(m, jnp.ones(3))  # noqa: E731
    y = jnp.array([0.1, -1.0, 2.0])
    value = jax.jit(lambda m: jnp.sum(scores.crps(theta_of(m), y)))(jnp.zeros(3))
    np.testing.assert_allclose(value, np.sum(ps.crps_gaussian(np.asarray(y), 0.0, 1.0)), rtol=1e-12)
    grad = jax.grad(lambda m: jnp.sum(scores.crps(theta_of(m), y)))(jnp.zeros(3))
    np.testing.assert_allclose(grad, 1 - 2 * stats.norm.cdf(np.asarray(y)), rtol=1e-10)  # dCRPS/dmu = 1 - 2 Phi(z)
    assert jax.jit(lambda m: jnp.mean(scores.coverage(theta_of(m), y, 0.9)))(jnp.zeros(3)) == 2 / 3


def test_crps_is_the_integral_of_the_squared_cdf_difference(x64):
    """The definition, by quadrature, for a Normal and a Student t (an independent check of the closed forms)."""
    for theta, cdf in [(mj.Normal(0.3, 0.7), stats.norm(0.3, 0.7).cdf), (mj.StudentT(4.0, 0.3, 0.7), stats.t(4.0, 0.3, 0.7).cdf)]:
        y = 1.1
        below = integrate.quad(lambda t: cdf(t) ** 2, -np.inf, y)[0]
        above = integrate.quad(lambda t: (1 - cdf(t)) ** 2, y, np.inf)[0]
        np.testing.assert_allclose(scores.crps(theta, y), below + above, rtol=1e-7)


def test_crps_bernoulli_is_the_squared_error_and_float32_stays_finite():
    np.testing.assert_allclose(scores.crps(mj.Bernoulli(jnp.array([0.3, -2.0])), jnp.array([1, 0])),
                               (special.expit([0.3, -2.0]) - [1, 0]) ** 2, rtol=1e-6)
    far = scores.crps(mj.Normal(jnp.float32(0.0), jnp.float32(1.0)), jnp.float32(1e4))
    assert far.dtype == jnp.float32 and np.isclose(float(far), 1e4 - 1 / np.sqrt(np.pi), rtol=1e-6)


def test_sample_crps_and_its_standard_error(x64):
    """The unbiased sample estimator agrees with the closed forms within 4 standard errors."""
    key = jax.random.PRNGKey(0)
    y = jnp.array([0.4, -2.5])
    for theta, exact in [(mj.Normal(jnp.zeros(2), jnp.ones(2)), ps.crps_gaussian(np.asarray(y), 0.0, 1.0)),
                         (mj.Laplace(jnp.zeros(2), jnp.full(2, 2.0)), sr.crps_laplace(np.asarray(y), 0.0, 2.0))]:
        est = scores.crps_sample(key, theta, y, num_samples=600)
        assert np.all(np.abs(np.asarray(est.estimate) - exact) < 4 * np.asarray(est.standard_error))
        assert np.all(np.asarray(est.standard_error) < 0.1 * exact)
    with pytest.raises(ValueError, match="pass key"):
        scores.crps(mj.Beta(2.0, 3.0), 0.3)


# KS at a fixed seed: with 2000 draws the 0.1% critical value of the KS statistic is 1.95 / sqrt(2000) = 0.044;
# a wrong cdf (a scale off by 10%, a count off by one) gives 0.05-0.3 at this size
KS_TOL = 1.95 / np.sqrt(2000)


Z = np.linspace(-2, 2, 2000)


@pytest.mark.parametrize("theta, draw, discrete", [
    (mj.Normal(jnp.asarray(Z), jnp.asarray(1 + Z**2)), lambda rng: rng.normal(Z, 1 + Z**2), False),
    (mj.Poisson(jnp.asarray(Z)), lambda rng: rng.poisson(np.exp(Z)), True),
    (mj.NegativeBinomial(jnp.full(2000, 1.5), jnp.asarray(Z)),  # numpy's p is the success probability sig(-z)
     lambda rng: rng.negative_binomial(1.5, special.expit(-Z)), True),
    (mj.Bernoulli(jnp.asarray(Z)), lambda rng: (rng.uniform(size=2000) < special.expit(Z)).astype(int), True),
])
@pytest.mark.deep
def test_pit_is_uniform_on_data_drawn_from_the_model(theta, draw, discrete, x64):
    """Data drawn (by NumPy) from the model: the KS statistic of the PIT values stays below the 0.1% critical value."""
    y = jnp.asarray(draw(np.random.default_rng(7)))
    u = scores.pit(theta, y, key=jax.random.PRNGKey(8) if discrete else None)
    assert stats.kstest(np.asarray(u), "uniform").statistic < KS_TOL


def test_pit_values_and_errors(x64):
    np.testing.assert_allclose(scores.pit(mj.Normal(1.0, 2.0), 0.3), stats.norm(1.0, 2.0).cdf(0.3), rtol=1e-12)
    u = scores.pit(mj.Poisson(jnp.log(jnp.array([2.0, 2.0]))), jnp.array([3, 3]), key=jax.random.PRNGKey(0))
    assert np.all((stats.poisson(2.0).cdf(2) <= u) & (u <= stats.poisson(2.0).cdf(3)))
    with pytest.raises(ValueError, match="randomised"):
        scores.pit(mj.Poisson(0.0), 1)
    with pytest.raises(TypeError, match="no order"):
        scores.pit(mj.Categorical(jnp.zeros(3)), 1)


def test_coverage_of_the_central_interval(x64):
    theta = mj.Normal(jnp.zeros(4000), jnp.ones(4000))
    y = jax.random.normal(jax.random.PRNGKey(3), (4000,), jnp.float64)
    covered = float(jnp.mean(scores.coverage(theta, y, 0.9)))
    assert abs(covered - 0.9) < 3 * np.sqrt(0.9 * 0.1 / 4000)


def test_brier_against_sklearn_and_by_hand():
    skm = pytest.importorskip("sklearn.metrics")
    logits, y = jnp.array([2.0, -1.0, 0.0, 0.5]), jnp.array([1, 0, 1, 0])
    np.testing.assert_allclose(jnp.mean(scores.brier(mj.Bernoulli(logits), y)),
                               skm.brier_score_loss(np.asarray(y), special.expit(np.asarray(logits))), rtol=1e-6)
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    hand = [(0.7 - 1) ** 2 + 0.2**2 + 0.1**2, 0.1**2 + (0.1 - 1) ** 2 + 0.8**2]
    np.testing.assert_allclose(scores.brier(mj.Categorical(jnp.log(jnp.asarray(p))), jnp.array([0, 1])), hand, rtol=1e-6)
    with pytest.raises(TypeError, match="not available for Normal: it has no probs"):
        scores.brier(mj.Normal(0.0, 1.0), 0.0)


def test_calibration_by_hand_and_against_sklearn():
    # top-label, 2 bins: confidences 0.7 (wrong), 0.8 (right) in [0.5, 1); 0.4 (right) in [0, 0.5)
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.4, 0.3, 0.3]])
    cal = scores.calibration(mj.Categorical(jnp.log(jnp.asarray(p))), jnp.array([1, 1, 0]), bins=2)
    np.testing.assert_allclose(cal.counts, [1, 2])
    np.testing.assert_allclose(cal.confidence, [0.4, 0.75], rtol=1e-6)
    np.testing.assert_allclose(cal.frequency, [1.0, 0.5], rtol=1e-6)
    np.testing.assert_allclose(cal.ece, (1 * 0.6 + 2 * 0.25) / 3, rtol=1e-6)
    calibration_curve = pytest.importorskip("sklearn.calibration").calibration_curve
    rng = np.random.default_rng(0)
    prob = rng.uniform(size=500)
    y = (rng.uniform(size=500) < prob**1.3).astype(int)
    cal = scores.calibration(mj.Bernoulli(jnp.asarray(special.logit(prob), jnp.float32)), jnp.asarray(y), bins=10)
    freq, conf = calibration_curve(y, prob, n_bins=10)
    filled = np.asarray(cal.counts) > 0
    np.testing.assert_allclose(np.asarray(cal.frequency)[filled], freq, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(cal.confidence)[filled], conf, rtol=1e-5)
    with pytest.raises(ValueError, match="bins"):
        scores.calibration(mj.Bernoulli(jnp.zeros(2)), jnp.array([0, 1]), bins=0)


def test_evaluate_gives_the_metrics_that_fit_the_family(x64):
    x = jnp.linspace(-1, 1, 50)
    normal = mj.recipe(lambda p, x: jnp.stack([p * x, 0.0 * x]), mj.normal(scale="softplus"))
    y = 0.5 * x + jax.random.normal(jax.random.PRNGKey(1), (50,), jnp.float64)
    params = normal.init(jnp.float64(0.5))
    m = scores.evaluate(normal, params, x, y)
    theta = normal.predict(params, x)
    np.testing.assert_allclose(m["nll"], normal.mean_nll(params, x, y), rtol=1e-12)
    np.testing.assert_allclose(m["crps"], np.mean(ps.crps_gaussian(np.asarray(y), np.asarray(theta.loc),
                                                                   np.asarray(theta.scale))), rtol=1e-10)
    np.testing.assert_allclose(m["pit_ks"], stats.kstest(stats.norm.cdf(np.asarray(y), np.asarray(theta.loc),
                                                                        np.asarray(theta.scale)), "uniform").statistic)
    np.testing.assert_allclose(m["rmse"], np.sqrt(np.mean((np.asarray(y) - np.asarray(theta.loc)) ** 2)))
    assert {"mae", "coverage"} <= set(m)
    binary = mj.recipe(lambda p, x: p * x, mj.bernoulli())
    labels = (x > 0).astype(jnp.int32)
    m = scores.evaluate(binary, binary.init(jnp.float64(3.0)), x, labels)
    assert set(m) == {"n", "nll", "accuracy", "brier", "ece"} and m["accuracy"] == 1.0


# ----------------------------------------------------------------------------- targets: shapes, supports, empties

N3 = mj.Normal(jnp.zeros(3), jnp.ones(3))


@pytest.mark.parametrize("call", [
    lambda y: scores.crps(N3, y), lambda y: scores.pit(N3, y), lambda y: scores.coverage(N3, y),
    lambda y: scores.crps_sample(jax.random.PRNGKey(0), N3, y, 10),
])
def test_targets_must_have_the_thetas_shape_exactly(call):
    """(3, 1) targets for 3 scalar predictions were broadcast to a (3, 3) score; a scalar to (3,)."""
    for y in (jnp.zeros((3, 1)), jnp.zeros(()), jnp.zeros(4)):
        with pytest.raises(ValueError, match=r"y has shape .* but Normal predicts targets of shape \(3,\)"):
            call(y)


@pytest.mark.parametrize("theta, bad, rule", [
    (mj.Bernoulli(jnp.zeros(3)), [0.0, 1.7, 1.0], "0 or 1"),
    (mj.Bernoulli(jnp.zeros(3)), [0, -1, 1], "0 or 1"),
    (mj.Bernoulli(jnp.zeros(3)), [0, 2, 1], "0 or 1"),
    (mj.Categorical(jnp.zeros((3, 4))), [0, 4, 1], r"in \[0, 4\)"),
    (mj.Categorical(jnp.zeros((3, 4))), [0, -1, 1], r"in \[0, 4\)"),
])
def test_labels_off_the_support_are_refused_by_every_classification_score(theta, bad, rule):
    y = jnp.asarray(bad)
    for score in (scores.brier, scores.calibration):
        with pytest.raises(ValueError, match=rule):
            score(theta, y)
    if isinstance(theta, mj.Bernoulli):
        with pytest.raises(ValueError, match=rule):
            scores.crps(theta, y)


@pytest.mark.parametrize("theta, y, rule", [
    (mj.Poisson(jnp.zeros(2)), [1.0, 2.5], "a count"),
    (mj.Poisson(jnp.zeros(2)), [1.0, -1.0], "a count"),
    (mj.NegativeBinomial(jnp.ones(2), jnp.zeros(2)), [0.5, 1.0], "a count"),
    (mj.Gamma(jnp.ones(2), jnp.ones(2)), [1.0, -0.5], "> 0"),
    (mj.Normal(jnp.zeros(2), jnp.ones(2)), [np.nan, 0.0], "finite"),
    (mj.StudentT(jnp.full(2, 3.0), jnp.zeros(2), jnp.ones(2)), [np.inf, 0.0], "finite"),
])
def test_real_targets_off_the_support_are_refused(theta, y, rule):
    with pytest.raises(ValueError, match=rule):
        scores.crps(theta, jnp.asarray(y))
    if not isinstance(theta, (mj.Poisson, mj.NegativeBinomial)):
        with pytest.raises(ValueError, match=rule):
            scores.pit(theta, jnp.asarray(y))


def test_empty_inputs_and_vector_thetas_are_refused_clearly():
    with pytest.raises(ValueError, match="no examples"):
        scores.calibration(mj.Bernoulli(jnp.zeros(0)), jnp.zeros(0, jnp.int32))
    with pytest.raises(ValueError, match="no examples"):
        scores.crps(mj.Normal(jnp.zeros(0), jnp.ones(0)), jnp.zeros(0))
    mvn = mj.MultivariateNormal(jnp.zeros(2), jnp.eye(2))
    with pytest.raises(TypeError, match="defined for scalar targets.*energy score"):
        scores.crps(mvn, jnp.zeros(2), key=jax.random.PRNGKey(0))
    with pytest.raises(TypeError, match="no order"):
        scores.crps(mj.Categorical(jnp.zeros(3)), 1)
    with pytest.raises(TypeError, match="no log_cdf"):
        scores.pit(mvn, jnp.zeros(2))
    with pytest.raises(TypeError, match="no quantile"):
        scores.coverage(mvn, jnp.zeros(2))
    with pytest.raises(ValueError, match="bins"):
        scores.calibration(mj.Bernoulli(jnp.zeros(2)), jnp.array([0, 1]), bins=True)


def test_poisson_zero_rate_is_the_point_mass_at_zero(x64):
    """``log_rate = -inf``: CRPS = |y| (was NaN from 0 * log 0)."""
    np.testing.assert_array_equal(scores.crps(mj.Poisson(jnp.full(3, -jnp.inf)), jnp.array([0.0, 1.0, 4.0])), [0, 1, 4])


@pytest.mark.deep  # a few seconds of compiling: CI's deep phase, for README's 5-minute suite
def test_von_mises_sample_crps_and_mae_use_the_angular_distance(x64):
    """A circular target: y and y + 2 pi are the same angle, so they score the same."""
    theta = mj.VonMises(jnp.zeros(2), jnp.full(2, 4.0))
    y = jnp.array([0.3, 0.3 + 2 * np.pi])
    est = scores.crps_sample(jax.random.PRNGKey(0), theta, y, num_samples=200)
    # the exact circular CRPS of VM(0, 4) at 0.3, E d(X, y) - E d(X, X')/2, on a periodic grid (scipy's density)
    t = np.linspace(-np.pi, np.pi, 1024, endpoint=False)
    w = stats.vonmises(4.0).pdf(t) * (2 * np.pi / 1024)
    angle = lambda d: np.abs(np.angle(np.exp(1j * d)))  # noqa: E731
    first = np.sum(angle(t - 0.3) * w)
    pair = np.sum(angle(t[:, None] - t[None, :]) * w[:, None] * w[None, :])
    exact = first - pair / 2
    assert np.all(np.abs(np.asarray(est.estimate) - exact) < 4 * np.asarray(est.standard_error))
    r = mj.recipe(lambda p, x: jnp.stack([p + 0.0 * x, 4.0 + 0.0 * x]), mj.von_mises())
    x = jnp.zeros(2)
    m = scores.evaluate(r, r.init(jnp.float64(0.0)), x, jnp.array([0.1, 0.1 + 2 * np.pi]))
    np.testing.assert_allclose([m["mae"], m["rmse"]], [0.1, 0.1], rtol=1e-12)


def test_evaluate_refuses_bins_below_one_and_scores_soft_labels_by_expected_agreement(x64):
    binary = mj.recipe(lambda p, x: p * x, mj.bernoulli(soft_labels=True))
    x = jnp.array([-1.0, 1.0, 2.0])
    params = binary.init(jnp.float64(3.0))
    with pytest.raises(ValueError, match="bins"):
        scores.evaluate(binary, params, x, jnp.array([0.0, 1.0, 1.0]), bins=0)
    soft = jnp.array([0.2, 0.9, 0.6])  # modes 0, 1, 1: agreement 0.8, 0.9, 0.6
    m = scores.evaluate(binary, params, x, soft)
    np.testing.assert_allclose(m["accuracy"], np.mean([0.8, 0.9, 0.6]), rtol=1e-12)
    lam = special.expit(3.0 * np.asarray(x))
    np.testing.assert_allclose(m["brier"], np.mean((lam - np.asarray(soft)) ** 2), rtol=1e-12)


def test_integer_theta_fields_do_not_truncate_the_target():
    """``Normal(0, 1)`` with Python ints: y = 0.5 was cast to the fields' int dtype (pit 0.5)."""
    np.testing.assert_allclose(scores.pit(mj.Normal(0, 1), 0.5), stats.norm.cdf(0.5), rtol=1e-6)
    np.testing.assert_allclose(scores.crps(mj.Normal(0, 1), 0.5), ps.crps_gaussian(0.5, 0.0, 1.0), rtol=1e-6)
    np.testing.assert_allclose(scores.crps(mj.Gamma(2, 1), 0.5), sr.crps_gamma(0.5, 2.0, rate=1.0), rtol=1e-5)
