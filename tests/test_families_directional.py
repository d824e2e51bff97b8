"""mle_jax.families.directional: von_mises as a family."""

import jax.numpy as jnp
import numpy as np
from scipy import stats

import mle_jax as mj
from family_fits import fit_constant


def test_von_mises_fit_on_angles_given_as_any_real_number():
    rng = np.random.default_rng(0)
    n = 4000
    ang = stats.vonmises(5.0, loc=2.5).rvs(size=n, random_state=1) + 2 * np.pi * rng.integers(-3, 3, size=n)
    r, res = fit_constant(mj.von_mises(), jnp.array([2.0, 0.0]), ang.astype(np.float32))
    theta = r.predict(res.params, jnp.zeros((1, 1)))
    kappa, loc, _ = stats.vonmises.fit(np.mod(ang + np.pi, 2 * np.pi) - np.pi, fscale=1)
    np.testing.assert_allclose([theta.loc[0], theta.concentration[0]], [loc, kappa], rtol=1e-2)


def test_angles_as_any_real_number_are_fine():
    r = mj.recipe(lambda p, x_i: p, mj.von_mises())
    y = np.array([-20.0, 0.0, 100.0])
    out = r.nll(r.init(jnp.zeros(2)), jnp.zeros((3, 1)), jnp.asarray(y, jnp.float32))
    kappa = float(np.log1p(np.exp(0.0)) + np.finfo(np.float32).eps)
    np.testing.assert_allclose(out, -np.sum(stats.vonmises(kappa, loc=0.0).logpdf(np.mod(y + np.pi, 2 * np.pi) - np.pi)),
                               rtol=1e-5)
