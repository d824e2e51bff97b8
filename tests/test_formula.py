"""mj.formula against statsmodels' formula GLMs (smf.glm) on statsmodels' shipped data sets.

Each case is checked twice: in the suite at statsmodels' estimate (our summed NLL's gradient is ~0
there, and our standard errors and log-likelihood equal statsmodels'), and in the deep phase by a
fit from ``d.init()`` whose coefficients equal statsmodels'. A learned Normal scale and a Gamma
shape are MLEs here; statsmodels divides by N - p (Gaussian) or uses Pearson's chi^2 (Gamma), so
their standard errors are rescaled by the ratio of the two scales, and the Gamma log-likelihood is
compared with scipy's at the shape's MLE (the root of log a - psi(a) = mean(y/mu - log(y/mu) - 1)).
"""

import re
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
import pytest
import scipy.optimize
import scipy.special
import scipy.stats
import statsmodels.api as sm
import statsmodels.formula.api as smf

import mle_jax as mj


class Case(NamedTuple):
    name: str
    data: Callable[[], pd.DataFrame]
    spec: str
    family: Callable[[], mj.Family]
    reference: Any  # statsmodels' family
    options: dict  # mj.formula's offset / weights
    sm_options: Callable[[pd.DataFrame], dict]  # the same for smf.glm
    cov: str = "observed"


def _fair():
    return sm.datasets.fair.load_pandas().data.iloc[:800]


CASES = [
    Case("poisson offset", lambda: sm.datasets.committee.load_pandas().data,
         "BILLS104 ~ np.log(STAFF) + PRESTIGE + SUBS", mj.poisson, sm.families.Poisson(),
         {"offset": "np.log(SIZE)"}, lambda d: {"exposure": d["SIZE"]}),
    Case("poisson weights", lambda: sm.datasets.cpunish.load_pandas().data,
         "EXECUTIONS ~ np.log(INCOME) + PERPOVERTY + C(SOUTH)", mj.poisson, sm.families.Poisson(),
         {"weights": "DEGREE"}, lambda d: {"freq_weights": d["DEGREE"]}),
    Case("binomial interaction", lambda: sm.datasets.star98.load_pandas().data,
         "NABOVE + NBELOW ~ LOWINC + PERASIAN + PERBLACK + PERHISP + PCTCHRT * PCTYRRND", mj.binomial,
         sm.families.Binomial(), {}, lambda d: {}),
    Case("logit categorical", lambda: sm.datasets.spector.load_pandas().data,
         "GRADE ~ GPA + TUCE + C(PSI)", mj.bernoulli, sm.families.Binomial(), {}, lambda d: {}),
    Case("gaussian categorical interaction", _fair,
         "rate_marriage ~ I(age / 10) * C(religious) + np.log(yrs_married)", lambda: mj.normal(scale="learned"),
         sm.families.Gaussian(), {}, lambda d: {}),
    Case("gamma log mean", lambda: sm.datasets.scotland.load_pandas().data,
         "YES ~ center(COUTAX / 100) + center(UNEMPF) + center(AGE)", lambda: mj.gamma("mean"),
         sm.families.Gamma(sm.families.links.Log()), {}, lambda d: {}, cov="expected"),
]
IDS = [c.name for c in CASES]
QUICK = {"poisson offset", "logit categorical"}  # in the suite; the other cases in the deep phase
AT_REFERENCE = [c if c.name in QUICK else pytest.param(c, marks=pytest.mark.deep) for c in CASES]


def _key(name: str) -> frozenset:
    """formulaic and patsy order an interaction's factors differently: compare them as sets."""
    return frozenset(name.replace(" ", "").split(":"))


def _reference(case: Case, d):
    data = case.data()
    ref = smf.glm(case.spec, data, family=case.reference, **case.sm_options(data)).fit(tol=1e-13)
    by_key = {_key(n): i for i, n in enumerate(ref.params.index)}
    order = [by_key[_key(n)] for n in d.names]
    return ref, np.asarray(ref.params)[order], np.asarray(ref.bse)[order]


def _family_at_reference(case: Case, d, ref):
    """The family's own parameter at its MLE given statsmodels' mean, and the scale ratio of the SEs."""
    n, p = len(d.y), len(d.names)
    if case.reference.__class__.__name__ == "Gaussian":
        sigma = np.sqrt(np.sum(ref.resid_response ** 2) / n)
        return {"scale": mj.links.softplus.inverse(jnp.float64(sigma))}, np.sqrt(n / (n - p)), None
    if case.reference.__class__.__name__ == "Gamma":
        mu, y = np.asarray(ref.mu), d.y
        target = np.mean(y / mu - np.log(y / mu) - 1.0)
        a = scipy.optimize.brentq(lambda a: np.log(a) - scipy.special.digamma(a) - target, 1e-6, 1e9, xtol=1e-14)
        loglik = float(np.sum(scipy.stats.gamma.logpdf(y, a, scale=mu / a)))
        return {"shape": mj.links.softplus.inverse(jnp.float64(a))}, np.sqrt(a * ref.scale), loglik
    return {}, 1.0, None


@pytest.mark.parametrize("case", AT_REFERENCE, ids=IDS)
def test_statsmodels_estimate_is_our_mle_with_its_standard_errors(case):
    with jax.enable_x64(True):
        d = mj.formula(case.spec, case.data(), case.family(), **case.options)
        ref, coef, bse = _reference(case, d)
        family, se_ratio, loglik = _family_at_reference(case, d, ref)
        params = mj.Params({"coef": jnp.asarray(coef)}, family)
        grad = jax.jit(jax.grad(lambda p: d.recipe.reduce(p, d.x, d.y, d.weights)))(params)
        scale = np.abs(np.asarray(d.x["design"] if isinstance(d.x, dict) else d.x)).max(axis=0)
        assert np.all(np.abs(np.asarray(grad.model["coef"])) / scale < 1e-6 * len(d.y))
        s = mj.inference(d.recipe, params, d.x, d.y, case.cov, weights=d.weights)
    p = len(d.names)
    assert s.names[:p] == d.names  # rows named by the design's columns
    np.testing.assert_allclose(np.sqrt(s.variance[:p]) * se_ratio, bse, rtol=1e-6)
    np.testing.assert_allclose(s.loglik, ref.llf if loglik is None else loglik, rtol=1e-10)


@pytest.mark.deep
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_fit_from_zero_finds_statsmodels_coefficients(case):
    with jax.enable_x64(True):
        d = mj.formula(case.spec, case.data(), case.family(), **case.options)
        ref, coef, bse = _reference(case, d)
        f = mj.fit(d.recipe, d.init(), d.x, d.y, optax.lbfgs(), steps=400, weights=d.weights,
                   objective=mj.Objective(reduction="sum", tol=1e-9))
    assert f.stopped == mj.Stop.CONVERGED, f.message
    np.testing.assert_allclose(np.asarray(f.params.model["coef"]), coef, rtol=0, atol=1e-5 * bse.max())


def test_predictions_for_new_frames_equal_statsmodels():
    data = _fair()
    spec = "rate_marriage ~ I(age / 10) * C(religious) + np.log(yrs_married)"
    fitted, new = data.iloc[:600], data.iloc[600:].sample(20, random_state=0)
    with jax.enable_x64(True):
        d = mj.formula(spec, fitted, mj.normal(scale="learned"))
        ref = smf.ols(spec, fitted).fit()
        by_key = {_key(n): v for n, v in ref.params.items()}
        params = d.recipe.init({"coef": jnp.asarray([by_key[_key(n)] for n in d.names])})
        mean = d.recipe.predict(params, d.x_for(new)).loc
    np.testing.assert_allclose(mean, ref.predict(new), rtol=1e-12)


def test_offset_travels_with_x():
    """The offset is read from new rows as it was from the fitted ones, and cut with x into minibatches."""
    data = sm.datasets.committee.load_pandas().data
    d = mj.formula("BILLS104 ~ np.log(STAFF) + PRESTIGE", data, mj.poisson(), offset="np.log(SIZE)")
    assert set(d.x) == {"design", "offset"}
    np.testing.assert_allclose(d.offset, np.log(data["SIZE"]))
    coef = np.array([1.0, -0.1, 0.2])
    params = d.recipe.init({"coef": jnp.asarray(coef, jnp.float32)})
    rows = data.iloc[[3, 7, 11]]
    rate = np.exp(d.x_for(rows)["design"] @ coef + np.log(rows["SIZE"].to_numpy()))
    np.testing.assert_allclose(np.exp(d.recipe.predict(params, d.x_for(rows)).log_rate), rate, rtol=1e-5)
    batch = jax.tree.map(lambda a: a[np.array([3, 7, 11])], d.x)  # what a minibatch of x is
    np.testing.assert_allclose(d.recipe.log_prob(params, batch, d.y[[3, 7, 11]]),
                               scipy.stats.poisson.logpmf(rows["BILLS104"], rate), rtol=1e-5)
    arrays = d.recipe.init({"coef": jnp.zeros(3)})
    with pytest.raises(ValueError, match="this design has no offset"):
        mj.formula("BILLS104 ~ PRESTIGE", data, mj.poisson()).x_for(data, offset=np.zeros(len(data)))
    given = mj.formula("BILLS104 ~ np.log(STAFF) + PRESTIGE", data, mj.poisson(), offset=np.log(data["SIZE"]))
    np.testing.assert_array_equal(given.recipe.nll(arrays, given.x, given.y), d.recipe.nll(arrays, d.x, d.y))
    with pytest.raises(ValueError, match=re.escape("pass the new rows' offset: d.x_for(data, offset=...)")):
        given.x_for(rows)


def test_what_a_formula_refuses_is_named():
    data = _fair()
    d = mj.formula("rate_marriage ~ age + C(religious)", data, mj.normal(scale="learned"))
    unseen = pd.DataFrame({"age": [30.0, 40.0], "religious": [7.0, 2.0]})
    with pytest.raises(ValueError, match=re.escape("levels the design never saw, C(religious): 7.0 (fitted levels: "
                                                   "1.0, 2.0, 3.0, 4.0)")):
        d.x_for(unseen)
    missing = data.head(10).assign(age=[np.nan] + [30.0] * 9)
    with pytest.raises(ValueError, match="`age` contains null values"):
        mj.formula("rate_marriage ~ age", missing, mj.normal(scale="learned"))
    with pytest.raises(ValueError, match=re.escape("the left-hand side gives 2 columns")):
        mj.formula("rate_marriage + age ~ educ", data, mj.poisson())
    with pytest.raises(ValueError, match="formula: .*nonexistent"):
        mj.formula("rate_marriage ~ nonexistent", data, mj.poisson())
    with pytest.raises(ValueError, match="must be a formula string"):
        mj.formula("rate_marriage", data, mj.poisson())
    with pytest.raises(ValueError, match=re.escape("offset must have one value per row, shape (800,)")):
        mj.formula("rate_marriage ~ age", data, mj.poisson(), offset=np.zeros(3))


@pytest.mark.deep
def test_minibatches_cut_the_offset_with_the_design():
    """Minibatches of a design with an offset: the first epoch's losses are those of the shuffled
    slices of rows, each with its own offset (scipy's Poisson at exp(x_i' beta + o_i))."""
    data = sm.datasets.committee.load_pandas().data
    d = mj.formula("BILLS104 ~ np.log(STAFF) + PRESTIGE", data, mj.poisson(), offset="np.log(SIZE)")
    coef = np.array([1.0, -0.1, 0.2])
    f = mj.fit(d.recipe, d.recipe.init({"coef": jnp.asarray(coef, jnp.float32)}), d.x, d.y, optax.sgd(0.0),
               steps=mj.Minibatches(5, epochs=1), key=jax.random.key(0))
    rate = np.exp(d.x["design"] @ coef + d.offset)
    terms = -scipy.stats.poisson.logpmf(d.y, rate)
    assert f.steps_run == 4
    # with a zero learning rate every step sees the same params: the 4 batch means average to the full mean
    np.testing.assert_allclose(np.mean(f.history), np.mean(terms), rtol=1e-5)


def test_polars_frames_and_dicts_give_the_pandas_design():
    import polars as pl

    data = sm.datasets.spector.load_pandas().data
    spec = "GRADE ~ GPA + np.log(TUCE) + C(PSI)"
    want = mj.formula(spec, data, mj.bernoulli())
    for other in (pl.DataFrame({c: data[c].to_numpy() for c in data.columns}),
                  {c: data[c].to_numpy() for c in data.columns}):
        d = mj.formula(spec, other, mj.bernoulli())
        assert d.names == want.names == ("Intercept", "GPA", "np.log(TUCE)", "C(PSI)[T.1.0]")
        np.testing.assert_array_equal(d.x, want.x)
        np.testing.assert_array_equal(d.y, want.y)
        np.testing.assert_array_equal(d.x_for(other), want.x)
