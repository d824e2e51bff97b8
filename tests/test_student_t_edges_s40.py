"""Student t edges (session 40), each against mpmath's log density in high precision (its derivatives in closed
form or by ``mp.diff``): a fixed df beyond 1e30 (read as 1e30 before: 27% off at df 1e31, z 1e15, float32), the
learned df's slope in float64 where ``q = z^2/nu`` is small (a difference of two terms of size q: 14% off at
nu 1e15, z 0.7), and its second derivatives there in both dtypes.
"""

from __future__ import annotations

import jax
import jax.extend
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

import mle_jax as mj

EPS = {"float32": float(np.finfo(np.float32).eps), "float64": float(np.finfo(np.float64).eps)}


def _mp_log_density(y, nu):
    """``t.logpdf(y, nu)`` (loc 0, scale 1) in mpmath."""
    return (mp.loggamma((nu + 1) / 2) - mp.loggamma(nu / 2) - mp.log(nu * mp.pi) / 2
            - (nu + 1) / 2 * mp.log1p(y * y / nu))


def _mp_nu_slope(y, nu):
    """``d/dnu`` of the log density: ``(psi((nu + 1)/2) - psi(nu/2))/2 - 1/(2 nu) + ((1 + 1/nu) u - log(1 + q))/2``,
    ``q = y^2/nu``, ``u = q/(1 + q)``."""
    q = y * y / nu
    kernel = ((1 + 1 / nu) * q / (1 + q) - mp.log1p(q)) / 2
    return (mp.digamma((nu + 1) / 2) - mp.digamma(nu / 2)) / 2 - 1 / (2 * nu) + kernel


def _setup(dtype, request):
    if dtype == "float64":
        request.getfixturevalue("x64")
    return jnp.dtype(dtype)


@pytest.mark.deep  # a compile per df and mpmath at 650 digits: ~0.8 s a case
@pytest.mark.parametrize("dtype, df, ys", [("float32", 1e31, (1e15, 1.0, -3e-3)),
                                           ("float64", 1e305, (1e150, 1.0, -3e-3))])
def test_fixed_huge_df_value_and_slope(dtype, df, ys, request):
    """``mj.losses.student_t(mu, y, df, scale=1)`` for a df beyond 1e30, where ``z^2/nu`` is not small (it was read
    as 1e30) and where it is below eps (float64 ``z = 1`` at nu = 1e305: below the normal floats, ``x`` flushed to
    0; the value is ``(1 + 1/nu) z^2/2``): the NLL and its slope in mu, ``-(1 + 1/nu) z / (1 + z^2/nu)``."""
    dt = _setup(dtype, request)
    mp.mp.dps = 650
    y = jnp.asarray(ys, dt)
    mu = jnp.zeros(len(ys), dt)
    value, slope = jax.vmap(jax.value_and_grad(lambda m, t: mj.losses.student_t(m[None], t[None], df=df,
                                                                                  scale=1.0)[0]))(mu, y)
    for i, yi in enumerate(np.asarray(y, np.float64)):
        v, nu = mp.mpf(float(yi)), mp.mpf(df)
        want = -_mp_log_density(v, nu)
        want_slope = -(1 + 1 / nu) * v / (1 + v * v / nu)
        assert abs(float(value[i]) - float(want)) <= 8 * EPS[dtype] * abs(float(want)), (yi, value[i], want)
        assert abs(float(slope[i]) - float(want_slope)) <= 8 * EPS[dtype] * abs(float(want_slope)), (yi, slope[i])


def _learned(dt):
    family = mj.student_t("learned", 1.0)

    def one(mu, r, y):
        return family.log_prob({"df": r}, mu, y)
    return jax.jit(jax.vmap(lambda mu, r, y: (jax.grad(one, 1)(mu, r, y), jax.hessian(one, (0, 1))(mu, r, y)),
                            (None, None, 0)))


@pytest.mark.deep  # a Hessian's compile and mpmath derivatives: ~5 s a dtype
@pytest.mark.parametrize("dtype, nu", [("float32", 1e8), ("float64", 1e15)])
def test_learned_df_derivatives_at_huge_df(dtype, nu, request):
    """The learned-df log density's second derivatives in (mu, raw df) far past the data's z^2 (the Normal's limit),
    both dtypes, and in float64 its slope in raw df, against mpmath: ``d/dnu = ((1 + 1/nu) u - log(1 + q))/2 + ...``
    is ``q/(2 nu) - q^2/4`` to leading order, far under either term (``q``), and ``d2/dmu dnu``, ``d2/dnu2``
    differences of terms of size 1 and q that cancelled likewise. (The float32 slope keeps its cancellation: 3.6
    times too large at z = 3; its series cost 6-9% of the family's value and gradient.)"""
    dt = _setup(dtype, request)
    eps = EPS[dtype]
    mp.mp.dps = 80
    ys = jnp.asarray([0.7, 3.0, -40.0], dt)
    raw = mj.links.softplus_inverse(jnp.asarray(nu, dt))
    grad, hess = _learned(dt)(jnp.zeros((), dt), raw, ys)
    r = mp.mpf(float(raw))

    def nu_of(c):
        return mp.log1p(mp.exp(c)) + eps
    for i, yi in enumerate(np.asarray(ys, np.float64)):
        v = mp.mpf(yi)

        def f(c):
            return _mp_log_density(v, nu_of(c))

        def d_mu(c):
            n = nu_of(c)
            return (1 + 1 / n) * v / (1 + v * v / n)
        mixed, second = float(mp.diff(d_mu, r)), float(mp.diff(f, r, 2))
        assert abs(float(hess[0][1][i]) - mixed) <= 1e-4 * abs(mixed), (yi, hess[0][1][i], mixed)
        assert abs(float(hess[1][1][i]) - second) <= 1e-4 * abs(second), (yi, hess[1][1][i], second)
        if dtype == "float64":
            want = float(_mp_nu_slope(v, nu_of(r)) / (1 + mp.exp(-r)))
            assert abs(float(grad[i]) - want) <= 64 * eps * abs(want), (yi, grad[i], want)


def test_learned_df_slope_float64_across_its_series(x64):
    """The learned-df slope in raw df in float64 at nu = 1e6, z from 1e-2 to 1e4 (``q`` from 1e-10 to 100, through
    the series' end at ``q = 1/32``), against mpmath: within 64 eps of ``u/nu + h``, the size of the two terms whose
    difference it is (``h = log(1 + q) - u``; their cancellation where ``q = 2/nu`` is the slope's own), and of the
    normaliser's slope."""
    dt = jnp.dtype("float64")
    mp.mp.dps = 60
    nu = 1e6
    z = np.concatenate([np.geomspace(1e-2, 1e4, 60), np.sqrt(nu / 32) * np.array([1 - 1e-9, 1 + 1e-9])])
    raw = mj.links.softplus_inverse(jnp.asarray(nu, dt))
    family = mj.student_t("learned", 1.0)
    grad = jax.jit(jax.vmap(jax.grad(lambda r, y: family.log_prob({"df": r}, jnp.zeros((), dt), y)), (None, 0)))(
        raw, jnp.asarray(z, dt))
    r = mp.mpf(float(raw))
    n = mp.log1p(mp.exp(r)) + EPS["float64"]
    sig = 1 / (1 + mp.exp(-r))
    for zi, gi in zip(z, np.asarray(grad)):
        v = mp.mpf(float(zi))
        q = v * v / n
        u = q / (1 + q)
        size = (u / n + mp.log1p(q) - u + abs(mp.digamma((n + 1) / 2) - mp.digamma(n / 2)) / 2 + 1 / (2 * n)) * sig
        want = _mp_nu_slope(v, n) * sig
        assert abs(float(gi) - float(want)) <= 64 * EPS["float64"] * float(size), (zi, gi, want)


def test_censored_fixed_df_traces_no_normaliser_branch():
    """``mj.censored(mj.student_t(4.0))``: the observed rows' log density takes its normaliser ``R(nu/2)`` as a
    number (the df is known when traced), as the censored rows' CDF does: its value and gradient hold no ``cond``
    (the normaliser's ``lax.cond`` with both branches' derivatives was traced and compiled for a constant: the lowering
    took 0.2 s of the family's compile, CPU time 1.35 -> 1.2 times the hand-written loss's). Its values against
    scipy: tests/test_families_combinators.py."""
    r = mj.recipe(lambda b, x_i: jnp.stack([x_i + b[0], b[1]]), mj.censored(mj.student_t(4.0)), validate=False)
    p = r.init(jnp.zeros(2))
    x = jnp.linspace(-1.0, 1.0, 8)
    y = jnp.stack([jnp.linspace(-3.0, 2.0, 8), jnp.asarray([0.0, 1.0, -1.0, 0.0] * 2)], axis=1)
    prims = []

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            prims.append(eqn.primitive.name)
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                walk(sub)
    walk(jax.make_jaxpr(jax.value_and_grad(lambda p: r.nll(p, x, y)))(p).jaxpr)
    assert "cond" not in prims
