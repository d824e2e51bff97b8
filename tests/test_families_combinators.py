"""mle_jax.families.combinators: censored and independent families."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import optimize, special, stats

import mle_jax as mj
from family_fits import fit_constant


def test_censored_normal_uses_cdf_and_survival():
    family = mj.censored(mj.normal(1.5))
    mu = jnp.float32(0.2)
    for value, side, ref in [(1.0, 0, stats.norm(0.2, 1.5).logpdf(1.0)), (1.0, -1, stats.norm(0.2, 1.5).logcdf(1.0)),
                             (1.0, 1, stats.norm(0.2, 1.5).logsf(1.0)), (40.0, 1, stats.norm(0.2, 1.5).logsf(40.0))]:
        np.testing.assert_allclose(family.log_prob({}, mu, jnp.array([value, side], jnp.float32)), ref, rtol=1e-5)
    np.testing.assert_allclose(mj.log_sf(mj.Laplace(jnp.float32(0.0), jnp.float32(2.0)), jnp.float32(3.0)),
                               stats.laplace(0, 2).logsf(3.0), rtol=1e-6)
    # a Tobit fit: data right-censored at 1.0 still recover the mean and sd of the uncensored Normal
    rng = np.random.default_rng(7)
    latent = rng.normal(0.5, 1.0, size=8000)
    side = (latent > 1.0).astype(np.float32)
    y = np.stack([np.minimum(latent, 1.0), side], axis=1).astype(np.float32)
    r = mj.recipe(lambda p, x_i: p, mj.censored(mj.normal("learned")))
    res = mj.fit(r, r.init(jnp.float32(0.0)), jnp.zeros((8000, 1)), jnp.asarray(y), optax.adam(0.02), steps=3000)
    theta = r.predict(res.params, jnp.zeros((1, 1)))
    np.testing.assert_allclose([theta.loc[0], theta.scale[0]], [latent.mean(), latent.std()], atol=0.03)
    with pytest.raises(ValueError, match="side"):
        r.nll(res.params, jnp.zeros((2, 1)), jnp.array([[0.0, 0.0], [1.0, 2.0]]))


def test_censored_student_t_family():
    family = mj.censored(mj.student_t(4.0, 2.0))
    ref = stats.t(4.0, 0.3, 2.0)
    log_prob = jax.jit(family.log_prob)  # one program for the three sides (op by op: 78 compiles)
    for value, side, want in [(1.0, 0, ref.logpdf(1.0)), (1.0, -1, ref.logcdf(1.0)), (5.0, 1, ref.logsf(5.0))]:
        np.testing.assert_allclose(log_prob({}, jnp.float32(0.3), jnp.array([value, side], jnp.float32)),
                                   want, rtol=1e-4)


def _censored_mle(logpdf, logsf, y, side, start):
    """The censored maximum-likelihood fit by scipy.optimize on scipy.stats' densities (the reference)."""
    def nll(p):
        return -(np.sum(logpdf(y[side == 0], p)) + np.sum(logsf(y[side == 1], p)))
    return optimize.minimize(nll, start, method="Nelder-Mead", options={"xatol": 1e-7, "fatol": 1e-9,
                                                                         "maxiter": 20000}).x


def _right_censored(draws, cut):
    side = (draws > cut).astype(np.float32)
    return np.stack([np.minimum(draws, cut), side], axis=1).astype(np.float32), side


@pytest.mark.deep
def test_censored_beta_is_fittable():
    draws = np.random.default_rng(8).beta(2.0, 5.0, size=500)
    y, side = _right_censored(draws, 0.45)
    r, res = fit_constant(mj.censored(mj.beta()), jnp.zeros(2), y, steps=800, lr=0.05)
    theta = r.predict(res.params, jnp.zeros((1, 1)))
    want = _censored_mle(lambda v, p: stats.beta(*np.exp(p)).logpdf(v), lambda v, p: stats.beta(*np.exp(p)).logsf(v),
                         y[:, 0].astype(np.float64), side, np.log([2.0, 5.0]))
    np.testing.assert_allclose([theta.concentration1[0], theta.concentration0[0]], np.exp(want), rtol=2e-2)


@pytest.mark.deep
def test_censored_student_t_with_learned_df_is_fittable():
    draws = stats.t(4.0, 0.5, 1.3).rvs(size=500, random_state=9)
    y, side = _right_censored(draws, 2.0)
    family = mj.censored(mj.student_t("learned", "learned"))
    r, res = fit_constant(family, jnp.float32(0.0), y, steps=800, lr=0.05)
    theta = r.predict(res.params, jnp.zeros((1, 1)))

    def dist(p):
        return stats.t(np.exp(p[0]), p[1], np.exp(p[2]))
    want = _censored_mle(lambda v, p: dist(p).logpdf(v), lambda v, p: dist(p).logsf(v), y[:, 0].astype(np.float64),
                         side, np.array([np.log(4.0), 0.5, np.log(1.3)]))
    got = [theta.df[0], theta.loc[0], theta.scale[0]]
    np.testing.assert_allclose(got, [np.exp(want[0]), want[1], np.exp(want[2])], rtol=5e-2, atol=1e-2)


def test_censored_rejects_vector_families_and_training_options():
    with pytest.raises(ValueError, match="scalar family"):
        mj.censored(mj.mvn_cholesky(2))
    with pytest.raises(ValueError, match="training-loss options"):
        mj.censored(mj.normal("softplus", beta=0.5))
    with pytest.raises(TypeError, match="must be an mle_jax Family"):
        mj.censored("normal")


def test_independent_sums_the_outputs_and_keeps_the_support():
    family = mj.independent(mj.gamma(), 3)
    assert family.support == mj.gamma().support and family.event_shape == (3,) and family.raw_shape == (3, 2)
    raw = jnp.array([[0.3, -0.2], [1.0, 0.5], [-0.4, 0.1]])
    y = jnp.array([0.5, 1.5, 2.0])
    sp = np.log1p(np.exp(np.asarray(raw, np.float64))) + np.finfo(np.float32).eps
    want = sum(stats.gamma(sp[d, 0], scale=1 / sp[d, 1]).logpdf(float(y[d])) for d in range(3))
    np.testing.assert_allclose(family.log_prob({}, raw, y), want, rtol=1e-5)
    assert family.spec.args[0] == mj.gamma().spec and family.name == "independent(gamma(), 3)"
    r = mj.recipe(lambda p, x_i: p, family)
    with pytest.raises(ValueError, match=r"independent\(gamma\(\), 3\): y \[0\.5, -1\.0, 2\.0\] at index 1 is not > 0"):
        r.nll(r.init(raw), jnp.zeros((2, 1)), jnp.array([[0.5, 1.0, 2.0], [0.5, -1.0, 2.0]]))


def test_censored_targets_are_one_array():
    """(values, sides) as a tuple would be read as a (2, N) array: for N = 2 that passes the shape
    check with rows and columns exchanged. It is refused whatever N is, in the recipe and mj.losses."""
    family = mj.censored(mj.gamma())
    r = mj.recipe(lambda p, x_i: p, family)
    pair = (jnp.array([0.5, 1.0]), jnp.array([1.0, 0.0]))
    with pytest.raises(ValueError, match=r"y is a Python tuple of 2 entries; it must be one array.*jnp.stack"):
        r.nll(r.init(jnp.zeros(2)), jnp.zeros((2, 1)), pair)
    with pytest.raises(ValueError, match=r"y is a Python tuple"):
        mj.losses.censored(jnp.zeros((2, 2)), pair, mj.gamma())
