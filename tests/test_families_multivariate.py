"""mle_jax.families.multivariate: mvn_cholesky as a family."""

import jax.numpy as jnp
import numpy as np
import pytest

import mle_jax as mj
from family_fits import fit_constant


@pytest.mark.deep
def test_mvn_cholesky_family_recovers_a_covariance():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(2, 2))
    loc, cov = rng.normal(size=2), a @ a.T + 2 * np.eye(2)
    y = np.random.default_rng(4).multivariate_normal(loc, cov, size=5000).astype(np.float32)
    family = mj.mvn_cholesky(2)
    assert family.raw_shape == (5,) and family.event_shape == (2,)
    r, res = fit_constant(family, jnp.zeros(5), y)
    theta = r.predict(res.params, jnp.zeros((1, 1)))
    fitted = np.asarray(theta.scale_tril[0] @ theta.scale_tril[0].T)
    np.testing.assert_allclose(theta.loc[0], y.mean(axis=0), atol=2e-3)
    np.testing.assert_allclose(fitted, np.cov(y.T, bias=True), rtol=2e-3, atol=2e-3)


def test_mvn_cholesky_rejects_boolean_and_bfloat16_nan_targets():
    r = mj.recipe(lambda p, x_i: p, mj.mvn_cholesky(2))
    params, x = r.init(jnp.zeros(5)), jnp.zeros((3, 1))
    with pytest.raises(ValueError, match=r"mvn_cholesky\(2\): y must be real numbers.*dtype bool"):
        r.nll(params, x, jnp.ones((3, 2), bool))
    y = jnp.zeros((3, 2), jnp.bfloat16).at[1, 0].set(jnp.nan)
    with pytest.raises(ValueError, match=r"mvn_cholesky\(2\): y \[nan, 0\.0\] at index 1 is not finite"):
        r.nll(params, x, y)
