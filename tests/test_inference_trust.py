"""inference at scale and at its edges: memory linear in N, frequency weights in the sandwich,
separated classes, conjugate gradients that fail, bad arguments, compiled programs' lifetime.

References: closed forms of the logistic regression's information (``X' diag(p (1 - p)) X``) and
meat (``X' diag((y - p)^2) X``), statsmodels on the rows expanded by the weights, statsmodels on
the identified sub-design, and the construction of the data (classes separated by design).
"""

import gc
import warnings
import weakref

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

import mle_jax as mj
from mle_jax.inference import inference

sm = pytest.importorskip("statsmodels.api")


def _linear(p, x):
    return x @ p["b"]


LOGISTIC = mj.recipe(_linear, mj.bernoulli())
POISSON = mj.recipe(_linear, mj.poisson())


def _logistic_data(n, b, seed):
    rng = np.random.default_rng(seed)
    X = np.c_[np.ones(n), rng.normal(size=(n, len(b) - 1))]
    p = 1 / (1 + np.exp(-X @ np.asarray(b)))
    return X, (rng.uniform(size=n) < p).astype(np.int32), p


def test_memory_is_linear_in_n_at_1e5_rows_against_the_closed_form(x64):
    """N = 1e5: the old Jacobian of the N per-example log-likelihoods needed 16 N^2 = 160 GB. Here the
    observed and HC0 covariances equal the closed forms, in one chunk and in four padded chunks."""
    b = np.array([0.3, 1.0, -0.5])
    X, yv, p = _logistic_data(100_000, b, 0)
    H = (X * (p * (1 - p))[:, None]).T @ X
    B = (X * ((yv - p) ** 2)[:, None]).T @ X
    H_inv = np.linalg.inv(H)
    params = LOGISTIC.init({"b": jnp.asarray(b)})
    x, y = jnp.asarray(X), jnp.asarray(yv)
    np.testing.assert_allclose(inference(LOGISTIC, params, x, y).cov, H_inv, rtol=1e-9)
    robust = inference(LOGISTIC, params, x, y, cov="robust", chunk_size=30_000)  # 4 chunks, the last padded
    np.testing.assert_allclose(robust.cov, H_inv @ B @ H_inv, rtol=1e-9)


@pytest.mark.deep  # 4-10 s of compiling: CI's deep phase, for README's 5-minute suite
def test_chunks_with_weights_and_mask_against_the_closed_form(x64):
    """Chunks of 7 rows (the last one padded with masked rows) with weights and a mask: the expected
    information, the HC0 sandwich and CG's variances equal the closed forms with weights m_i w_i."""
    b = np.array([0.3, 1.0, -1.0])
    X, yv, p = _logistic_data(60, b, 5)
    w, m = np.arange(60) % 3, np.arange(60) % 5 != 0
    c = m * w
    H_inv = np.linalg.inv((X * (c * p * (1 - p))[:, None]).T @ X)
    B = (X * (c * (yv - p) ** 2)[:, None]).T @ X
    kw = dict(weights=jnp.asarray(w, jnp.float64), mask=jnp.asarray(m), chunk_size=7, batch_size=2)
    params, x, y = LOGISTIC.init({"b": jnp.asarray(b)}), jnp.asarray(X), jnp.asarray(yv)
    np.testing.assert_allclose(inference(LOGISTIC, params, x, y, "expected", **kw).cov, H_inv, rtol=1e-9)
    np.testing.assert_allclose(inference(LOGISTIC, params, x, y, "robust", **kw).cov, H_inv @ B @ H_inv, rtol=1e-9)
    np.testing.assert_allclose(inference(LOGISTIC, params, x, y, "hvp", **kw).variance, np.diag(H_inv), rtol=1e-8)


def test_robust_with_weights_is_hc0_on_the_expanded_rows(x64):
    """Frequency weights: the meat is sum_i w_i s_i s_i' (was sum_i w_i^2 s_i s_i'), so a weighted fit's
    HC0 SEs equal statsmodels' HC0 on the rows repeated w_i times, and GLM's with freq_weights."""
    X, yv, _ = _logistic_data(80, [0.2, 0.8, -0.6], 7)
    w = np.arange(80) % 4  # 0, 1, 2, 3
    rows = np.repeat(np.arange(80), w)
    expanded = sm.Logit(yv[rows], X[rows]).fit(disp=0, tol=1e-12, cov_type="HC0")
    s = inference(LOGISTIC, LOGISTIC.init({"b": jnp.asarray(expanded.params)}), jnp.asarray(X), jnp.asarray(yv),
                  cov="robust", weights=jnp.asarray(w, jnp.float64))
    np.testing.assert_allclose(s.se.model["b"], expanded.bse, rtol=1e-6)
    assert s.nobs == w.sum()
    positive = w > 0  # statsmodels' GLM sandwich divides by the weights
    glm = sm.GLM(yv[positive], X[positive], family=sm.families.Binomial(), freq_weights=w[positive]).fit(
        tol=1e-12, cov_type="HC0")
    np.testing.assert_allclose(s.se.model["b"], glm.bse, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_complete_separation_warns_for_every_cov_type(dtype):
    """Classes separated by construction (y = [x_1 > 0]): no MLE exists, whatever the fitted slope
    (the old code reported SEs of 12.5 at slope 20, 3282 at 200, silently)."""
    rng = np.random.default_rng(0)
    X = np.c_[np.ones(50), rng.normal(size=(50, 2))].astype(dtype)
    yv = (X[:, 1] > 0).astype(np.int32)
    for slope in (20.0, 200.0):
        params = LOGISTIC.init({"b": np.array([0.0, slope, 0.0], dtype)})
        for cov in ("observed", "expected", "robust", "diagonal", "hvp"):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                inference(LOGISTIC, params, X, yv, cov)
            kinds = {w.category for w in caught}
            assert mj.PerfectSeparationWarning in kinds, (slope, cov, [str(w.message) for w in caught])
            assert kinds <= {mj.PerfectSeparationWarning, RuntimeWarning}


@pytest.mark.deep  # a few seconds of compiling: CI's deep phase, for README's 5-minute suite
def test_quasi_separation_warns_and_overlapping_classes_do_not(x64):
    """A dummy column whose examples are all 1 (quasi-complete separation: its coefficient has no finite
    MLE) is flagged whether its estimate is 15 or 40; a categorical fit the same way. Strong but
    overlapping effects (statsmodels' MLE, 141 examples fitted above 1 - 1e-6) are not."""
    rng = np.random.default_rng(1)
    x1, dummy = rng.normal(size=200), (rng.uniform(size=200) < 0.2).astype(float)
    X = np.c_[np.ones(200), x1, dummy]
    yv = np.where(dummy == 1, 1, (rng.uniform(size=200) < 1 / (1 + np.exp(-0.2 - x1))).astype(int))
    rest = sm.Logit(yv[dummy == 0], X[dummy == 0, :2]).fit(disp=0, tol=1e-12).params
    for estimate, cov in ((15.0, "observed"), (40.0, "observed"), (15.0, "hvp")):
        params = LOGISTIC.init({"b": jnp.asarray(np.r_[rest, estimate])})
        with pytest.warns(mj.PerfectSeparationWarning, match="separat"):
            inference(LOGISTIC, params, jnp.asarray(X), jnp.asarray(yv), cov)
    two = mj.recipe(lambda p, x: jnp.concatenate([jnp.zeros(1, x.dtype), x @ p["b"]]), mj.categorical(2))
    with pytest.warns(mj.PerfectSeparationWarning, match="separat"):
        inference(two, two.init({"b": jnp.asarray(np.r_[rest, 15.0])[:, None]}), jnp.asarray(X), jnp.asarray(yv))

    X, yv, _ = _logistic_data(2000, [0.5, 6.0, -4.0], 3)
    ref = sm.Logit(yv, X).fit(disp=0, tol=1e-12)
    s = inference(LOGISTIC, LOGISTIC.init({"b": jnp.asarray(ref.params)}), jnp.asarray(X), jnp.asarray(yv))
    np.testing.assert_allclose(s.se.model["b"], ref.bse, rtol=1e-5)  # and no warning (warnings are errors)


def test_hvp_warns_where_conjugate_gradients_fail(x64):
    """A duplicated column: H is singular. CG's residual is checked: the two collinear coefficients
    are NaN with a RuntimeWarning (was NaN or 2.3e15 silently); the identified ones equal statsmodels'
    on the design without the duplicate, as the observed pseudo-inverse does."""
    X, yv, _ = _logistic_data(50, [0.1, 0.5, -0.5], 2)
    ref = sm.Logit(yv, X).fit(disp=0, tol=1e-12)
    Xc = np.c_[X, X[:, 1]]
    params = LOGISTIC.init({"b": jnp.asarray(np.r_[ref.params[0], ref.params[1] / 2, ref.params[2],
                                                   ref.params[1] / 2])})
    with pytest.warns(RuntimeWarning, match="conjugate gradients did not solve.*\\[1, 3\\]"):
        s = inference(LOGISTIC, params, jnp.asarray(Xc), jnp.asarray(yv), cov="hvp")
    assert np.isnan(s.variance[[1, 3]]).all()
    np.testing.assert_allclose(np.sqrt(s.variance[[0, 2]]), ref.bse[[0, 2]], rtol=1e-6)
    with pytest.warns(RuntimeWarning, match="singular.*pseudo-inverse"):
        observed = inference(LOGISTIC, params, jnp.asarray(Xc), jnp.asarray(yv))
    np.testing.assert_allclose(np.sqrt(observed.variance[[0, 2]]), ref.bse[[0, 2]], rtol=1e-6)


def test_edge_inputs_give_clear_errors_or_the_right_answer(x64):
    X, yv, _ = _logistic_data(30, [0.2, 0.5], 4)
    params = LOGISTIC.init({"b": jnp.asarray(sm.Logit(yv, X).fit(disp=0, tol=1e-12).params)})
    x, y = jnp.asarray(X), jnp.asarray(yv)
    for kw in (dict(weights=jnp.zeros(30)), dict(mask=jnp.zeros(30, bool))):
        with pytest.raises(ValueError, match="leave no example"):
            inference(LOGISTIC, params, x, y, **kw)
    as_lists = inference(LOGISTIC, params, X.tolist(), yv.tolist())
    np.testing.assert_allclose(as_lists.variance, inference(LOGISTIC, params, x, y).variance, rtol=1e-12)
    for index in ([1.7], [2], [-1], [], [True], 1.0):
        with pytest.raises(ValueError, match="index must hold"):
            inference(LOGISTIC, params, x, y, cov="hvp", index=index)
    with pytest.raises(ValueError, match="index chooses"):
        inference(LOGISTIC, params, x, y, index=[0])
    for name in ("batch_size", "chunk_size", "max_params"):
        with pytest.raises(ValueError, match=f"{name} must be an integer >= 1"):
            inference(LOGISTIC, params, x, y, **{name: 0})
    with pytest.raises(TypeError, match="must be an mle_jax Recipe"):
        inference(lambda p, x: x, params, x, y)


def test_compiled_programs_die_with_their_recipe_and_are_reused(x64):
    X, yv, _ = _logistic_data(30, [0.2, 0.5], 4)
    r = mj.recipe(_linear, mj.bernoulli())
    params = r.init({"b": jnp.asarray([0.2, 0.5])})
    for _ in range(2):
        inference(r, params, jnp.asarray(X), jnp.asarray(yv))
    assert r.programs.get(("inference", "hessian", True), pytest.fail)._cache_size() == 1  # one compile for two calls (quick: small N k^2)
    ref = weakref.ref(r)
    del r
    gc.collect()
    assert ref() is None


@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(family=st.sampled_from(["poisson", "logistic"]), seed=st.integers(0, 2**16),
       b=st.lists(st.floats(-0.8, 0.8), min_size=3, max_size=3))
def test_random_glms_against_statsmodels(family, seed, b):
    """Random 40-row GLMs with integer weights 1..3: observed SEs equal statsmodels GLM's on the expanded
    rows, HC0 equals GLM's HC0 there. Fixed shapes: each recipe and cov type compiles once."""
    rng = np.random.default_rng(seed)
    X = np.c_[np.ones(40), rng.normal(size=(40, 2))]
    eta = X @ np.asarray(b)
    yv = rng.poisson(np.exp(eta)) if family == "poisson" else (rng.uniform(size=40) < 1 / (1 + np.exp(-eta)))
    yv = yv.astype(np.int32)
    w = rng.integers(1, 4, 40)
    rows = np.repeat(np.arange(40), w)
    sm_family = sm.families.Poisson() if family == "poisson" else sm.families.Binomial()
    assume(family == "poisson" or 0 < yv.sum() < 40)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ref = sm.GLM(yv[rows], X[rows], family=sm_family).fit(tol=1e-13, maxiter=200)
        rob = sm.GLM(yv[rows], X[rows], family=sm_family).fit(tol=1e-13, maxiter=200, cov_type="HC0")
    assume(not caught and np.all(np.abs(ref.params) < 10))  # no separation, converged
    r = POISSON if family == "poisson" else LOGISTIC
    with jax.enable_x64(True):
        params = r.init({"b": jnp.asarray(ref.params)})
        kw = dict(weights=jnp.asarray(w, jnp.float64))
        observed = inference(r, params, jnp.asarray(X), jnp.asarray(yv), **kw)
        robust = inference(r, params, jnp.asarray(X), jnp.asarray(yv), cov="robust", **kw)
    np.testing.assert_allclose(observed.se.model["b"], ref.bse, rtol=1e-6)
    np.testing.assert_allclose(robust.se.model["b"], rob.bse, rtol=1e-6)
    np.testing.assert_allclose(observed.loglik, ref.llf, rtol=1e-9)


def test_label_fit_against_a_numpy_reading_of_the_probabilities(x64):
    """The separation check's per-example reading (observed label strictly most probable, fitted above
    1 - SEPARATION_TOL, counted) equals numpy's on the same softmax probabilities; soft labels (not a
    class index) and labels of the wrong shape give None."""
    from mle_jax._curvature import Data
    from mle_jax._separation import SEPARATION_TOL, label_fit
    rng = np.random.default_rng(3)
    n, k = 64, 3
    X = rng.normal(size=(n, 2))
    W = np.array([[9.0, -9.0, 0.0], [0.0, 2.0, -2.0]])
    z = X @ W
    z[:4] = [1.0, 1.0, 0.0]  # ties: the observed label is not strictly most probable
    yv = np.argmax(z + rng.gumbel(size=z.shape), -1)
    yv[:4] = 0
    r = mj.recipe(lambda p, x: x, mj.categorical(k))
    m = rng.uniform(size=n) < 0.8
    w = rng.integers(0, 3, n).astype(np.float64)
    data = Data(jnp.asarray(z), jnp.asarray(yv), jnp.asarray(w), jnp.asarray(m))
    params = r.init({})
    got = label_fit(r, params, data)
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    observed = p[np.arange(n), yv]
    others = np.where(np.arange(k) == yv[:, None], -np.inf, p).max(-1)
    counted = m & (w > 0)
    np.testing.assert_array_equal(got.counted, counted)
    np.testing.assert_array_equal(got.correct, observed > others)
    np.testing.assert_array_equal(got.confident, counted & (observed > 1 - SEPARATION_TOL))
    np.testing.assert_allclose(got.smallest, observed[counted].min(), rtol=1e-6)
    assert not got.correct[:4].any()
    soft = data._replace(y=jnp.asarray(yv + 0.5))
    assert label_fit(r, params, soft) is None
    assert label_fit(r, params, data._replace(y=jnp.asarray(yv.reshape(n, 1)))) is None
