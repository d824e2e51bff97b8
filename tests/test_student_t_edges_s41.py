"""Student t with a learned df at its edges (session 41), value and every first derivative against mpmath, in
float32 and float64, for the three scales a family can have (fixed, one learned value, linked per example):

- a df beyond 1e30 (it was read as 1e30: 27% off at df 1e31, z 1e15 in float32, its slope 0), up to float32's
  3e38, float64's 1e300 and ``inf`` (the Normal's value and slope in z, the slope in df 0);
- the float32 slope in df where ``q = z^2/nu`` is small (a difference of terms of size q: 3.6 times too large
  at df 1e8, z 3);
- the slope in z where ``q`` overflows (float32 ``|z| > 1.8e19 sqrt(nu)``: it was 0, not ``-(nu + 1)/z``).

References: mpmath's log density at a working precision past the df's exponent, its slopes in closed form
(``d/dnu`` as ``((1 + 1/nu) u - log(1 + q))/2`` plus the normaliser's digamma difference), and the chain rule
of the family's softplus links in mpmath.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

import mle_jax as mj

EPS = {"float32": float(np.finfo(np.float32).eps), "float64": float(np.finfo(np.float64).eps)}
SCALE = 2.0  # the learned and linked scales' value (fixed: 1)
DFS = {"float32": (5.0, 1e8, 1e31, 3e38, np.inf),
       "float64": (5.0, 1e8, 1e15, 1e31, 1e35, 1e300, np.inf)}
ZS = {"float32": (0.0, 1e-3, -0.7, 3.0, -40.0, 1e4, 1e15, -1e20, 1e25, 3e37),
      "float64": (0.0, 1e-3, -0.7, 3.0, -40.0, 1e4, 1e15, -1e20, 1e150, -1e200, 1e300)}


def _mp_softplus(r):
    return mp.log1p(mp.exp(r))


def _reference(z, nu, s, eps):
    """log density at ``y = z s`` (loc 0, scale s) and its slopes in loc, in s and in nu; and the size of the
    terms each is computed from (its error bound's scale)."""
    if mp.isinf(nu):
        value = -z * z / 2 - mp.log(2 * mp.pi) / 2 - mp.log(s)
        return (value, z / s, (z * z - 1) / s, mp.mpf(0)), (abs(value), abs(z / s), (z * z + 1) / s, mp.mpf(0))
    q = z * z / nu
    u = q / (1 + q)
    h = mp.log1p(q) - u
    norm = mp.loggamma((nu + 1) / 2) - mp.loggamma(nu / 2) - mp.log(nu * mp.pi) / 2
    value = norm - mp.log(s) - (nu + 1) / 2 * mp.log1p(q)
    d_loc = (1 + 1 / nu) * z / (1 + q) / s
    d_scale = (-1 + (1 + 1 / nu) * z * z / (1 + q)) / s
    norm_slope = (mp.digamma((nu + 1) / 2) - mp.digamma(nu / 2)) / 2 - 1 / (2 * nu)
    d_nu = norm_slope + (u / nu - h) / 2
    # below nu = 20 the normaliser's slope is psi((nu + 1)/2) - psi(nu/2) - 1/nu, from terms of their size
    norm_size = abs(norm_slope) if nu >= 20 else abs(norm_slope + 1 / (2 * nu)) + 1 / (2 * nu)
    sizes = (abs(norm) + abs(mp.log(s)) + (nu + 1) / 2 * mp.log1p(q), abs(d_loc),
             (1 + (1 + 1 / nu) * z * z / (1 + q)) / s, norm_size + (u / nu + h) / 2)
    return (value, d_loc, d_scale, d_nu), sizes


def _families(dt):
    """value and (d/dloc, d/d raw scale, d/d raw df) of one example for a fixed, a learned and a linked scale,
    vmapped over (raw df, z): one jit."""
    fixed, learned, linked = (mj.student_t("learned", s) for s in (1.0, "learned", "softplus"))
    r_s = mj.links.softplus_inverse(jnp.asarray(SCALE, dt))

    def fixed_one(mu, r, y):
        return fixed.log_prob({"df": r}, mu, y)

    def learned_one(mu, r, rs, y):
        return learned.log_prob({"df": r, "scale": rs}, mu, y)

    def linked_one(mu, r, rs, y):
        return linked.log_prob({"df": r}, jnp.stack([mu, rs]), y)

    def all_of(r, z):
        mu = jnp.zeros((), dt)
        return (jax.value_and_grad(fixed_one, (0, 1))(mu, r, z),
                jax.value_and_grad(learned_one, (0, 1, 2))(mu, r, r_s, z * SCALE),
                jax.value_and_grad(linked_one, (0, 1, 2))(mu, r, r_s, z * SCALE))
    return jax.jit(jax.vmap(all_of))


def _errors(dtype):
    """Each computed value and slope's error over its size, in eps, per (family, df, z, quantity)."""
    dt = jnp.dtype(dtype)
    eps = EPS[dtype]
    pairs = [(nu, z) for nu in DFS[dtype] for z in ZS[dtype]]
    raw = jnp.asarray([mj.links.softplus_inverse(jnp.asarray(nu, dt)) if nu < np.inf else np.inf
                       for nu, _ in pairs], dt)
    zs = jnp.asarray([z for _, z in pairs], dt)
    out = jax.device_get(_families(dt)(raw, zs))
    rows = []
    for i, (nu, _) in enumerate(pairs):
        r = mp.mpf(float(raw[i]))
        z = mp.mpf(float(zs[i]))
        with mp.workdps(60 + 2 * int(mp.log10(nu)) if np.isfinite(nu) else 60):
            n = mp.inf if mp.isinf(r) else _mp_softplus(r) + eps
            sig = mp.mpf(1) if mp.isinf(r) else 1 / (1 + mp.exp(-r))
            for name, (value, grads) in zip(("fixed", "learned", "linked"), out):
                s_mp = mp.mpf(1)
                if name != "fixed":  # the scale the family holds: softplus(raw) + eps in the dtype
                    s_mp = _mp_softplus(mp.mpf(float(mj.links.softplus_inverse(jnp.asarray(SCALE, dt))))) + eps
                (v, d_loc, d_scale, d_nu), (sv, sl, ss, sn) = _reference(z, n, s_mp, eps)
                s_sig = 1 / (1 + mp.exp(-mp.mpf(float(mj.links.softplus_inverse(jnp.asarray(SCALE, dt))))))
                want = [(v, sv), (d_loc, sl), (d_nu * sig, sn * sig)]
                if name != "fixed":
                    want.append((d_scale * s_sig, ss * s_sig))
                got = [float(value[i])] + [float(g[i]) for g in grads]
                for q, (g, (w, size)) in enumerate(zip(got, want)):
                    w, size = float(w), float(size)
                    if abs(w) > float(jnp.finfo(dt).max):  # beyond the dtype's range: its infinity
                        err = 0.0 if g == w * np.inf else np.inf
                    elif abs(w) > float(jnp.finfo(dt).max) / 16:  # the chain rule's products may overflow
                        continue
                    elif size == 0 or not np.isfinite(size):
                        err = 0.0 if (g == w or (np.isnan(w) and np.isnan(g))) else np.inf
                    else:
                        err = abs(g - w) / max(size, float(jnp.finfo(dt).tiny)) / eps
                    rows.append((name, nu, float(zs[i]), ("value", "loc", "df", "scale")[q], g, w, err))
    return rows


TOL = {"value": 16, "loc": 8, "scale": 8, "df": 64}


@pytest.mark.deep  # three families' value and gradient compiled once a dtype, ~200 mpmath references
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_learned_df_edges_against_mpmath(dtype, request):
    """Every family's value and slopes within a few eps of the size of the terms they are computed from (the
    slope in df: 64 eps of ``|u/nu| + h`` and the normaliser's slope, the scale of its float64 series' terms)."""
    if dtype == "float64":
        request.getfixturevalue("x64")
    bad = [row for row in _errors(dtype) if not row[-1] <= TOL[row[3]]]
    assert not bad, bad[:12]


if __name__ == "__main__":  # a table of the errors (in eps of each quantity's size): python tests/...py [float64]
    import sys
    dtype = sys.argv[1] if len(sys.argv) > 1 else "float32"
    if dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    for row in _errors(dtype):
        if row[-1] > TOL[row[3]]:
            print("%-8s df=%-8.3g z=%-9.3g %-6s got=%-12.5g want=%-12.5g err=%.3g eps" % row)


def test_learned_df_slope_float32_across_its_series():
    """The learned-df slope in raw df in float32 at nu = 1e4 and 1e8, z from 1e-2 to 1e4 (``q`` through the series'
    end at ``q = 1/32``), against mpmath: within 64 eps of ``u/nu + h``, the size of the two terms whose
    difference it is, and of the normaliser's slope (the first form's terms are of size q: 3.6 times too large at
    nu 1e8, z 3)."""
    dt = jnp.dtype("float32")
    eps = EPS["float32"]
    family = mj.student_t("learned", 1.0)
    slope = jax.jit(jax.vmap(jax.grad(lambda r, y: family.log_prob({"df": r}, jnp.zeros((), dt), y)), (0, 0)))
    nus = (1e4, 1e8)
    z = np.concatenate([np.geomspace(1e-2, 1e4, 40), np.sqrt(1e4 / 32) * np.array([0.999, 1.001]),
                        np.sqrt(1e8 / 32) * np.array([0.999, 1.001])])
    raws = [mj.links.softplus_inverse(jnp.asarray(nu, dt)) for nu in nus]
    raw = jnp.asarray(np.repeat(np.asarray(raws, np.float32), len(z)))
    grad = np.asarray(slope(raw, jnp.asarray(np.tile(z, len(nus)), dt)), np.float64)
    bad = []
    with mp.workdps(60):
        for i, (r, zi) in enumerate(zip(np.asarray(raw, np.float64), np.tile(np.asarray(z, np.float32), len(nus)))):
            r, v = mp.mpf(float(r)), mp.mpf(float(zi))
            n = _mp_softplus(r) + eps
            sig = 1 / (1 + mp.exp(-r))
            (_, _, _, d_nu), (_, _, _, size) = _reference(v, n, mp.mpf(1), eps)
            if abs(grad[i] - float(d_nu * sig)) > 64 * eps * float(size * sig):
                bad.append((float(n), float(zi), grad[i], float(d_nu * sig)))
    assert not bad, bad[:8]
