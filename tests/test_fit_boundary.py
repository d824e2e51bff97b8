"""fit says when a family's own positive parameter ends on its link's floor (``softplus(raw) <= eps``),
where the raw gradient vanishes, instead of "converged": ``stopped == "boundary"`` and a
``BoundaryWarning`` naming the parameter, its value and the floor (mle_jax._floors). The reference for
"not the MLE" is scipy: the Gamma shape's MLE from its score equation ``log a - psi(a) = mean(y/mu -
log(y/mu) - 1)`` and ``scipy.stats.gamma.logpdf``."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import optimize, special, stats

import mle_jax as mj
from family_fits import stopped_and_warned
from mle_jax._floors import on_floor

DTYPES = (jnp.float32, jnp.float64)
NEWTON = mj.newton()  # one object: a dtype's fits run one compiled program
RECIPE = mj.recipe(lambda p, x_i: p["b"], mj.gamma("mean"))  # the intercept-only Gamma GLM
TOL = {jnp.float32: 1e-4, jnp.float64: 1e-9}


def _shape_mle(y, mu):
    """scipy: the Gamma GLM's shape MLE at the means mu, and the log-likelihood there."""
    s = np.mean(y / mu - np.log(y / mu) - 1.0)
    a = optimize.brentq(lambda a: np.log(a) - special.digamma(a) - s, 1e-12, 1e12)
    return a, float(np.sum(stats.gamma.logpdf(y, a, scale=mu / a)))


def _fit(r, params, x, y, opt, steps, tol):
    dtype = jax.tree_util.tree_leaves(params.model)[0].dtype
    return mj.fit(r, params, jnp.asarray(x, dtype), jnp.asarray(y, dtype), opt, steps=steps,
                  objective=mj.Objective(tol=tol), run=mj.Run(progress=False))


@pytest.mark.parametrize("dtype", [jnp.float32, pytest.param(jnp.float64, marks=pytest.mark.deep)],
                         ids=lambda d: d.__name__)
def test_a_fit_that_ends_with_the_shape_on_its_floor_says_boundary_and_one_inside_converges(dtype, x64):
    eps = float(jnp.finfo(dtype).eps)
    y = np.random.default_rng(3).gamma(2.0, 1.5, size=200)
    x = np.zeros((200, 1))
    a_hat, best = _shape_mle(y, np.full_like(y, y.mean()))  # the intercept's MLE is log(mean y)
    start = RECIPE.init({"b": jnp.asarray(np.log(y.mean()), dtype)})

    inside = start._replace(family={"shape": jnp.asarray(0.5, dtype)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a BoundaryWarning would fail the test
        res = _fit(RECIPE, inside, x, y, NEWTON, 20, TOL[dtype])
    assert res.stopped == "converged" and res.message.startswith("converged at step")
    a_fit = float(mj.links.softplus.forward(jnp.asarray(res.params.family["shape"], jnp.float64)))
    assert abs(a_fit - a_hat) <= (1e-3 if dtype == jnp.float32 else 1e-8) * a_hat

    floor = start._replace(family={"shape": jnp.asarray(-80.0, dtype)})  # softplus(-80) = 2e-35: the shape is eps
    with pytest.warns(mj.BoundaryWarning, match=r"shape = .* floor eps = ") as caught:
        res = _fit(RECIPE, floor, x, y, NEWTON, 20, TOL[dtype])
    assert res.stopped == "boundary" and res.stopped is mj.Stop.BOUNDARY  # was "converged": gradient e^-80 / eps
    assert "the loop itself: converged at step" in res.message and f"{eps:.3g}" in res.message
    assert len([w for w in caught if issubclass(w.category, mj.BoundaryWarning)]) == 1
    a_fit = float(mj.links.softplus.forward(res.params.family["shape"]))
    assert a_fit <= 2 * eps
    mu = float(np.exp(np.float64(res.params.model["b"])))
    at_floor = float(np.sum(stats.gamma.logpdf(y, a_fit, scale=mu / a_fit)))
    assert a_hat > 1.0 and best - at_floor > 1000.0  # the floor is far from the MLE (scipy)


def test_on_floor_reads_the_declared_leaves_only_and_only_trained_arrays():
    eps32, eps64 = float(np.finfo(np.float32).eps), float(np.finfo(np.float64).eps)
    at32 = float(np.log(np.expm1(eps32)))  # softplus(at32) = eps32 in float64: on the floor
    fparams = {"scale": np.asarray(at32 - 0.01, np.float32), "df": np.array([0.3, -50.0, 2.0]), "total_count": -60.0,
               "concentration": np.array([[1.0, -800.0]]), "first_cut": np.float64(-90.0), "gaps": np.array([1.0, -37.0]),
               "weights": np.array(-90.0)}
    declared = ("scale", "df", "total_count", "concentration", "gaps")
    found = {f.name: f for f in on_floor(fparams, declared)}
    assert sorted(found) == ["concentration[0, 1]", "df[1]", "gaps[1]", "scale"]  # not weights, not first_cut
    assert found["scale"].floor == eps32 and found["df[1]"].floor == eps64  # the leaf's own dtype
    assert found["df[1]"].value == pytest.approx(np.logaddexp(0.0, -50.0) + eps64, rel=1e-15)
    assert found["concentration[0, 1]"].value == eps64  # softplus(-800) = 0: the floor alone
    assert not on_floor(fparams, ())  # nothing declared, nothing read, whatever the names
    assert not on_floor({"scale": np.asarray(at32 + 0.01, np.float32), "shape": np.float64(np.log(np.expm1(2.01 * eps64)))},
                        ("scale", "shape"))
    assert not on_floor(None, ("scale",)) and not on_floor({"shape": np.array(np.nan)}, ("shape",))  # said by fit's guard


@pytest.mark.deep
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_newton_from_far_from_the_optimum_says_boundary_on_the_floor_and_converged_only_at_the_mle(dtype, x64):
    """The report's case: targets of 1e30, Newton from coefficients of 0.2. Where it takes the shape to its floor
    while the intercept climbs towards log 1e30 (the shape's own optimum at a mean 1e30 too small is below eps),
    the fit says "boundary" with a ``BoundaryWarning``; the old code reported "converged" (float64) at a
    log-likelihood about 7000 below the MLE's (statsmodels' coefficients, the shape profiled by scipy). Which of
    the two ends Newton's path reaches depends on the Hessian's last roundings (the float32 path reaches the MLE
    since the Gram is formed as Z'Z), so the promise tested is: "converged" only at the MLE, "boundary" (and its
    warning) only on the floor, and nothing else."""
    import statsmodels.api as sm
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = rng.gamma(2.0, np.exp(x @ (rng.normal(size=3) * 0.5 / np.sqrt(3)) + 0.3) / 2.0) * 1e30
    r = mj.recipe(mj.models.linear(3, dtype=dtype).apply, mj.gamma("mean"))
    start = r.init({"w": jnp.full(3, 0.2, dtype), "b": jnp.asarray(0.2, dtype)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        newton = _fit(r, start, x, y, mj.newton(), 100, TOL[dtype])
    warned = [w for w in caught if issubclass(w.category, mj.BoundaryWarning)]
    a = float(mj.links.softplus.forward(jnp.asarray(newton.params.family["shape"], jnp.float64)))
    design = np.column_stack([np.ones(len(y)), x])
    glm = sm.GLM(y, design, family=sm.families.Gamma(sm.families.links.Log())).fit()
    _, best = _shape_mle(y, np.exp(design @ glm.params))
    eta = design @ np.concatenate([[float(newton.params.model["b"])], np.asarray(newton.params.model["w"], float)])
    u = np.log(y) - eta  # log(y / mu), the Gamma log density in closed form at the fitted (a, eta)
    at_fit = float(np.sum(a * np.log(a) + a * u - a * np.exp(u) - np.log(y) - special.gammaln(a)))
    assert newton.stopped in ("boundary", "converged")
    if newton.stopped == "boundary":
        assert len(warned) == 1 and "shape = " in str(warned[0].message)
        assert a <= 2 * float(jnp.finfo(dtype).eps)
        assert best - at_fit > 1000.0
    else:
        assert not warned
        assert abs(best - at_fit) < (1e-6 if dtype == jnp.float32 else 1e-9) * abs(best)  # the MLE, to the dtype


def test_a_family_of_the_users_names_its_leaves_freely_and_is_not_read(x64):
    """``mj.family`` with ``scale = exp(raw)``: raw -39 is sigma = e^-39 = 1.2e-17 (the data's), with d log sigma / d raw
    = 1: no floor, so no boundary; the built-in normal's learned scale at the same raw (softplus(-39) < eps) is."""
    from mle_jax.distributions import Normal

    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 1))
    y = 2 * x[:, 0] + np.exp(-39.0) * rng.normal(size=50)
    own = mj.family("expscalenormal", theta=lambda fp, raw: Normal(raw, jnp.exp(fp["scale"])),
                    init={"scale": jnp.asarray(-39.0)})
    builtin = mj.normal(scale="learned")
    for fam, want in ((own, "completed"), (builtin, "boundary")):
        r = mj.recipe(lambda p, x_i: x_i @ p["w"], fam)
        p = r.init({"w": jnp.array([2.0])})._replace(family={"scale": jnp.asarray(-39.0)})
        assert stopped_and_warned(r, p, x, y) == (want, int(want == "boundary"))
