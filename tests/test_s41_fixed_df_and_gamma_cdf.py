"""Session 41: the fixed-df Student t's slope in z where ``z^2/df`` overflows, against mpmath.

A fixed df's slope in z, ``-(df + 1) z / (df + z^2)``, was 0 where ``z^2/df`` overflows (float32
``|z| > 1.8e19 sqrt(df)``, float64 1e154): the family's slope in loc lost ``(df + 1)/z`` and in scale
``(df + 1)/s``. Checked for the family with a fixed and a softplus scale and for the distribution
(``mj.log_prob(mj.StudentT(...))``), value and slopes in loc and scale, both dtypes, one jit a dtype.

References: mpmath's log density at 60 digits and its slopes in closed form
``d/dloc = (1 + 1/nu) z/(1 + q)/s``, ``d/ds = (-1 + (1 + 1/nu) z^2/(1 + q))/s``, ``q = z^2/nu``, and the
softplus link's chain rule in mpmath.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

import mle_jax as mj

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
