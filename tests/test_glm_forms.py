"""The GLM forms of the Gamma and Beta families (``parameterization="mean"``): the model emits the linked
mean, one global shape / precision is a family parameter. Against scipy.stats, statsmodels' Gamma GLM
(log link) and BetaModel (beta regression), and a direct maximisation of the Gamma shape's likelihood."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import optimize, special, stats

import mle_jax as mj
from mle_jax import links


def _linear(p, x_i):
    return p @ x_i


def test_the_default_parameterization_is_unchanged():
    for make, kind in [(mj.gamma, "gamma"), (mj.beta, "beta")]:
        default, named = make(), make("default")
        assert default.name == named.name == f"{kind}()" and default.raw_shape == named.raw_shape == (2,)
        assert default.spec == named.spec and default.init(jnp.float32) == {}  # one build, as before
        mean = make(parameterization="mean")
        assert mean.name == f"{kind}(parameterization='mean')" and mean.raw_shape == ()


@pytest.mark.parametrize("bad", ["log", "Mean", None, 1])
def test_bad_parameterizations_and_starts_are_named(bad):
    for make in (mj.gamma, mj.beta):
        with pytest.raises(ValueError, match="parameterization must be one of"):
            make(bad)
    with pytest.raises(ValueError, match="init_shape"):
        mj.gamma("mean", init_shape=0.0)
    with pytest.raises(ValueError, match="init_precision"):
        mj.beta("mean", init_precision=-1.0)


def test_mean_forms_against_scipy():
    eta = jnp.array([-1.5, 0.0, 0.7, 3.0], jnp.float32)
    y_pos = jnp.array([0.2, 1.0, 5.0, 30.0], jnp.float32)
    y_unit = jnp.array([0.05, 0.5, 0.7, 0.999], jnp.float32)
    g = mj.gamma("mean", init_shape=2.5)
    b = mj.beta("mean", init_precision=6.0)
    fg, fb = g.init(jnp.float32), b.init(jnp.float32)

    @jax.jit
    def values(fg, fb, eta, yp, yu):
        tg, tb = jax.vmap(g.theta, (None, 0))(fg, eta), jax.vmap(b.theta, (None, 0))(fb, eta)
        return (jax.vmap(g.log_prob, (None, 0, 0))(fg, eta, yp), jax.vmap(b.log_prob, (None, 0, 0))(fb, eta, yu),
                mj.mean(tg), mj.mean(tb), tg.concentration, tb.concentration1 + tb.concentration0,
                mj.losses.nll(g, eta, yp, fg))

    lg, lb, mean_g, mean_b, shape, phi, nll = values(fg, fb, eta, y_pos, y_unit)
    a, p = float(shape[0]), float(phi[0])
    assert a == pytest.approx(2.5, rel=1e-5) and p == pytest.approx(6.0, rel=1e-5)
    e = np.asarray(eta, np.float64)
    np.testing.assert_allclose(mean_g, np.exp(e), rtol=1e-5)
    np.testing.assert_allclose(mean_b, special.expit(e), rtol=1e-5)
    np.testing.assert_allclose(lg, stats.gamma.logpdf(np.asarray(y_pos, np.float64), a, scale=np.exp(e) / a),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(nll, -lg, rtol=1e-6)  # the loss of the generic call
    mu = special.expit(e)
    np.testing.assert_allclose(lb, stats.beta.logpdf(np.asarray(y_unit, np.float64), mu * p, (1 - mu) * p),
                               rtol=1e-5, atol=1e-5)


def _design(n=200, seed=1):
    rng = np.random.default_rng(seed)
    return rng, np.column_stack([np.ones(n), rng.normal(size=(n, 2))])


def _beta_data():
    rng, X = _design()
    mu = special.expit(X @ np.array([-0.3, 0.6, 0.4]))
    return X, rng.beta(mu * 8.0, (1 - mu) * 8.0)


def test_beta_log_likelihood_equals_betamodel(x64):
    """At any parameters (not a fit): the recipe's log-likelihood is BetaModel's, phi = exp(its precision)."""
    from statsmodels.othermod.betareg import BetaModel

    X, y = _beta_data()
    r = mj.recipe(_linear, mj.beta("mean"))
    beta, phi = np.array([0.1, -0.2, 0.5]), 3.7
    params = mj.Params(jnp.asarray(beta), {"precision": links.softplus_inverse(jnp.float64(phi))})
    ours = float(r.log_prob(params, jnp.asarray(X), jnp.asarray(y)).sum())
    assert ours == pytest.approx(BetaModel(y, X).loglike(np.append(beta, np.log(phi))), rel=1e-10)


def _lbfgs_fit(r, X, y):
    return mj.fit(r, r.init(jnp.zeros(X.shape[1])), jnp.asarray(X), jnp.asarray(y), optax.lbfgs(), steps=200,
                  objective=mj.Objective(tol=1e-10))


@pytest.mark.deep
def test_gamma_glm_matches_statsmodels_and_the_shape_mle(x64):
    """Coefficients: statsmodels' GLM(Gamma, log link). Shape: the MLE given the fitted means,
    ``log a - psi(a) = mean(y/mu - log(y/mu) - 1)`` (statsmodels' 1/scale is Pearson's chi2 estimate,
    not the MLE); the log-likelihood: scipy's at those estimates."""
    import statsmodels.api as sm

    rng, X = _design()
    mu = np.exp(X @ np.array([0.5, 0.3, -0.2]))
    y = rng.gamma(2.5, mu / 2.5)
    ref = sm.GLM(y, X, family=sm.families.Gamma(sm.families.links.Log())).fit(tol=1e-12)
    r = mj.recipe(_linear, mj.gamma("mean"))
    res = _lbfgs_fit(r, X, y)
    np.testing.assert_allclose(res.params.model, ref.params, rtol=1e-4, atol=1e-6)
    fitted = np.exp(X @ ref.params)
    c = np.mean(y / fitted - np.log(y / fitted) - 1)
    shape = optimize.brentq(lambda a: np.log(a) - special.digamma(a) - c, 1e-3, 1e3, xtol=1e-14)
    assert float(links.softplus.forward(res.params.family["shape"])) == pytest.approx(shape, rel=1e-4)
    assert abs(1 / ref.scale - shape) > 1e-3  # statsmodels' Pearson estimate differs from the MLE here
    loglik = -float(r.nll(res.params, jnp.asarray(X), jnp.asarray(y)))
    assert loglik == pytest.approx(stats.gamma.logpdf(y, shape, scale=fitted / shape).sum(), rel=1e-8)


@pytest.mark.deep
def test_beta_regression_matches_statsmodels_betamodel(x64):
    """Coefficients, precision (BetaModel's is exp of its log-link parameter) and log-likelihood."""
    from statsmodels.othermod.betareg import BetaModel

    X, y = _beta_data()
    ref = BetaModel(y, X).fit(method="newton", disp=0, maxiter=100)
    r = mj.recipe(_linear, mj.beta("mean"))
    res = _lbfgs_fit(r, X, y)
    np.testing.assert_allclose(res.params.model, ref.params[:-1], rtol=1e-4, atol=1e-6)
    phi = float(links.softplus.forward(res.params.family["precision"]))
    assert phi == pytest.approx(np.exp(ref.params[-1]), rel=1e-4)
    loglik = -float(r.nll(res.params, jnp.asarray(X), jnp.asarray(y)))
    assert loglik == pytest.approx(ref.llf, rel=1e-8)
