"""Session 41: the fixed-df Student t's slope in z where ``z^2/df`` overflows, and the Gamma's ``log_cdf`` at
shape a < 1, against mpmath.

A fixed df's slope in z, ``-(df + 1) z / (df + z^2)``, was 0 where ``z^2/df`` overflows (float32
``|z| > 1.8e19 sqrt(df)``, float64 1e154): the family's slope in loc lost ``(df + 1)/z`` and in scale
``(df + 1)/s``. Checked for the family with a fixed and a softplus scale and for the distribution
(``mj.log_prob(mj.StudentT(...))``), value and slopes in loc and scale, both dtypes, one jit a dtype.

References: mpmath's log density at 60 digits and its slopes in closed form
``d/dloc = (1 + 1/nu) z/(1 + q)/s``, ``d/ds = (-1 + (1 + 1/nu) z^2/(1 + q))/s``, ``q = z^2/nu``, and the
softplus link's chain rule in mpmath.

The Gamma's ``log P(a, x)`` at a < 1 (float64): Legendre's fraction went on multiplying a converged entry by
deltas within an ulp of 1 while a slower entry of the batch ran (8 eps of drift: the value depended on the batch).
Left: from x = 1.1 to a + 1 the series makes ``log P`` (near 0) a sum of terms near +-1 (up to 20 (1 + kappa) eps
off; the fraction there instead made a censored Gamma's value and gradient 1.26 times as slow). Reference:
``mpmath.gammainc(a, 0, x, regularized=True)`` at 50 digits.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

import mle_jax as mj

pytestmark = pytest.mark.deep  # each test compiles a family or the incomplete gamma's loops (1.5-2.3 s)

EPS = {"float32": float(np.finfo(np.float32).eps), "float64": float(np.finfo(np.float64).eps)}
DFS = (0.5, 5.0, 1e6)
SCALE = 2.0  # the softplus scale's and the distribution's scale (the fixed scale: 1)
ZS = {"float32": (0.0, 1e-3, -0.7, 3.0, -40.0, 1e4, 1e15, -1e19, 1e20, -1e25, 1e30, 3e37),
      "float64": (0.0, 1e-3, -0.7, 3.0, -40.0, 1e4, 1e15, -1e20, 1e150, -1e156, 1e200, 1e300)}


def _t_reference(z, nu, s):
    """log density of the t at ``y = z s`` (loc 0, scale s), its slopes in loc and in s; and the size of the terms
    each is made of (its error bound's scale)."""
    q = z * z / nu
    norm = mp.loggamma((nu + 1) / 2) - mp.loggamma(nu / 2) - mp.log(nu * mp.pi) / 2
    value = norm - mp.log(s) - (nu + 1) / 2 * mp.log1p(q)
    d_loc = (1 + 1 / nu) * z / (1 + q) / s
    d_scale = (-1 + (1 + 1 / nu) * z * z / (1 + q)) / s
    sizes = (abs(norm) + abs(mp.log(s)) + (nu + 1) / 2 * mp.log1p(q), abs(d_loc),
             (1 + (1 + 1 / nu) * z * z / (1 + q)) / s)
    return (value, d_loc, d_scale), sizes


def _programs(dt, df):
    """value and slopes of one example, vmapped over z: the family with a fixed scale (d/dloc), with a softplus
    scale (d/dloc, d/d raw scale) and the distribution (d/dloc, d/dscale)."""
    fixed, linked = mj.student_t(df, 1.0), mj.student_t(df, "softplus")
    r_s = mj.links.softplus_inverse(jnp.asarray(SCALE, dt))

    def fixed_one(mu, y):
        return fixed.log_prob({}, mu, y)

    def linked_one(mu, rs, y):
        return linked.log_prob({}, jnp.stack([mu, rs]), y)

    def dist_one(mu, s, y):
        return mj.log_prob(mj.StudentT(jnp.asarray(df, dt), mu, s), y)

    def all_of(z):
        mu = jnp.zeros((), dt)
        return (jax.value_and_grad(fixed_one)(mu, z),
                jax.value_and_grad(linked_one, (0, 1))(mu, r_s, z * SCALE),
                jax.value_and_grad(dist_one, (0, 1))(mu, jnp.asarray(SCALE, dt), z * SCALE))
    return jax.vmap(all_of)


def _t_errors(dtype):
    """(where, got, want, error in eps of the terms' size) of each value and slope."""
    dt = jnp.dtype(dtype)
    eps = EPS[dtype]
    zs = jnp.asarray(ZS[dtype], dt)
    outs = jax.device_get(jax.jit(lambda z: [_programs(dt, df)(z) for df in DFS])(zs))
    rs = float(mj.links.softplus_inverse(jnp.asarray(SCALE, dt)))
    rows = []
    with mp.workdps(60):
        s_link = mp.log1p(mp.exp(mp.mpf(rs))) + eps  # the family's softplus scale: softplus(raw) + eps
        sig = 1 / (1 + mp.exp(-mp.mpf(rs)))
        for df, out in zip(DFS, outs):
            for i, zf in enumerate(np.asarray(zs, np.float64)):
                z = mp.mpf(float(zf))
                cases = {"fixed": (out[0], mp.mpf(1), 1), "softplus": (out[1], s_link, sig),
                         "dist": (out[2], mp.mpf(SCALE), 1)}
                for name, ((value, grads), s, chain) in cases.items():
                    grads = grads if isinstance(grads, tuple) else (grads,)
                    (v, d_loc, d_scale), (sv, sl, ss) = _t_reference(z, mp.mpf(df), s)
                    want = [(v, sv), (d_loc, sl), (d_scale * chain, ss * chain)][:1 + len(grads)]
                    got = [float(value[i])] + [float(g[i]) for g in grads]
                    for what, g, (w, size) in zip(("value", "loc", "scale"), got, want):
                        err = abs(g - float(w)) / max(float(size), float(jnp.finfo(dt).tiny)) / eps
                        rows.append(((name, df, float(zf), what), g, float(w), err))
    return rows


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fixed_df_slopes_where_z_squared_overflows(dtype, request):
    """Value within 16 eps, slopes within 8 eps of the size of their terms, for z from 0 to 3e37 (float32) and
    1e300 (float64): past ``|z| = 1.8e19 sqrt(df)`` (float64 1e154 sqrt(df)) the slope in loc is
    ``-(df + 1)/z`` (it was 0) and in scale ``df/s`` (it was ``-1/s``)."""
    if dtype == "float64":
        request.getfixturevalue("x64")
    tol = {"value": 16, "loc": 8, "scale": 8}
    bad = [row for row in _t_errors(dtype) if not row[-1] <= tol[row[0][-1]]]
    assert not bad, bad[:12]


def _gamma_cases():
    """(a, x): a from 1e-3 to 1, x from 1e-10 to 50, denser over 1.1 .. 2 (where the series' zone was)."""
    a = np.concatenate([np.geomspace(1e-3, 0.1, 6), np.linspace(0.12, 0.99, 12)])
    x = np.concatenate([np.geomspace(1e-10, 1.0, 8), np.linspace(1.1, 2.0, 10), [3.0, 7.0, 15.0, 30.0, 50.0]])
    aa, xx = np.meshgrid(a, x, indexing="ij")
    return aa.ravel(), xx.ravel()


def test_gamma_log_cdf_small_shape_against_mpmath(x64):
    """``log P(a, x)`` within ``16 (1 + kappa)`` eps (relative), ``kappa = |d log(-log P) / d log x|`` its condition
    number in x (about x where P is near 1: the input's own rounding costs that much), for a < 1; 32 (1 + kappa)
    in the series' zone ``1.1 <= x < a + 1`` (20 at a = 0.59, x = 1.5: ``log P`` near 0 from terms near +-1).
    Elsewhere the worst is 12, Legendre's fraction near x = 1 (its forward evaluation's rounding over 50 to 90
    steps)."""
    a, x = _gamma_cases()
    got = np.asarray(jax.jit(lambda a, x: mj.log_cdf(mj.Gamma(a, jnp.ones_like(a)), x))(jnp.asarray(a), jnp.asarray(x)))
    bad = []
    with mp.workdps(50):
        for ai, xi, g in zip(a, x, got):
            A, X = mp.mpf(float(ai)), mp.mpf(float(xi))
            p = mp.gammainc(A, 0, X, regularized=True)
            want = mp.log(p)
            kappa = abs(mp.exp(A * mp.log(X) - X - mp.loggamma(A)) / p / want)
            err = abs(g - float(want)) / abs(float(want)) / EPS["float64"]
            zone = 1.1 <= xi < ai + 1
            if not err <= (32 if zone else 16) * (1 + float(kappa)):
                bad.append((float(ai), float(xi), g, float(want), err, float(kappa)))
    assert not bad, bad[:8]


def test_gamma_log_cdf_does_not_depend_on_the_batch(x64):
    """An entry of Legendre's fraction (a = 0.01, x = 25.5: 9 steps; a = 0.5, x = 3: 33) has the value it has alone
    when a slower one (a = 0.1, x = 1.1: 87 steps) shares its loop (its ``log P = log1p(-Q)`` drifted by 8 eps)."""
    fast = (np.array([0.01, 0.5]), np.array([25.5, 3.0]))
    f = jax.jit(lambda a, x: mj.log_cdf(mj.Gamma(a, jnp.ones_like(a)), x))
    alone = np.asarray([f(jnp.asarray([a]), jnp.asarray([x]))[0] for a, x in zip(*fast)])
    batched = np.asarray(f(jnp.asarray(np.append(fast[0], 0.1)), jnp.asarray(np.append(fast[1], 1.1))))[:2]
    np.testing.assert_allclose(batched, alone, rtol=2 * EPS["float64"], atol=0)
