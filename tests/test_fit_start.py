"""``fit(..., start="intercept_only")`` and the weighted / multinomial intercept-only start: against
statsmodels' fits (``freq_weights``, ``MNLogit``), scipy's root of the Gamma shape's weighted score and the
closed forms (class frequencies, the weighted mean, the weighted root mean square)."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest
import statsmodels.api as sm
from scipy import optimize, special

import mle_jax as mj
from mle_jax import links
from mle_jax.glm_start import HELD

N, D, K = 600, 3, 4
QUIET = mj.Run(progress=False)
TIGHT = mj.Objective(tol=1e-11)


def _x(seed=0):
    return np.random.default_rng(seed).normal(size=(N, D))


def _eta(x):
    return 0.3 + x @ np.array([0.4, -0.3, 0.2])


def _weights(seed=1):
    return np.random.default_rng(seed).uniform(0.2, 3.0, size=N)


def _labels(x, seed=2):
    rng = np.random.default_rng(seed)
    z = np.column_stack([np.zeros(N), x @ (rng.normal(size=(D, K - 1)) * 0.5) + np.array([0.2, -0.4, 0.5])])
    return (special.softmax(z, axis=1).cumsum(1) < rng.uniform(size=(N, 1))).sum(1).clip(0, K - 1)


def _gamma_shape_ref(y, mu, w):
    s = np.sum(w * (y / mu - np.log(y / mu) - 1)) / np.sum(w)
    return optimize.brentq(lambda a: np.log(a) - special.digamma(a) - s, 1e-3, 1e3, xtol=1e-14)


def test_the_multinomial_start_is_mnlogit_intercept_only(x64):
    """``b_k = log(p_k / p_0)`` with a reference class (statsmodels' MNLogit on a constant); ``log p_k`` without."""
    y = _labels(_x())
    ref = sm.MNLogit(y, np.ones((N, 1))).fit(disp=0, method="newton", tol=1e-12).params[0]
    r = mj.recipe(mj.models.linear(D, (K - 1,), reference=True).apply, mj.categorical(K))
    p = mj.intercept_only(r, y)
    np.testing.assert_allclose(np.asarray(p.model["b"]), ref, rtol=1e-8)
    assert p.model["w"].shape == (D, K - 1) and not np.any(np.asarray(p.model["w"]))
    full = mj.intercept_only(mj.recipe(mj.models.linear(D, (K,)).apply, mj.categorical(K)), y)
    np.testing.assert_allclose(np.asarray(full.model["b"]), np.log(np.bincount(y, minlength=K) / N), rtol=1e-12)


@pytest.mark.deep
def test_weighted_starts_are_statsmodels_freq_weights_intercept_only(x64):
    x, w = _x(), _weights()
    rng = np.random.default_rng(3)
    cases = [(mj.poisson(), sm.families.Poisson(), rng.poisson(np.exp(_eta(x))).astype(float)),
             (mj.bernoulli(), sm.families.Binomial(), (rng.uniform(size=N) < special.expit(_eta(x))).astype(float)),
             (mj.gamma("mean"), sm.families.Gamma(sm.families.links.Log()), rng.gamma(2.5, np.exp(_eta(x)) / 2.5)),
             (mj.normal(scale="learned"), sm.families.Gaussian(), _eta(x) + rng.normal(size=N))]
    for family, sm_family, y in cases:
        p = mj.intercept_only(mj.recipe(mj.models.linear(D).apply, family), y, weights=w)
        b = sm.GLM(y, np.ones((N, 1)), family=sm_family, freq_weights=w).fit(tol=1e-12).params[0]
        assert abs(float(p.model["b"]) - b) < 1e-9 * max(1.0, abs(b)), family.name
    a = float(links.softplus.forward(p.family["scale"]))  # the last case: sigma^2 = sum w (y - ybar)^2 / sum w
    ybar = np.sum(w * y) / np.sum(w)
    assert abs(a / np.sqrt(np.sum(w * (y - ybar) ** 2) / np.sum(w)) - 1) < 1e-12
    yg = cases[2][2]
    p = mj.intercept_only(mj.recipe(mj.models.linear(D).apply, mj.gamma("mean")), yg, weights=w)
    mu = np.full(N, np.sum(w * yg) / np.sum(w))
    assert abs(float(links.softplus.forward(p.family["shape"])) / _gamma_shape_ref(yg, mu, w) - 1) < 1e-9


def test_binomial_and_categorical_weights_and_a_mask(x64):
    """Binomial: ``sum w s / sum w n``; classes: weighted frequencies; a mask is a weight of 0."""
    x, w = _x(), _weights()
    rng = np.random.default_rng(4)
    trials = 1 + rng.poisson(3.0, size=N)
    y = np.column_stack([rng.binomial(trials, special.expit(_eta(x))), trials]).astype(float)
    p = mj.intercept_only(mj.recipe(mj.models.linear(D).apply, mj.binomial()), y, weights=w)
    assert abs(float(special.expit(p.model["b"])) - np.sum(w * y[:, 0]) / np.sum(w * y[:, 1])) < 1e-12
    labels, mask = _labels(x), rng.uniform(size=N) < 0.7
    r = mj.recipe(mj.models.linear(D, (K - 1,), reference=True).apply, mj.categorical(K))
    counts = np.bincount(labels, weights=w * mask, minlength=K)
    got = mj.intercept_only(r, labels, weights=w, mask=mask).model["b"]
    np.testing.assert_allclose(np.asarray(got), np.log(counts[1:] / counts[0]), rtol=1e-12)


@pytest.mark.deep
def test_fit_from_the_start_profiles_the_weighted_gamma_shape(x64):
    """statsmodels' weighted coefficients; the shape: the root of its weighted score at statsmodels' means."""
    x, w = _x(), _weights()
    y = np.random.default_rng(5).gamma(2.5, np.exp(_eta(x)) / 2.5)
    r = mj.recipe(mj.models.linear(D).apply, mj.gamma("mean"))
    p0 = r.init({"w": jnp.zeros(D), "b": jnp.zeros(())})
    res = mj.fit(r, p0, x, y, mj.newton(), steps=100, weights=w, objective=TIGHT, run=QUIET, start="intercept_only")
    ref = sm.GLM(y, sm.add_constant(x), family=sm.families.Gamma(sm.families.links.Log()),
                 freq_weights=w).fit(tol=1e-12).params
    np.testing.assert_allclose(np.r_[float(res.params.model["b"]), np.asarray(res.params.model["w"])], ref,
                               rtol=1e-7, atol=1e-9)
    a = float(links.softplus.forward(res.params.family["shape"]))
    assert abs(a / _gamma_shape_ref(y, np.exp(sm.add_constant(x) @ ref), w) - 1) < 1e-8
    assert res.stopped == "converged" and isinstance(res.params.family["shape"], jnp.ndarray)
    assert jnp.result_type(res.params.family["shape"]) == jnp.float64


@pytest.mark.deep
def test_the_loop_profiles_the_shape_with_weights_and_a_mask(x64):
    """The profiled shape computed by the fit's loop program (no ``family_mle`` program runs): with frequency weights
    and a mask, statsmodels' coefficients on the kept rows (``freq_weights = w m``) and the root of the shape's
    weighted score at its means; an L-BFGS fit of more steps than one call of the loop holds (1024)."""
    x, w = _x(), _weights()
    mask = np.random.default_rng(6).uniform(size=N) < 0.8
    y = np.random.default_rng(7).gamma(3.0, np.exp(_eta(x)) / 3.0)
    r = mj.recipe(mj.models.linear(D).apply, mj.gamma("mean"))
    p0 = r.init({"w": jnp.zeros(D), "b": jnp.zeros(())})
    res = mj.fit(r, p0, x, y, optax.lbfgs(), steps=3000, weights=w, mask=mask, objective=mj.Objective(tol=1e-10),
                 run=QUIET, start="intercept_only")
    assert res.stopped == "converged"
    assert not any(key[0] == "family_mle" for key in r.programs.keys())  # the loop's program computed it
    ref = sm.GLM(y, sm.add_constant(x), family=sm.families.Gamma(sm.families.links.Log()),
                 freq_weights=w * mask).fit(tol=1e-12).params
    np.testing.assert_allclose(np.r_[float(res.params.model["b"]), np.asarray(res.params.model["w"])], ref,
                               rtol=1e-6, atol=1e-8)
    a = float(links.softplus.forward(res.params.family["shape"]))
    mu = np.exp(x @ np.asarray(res.params.model["w"]) + float(res.params.model["b"]))
    assert abs(a / _gamma_shape_ref(y[mask], mu[mask], w[mask]) - 1) < 1e-10  # at the fit's own means, exactly
    assert abs(a / _gamma_shape_ref(y[mask], np.exp(sm.add_constant(x) @ ref)[mask], w[mask]) - 1) < 1e-6


@pytest.mark.deep
def test_fit_from_the_start_reaches_mnlogit_and_ols(x64):
    x = _x()
    y = _labels(x)
    r = mj.recipe(mj.models.linear(D, (K - 1,), reference=True).apply, mj.categorical(K))
    p0 = r.init({"w": jnp.zeros((D, K - 1)), "b": jnp.zeros(K - 1)})
    res = mj.fit(r, p0, x, y, mj.newton(), steps=50, objective=TIGHT, run=QUIET, start="intercept_only")
    ref = sm.MNLogit(y, sm.add_constant(x)).fit(disp=0, method="newton", tol=1e-12).params
    np.testing.assert_allclose(np.vstack([np.asarray(res.params.model["b"])[None], np.asarray(res.params.model["w"])]),
                               ref, rtol=1e-7, atol=1e-9)
    y = _eta(x) + np.random.default_rng(6).normal(size=N) * 0.7  # sigma's MLE: the root mean square residual
    rn = mj.recipe(mj.models.linear(D).apply, mj.normal(scale="learned"))
    res = mj.fit(rn, rn.init({"w": jnp.zeros(D), "b": jnp.zeros(())}), x, y, optax.lbfgs(), steps=200,
                 objective=TIGHT, run=QUIET, start="intercept_only")
    ols = sm.OLS(y, sm.add_constant(x)).fit()
    np.testing.assert_allclose(np.r_[float(res.params.model["b"]), np.asarray(res.params.model["w"])], ols.params,
                               rtol=1e-7, atol=1e-9)
    assert abs(float(links.softplus.forward(res.params.family["scale"])) / np.sqrt(np.mean(ols.resid ** 2)) - 1) < 1e-9


@pytest.mark.deep
def test_a_fixed_dispersion_is_kept_and_bad_starts_are_named(x64):
    x = _x()
    y = np.random.default_rng(7).gamma(2.5, np.exp(_eta(x)) / 2.5)
    r = mj.recipe(mj.models.linear(D).apply, mj.gamma("mean"))
    p = r.init({"w": jnp.zeros(D), "b": jnp.zeros(())})._replace(family={"shape": 0.7})
    res = mj.fit(r, p, x, y, mj.newton(), steps=50, objective=TIGHT, run=QUIET, start="intercept_only")
    assert res.params.family == {"shape": 0.7}  # fixed by the user: neither held nor profiled
    with pytest.raises(ValueError, match="start must be one of"):
        mj.fit(r, p, x, y, mj.newton(), steps=5, start="zeros")
    with pytest.raises(ValueError, match="supported"):
        rt = mj.recipe(mj.models.linear(D).apply, mj.student_t())
        mj.fit(rt, rt.init({"w": jnp.zeros(D), "b": jnp.zeros(())}), x, y, mj.newton(), steps=5,
               start="intercept_only")
    with pytest.raises(ValueError, match="mj.models.linear"):
        rf = mj.recipe(lambda q, x_i: x_i @ q["w"] + q["b"], mj.poisson())
        mj.fit(rf, rf.init({"w": jnp.zeros(D), "b": jnp.zeros(())}), x, np.ones(N), mj.newton(), steps=5,
               start="intercept_only")
    with pytest.raises(ValueError, match=">= 0"):
        mj.intercept_only(r, y, weights=-np.ones(N))
    with pytest.raises(ValueError, match="boolean"):  # fit's rule: a mask of 2 is a mistake, not True
        mj.intercept_only(r, y, mask=np.full(N, 2))
    with pytest.raises(ValueError, match="positive sum"):
        mj.intercept_only(r, y, mask=np.zeros(N, bool))
    with pytest.raises(ValueError, match="boundary"):  # a class never seen: log p_k = -inf
        mj.intercept_only(mj.recipe(mj.models.linear(D, (K - 1,), reference=True).apply, mj.categorical(K)),
                          np.zeros(N, int) + (np.arange(N) % 2))
    with pytest.raises(ValueError, match="stream"):
        mj.fit(r, p, mj.batches(x, y, batch_size=100), None, mj.newton(), steps=5, start="intercept_only")


@pytest.mark.deep
def test_fits_from_the_start_on_new_data_steps_and_tol_do_not_recompile(x64):
    """The held shape is one constant and the start / profile programs are the recipe's: a second data set of the
    same shapes (another mean and shape), other steps and tol, compile nothing."""
    from compiles import compiles
    x = _x()
    rng = np.random.default_rng(8)
    r = mj.recipe(mj.models.linear(D).apply, mj.gamma("mean"))
    p0, opt = r.init({"w": jnp.zeros(D), "b": jnp.zeros(())}), optax.lbfgs()
    first = mj.fit(r, p0, x, rng.gamma(2.5, np.exp(_eta(x)) / 2.5), opt, steps=50, objective=TIGHT, run=QUIET,
                   start="intercept_only")
    y2 = rng.gamma(7.0, 3 * np.exp(_eta(x)) / 7.0)
    with compiles() as count:
        again = mj.fit(r, first.params, x, y2, opt, steps=80, objective=mj.Objective(tol=1e-9), run=QUIET,
                       start="intercept_only")
    assert count.n == 0
    mu = np.exp(x @ np.asarray(again.params.model["w"]) + float(again.params.model["b"]))
    a = float(links.softplus.forward(again.params.family["shape"]))
    assert abs(a / _gamma_shape_ref(y2, mu, np.ones(N)) - 1) < 1e-8  # the new data's shape, not the first's


@pytest.mark.deep
def test_a_profiled_sigma_below_the_links_floor_is_said_not_nan():
    """float32 data fitted to within 3e-8 (sigma's MLE below eps = 1.2e-7): the profile put NaN in the scale
    (softplus^{-1} traced below its floor) and fit said "completed"; now the scale is on its floor, softplus(raw)
    at the root mean square residual (to float32's rounding of the residuals, about eps |eta|), ``Stop.BOUNDARY`` and its warning; the direct calls name the floor."""
    rng = np.random.default_rng(9)
    x = rng.normal(size=(N, D)).astype(np.float32)
    y = (_eta(x) + rng.normal(size=N) * 3e-8).astype(np.float32)
    r = mj.recipe(mj.models.linear(D).apply, mj.normal(scale="learned"))
    p0 = r.init({"w": jnp.zeros(D, jnp.float32), "b": jnp.zeros((), jnp.float32)})
    with pytest.warns(mj.BoundaryWarning, match="scale"):
        res = mj.fit(r, p0, x, y, mj.newton(), steps=20, run=QUIET, start="intercept_only")
    raw = np.float64(res.params.family["scale"])
    assert res.stopped == "boundary" and np.isfinite(raw)
    resid = y.astype(np.float64) - (x.astype(np.float64) @ np.asarray(res.params.model["w"], np.float64)
                                    + np.float64(res.params.model["b"]))
    rms = np.sqrt(np.mean(resid ** 2))
    assert rms < np.finfo(np.float32).eps and 0.5 < np.log1p(np.exp(raw)) / rms < 2  # float32's own residuals
    with pytest.raises(ValueError, match="floor eps"):
        mj.family_mle(r, res.params, x, y)
    with pytest.raises(ValueError, match="floor eps"):
        mj.intercept_only(r, np.float32(1.0) + (np.arange(N) % 2).astype(np.float32) * np.float32(1.2e-7), p0)


@pytest.mark.deep
def test_tol_holds_at_the_profiled_dispersion(x64):
    """``tol`` is the model's own: the held fit's gradient (sigma = 1, shape = 1) is the profiled one's divided by
    ``1 / sigma^2`` or the shape, so a sigma of 1e-5 (a shape of 1e4) stopped at tol = 1e-6 as "converged" with
    coefficients 2% (3e-7) off statsmodels'; now continued to the tighter tol, at OLS / statsmodels' MLE."""
    x = _x()
    rng = np.random.default_rng(10)
    y = 3e-4 + 1e-4 * (x @ np.array([0.5, -0.3, 0.2])) + 1e-5 * rng.normal(size=N)
    r = mj.recipe(mj.models.linear(D).apply, mj.normal(scale="learned"))
    res = mj.fit(r, r.init({"w": jnp.zeros(D), "b": jnp.zeros(())}), x, y, optax.lbfgs(), steps=200,
                 objective=mj.Objective(tol=1e-6), run=QUIET, start="intercept_only")
    ols = sm.OLS(y, sm.add_constant(x)).fit().params
    assert res.stopped == "converged"
    np.testing.assert_allclose(np.r_[float(res.params.model["b"]), np.asarray(res.params.model["w"])], ols, rtol=1e-7)
    yg = rng.gamma(1e4, np.exp(_eta(x)) / 1e4)
    rg = mj.recipe(mj.models.linear(D).apply, mj.gamma("mean"))
    res = mj.fit(rg, rg.init({"w": jnp.zeros(D), "b": jnp.zeros(())}), x, yg, optax.lbfgs(), steps=200,
                 objective=mj.Objective(tol=1e-6), run=QUIET, start="intercept_only")
    ref = sm.GLM(yg, sm.add_constant(x), family=sm.families.Gamma(sm.families.links.Log())).fit(tol=1e-13).params
    assert res.stopped == "converged"
    np.testing.assert_allclose(np.r_[float(res.params.model["b"]), np.asarray(res.params.model["w"])], ref,
                               rtol=0, atol=1e-9)
    few = mj.fit(r, r.init({"w": jnp.zeros(D), "b": jnp.zeros(())}), x, y, optax.lbfgs(), steps=200,
                 objective=mj.Objective(tol=1e-6), run=QUIET, start="intercept_only",
                 validation=mj.Validation(x, y, every=1, patience=1000))
    assert few.stopped == "completed" and "not converged" in few.message  # validation: not continued, not claimed


@pytest.mark.deep
def test_a_held_fit_whose_gradient_suffices_is_not_run_again(x64):
    """The profiled shape's ``tol`` is judged on the gradient the held fit reached, not on the tol it was given: a
    held fit (shape 1) that converged with a gradient already under ``tol / a`` is the profiled fit, no second
    pass (which added a step that only found it converged, and a second shape MLE: 2.6 of a 7.3 ms fit at 1e4 x 20).
    The held fit's path, its gradient after each step in numpy (``mean((1 - y/mu) [1, x])``, shape 1): ``tol`` is
    put at twice ``a`` times the gradient of a step j whose predecessors' are all above ``tol``, so the held fit
    stops at j; the profiled fit is then that step's coefficients, in j + 1 steps, its gradient at ``a`` <= ``tol``."""
    x = _x()
    y = np.random.default_rng(11).gamma(2.0, np.exp(_eta(x)) / 2.0)
    r = mj.recipe(mj.models.linear(D).apply, mj.gamma("mean"))
    p0 = r.init({"w": jnp.zeros(D), "b": jnp.zeros(())})
    start = mj.intercept_only(r, y, p0._replace(family={"shape": HELD}))
    design = np.column_stack([np.ones(N), x])

    def coef(p):
        return np.r_[float(p.model["b"]), np.asarray(p.model["w"])]

    def grad(c, a=1.0):
        return np.linalg.norm(a * np.mean((1 - y / np.exp(design @ c))[:, None] * design, axis=0))
    path, norms, shapes = [coef(start)], [grad(coef(start))], [np.nan]
    for j in range(1, 16):  # the first step whose gradient is 3 a under every earlier one's (superlinear: soon)
        path.append(coef(mj.fit(r, start, x, y, optax.lbfgs(), steps=j, run=QUIET).params))
        norms.append(grad(path[j]))
        shapes.append(_gamma_shape_ref(y, np.exp(design @ path[j]), np.ones(N)))
        if 0 < 3 * shapes[j] * norms[j] < min(norms[:j]):
            break
    assert 0 < 3 * shapes[j] * norms[j] < min(norms[:j])
    tol = 2 * shapes[j] * norms[j]
    res = mj.fit(r, p0, x, y, optax.lbfgs(), steps=200, objective=mj.Objective(tol=tol), run=QUIET,
                 start="intercept_only")
    a = float(links.softplus.forward(res.params.family["shape"]))
    assert res.stopped == "converged" and a > 1.5 and grad(coef(res.params), a) <= tol
    assert res.steps_run == j + 1  # the held fit's steps only (a second pass: one more at least)
    np.testing.assert_allclose(coef(res.params), path[j], rtol=1e-12)
