"""The Student t family with a learned df (``mj.student_t("learned", scale)``): its kernel is the cost
``(nu + 1)/2 log(1 + z^2/nu)`` with the affine's scale -1 (``student_t.standard_cost``) and its normaliser
``R(nu/2)`` a custom JVP whose ``lax.cond`` carries ``(R, R')`` (``student_t._scalar_normaliser``).

References: mpmath's log density in 50-digit arithmetic, its derivatives in raw df by ``mp.diff`` and in mu
in closed form (the whole Hessian in (mu, raw df), both branches of the normaliser: nu/2 below and above 10), ``scipy.stats.t.logpdf``
for the recipe's summed and weighted NLL, and autodiff of the plain ``gammaln`` formula for its gradient.
"""

from __future__ import annotations

import jax
import jax.extend
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest
from scipy import stats

import mle_jax as mj

mp.mp.dps = 50
EPS = {"float32": float(np.finfo(np.float32).eps), "float64": float(np.finfo(np.float64).eps)}


def _mp_log_density(y, mu, nu):
    z = y - mu
    return (mp.loggamma((nu + 1) / 2) - mp.loggamma(nu / 2) - mp.log(nu * mp.pi) / 2
            - (nu + 1) / 2 * mp.log1p(z * z / nu))


def _reference(y, raw, eps):
    """log density and its Hessian in (mu, raw df) at mu = 0, nu = softplus(raw) + eps, in mpmath: the slope in
    mu and its derivative in mu in closed form (``(1 + 1/nu) z w`` and ``-(1 + 1/nu) w (2w - 1)``, ``w = 1/(1 +
    z^2/nu)``: differences in mu would need 500 digits at z = 1e200), every derivative in raw by ``mp.diff``."""
    y, raw = mp.mpf(float(y)), mp.mpf(float(raw))

    def nu_of(r):
        return mp.log1p(mp.exp(r)) + eps

    def f(r):
        return _mp_log_density(y, 0, nu_of(r))

    def d_mu(r):
        nu = nu_of(r)
        return (1 + 1 / nu) * y / (1 + y * y / nu)
    nu = nu_of(raw)
    w = 1 / (1 + y * y / nu)
    d_mu_r = mp.diff(d_mu, raw)
    h = [[-(1 + 1 / nu) * w * (2 * w - 1), d_mu_r], [d_mu_r, mp.diff(f, raw, 2)]]
    grad = [d_mu(raw), mp.diff(f, raw)]
    return float(f(raw)), np.array([float(g) for g in grad]), np.array([[float(v) for v in row] for row in h])


@pytest.mark.deep  # 160 mpmath derivatives and a Hessian's compile: 2 s a dtype
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_learned_df_hessian_against_mpmath(dtype, request):
    """Value, gradient and the whole Hessian in (mu, raw df) of one example's log density, nu from 0.7 to 1e6
    (the normaliser's direct branch and Stirling's) and z from 0 to 1e30: the custom JVPs of the cost and of the
    normaliser are differentiable again (autodiff of the slopes was NaN and -inf from |z| = 1e15 in float32, where
    ``q^1.5`` overflows). The df entries are differences of terms of size ``log(1 + z^2/nu)``
    and ``1 + 1/nu`` (and the normaliser's digamma and trigamma terms): their error is relative to that size."""
    if dtype == "float64":
        request.getfixturevalue("x64")
    dt = jnp.dtype(dtype)
    eps = EPS[dtype]
    family = mj.student_t("learned", 1.0)

    def one(mu, r, y):
        return family.log_prob({"df": r}, mu, y)
    fn = jax.jit(jax.vmap(lambda mu, r, y: (one(mu, r, y), jax.grad(one, (0, 1))(mu, r, y),
                                            jax.hessian(one, (0, 1))(mu, r, y)), (None, None, 0)))
    z = np.array([0.0, 1e-3, -0.7, 3.0, -40.0, 1e6, 1e30] + ([-1e120, 1e200] if dtype == "float64" else []))
    for nu in (0.7, 5.0, 30.0, 1e6):
        raw = mj.links.softplus_inverse(jnp.asarray(nu, dt))
        value, grad, hess = fn(jnp.zeros((), dt), raw, jnp.asarray(z, dt))
        grad = np.stack([np.asarray(g, np.float64) for g in grad], -1)
        hess = np.stack([np.stack([np.asarray(h, np.float64) for h in row], -1) for row in hess], -2)
        nu_dt = float(mj.links.softplus.forward(raw))
        for i, zi in enumerate(z):
            want_value, want_grad, want_hess = _reference(jnp.asarray(zi, dt), raw, eps)
            size = float(mp.log1p(mp.mpf(float(jnp.asarray(zi, dt))) ** 2 / nu_dt)) + 1 + 1 / nu_dt
            tol = 64 * eps
            atol = 1e-18 if dtype == "float32" else 1e-150  # derivatives in mu where z^2/nu overflows: 0
            where = f"nu={nu}, z={zi}"
            assert abs(float(value[i]) - want_value) <= tol * (abs(want_value) + 1), where
            assert abs(grad[i, 0] - want_grad[0]) <= tol * abs(want_grad[0]) + atol, where
            assert abs(hess[i, 0, 0] - want_hess[0, 0]) <= tol * (abs(want_hess[0, 0]) + 1 + 1 / nu_dt) + atol, where
            for j, k in ((0, 1), (1, 0)):
                assert abs(hess[i, j, k] - want_hess[j, k]) <= tol * (abs(want_hess[j, k]) + 1 + 1 / nu_dt) + atol, where
            assert abs(grad[i, 1] - want_grad[1]) <= tol * (abs(want_grad[1]) + size), where
            assert abs(hess[i, 1, 1] - want_hess[1, 1]) <= tol * (abs(want_hess[1, 1]) + size), where


@pytest.mark.deep  # four compiles of the recipe's value and gradient: 2-5 s
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_learned_df_recipe_nll_against_scipy_and_plain_autodiff(x64, reduction):
    """The recipe's weighted NLL (sum and mean) with a learned df and a learned scale against scipy's
    ``t.logpdf``, and its gradient in (bias, raw df, raw scale) against autodiff of the plain ``gammaln``
    formula, float64, with data from a t of df 3 and outliers."""
    rng = np.random.default_rng(7)
    n = 200
    x = rng.normal(size=n)
    y = 0.5 + x + 1.3 * rng.standard_t(3.0, size=n)
    y[:3] = [40.0, -1e4, 1e8]
    w = rng.uniform(0.5, 2.0, size=n)
    for scale in (1.7, "learned"):
        family = mj.student_t("learned", scale)
        r = mj.recipe(lambda b, x_i: x_i + b, family, validate=False)
        p = r.init(jnp.asarray(0.2))
        fp = dict(p.family)
        fp["df"] = mj.links.softplus_inverse(jnp.asarray(2.5))
        if scale == "learned":
            fp["scale"] = mj.links.softplus_inverse(jnp.asarray(1.1))
        p = mj.Params(p.model, fp)

        def nll(p):
            fn = r.nll if reduction == "sum" else r.mean_nll
            return fn(p, jnp.asarray(x), jnp.asarray(y), weights=jnp.asarray(w))

        def plain(p):
            nu = jax.nn.softplus(p.family["df"]) + EPS["float64"]
            s = 1.7 if scale != "learned" else jax.nn.softplus(p.family["scale"]) + EPS["float64"]
            zz = (jnp.asarray(y) - jnp.asarray(x) - p.model) / s
            lp = (jax.scipy.special.gammaln((nu + 1) / 2) - jax.scipy.special.gammaln(nu / 2)
                  - 0.5 * jnp.log(nu * jnp.pi) - (nu + 1) / 2 * jnp.log1p(zz * zz / nu) - jnp.log(s))
            total = -jnp.sum(jnp.asarray(w) * lp)
            return total if reduction == "sum" else total / jnp.sum(jnp.asarray(w))

        nu = float(mj.links.softplus.forward(fp["df"]))
        s = 1.7 if scale != "learned" else float(mj.links.softplus.forward(fp["scale"]))
        want = -np.sum(w * stats.t.logpdf(y, nu, x + 0.2, s))
        want = want if reduction == "sum" else want / np.sum(w)
        value, grad = jax.jit(jax.value_and_grad(nll))(p)
        np.testing.assert_allclose(float(value), want, rtol=1e-13)
        value_plain, grad_plain = jax.value_and_grad(plain)(p)
        np.testing.assert_allclose(float(value_plain), want, rtol=1e-12)  # the reference formula itself
        for got, ref in zip(jax.tree.leaves(grad), jax.tree.leaves(grad_plain)):
            np.testing.assert_allclose(np.asarray(got), np.asarray(ref), rtol=1e-11, atol=1e-12)


def test_learned_df_normaliser_branch_carries_two_scalars():
    """The value and gradient of the learned-df NLL holds one ``cond`` (the normaliser's branch) with two outputs,
    ``R`` and ``R'``: differentiated through the cond, it carried the branch's linearisation (48 residuals, each a
    kernel of XLA:CPU at every call)."""
    r = mj.recipe(lambda b, x_i: x_i + b, mj.student_t("learned", 1.0), validate=False)
    p = r.init(jnp.asarray(0.1))
    x, y = jnp.linspace(-1.0, 1.0, 16), jnp.linspace(-3.0, 2.0, 16)
    outs = []

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "cond":
                outs.append(len(eqn.outvars))
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                walk(sub)
    walk(jax.make_jaxpr(jax.value_and_grad(lambda p: r.nll(p, x, y)))(p).jaxpr)
    assert outs == [2]
