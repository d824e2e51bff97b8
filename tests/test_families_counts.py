"""mle_jax.families.counts: poisson and negative_binomial as families."""

import jax.numpy as jnp
import pytest
import numpy as np
from scipy import stats

import mle_jax as mj
from family_fits import fit_constant


def test_poisson_fit_is_the_sample_mean():
    counts = np.random.default_rng(0).poisson(6.0, size=4000)
    _, res = fit_constant(mj.poisson(), jnp.float32(0.0), jnp.asarray(counts, jnp.int32), steps=400)
    np.testing.assert_allclose(np.exp(res.params.model), counts.mean(), rtol=1e-3)


@pytest.mark.deep
def test_negative_binomial_fit_recovers_dispersion():
    rng = np.random.default_rng(2)
    r_true, mean_true = 2.0, 5.0
    y = rng.negative_binomial(r_true, r_true / (r_true + mean_true), size=6000)
    rec, res = fit_constant(mj.negative_binomial("learned"), jnp.float32(0.0), jnp.asarray(y, jnp.int32))
    theta = rec.predict(res.params, jnp.zeros((1, 1)))
    np.testing.assert_allclose(mj.mean(theta)[0], y.mean(), rtol=1e-2)
    np.testing.assert_allclose(theta.total_count[0], r_true, rtol=0.1)
    per = mj.negative_binomial("per_example")
    np.testing.assert_allclose(per.log_prob({}, jnp.array([1.0, 0.5]), jnp.float32(2.0)),
                               mj.log_prob(per.theta({}, jnp.array([1.0, 0.5])), jnp.float32(2.0)), rtol=1e-6)


def test_float_counts_and_integer_counts_give_the_same_nll():
    r = mj.recipe(lambda p, x_i: p, mj.poisson())
    params, x = r.init(jnp.float32(0.7)), jnp.zeros((4, 1))
    ints = jnp.array([0, 3, 7, 12], jnp.int32)
    np.testing.assert_allclose(r.nll(params, x, ints), r.nll(params, x, ints.astype(jnp.float32)), rtol=1e-6)


def test_poisson_family_at_zero_and_infinite_rates():
    # the family's density is the theta's: a zero rate puts all mass on 0, an infinite one on no count
    family = mj.poisson()
    for raw, y, want in [(-np.inf, 0.0, 0.0), (-np.inf, 2.0, -np.inf), (np.inf, 3.0, -np.inf),
                         (np.log(2.5), 4.0, stats.poisson(2.5).logpmf(4))]:
        got = float(family.log_prob({}, jnp.float32(raw), jnp.float32(y)))
        np.testing.assert_allclose(got, want, atol=1e-6)
