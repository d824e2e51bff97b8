"""``mj.intercept_only`` (a GLM's start at the intercept-only MLE) and ``mj.family_mle`` (the family
parameters' MLE given the model's): against statsmodels' intercept-only GLMs, scipy.stats' Gamma fit,
mpmath's root of ``log a - psi(a) = s``, and statsmodels' full GLM fits reached from the start."""

import jax.numpy as jnp
import mpmath
import numpy as np
import optax
import pytest
import statsmodels.api as sm
from scipy import optimize, special, stats

import mle_jax as mj
from mle_jax import links
from mle_jax.glm_start import gamma_shape

N, D = 400, 3


def _data(kind, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, D))
    eta = 0.3 + x @ np.array([0.4, -0.3, 0.2])
    if kind == "poisson":
        return x, rng.poisson(np.exp(eta)).astype(float)
    if kind == "bernoulli":
        return x, (rng.uniform(size=N) < 1 / (1 + np.exp(-eta))).astype(float)
    if kind == "binomial":
        n = 1 + rng.poisson(3.0, size=N)
        return x, np.column_stack([rng.binomial(n, 1 / (1 + np.exp(-eta))), n]).astype(float)
    if kind == "negative_binomial":
        return x, rng.negative_binomial(2.0, 2.0 / (2.0 + np.exp(eta))).astype(float)
    if kind == "gamma":
        return x, rng.gamma(2.5, np.exp(eta) / 2.5)
    return x, eta + rng.normal(size=N) * 0.7


def _sm_family(kind):
    f = sm.families
    return {"poisson": f.Poisson(), "bernoulli": f.Binomial(), "binomial": f.Binomial(),
            "negative_binomial": f.NegativeBinomial(alpha=0.5), "gamma": f.Gamma(f.links.Log()),
            "normal": f.Gaussian()}[kind]


def _family(kind):
    return {"poisson": mj.poisson(), "bernoulli": mj.bernoulli(), "binomial": mj.binomial(),
            "negative_binomial": mj.negative_binomial(), "gamma": mj.gamma("mean"),
            "normal": mj.normal(scale="learned")}[kind]


def _endog(kind, y):
    return np.column_stack([y[:, 0], y[:, 1] - y[:, 0]]) if kind == "binomial" else y


@pytest.mark.parametrize("s", [1e-6, 1e-3, 0.05, 0.7, 3.0, 40.0, 1e3])
def test_gamma_shape_solves_log_a_minus_digamma(x64, s):
    mpmath.mp.dps = 40
    ref = mpmath.findroot(lambda a: mpmath.log(a) - mpmath.digamma(a) - s, float(gamma_shape(jnp.float64(s))))
    assert abs(float(gamma_shape(jnp.float64(s))) / float(ref) - 1) < 1e-12
    assert abs(float(gamma_shape(jnp.float32(s))) / float(ref) - 1) < 1e-5


@pytest.mark.parametrize("kind", ["poisson", "bernoulli", "binomial", "negative_binomial", "gamma", "normal"])
def test_the_start_is_statsmodels_intercept_only_mle(x64, kind):
    _, y = _data(kind)
    r = mj.recipe(mj.models.linear(D).apply, _family(kind))
    p = mj.intercept_only(r, jnp.asarray(y))
    b = sm.GLM(_endog(kind, y), np.ones((N, 1)), family=_sm_family(kind)).fit(tol=1e-12).params[0]
    assert abs(float(p.model["b"]) - b) < 1e-9 * max(1.0, abs(b))
    np.testing.assert_array_equal(np.asarray(p.model["w"]), np.zeros(D))
    if kind == "gamma":  # the shape: scipy's Gamma MLE (loc 0), whose mean a * scale is mean(y)
        a, _, _ = stats.gamma.fit(y, floc=0)
        assert abs(float(links.softplus.forward(p.family["shape"])) / a - 1) < 1e-6
    if kind == "normal":
        assert abs(float(links.softplus.forward(p.family["scale"])) / np.std(y) - 1) < 1e-12


def test_targets_from_a_list_or_a_series_give_the_same_start(x64):
    pd = pytest.importorskip("pandas")
    _, y = _data("poisson")
    r = mj.recipe(mj.models.linear(D).apply, mj.poisson())
    want = float(mj.intercept_only(r, y).model["b"])
    for same in (list(y), pd.Series(y)):
        assert float(mj.intercept_only(r, same).model["b"]) == want


def test_a_fixed_family_parameter_is_kept_and_float32_follows_params():
    _, y = _data("gamma")
    r = mj.recipe(mj.models.linear(D).apply, mj.gamma("mean"))
    p = r.init({"w": jnp.zeros(D), "b": jnp.zeros(())})._replace(family={"shape": 1.0})
    out = mj.intercept_only(r, y, p)
    assert out.family == {"shape": 1.0} and out.model["b"].dtype == jnp.float32
    assert abs(float(out.model["b"]) - np.log(np.mean(y))) < 1e-6


def _profiled_gamma_fit(optimizer):
    """Coefficients with the shape fixed (a static 1.0), from the intercept-only start, then the shape's MLE."""
    x, y = _data("gamma")
    r = mj.recipe(mj.models.linear(D).apply, mj.gamma("mean"))
    p0 = r.init({"w": jnp.zeros(D), "b": jnp.zeros(())})
    start = mj.intercept_only(r, y, p0._replace(family={"shape": 1.0}))
    res = mj.fit(r, start, x, y, optimizer, steps=200, objective=mj.Objective(tol=1e-11), run=mj.Run(progress=False))
    return x, y, r, p0, mj.family_mle(r, res.params, x, y)


def _gamma_loglik(x, y, q):
    a, mu = float(links.softplus.forward(q.family["shape"])), np.exp(x @ np.asarray(q.model["w"]) + float(q.model["b"]))
    return np.sum(stats.gamma.logpdf(y, a, scale=mu / a)), a


def test_the_profiled_gamma_fit_reaches_statsmodels_mle(x64):
    """statsmodels' coefficients; the shape: scipy's root of the shape's score at statsmodels' means."""
    x, y, _, _, p = _profiled_gamma_fit(mj.newton())
    ref = sm.GLM(y, sm.add_constant(x), family=_sm_family("gamma")).fit(tol=1e-12).params
    np.testing.assert_allclose(np.r_[float(p.model["b"]), np.asarray(p.model["w"])], ref, rtol=1e-6, atol=1e-8)
    mu = np.exp(sm.add_constant(x) @ ref)
    s = np.mean(y / mu - np.log(y / mu) - 1)
    a_ref = optimize.brentq(lambda a: np.log(a) - special.digamma(a) - s, 1e-3, 1e3, xtol=1e-14)
    assert abs(float(links.softplus.forward(p.family["shape"])) / a_ref - 1) < 1e-8
    assert isinstance(p.family["shape"], jnp.ndarray)  # learnable again


@pytest.mark.deep
@pytest.mark.parametrize("optimizer", [mj.newton, optax.lbfgs])
def test_the_profiled_gamma_fit_is_the_joint_mle(x64, optimizer):
    """The profiled fit's log-likelihood (scipy.stats) is a joint Newton fit's from zero, its shape too."""
    x, y, r, p0, p = _profiled_gamma_fit(optimizer())
    joint = mj.fit(r, p0, x, y, mj.newton(), steps=200, objective=mj.Objective(tol=1e-11), run=mj.Run(progress=False))
    (ll, a), (ll_joint, a_joint) = _gamma_loglik(x, y, p), _gamma_loglik(x, y, joint.params)
    assert abs(ll - ll_joint) < 1e-10 * abs(ll_joint) and abs(a / a_joint - 1) < 1e-6


@pytest.mark.deep
@pytest.mark.parametrize("kind", ["poisson", "binomial"])
def test_a_newton_fit_from_the_start_reaches_statsmodels(x64, kind):
    x, y = _data(kind)
    r = mj.recipe(mj.models.linear(D).apply, _family(kind))
    res = mj.fit(r, mj.intercept_only(r, y), x, y, mj.newton(), steps=50, objective=mj.Objective(tol=1e-11),
                 run=mj.Run(progress=False))
    ref = sm.GLM(_endog(kind, y), sm.add_constant(x), family=_sm_family(kind)).fit(tol=1e-12).params
    np.testing.assert_allclose(np.r_[float(res.params.model["b"]), np.asarray(res.params.model["w"])], ref,
                               rtol=1e-7, atol=1e-9)


def test_family_mle_normal_sigma_and_families_without_parameters(x64):
    x, y = _data("normal")
    r = mj.recipe(mj.models.linear(D).apply, mj.normal(scale="learned"))
    p = r.init({"w": jnp.array([0.4, -0.3, 0.2]), "b": jnp.float64(0.3)})
    out = mj.family_mle(r, p, x, y)
    resid = y - (x @ np.array([0.4, -0.3, 0.2]) + 0.3)
    assert abs(float(links.softplus.forward(out.family["scale"])) / np.sqrt(np.mean(resid ** 2)) - 1) < 1e-12
    rp = mj.recipe(mj.models.linear(D).apply, mj.poisson())
    q = rp.init({"w": jnp.zeros(D), "b": jnp.zeros(())})
    assert mj.family_mle(rp, q, x, y) is q


def test_bad_inputs_are_named():
    r = mj.recipe(mj.models.linear(D).apply, mj.poisson())
    with pytest.raises(ValueError, match="boundary"):
        mj.intercept_only(r, np.zeros(10))
    with pytest.raises(ValueError, match="y must have shape"):
        mj.intercept_only(r, np.ones((10, 1)))
    with pytest.raises(ValueError, match="nonnegative|support|integer|count"):
        mj.intercept_only(r, np.array([1.0, -2.0]))
    with pytest.raises(ValueError, match="mj.models.linear"):
        mj.intercept_only(mj.recipe(lambda p, x_i: x_i @ p["w"] + p["b"], mj.poisson()), np.ones(10))
    with pytest.raises(ValueError, match="mj.models.linear"):
        mj.intercept_only(mj.recipe(mj.models.linear(D, (3,)).apply, mj.categorical(2)), np.ones(10))
    with pytest.raises(ValueError, match="supported"):
        mj.intercept_only(mj.recipe(mj.models.linear(D).apply, mj.student_t()), np.ones(10))
    with pytest.raises(ValueError, match="boundary"):
        mj.intercept_only(mj.recipe(mj.models.linear(D).apply, mj.bernoulli()), np.ones(10))
    for family in (mj.gamma("mean"), mj.normal(scale="learned")):  # every y its mean: shape inf, sigma 0
        with pytest.raises(ValueError, match="not a positive number"):
            mj.intercept_only(mj.recipe(mj.models.linear(D).apply, family), np.full(10, 2.0))


def test_a_numpy_scalar_family_parameter_is_trained_as_fit_trains_it(x64):
    """``fit`` trains a NumPy scalar (``is_trained``): the start sets it to its MLE (scipy's Gamma fit) like an array,
    where it was kept as if fixed; only a Python number is kept."""
    _, y = _data("gamma")
    r = mj.recipe(mj.models.linear(D).apply, mj.gamma("mean"))
    p0 = r.init({"w": jnp.zeros(D), "b": jnp.zeros(())})
    a_ref = stats.gamma.fit(y, floc=0)[0]
    for leaf in (np.float64(0.5), np.float32(0.5), jnp.asarray(0.5)):
        out = mj.intercept_only(r, y, p0._replace(family={"shape": leaf}))
        assert abs(float(links.softplus.forward(out.family["shape"])) / a_ref - 1) < 1e-5
    assert mj.intercept_only(r, y, p0._replace(family={"shape": 0.5})).family == {"shape": 0.5}


@pytest.mark.parametrize("scale, cv", [(1e20, 1e-3), (1e30, 1e-2), (1e-30, 1e-2)])
def test_float32_shape_given_a_far_mean_is_its_mle(scale, cv):
    """float32 targets far from 1 with a large shape: ``s = mean(y/mu - 1 - log(y/mu))`` from ``log(y e^{-b})``, not
    ``log y - b`` (``eps |log y|`` = 3e-6 each at 1e20: the shape 2e-4 off at cv 1e-3). Reference: mpmath's ``s`` for
    the same float32 y and the returned b, and its root."""
    r = mj.recipe(mj.models.linear(D).apply, mj.gamma("mean"))
    p0 = r.init({"w": jnp.zeros(D, jnp.float32), "b": jnp.zeros((), jnp.float32)})
    mpmath.mp.dps = 40
    for seed in range(3):
        y = (scale * (1 + cv * np.random.default_rng(seed).standard_normal(50))).astype(np.float32)
        out = mj.intercept_only(r, y, p0)
        mu = mpmath.exp(mpmath.mpf(float(out.model["b"])))
        s = sum(v / mu - 1 - mpmath.log(v / mu) for v in map(mpmath.mpf, y.astype(float))) / len(y)
        ref = mpmath.findroot(lambda a: mpmath.log(a) - mpmath.digamma(a) - s, 1 / (2 * s))
        assert abs(float(links.softplus.forward(out.family["shape"])) / float(ref) - 1) < 3e-5


@pytest.mark.deep  # 2 s (two float32 starts compiled for float64 y): README's suite is at its limit
def test_float64_targets_outside_float32_params_range_name_the_dtype(x64):
    """float32 params, float64 y: the start is computed in float32, so a y above ``finfo(float32).max`` (inf when
    cast) or a nonzero y below its smallest subnormal (0 when cast) is a ValueError naming the dtype and its range,
    not "on the boundary" / "every y equals its fitted mean" (what the cast values said). Reference: numpy's
    float32 range; a float64 y inside it gives the float32 y's start."""
    r = mj.recipe(mj.models.linear(1, dtype=jnp.float32).apply, mj.gamma("mean"))
    p0 = r.init({"w": jnp.zeros(1, jnp.float32), "b": jnp.zeros((), jnp.float32)})
    big = float(np.finfo(np.float32).max) * 1.5
    small = float(np.finfo(np.float32).smallest_subnormal) / 4
    x = jnp.zeros((3, 1), jnp.float32)
    for y in ([1.0, 2.0, big], [small, 2e-3, 5e-3]):
        y = jnp.asarray(np.array(y))
        with pytest.raises(ValueError, match=r"intercept_only: y\[.\] = .* \(float64\) is outside the range of the "
                                             r"parameters' dtype float32 \(magnitudes up to 3\.403e\+38"):
            mj.intercept_only(r, y, p0)
        with pytest.raises(ValueError, match=r"family_mle: .* outside the range of the parameters' dtype float32"):
            mj.family_mle(r, p0, x, y)
    inside = np.array([1e30, 2e30, 3e30])
    a = mj.intercept_only(r, jnp.asarray(inside), p0)
    b = mj.intercept_only(r, jnp.asarray(inside, jnp.float32), p0)
    assert a.family["shape"].dtype == jnp.float32 and float(a.family["shape"]) == float(b.family["shape"])
