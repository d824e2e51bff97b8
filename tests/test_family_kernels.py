"""The families' fused kernels written for speed (issue 22: the Student t, censored Normal, ordinal, zero-inflated
Poisson, Weibull, log-normal and MVN kernels with one transcendental per example after the last select and
their derivatives written out) against independent references at the edges, float32 and float64: mpmath's
closed forms in 50-digit arithmetic for values, first and second derivatives."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

import mle_jax as mj

mp.mp.dps = 50
RTOL = {"float32": 3e-6, "float64": 1e-13}


def _setup(dtype, request):
    if dtype == "float64":
        request.getfixturevalue("x64")
    return jnp.dtype(dtype)


def _t_reference(y, mu, nu):
    """log density, d/dmu, d2/dmu2 and d/dnu of the standard-scale Student t at y, in mpmath."""
    y, mu, nu = mp.mpf(float(y)), mp.mpf(float(mu)), mp.mpf(nu)
    z = y - mu
    q = z * z / nu
    w = 1 / (1 + q)
    lp = mp.loggamma((nu + 1) / 2) - mp.loggamma(nu / 2) - mp.log(nu * mp.pi) / 2 - (nu + 1) / 2 * mp.log1p(q)
    d_nu = ((mp.digamma((nu + 1) / 2) - mp.digamma(nu / 2)) / 2 - 1 / (2 * nu) - mp.log1p(q) / 2
            + (nu + 1) / (2 * nu) * q * w)
    return [float(v) for v in (lp, (1 + 1 / nu) * z * w, -(1 + 1 / nu) * w * (2 * w - 1), d_nu)]


def _derivatives(family):
    """Per example: the log density, d/dmu, d2/dmu2 (raw = mu) and d/d fp, in one program."""
    def one(fp, raw, y):
        return family.log_prob(fp, raw, y)
    grad = jax.grad(one, argnums=1)
    return jax.jit(jax.vmap(lambda fp, r, y: (one(fp, r, y), grad(fp, r, y), jax.grad(grad, argnums=1)(fp, r, y),
                                                jax.grad(one)(fp, r, y)), (None, 0, 0)))


# z from 0 to where z^2 overflows float32 (1.8e19 sqrt(nu)); +-inf have their limits -inf and 0
T_Z = [0.0, 1e-30, -1e-3, 0.7, -3.0, 40.0, 1e6, -1e15, 1e30]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_student_t_family_kernels_at_extremes_against_mpmath(dtype, request):
    """``mj.student_t(df, 1.0)`` (a fixed df: ``_fixed_kernel``) and ``mj.student_t("learned", 1.0)`` (``_kernel``,
    with its df derivative) at z from 0 to 1e30 and at +-inf, nu from 0.3 to 1e12: the value (the normaliser
    is the family's shift) and d/dmu, d2/dmu2, d/d raw df. Where ``z^2/nu`` overflows the derivatives are
    0 in place of numbers below 1e-18 (absolute tolerance)."""
    dt = _setup(dtype, request)
    rtol = RTOL[dtype]
    atol = 1e-18 if dtype == "float32" else 1e-150
    z = np.array(T_Z + [np.inf, -np.inf])
    finite = np.isfinite(z)
    mu, y = jnp.zeros(len(z), dt), jnp.asarray(z, dt)
    learned = _derivatives(mj.student_t("learned", 1.0))
    cases = [(df, {}, _derivatives(mj.student_t(df, 1.0))) for df in (0.3, 5.0, 1e12)]
    cases += [(init, {"df": mj.links.softplus_inverse(jnp.asarray(init, dt))}, learned) for init in (0.7, 30.0, 1e6)]
    for df, fp, fn in cases:
        nu = float(mj.links.softplus.forward(fp["df"])) if fp else df  # the nu of the dtype
        value, d_mu, d2_mu, d_fp = (jax.tree.map(lambda a: np.asarray(a, np.float64), v) for v in fn(fp, mu, y))
        ref = np.array([_t_reference(v, 0.0, nu) if np.isfinite(v) else [-np.inf, 0.0, 0.0, -np.inf] for v in z])
        np.testing.assert_allclose(value, ref[:, 0], rtol=rtol, err_msg=f"value, df={df}")
        np.testing.assert_allclose(d_mu, ref[:, 1], rtol=rtol, atol=atol, err_msg=f"d/dmu, df={df}")
        np.testing.assert_allclose(d2_mu, ref[:, 2], rtol=rtol, atol=atol, err_msg=f"d2/dmu2, df={df}")
        if fp:  # d/d raw = d/dnu softplus'(raw), d/dnu from terms of size log(1 + q) that cancel at small q
            slope = 1 / (1 + math.exp(-float(fp["df"])))
            size = np.array([abs(float(mp.log1p(mp.mpf(v) ** 2 / nu))) for v in z[finite]])
            err = np.abs(d_fp["df"][finite] - ref[finite, 3] * slope)
            np.testing.assert_array_less(err, 4 * rtol * (size + np.abs(ref[finite, 3])) + 1e-30)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_censored_normal_one_tail_evaluation_against_mpmath(dtype, request):
    """``mj.censored(mj.normal(1.0))`` with the Normal's ``log_tail`` (one ``log_ndtr`` of ``-z`` or ``z`` per
    example): observed, right- and left-censored values from z = -30 to 30 and at +-inf, and d/dmu
    (``-z``, and ``+-phi(z)/Phi(-+z)``, the inverse Mills ratio), against mpmath; +-inf and an unknown side."""
    dt = _setup(dtype, request)
    rtol = 2e-5 if dtype == "float32" else 1e-12  # log_ndtr's asymptotic series below -10 (float32) / -20
    family = mj.censored(mj.normal(1.0))
    z = np.array([-30.0, -12.0, -3.0, -0.5, 0.0, 0.7, 4.0, 9.0, 30.0])
    rows = [(v, s) for v in z for s in (0.0, 1.0, -1.0)]
    y = jnp.asarray(rows, dt)
    mu = jnp.zeros(len(rows), dt)
    one = lambda r, t: family.log_prob({}, r, t)  # noqa: E731
    value, d_mu = (np.asarray(a, np.float64) for a in jax.jit(jax.vmap(jax.value_and_grad(one)))(mu, y))

    def reference(v, s):
        v = mp.mpf(v)
        if s == 0:
            return float(-v * v / 2 - mp.log(2 * mp.pi) / 2), float(v)
        w = -v if s > 0 else v  # Pr(Y >= v) = Phi(-v), Pr(Y <= v) = Phi(v)
        log_tail = mp.log1p(-mp.ncdf(-w)) if w > 0 else mp.log(mp.ncdf(w))
        return float(log_tail), float(s * mp.npdf(v) / mp.exp(log_tail))
    ref = np.array([reference(v, s) for v, s in rows])
    # log_ndtr takes log(1 - Phi(-w)) for 0 < w < 5 (float32) / 8: exact to round-off of 1, not relatively
    atol = 1e-7 if dtype == "float32" else 1e-15
    np.testing.assert_allclose(value, ref[:, 0], rtol=rtol, atol=atol)
    # the Mills ratio exp(log phi - log Phi) carries log Phi's absolute error: log_ndtr's three-term asymptotic
    # series at z = -30 is off by 7e-4 (float32) / 5e-9 (float64) of 450, the ratio by 2e-5 / 2e-10 relative
    np.testing.assert_allclose(d_mu, ref[:, 1], rtol=5e-5 if dtype == "float32" else 1e-9, atol=1e-30)
    edges = jnp.asarray([[np.inf, 1.0], [-np.inf, 1.0], [np.inf, -1.0], [-np.inf, -1.0], [0.0, 2.0]], dt)
    got = np.asarray(jax.jit(jax.vmap(one))(jnp.zeros(5, dt), edges), np.float64)
    np.testing.assert_array_equal(got, [-np.inf, 0.0, 0.0, -np.inf, -np.inf])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_weibull_fixed_shape_kernel_against_mpmath(dtype, request):
    """``mj.weibull(k)`` for a fixed k (k < 1, k = 1, k > 1): ``log k + (k - 1) log y - k z - (y e^-z)^k`` and
    ``d/dz = k ((y e^-z)^k - 1)``, ``d2/dz2 = -k^2 (y e^-z)^k`` at y from 1e-30 to 1e30, against mpmath; the
    limits at y = 0 (-z for k = 1, +inf for k < 1, -inf for k > 1), -inf at y < 0 and y = inf, NaN at NaN."""
    dt = _setup(dtype, request)
    rtol = RTOL[dtype] * 3
    y = np.array([1e-30, 1e-3, 0.3, 1.0, 7.0, 1e30])
    z = np.array([-2.0, 0.0, 0.5, 1.0, 3.0, 60.0])
    for k in (0.5, 1.0, 1.5):
        family = mj.weibull(k)
        one = lambda r, t, family=family: family.log_prob({}, r, t)  # noqa: E731
        grad = jax.grad(one)
        fn = jax.jit(jax.vmap(lambda r, t: (one(r, t), grad(r, t), jax.grad(grad)(r, t))))
        got = [np.asarray(a, np.float64) for a in fn(jnp.asarray(z, dt), jnp.asarray(y, dt))]
        ref = []
        for yi, zi in zip(y, z):
            yi, zi, km = mp.mpf(float(jnp.asarray(yi, dt))), mp.mpf(zi), mp.mpf(k)
            h = mp.exp(km * (mp.log(yi) - zi))
            ref.append([float(mp.log(km) + (km - 1) * mp.log(yi) - km * zi - h), float(km * (h - 1)), float(-km * km * h)])
        ref = np.array(ref)
        for j, name in enumerate(("value", "d/dz", "d2/dz2")):
            np.testing.assert_allclose(got[j], ref[:, j], rtol=rtol, atol=1e-30, err_msg=f"{name}, k={k}")
        edges = jnp.asarray([0.0, -1.0, np.inf, np.nan], dt)
        at_zero = {0.5: np.inf, 1.0: -0.5, 1.5: -np.inf}[k]
        np.testing.assert_array_equal(np.asarray(jax.jit(jax.vmap(one))(jnp.full(4, 0.5, dt), edges), np.float64),
                                      [at_zero, -np.inf, -np.inf, np.nan])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_ordinal_interval_log_sigmoids_against_mpmath(dtype, request):
    """The ordinal kernel's ``log sig(u) + log sig(-v)`` as ``min(u, 0) - max(v, 0)`` (``_interval_head``) plus
    the log1p of ``_log_sigmoid_pair`` from the derivative's two sigmoids ``sig(-u)``, ``sig(v)`` (``_sigmoid``),
    and its derivatives ``sig(-u)``, ``-sig(v)`` and second derivatives (by autodiff of that form), at u, v from
    -1e4 to 1e4 (either side of 0, where ``1 - sig(-u)`` stands in for ``sig(u)``, and at 0) and the first and last
    classes' infinite ends, against mpmath; its select-free twin (``min``) gives the same bits; and
    ``mj.ordinal(5)``'s log_prob against mpmath's ``log(sig(c_y - f) - sig(c_{y-1} - f))`` at scores from -60 to 60."""
    from mle_jax.families.classification import _interval_head, _log_sigmoid_pair, _sigmoid
    dt = _setup(dtype, request)
    rtol = RTOL[dtype] * 3
    pts = [(-1e4, -2e4), (-30.0, -31.0), (-1.0, -3.0), (-1e-3, -2e-3), (0.0, -0.5), (0.0, 0.0), (1e-3, -1e-3),
           (2.0, 1.0), (40.0, 0.5), (15.0, 14.0), (-2.0, 3.0), (1e4, -1e4), (np.inf, 0.3), (0.3, -np.inf),
           (-50.0, -np.inf), (np.inf, 50.0), (np.inf, -np.inf)]
    u, v = (jnp.asarray([p[i] for p in pts], dt) for i in (0, 1))

    def f(a, b, select_free=False):
        return _interval_head(a, b) + _log_sigmoid_pair(_sigmoid(-a), _sigmoid(b), select_free=select_free)
    np.testing.assert_array_equal(np.asarray(jax.jit(jax.vmap(lambda a, b: f(a, b, True)))(u, v)),
                                  np.asarray(jax.jit(jax.vmap(f))(u, v)))
    fn = jax.jit(jax.vmap(lambda a, b: (f(a, b), jax.grad(f, (0, 1))(a, b), jax.hessian(f, (0, 1))(a, b))))
    value, (du, dv), ((duu, _), (_, dvv)) = jax.tree.map(lambda t: np.asarray(t, np.float64), fn(u, v))

    def sig(x):
        return 1 / (1 + mp.exp(-x))
    ref = []
    for a, b in pts:
        a, b = mp.mpf(a), mp.mpf(b)
        ref.append([float(mp.log(sig(a)) + mp.log(sig(-b))), float(sig(-a)), float(-sig(b)),
                    float(-sig(a) * sig(-a)), float(-sig(b) * sig(-b))])
    ref = np.array(ref)
    for j, got in enumerate((value, du, dv, duu, dvv)):
        np.testing.assert_allclose(got, ref[:, j], rtol=rtol, atol=1e-30, err_msg=str(j))
    family = mj.ordinal(5)
    fp = family.init(dt)
    scores = np.array([-60.0, -3.0, 0.2, 2.5, 60.0])
    labels = np.arange(5)
    got = np.asarray(jax.jit(jax.vmap(lambda r, t: family.log_prob(fp, r, t)))(
        jnp.asarray(np.repeat(scores, 5), dt), jnp.asarray(np.tile(labels, 5))), np.float64)
    cuts = [mp.mpf(float(c)) for c in np.asarray(fp["first_cut"], np.float64)
            + np.concatenate([[0.0], np.cumsum(np.asarray(mj.links.softplus.forward(fp["gaps"]), np.float64))])]
    want = []
    for s in scores:
        for y in labels:
            up = sig(cuts[y] - mp.mpf(s)) if y < 4 else mp.mpf(1)
            lo = sig(cuts[y - 1] - mp.mpf(s)) if y > 0 else mp.mpf(0)
            want.append(float(mp.log(up - lo)))
    np.testing.assert_allclose(got, want, rtol=rtol * 10)


@pytest.mark.deep  # four classes' programs and an mpmath sweep: 4 s
def test_ordinal_value_float64_where_a_sigmoid_is_near_0_4(x64):
    """The ordinal kernel's float64 value where ``w = p_u + p_v - p_u p_v`` lies in [0.35, 0.4142], XLA's float64
    ``log1p`` stretch up to 128 ulps off (``log1p(-w)`` read 120 ulps off at f = c - 0.35): within 4 roundings of
    mpmath's ``log sig(u) + log sig(-v) + log(1 - exp(-g))`` in every class, evaluated alone and differentiated
    (the same bits)."""
    from mle_jax.distributions.special import log1mexp
    from mle_jax.families.classification import _observed_interval
    cuts = jnp.asarray([-1.0, 0.0, 1.0])
    width = log1mexp(-jnp.asarray([np.inf, 1.0, 1.0, np.inf]))
    f = np.linspace(-1.9, 1.9, 381)
    for y in range(4):
        labels = jnp.full(f.shape, y)
        alone = np.asarray(jax.jit(_observed_interval)(jnp.asarray(f), cuts, width, labels))
        tangent = jax.jit(lambda s: jax.jvp(lambda t: _observed_interval(t, cuts, width, labels), (s,),
                                            (jnp.ones_like(s),))[0])(jnp.asarray(f))
        np.testing.assert_array_equal(alone, np.asarray(tangent))
        want = []
        for s in f:
            s = mp.mpf(float(s))
            value = mp.mpf(0)
            if y < 3:
                value -= mp.log1p(mp.exp(s - float(cuts[y])))
            if y > 0:
                value -= mp.log1p(mp.exp(float(cuts[y - 1]) - s))
            if 0 < y < 3:
                value += mp.log(-mp.expm1(-1))
            want.append(float(value))
        err = np.abs(alone - want) / (np.finfo(np.float64).eps * np.abs(want))
        assert err.max() <= 4, (y, err.max(), f[err.argmax()])
