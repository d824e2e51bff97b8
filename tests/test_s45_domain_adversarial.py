"""Session 45's adversarial tests of the parameter domains (``distributions._domain``, docs/reliability.md section 2
"Parameter domains"): where a theta outside its domain still gives a number, or a slope, or an error that names
the wrong function. Every reference is scipy.stats or a closed form."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import mle_jax as mj
from mle_jax import distributions as dist


def _normal_log_prob(scale):
    return dist.log_prob(dist.Normal(0.0, scale), 1.0)


@pytest.mark.deep
def test_the_slope_at_a_traced_theta_outside_its_domain_is_nan():
    """docs/reliability.md: under a trace an example outside its domain has NaN outputs, "value and slope". The
    poison is a ``jnp.where`` whose slope at the NaN branch is 0, so ``grad`` answered 0.0 at a negative Normal
    scale (and ``jvp`` a tangent of 0, ``hessian`` 0), while the valid example's slope must stay scipy's."""
    slopes = np.asarray(jax.vmap(jax.grad(_normal_log_prob))(jnp.asarray([2.0, -1.0])))
    eps = 1e-3
    want = (stats.norm(0, 2.0 + eps).logpdf(1.0) - stats.norm(0, 2.0 - eps).logpdf(1.0)) / (2 * eps)
    np.testing.assert_allclose(slopes[0], want, rtol=1e-4)
    assert np.isnan(slopes[1]), slopes
    _, tangent = jax.jvp(_normal_log_prob, (jnp.float32(-1.0),), (jnp.float32(1.0),))
    assert np.isnan(float(tangent))
    assert np.isnan(float(jax.hessian(_normal_log_prob)(jnp.float32(-1.0))))


@pytest.mark.parametrize("case", ["quantile", "entropy", "crps", pytest.param("binomial", marks=pytest.mark.deep),
                                  "von_mises", "asymmetric_laplace"])
def test_the_slope_of_every_function_outside_the_domain_is_nan(case):
    """The same for the other direct functions and the scores (each answered 0.0 or -0.0): a fit or a Newton step
    reading these slopes would move as if the loss were flat there."""
    f, at = {
        "quantile": (lambda s: dist.quantile(dist.Normal(0.0, s), 0.3), -1.0),
        "entropy": (lambda s: dist.entropy(dist.Normal(0.0, s)), -2.0),
        "crps": (lambda s: mj.crps(dist.Normal(0.0, s), 0.5), -2.0),
        "binomial": (lambda z: dist.log_prob(dist.Binomial(2.5, z), 1.0), 0.0),  # the count 2.5 is not whole
        "von_mises": (lambda k: dist.log_prob(dist.VonMises(0.0, k), 1.0), -1.0),
        "asymmetric_laplace": (lambda q: dist.log_prob(dist.AsymmetricLaplace(0.0, 1.0, q), 1.0), 1.5),
    }[case]
    assert np.isnan(float(jax.grad(f)(jnp.float32(at))))


def test_kl_mc_refuses_a_concrete_theta_outside_its_domain():
    """``kl_mc`` reads the Gamma's and the Beta's log-domain pair (``sample_log`` / ``log_prob_log``) straight from
    the table, past the check: KL(Gamma(2, 1) || Gamma(-0.5, 1)) read 2.42, KL(Gamma(-0.5, 1) || Gamma(2, 1)) -0.95
    (a negative KL), KL(Beta(2, 1) || Beta(-0.5, 1)) 0.16; scipy's densities are NaN there. The other types'
    error named ``log_prob``, not the function called."""
    assert np.isnan(stats.gamma(-0.5).logpdf(1.0)) and np.isnan(stats.beta(-0.5, 1).logpdf(0.5))
    key = jax.random.PRNGKey(0)
    cases = [(dist.Gamma(2.0, 1.0), dist.Gamma(-0.5, 1.0), "Gamma's concentration"),
             (dist.Gamma(-0.5, 1.0), dist.Gamma(2.0, 1.0), "Gamma's concentration"),
             (dist.Beta(2.0, 1.0), dist.Beta(-0.5, 1.0), "Beta's concentration1"),
             (dist.Normal(0.0, 1.0), dist.Normal(0.0, -1.0), "Normal's scale")]
    for p, q, what in cases:
        with pytest.raises(ValueError, match=rf"kl_mc\w*: {what} must be > 0"):
            mj.kl_mc(key, p, q, 100)


@pytest.mark.parametrize("side", [-1.0, 1.0])
def test_a_censored_users_family_is_checked_like_the_family(side):
    """``mj.censored(mj.family(...))``: the censored kernel dispatches ``checked=False`` for every theta (and the
    Normal's and Gamma's fused forms), so a user's link that leaves the domain (an identity scale of -2) gave a
    finite censored loss (Laplace: 0.49 right-censored, 0.94 left-censored; scipy's tails are NaN there) where the
    uncensored family gives NaN. The valid example keeps scipy's value."""
    assert np.isnan(stats.laplace(0, -2.0).logsf(0.5))
    fam = mj.family("raw_scale_laplace_s45", theta=lambda fp, raw: dist.Laplace(raw[0], raw[1]), raw_shape=(2,))
    r = mj.recipe(lambda p, x: p, mj.censored(fam), validate=False)
    x, y = jnp.zeros((1, 1)), jnp.asarray([[0.5, side]])
    law = stats.laplace(0, 2.0)
    want = -(law.logsf(0.5) if side > 0 else law.logcdf(0.5))
    np.testing.assert_allclose(r.nll(r.init(jnp.asarray([0.0, 2.0])), x, y), want, rtol=1e-5)
    assert np.isnan(float(r.nll(r.init(jnp.asarray([0.0, -2.0])), x, y)))


def test_a_scale_tril_with_entries_above_its_diagonal_is_refused():
    """The rule's text is "lower triangular with a diagonal > 0" but it reads the diagonal only: a ``scale_tril``
    [[1, 5], [0, 1]] was accepted, and its functions disagree on what it means: ``log_prob`` reads the lower
    triangle (the identity: -2.8379 at (1, 1)) while ``variance`` and ``sample`` read L L^T ([26, 1]: scipy's
    logpdf with that covariance is -10.3379) and ``kl`` to the standard Normal read 0.0."""
    tril = jnp.asarray([[1.0, 5.0], [0.0, 1.0]])
    cov = np.asarray(tril) @ np.asarray(tril).T
    assert not math.isclose(stats.multivariate_normal(np.zeros(2), cov).logpdf([1.0, 1.0]),
                            stats.multivariate_normal(np.zeros(2), np.eye(2)).logpdf([1.0, 1.0]))
    theta = dist.MultivariateNormal(jnp.zeros(2), tril)
    with pytest.raises(ValueError, match=r"log_prob: MultivariateNormal's scale_tril must be lower triangular"):
        dist.log_prob(theta, jnp.ones(2))
    with pytest.raises(ValueError, match=r"variance: MultivariateNormal's scale_tril must be lower triangular"):
        dist.variance(theta)
    got = jax.jit(dist.log_prob)(dist.MultivariateNormal(jnp.zeros((2, 2)), jnp.stack([jnp.eye(2), tril])),
                                 jnp.ones((2, 2)))
    np.testing.assert_allclose(got[0], stats.multivariate_normal(np.zeros(2), np.eye(2)).logpdf([1.0, 1.0]),
                               rtol=1e-5)
    assert np.isnan(float(got[1]))


@pytest.mark.deep
def test_a_masked_bad_example_needs_its_parameters_masked():
    """An example outside the domain has a NaN slope (value and slope NaN, by design), so a loss that masks only its
    value (``jnp.where(keep, log_prob, 0)``) still has a NaN slope in a parameter shared by every example; masking
    its parameters too (the documented way) gives the valid examples' slope. Reference: d/da sum_i log Gamma(y_i | a,
    b_i) over the kept examples = sum_i (log b_i + log y_i - digamma(a))."""
    rate = jnp.asarray([1.0, -1.0, 2.0])
    keep = jnp.asarray([True, False, True])

    def values_masked(a):
        lp = dist.log_prob(dist.Gamma(a * jnp.ones(3), rate), jnp.ones(3))
        return jnp.where(keep, lp, 0.0).sum()

    def parameters_masked(a):
        lp = dist.log_prob(dist.Gamma(a * jnp.ones(3), jnp.where(keep, rate, 1.0)), jnp.ones(3))
        return jnp.where(keep, lp, 0.0).sum()

    from scipy.special import digamma
    want = (math.log(1.0) - digamma(2.0)) + (math.log(2.0) - digamma(2.0))
    assert np.isnan(float(jax.grad(values_masked)(jnp.float32(2.0))))
    np.testing.assert_allclose(jax.grad(parameters_masked)(jnp.float32(2.0)), want, rtol=1e-5)


@pytest.mark.deep
def test_evaluate_reads_no_metric_from_an_example_outside_the_domain():
    """``mj.evaluate`` of a user's family whose link leaves the domain for one example (an identity scale of -2, and
    a NaN one): nll, crps, mae, rmse and pit_ks are NaN, but ``coverage`` read 0.5 (a NaN interval counts as a
    miss: its comparisons are False), and a Bernoulli's ``accuracy`` read 1.0 with a NaN logit (its int ``mode``
    0 counted as a hit on the label 0). scipy's interval and probabilities are NaN there."""
    assert np.isnan(stats.laplace(0, -2.0).interval(0.95)).all()
    fam = mj.family("raw_scale_laplace_s45_eval", theta=lambda fp, raw: dist.Laplace(raw[0], raw[1]),
                    raw_shape=(2,))
    r = mj.recipe(lambda p, x: jnp.stack([p[0], x[0]]), fam, validate=False)
    x = jnp.asarray([[2.0], [-2.0], [1.0], [math.nan]])
    got = mj.evaluate(r, r.init(jnp.asarray([0.0])), x, jnp.asarray([0.5, 0.5, 0.1, 0.2]), key=jax.random.PRNGKey(0))
    assert np.isnan(got["nll"]) and np.isnan(got["crps"])
    assert np.isnan(got["coverage"]), got

    bern = mj.family("raw_logit_bernoulli_s45", theta=lambda fp, raw: dist.Bernoulli(raw), support="binary")
    rb = mj.recipe(lambda p, x: x[0] * p, bern, validate=False)
    got = mj.evaluate(rb, rb.init(jnp.asarray(1.0)), jnp.asarray([[2.0], [math.nan], [-1.0]]), jnp.asarray([1, 0, 0]))
    assert np.isnan(got["brier"])
    assert np.isnan(got["accuracy"]), got
