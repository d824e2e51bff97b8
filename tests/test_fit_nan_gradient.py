"""A finite loss with a NaN gradient ends a fit as a non-finite loss does (``_fit_step``). A masked row's NaN x under
``validate=False`` leaves the masked loss finite (the row's term is selected away) and its gradient NaN (the select's
other branch): L-BFGS's line search kept its stored finite value, so the history stayed finite and ``fit`` returned
NaN parameters as "completed". Reference: the fit without the masked rows (statsmodels' Poisson GLM)."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest
import statsmodels.api as sm

import mle_jax as mj

pytestmark = pytest.mark.deep  # compiles two fits


def test_a_nan_gradient_at_a_finite_loss_is_non_finite_not_nan_parameters(x64):
    rng = np.random.default_rng(0)
    n, d = 300, 3
    x = rng.normal(size=(n, d))
    y = rng.poisson(np.exp(0.2 + x @ np.array([0.3, -0.2, 0.1]))).astype(float)
    mask = np.arange(n) >= 10
    x_nan = np.where(mask[:, None], x, np.nan)
    r = mj.recipe(mj.models.linear(d).apply, mj.poisson(), validate=False)
    p0 = r.init({"w": jnp.zeros(d), "b": jnp.zeros(())})
    assert np.isfinite(float(r.loss(p0, x_nan, y, mask=mask)))
    res = mj.fit(r, p0, x_nan, y, optax.lbfgs(), steps=20, mask=mask, run=mj.Run(progress=False))
    assert res.stopped == "non_finite"
    assert np.all(np.asarray(res.params.model["w"]) == 0) and float(res.params.model["b"]) == 0  # the start kept
    ref = sm.GLM(y[mask], sm.add_constant(x[mask]), family=sm.families.Poisson()).fit(tol=1e-12).params
    clean = mj.fit(r, p0, x[mask], y[mask], optax.lbfgs(), steps=100, objective=mj.Objective(tol=1e-10),
                   run=mj.Run(progress=False))  # the check does not fire on finite data
    np.testing.assert_allclose(np.r_[float(clean.params.model["b"]), np.asarray(clean.params.model["w"])], ref,
                               rtol=1e-7)
