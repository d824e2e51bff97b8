"""Full covariances, ordered categories, censored observations, label smoothing and class weights."""


import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import special, stats

import mle_jax as mj


def _mvn(seed=0, d=3):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(d, d))
    cov = a @ a.T + d * np.eye(d)
    return rng.normal(size=d), cov


def test_multivariate_normal_against_scipy():
    loc, cov = _mvn()
    theta = mj.MultivariateNormal(jnp.asarray(loc, jnp.float32), jnp.asarray(np.linalg.cholesky(cov), jnp.float32))
    ref = stats.multivariate_normal(loc, cov)
    rng = np.random.default_rng(1)
    for y in [loc, loc + 3.0, rng.normal(size=3) * 10]:
        np.testing.assert_allclose(mj.log_prob(theta, jnp.asarray(y, jnp.float32)), ref.logpdf(y), rtol=1e-5)
    np.testing.assert_allclose(mj.entropy(theta), ref.entropy(), rtol=1e-5)
    keys = jax.random.split(jax.random.PRNGKey(0), 20000)
    draws = np.asarray(jax.vmap(mj.sample, (0, None))(keys, theta), np.float64)
    np.testing.assert_allclose(np.cov(draws.T), cov, rtol=0.06, atol=0.1)
    loc2, cov2 = _mvn(seed=5)
    q = mj.MultivariateNormal(jnp.asarray(loc2, jnp.float32), jnp.asarray(np.linalg.cholesky(cov2), jnp.float32))
    inv2 = np.linalg.inv(cov2)
    closed = 0.5 * (np.trace(inv2 @ cov) + (loc2 - loc) @ inv2 @ (loc2 - loc) - 3
                    + np.linalg.slogdet(cov2)[1] - np.linalg.slogdet(cov)[1])
    np.testing.assert_allclose(mj.kl(theta, q), closed, rtol=1e-5)
    estimate, se = mj.kl_mc(jax.random.PRNGKey(2), theta, q, 20000)
    assert abs(float(estimate) - closed) < 4 * float(se)


def test_mvn_cholesky_family_recovers_a_covariance():
    loc, cov = _mvn(seed=3, d=2)
    rng = np.random.default_rng(4)
    y = rng.multivariate_normal(loc, cov, size=5000).astype(np.float32)
    family = mj.mvn_cholesky(2)
    assert family.raw_shape == (5,)
    r = mj.recipe(lambda p, x_i: p, family)
    res = mj.fit(r, r.init(jnp.zeros(5)), jnp.zeros((5000, 1)), jnp.asarray(y), optax.adam(0.05), steps=3000)
    theta = r.predict(res.params, jnp.zeros((1, 1)))
    fitted = np.asarray(theta.scale_tril[0] @ theta.scale_tril[0].T)
    np.testing.assert_allclose(theta.loc[0], y.mean(axis=0), atol=2e-3)
    np.testing.assert_allclose(fitted, np.cov(y.T, bias=True), rtol=2e-3, atol=2e-3)


def test_ordinal_probabilities_and_fit_against_statsmodels():
    from statsmodels.miscmodels.ordinal_model import OrderedModel
    family = mj.ordinal(4)
    fp = family.init(jnp.float32)
    theta = family.theta(fp, jnp.float32(0.4))
    cuts = np.asarray(fp["first_cut"]) + np.concatenate([[0.0], np.cumsum(np.log1p(np.exp(np.asarray(fp["gaps"]))))])
    cdf = np.concatenate([[0.0], special.expit(cuts - 0.4), [1.0]])
    np.testing.assert_allclose(mj.probs(theta), np.diff(cdf), rtol=1e-5)
    # a proportional-odds regression, against statsmodels' OrderedModel (logit)
    rng = np.random.default_rng(6)
    x = rng.normal(size=2000)
    latent = 1.3 * x + rng.logistic(size=2000)
    y = np.digitize(latent, [-1.0, 0.5, 2.0]).astype(np.int32)
    ref = OrderedModel(y, x[:, None], distr="logit").fit(method="bfgs", disp=0, maxiter=2000)
    with jax.enable_x64(True):
        r = mj.recipe(lambda p, x_i: p * x_i[0], family)
        res = mj.fit(r, r.init(jnp.float64(0.0)), jnp.asarray(x[:, None]), jnp.asarray(y), optax.lbfgs(),
                     steps=200, tol=1e-10)
        loglik = -float(r.nll(res.params, jnp.asarray(x[:, None]), jnp.asarray(y)))
    assert abs(loglik - ref.llf) <= 1e-6 * abs(ref.llf)
    np.testing.assert_allclose(float(res.params.model), ref.params[0], rtol=1e-4)


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


def test_label_smoothing_and_class_weights_in_one_reduction():
    logits = jnp.array([0.2, 0.1, -0.3])
    r = mj.recipe(lambda p, x_i: p, mj.categorical(3, label_smoothing=0.1, class_weights=[1.0, 2.0, 0.5]))
    params = r.init(logits)
    x, y = jnp.zeros((4, 1)), jnp.array([0, 1, 2, 1])
    w, m = jnp.array([1.0, 0.5, 2.0, 1.0]), jnp.array([True, True, True, False])
    log_p = np.log(special.softmax(np.asarray(logits, np.float64)))
    per = [-(0.9 * log_p[k] + 0.1 * log_p.mean()) for k in np.asarray(y)]
    cw = np.array([1.0, 2.0, 0.5])[np.asarray(y)]
    used = np.asarray(w) * cw * np.asarray(m)
    np.testing.assert_allclose(r.loss(params, x, y, weights=w, mask=m), np.sum(used * per) / np.sum(used), rtol=1e-6)
    np.testing.assert_allclose(r.loss(params, x, y, reduction="sum", weights=w, mask=m), np.sum(used * per), rtol=1e-6)
    # the NLL is untouched by training-loss options
    np.testing.assert_allclose(r.nll(params, x, y), -np.sum(log_p[np.asarray(y)]), rtol=1e-6)
    with pytest.raises(ValueError, match="class_weights"):
        mj.categorical(3, class_weights=[1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match="label_smoothing"):
        mj.categorical(3, label_smoothing=1.0)
    with pytest.raises(ValueError, match="independent"):
        mj.independent(mj.categorical(3, class_weights=[1, 1, 1]), 2)


@pytest.mark.parametrize("theta, ref, grid", [
    (mj.StudentT(jnp.float32(3.0), jnp.float32(-1.0), jnp.float32(2.0)), stats.t(3.0, -1.0, 2.0), [-30.0, -2.0, 0.5, 9.0]),
    (mj.Gamma(jnp.float32(2.5), jnp.float32(1.5)), stats.gamma(2.5, scale=1 / 1.5), [0.05, 1.0, 3.0, 8.0]),
    (mj.Beta(jnp.float32(2.0), jnp.float32(5.0)), stats.beta(2.0, 5.0), [0.01, 0.2, 0.5, 0.9]),
    (mj.Laplace(jnp.float32(0.5), jnp.float32(1.5)), stats.laplace(0.5, 1.5), [-20.0, 0.0, 0.5, 3.0]),
    (mj.Normal(jnp.float32(0.5), jnp.float32(1.5)), stats.norm(0.5, 1.5), [-20.0, 0.0, 0.5, 12.0]),
], ids=["student_t", "gamma", "beta", "laplace", "normal"])
def test_log_cdf_and_log_sf_against_scipy(theta, ref, grid):
    for v in grid:
        np.testing.assert_allclose(mj.log_cdf(theta, jnp.float32(v)), ref.logcdf(v), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(mj.log_sf(theta, jnp.float32(v)), ref.logsf(v), rtol=1e-4, atol=1e-6)


def test_censored_student_t_family():
    family = mj.censored(mj.student_t(4.0, 2.0))
    ref = stats.t(4.0, 0.3, 2.0)
    for value, side, want in [(1.0, 0, ref.logpdf(1.0)), (1.0, -1, ref.logcdf(1.0)), (5.0, 1, ref.logsf(5.0))]:
        np.testing.assert_allclose(family.log_prob({}, jnp.float32(0.3), jnp.array([value, side], jnp.float32)),
                                   want, rtol=1e-4)


def test_mixture_log_cdf_and_sf():
    theta = mj.MixtureNormal(jnp.array([0.0, 1.0]), jnp.array([-1.0, 2.0]), jnp.array([0.5, 0.7]))
    w = special.softmax([0.0, 1.0])
    for v in [-40.0, -1.0, 0.5, 3.0]:
        cdf = w[0] * stats.norm(-1, 0.5).cdf(v) + w[1] * stats.norm(2, 0.7).cdf(v)
        logcdf = np.logaddexp(np.log(w[0]) + stats.norm(-1, 0.5).logcdf(v), np.log(w[1]) + stats.norm(2, 0.7).logcdf(v))
        np.testing.assert_allclose(mj.log_cdf(theta, jnp.float32(v)), logcdf, rtol=1e-5)
        if cdf < 0.999:
            np.testing.assert_allclose(mj.log_sf(theta, jnp.float32(v)), np.log1p(-cdf), rtol=1e-4)
