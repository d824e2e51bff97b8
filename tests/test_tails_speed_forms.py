"""The Normal's ``log_tail`` with a per-example side (``z`` times -1 or 1, the form XLA:CPU fuses as it fuses a
fixed side): values and d/dmu against scipy's ``norm.logsf`` / ``norm.logcdf`` and their closed-form derivatives,
at the edges of ``log_ndtr``'s branches (|z| = 5, 8, 10, 20 in both tails), +-inf and NaN, float32 and float64."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import mle_jax as mj

Z = np.array([-40.0, -20.0, -10.0, -8.0, -5.0, -1.0, 0.0, 1.0, 5.0, 8.0, 10.0, 20.0, 40.0])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_normal_log_tail_mixed_sides_against_scipy(dtype, request):
    if dtype == "float64":
        request.getfixturevalue("x64")
    dt = jnp.dtype(dtype)
    z = np.concatenate([Z, Z])
    upper = np.concatenate([np.ones_like(Z, bool), np.zeros_like(Z, bool)])
    tail = lambda mu, y, up: mj.log_tail(mj.Normal(mu, jnp.ones_like(mu)), y, up)  # noqa: E731
    f = jax.jit(jax.vmap(jax.value_and_grad(tail)))
    value, d_mu = (np.asarray(a, np.float64) for a in f(jnp.zeros(len(z), dt), jnp.asarray(z, dt), jnp.asarray(upper)))
    ref = np.where(upper, stats.norm.logsf(z), stats.norm.logcdf(z))
    # d/dmu log Pr(Y > y) = phi(z) / Phi(-z); d/dmu log Pr(Y <= y) = -phi(z) / Phi(z); in log space
    mills = np.exp(stats.norm.logpdf(z) - ref)
    ref_d = np.where(upper, mills, -mills)
    tiny = np.finfo(dtype).tiny
    ok = np.abs(ref) > tiny  # log Phi(40) = -3.6e-350 underflows both dtypes: compare where representable
    # jax's log_ndtr: log(1 - Phi(-w)) for 0 < w < 5 (float32) / 8, exact to round-off of 1, not relatively; its
    # three-term asymptotic series from -20 on (float64) is 2e-11 off at z = -20
    rtol, atol = (2e-5, 1e-7) if dtype == "float32" else (1e-10, 1e-15)
    np.testing.assert_allclose(value[ok], ref[ok], rtol=rtol, atol=atol)
    np.testing.assert_array_less(np.abs(value[~ok]), 10 * tiny)
    big = np.abs(ref_d) > 1e-30
    # the ratio exp(log phi - log Phi) carries log Phi's absolute error: 4e-9 relative at z = -20 (float64)
    np.testing.assert_allclose(d_mu[big], ref_d[big], rtol=5e-5 if dtype == "float32" else 1e-8)
    np.testing.assert_array_less(np.abs(d_mu[~big]), 1e-29)
    # +-inf and NaN: Pr(Y > inf) = 0, Pr(Y > -inf) = 1, Pr(Y <= inf) = 1, Pr(Y <= -inf) = 0; NaN stays NaN
    edges = jnp.asarray([np.inf, -np.inf, np.inf, -np.inf, np.nan, np.nan], dt)
    sides = jnp.asarray([True, True, False, False, True, False])
    got = np.asarray(jax.jit(jax.vmap(tail))(jnp.zeros(6, dt), edges, sides), np.float64)
    np.testing.assert_array_equal(got[:4], [-np.inf, 0.0, 0.0, -np.inf])
    assert np.isnan(got[4:]).all()



@pytest.mark.deep
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("scale", ["softplus", "exp", "square"])
def test_log_normal_linked_kernel_against_scipy(scale, dtype, request):
    """``mj.log_normal(link)``'s kernel (the Normal's linked kernel at log y, less log y): values against
    ``scipy.stats.lognorm.logpdf`` from y = 1e-30 to 1e30, -inf off (0, inf), NaN at NaN; d/dmu and d/draw_scale
    against the closed form ``d/dmu = z / s``, ``d/dr = (z^2 - 1) d log s / dr``, ``d/dy = -(1 + z/s)/y``; finite for
    every target, so a masked-out off-support example adds 0 to a summed gradient."""
    if dtype == "float64":
        request.getfixturevalue("x64")
    dt = jnp.dtype(dtype)
    family = mj.log_normal(scale)
    y = np.array([1e-30, 1e-3, 0.5, 1.0, 2.0, 1e3, 1e30, 0.0, -1.0, np.inf, np.nan])
    mu = np.linspace(-1.0, 1.0, len(y))
    r = np.linspace(-2.0, 2.0, len(y))
    raw = jnp.asarray(np.stack([mu, r], 1), dt)
    f = jax.jit(jax.vmap(jax.value_and_grad(lambda a, t: family.log_prob({}, a, t))))
    value, grad = (np.asarray(a, np.float64) for a in f(raw, jnp.asarray(y, dt)))
    s = np.asarray(jax.vmap(lambda a: family.theta({}, a).scale)(raw), np.float64)
    pos = (y > 0) & np.isfinite(y)
    with np.errstate(divide="ignore", invalid="ignore"):
        ref = stats.lognorm.logpdf(y, s, scale=np.exp(mu))
    ref = np.where(np.isnan(y), np.nan, np.where(pos, ref, -np.inf))
    rtol = 2e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(value, ref, rtol=rtol)
    assert np.isfinite(grad).all()
    d_log_s = np.asarray(jax.vmap(jax.grad(lambda v: jnp.log(family.theta({}, jnp.stack([v, v])).scale)))(
        jnp.asarray(r, dt)), np.float64)
    z = (np.log(np.where(pos, y, 1.0)) - mu) / s
    atol = 1e-6 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(grad[pos, 0], (z / s)[pos], rtol=rtol, atol=atol)
    np.testing.assert_allclose(grad[pos, 1], ((z * z - 1.0) * d_log_s)[pos], rtol=rtol * 10, atol=atol)
    # d/dy = -(1 + z / s) / y; a masked-out off-support example (0, -1, inf, NaN) adds 0 to the summed gradient
    d_y = np.asarray(jax.jit(jax.vmap(jax.grad(lambda a, t: family.log_prob({}, a, t), argnums=1)))(
        raw[pos], jnp.asarray(y[pos], dt)), np.float64)
    np.testing.assert_allclose(d_y, (-(1.0 + z / s) / np.where(pos, y, 1.0))[pos], rtol=rtol)
    summed = jax.jit(jax.grad(lambda a: jnp.sum(jnp.where(jnp.asarray(pos), jax.vmap(
        lambda b, t: family.log_prob({}, b, t))(a, jnp.asarray(y, dt)), 0.0))))(raw)
    np.testing.assert_array_equal(np.asarray(summed)[~pos], 0.0)
    np.testing.assert_allclose(np.asarray(summed, np.float64)[pos], grad[pos], rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_asymmetric_laplace_select_form_against_scipy(dtype, request):
    """``mj.asymmetric_laplace(q)``'s fixed-scale kernel in its select form: values against
    ``scipy.stats.laplace_asymmetric.logpdf`` across z = y - mu from -1e30 to 1e30 and 0 (both sides of the kink,
    q = 0.1 and 0.9); d/dmu = q - 1{y < mu}, q - 1/2 at the kink, including y = +-inf; -inf at y = +-inf, NaN
    value and NaN slope at NaN (as before: the slope is no finite number there); second derivative 0."""
    if dtype == "float64":
        request.getfixturevalue("x64")
    dt = jnp.dtype(dtype)
    u = np.array([-1e30, -1e3, -1.0, -1e-30, 0.0, 1e-30, 1.0, 1e3, 1e30])
    for q in (0.1, 0.9):
        family = mj.asymmetric_laplace(q)
        one = lambda m, t: family.log_prob({}, m, t)  # noqa: E731
        mu = jnp.full(len(u) + 3, 0.5, dt)
        y = jnp.asarray(np.concatenate([u + 0.5, [np.inf, -np.inf, np.nan]]), dt)
        value, d_mu = (np.asarray(a, np.float64) for a in jax.jit(jax.vmap(jax.value_and_grad(one)))(mu, y))
        z = np.asarray(y, np.float64) - 0.5
        kappa = np.sqrt(q / (1 - q))
        ref = stats.laplace_asymmetric(kappa, 0.0, 1.0 / np.sqrt(q * (1 - q))).logpdf(z[:-3])
        np.testing.assert_allclose(value[:-3], ref, rtol=1e-6 if dtype == "float32" else 1e-13)
        np.testing.assert_array_equal(value[-3:-1], [-np.inf, -np.inf])
        assert np.isnan(value[-1])
        expected_d = np.where(z > 0, q, np.where(z < 0, q - 1, q - 0.5))
        np.testing.assert_allclose(d_mu[:-1], expected_d[:-1], rtol=1e-6)
        assert np.isnan(d_mu[-1])
        d2 = jax.jit(jax.vmap(jax.grad(jax.grad(one))))(mu[:-3], y[:-3])
        assert (np.asarray(d2) == 0).all()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_von_mises_log_prob_as_one_negated_sum_against_scipy(dtype, request):
    """``VonMises.log_prob`` written ``-(log i0e(k) + log 2 pi + 2 k sin^2(d / 2))``: values against
    ``scipy.stats.vonmises.logpdf`` for k from 0 to 1e6 and d = y - mu from 0 (and 1e-20) to pi and past 2 pi;
    d/dmu = k sin d and d/dk = cos d - I1(k) / I0(k) (k > 0) against scipy's i0e / i1e."""
    if dtype == "float64":
        request.getfixturevalue("x64")
    dt = jnp.dtype(dtype)
    from scipy import special
    k = np.array([0.0, 1e-6, 0.5, 1.0, 30.0, 1e3, 1e6])
    d = np.array([0.0, 1e-20, 1e-3, 1.0, 3.0, np.pi, 7.0])
    kk, dd = (a.ravel() for a in np.meshgrid(k, d))
    mu = np.full_like(dd, 0.25)
    one = lambda m, c, t: mj.log_prob(mj.VonMises(m, c), t)  # noqa: E731
    f = jax.jit(jax.vmap(jax.value_and_grad(one, argnums=(0, 1))))
    y = jnp.asarray(mu + dd, dt)
    value, (d_mu, d_k) = f(jnp.asarray(mu, dt), jnp.asarray(kk, dt), y)
    dy = np.asarray(y, np.float64) - mu  # the angle the dtype represents
    ref = stats.vonmises.logpdf(dy, kk)
    eps = 2e-6 if dtype == "float32" else 1e-12

    def close(got, want, scale):  # relative, or absolute on the size of the terms (k |d| for the cosine term)
        err = np.abs(np.asarray(got, np.float64) - want)
        bad = ~(err <= eps * (np.abs(want) + scale))
        assert not bad.any(), (kk[bad], dy[bad], np.asarray(got)[bad], want[bad])
    close(value, ref, 1 + kk * np.abs(dy))
    close(d_mu, kk * np.sin(dy), 1 + kk * np.abs(dy))
    # d/dk for k > 0 (at k = 0, the support's edge, jax's i0e derivative takes sign(0) = 0: one side's slope)
    pos = kk > 0
    kk, dy = kk[pos], dy[pos]
    close(np.asarray(d_k)[pos], np.cos(dy) - special.i1e(kk) / special.i0e(kk), 10.0)


def _censored_generic(mu, sigma, y, side):
    """The censored kernel as mj.censored builds it for any other family: log_prob / log_tail under two selects."""
    theta = mj.Normal(mu, sigma)
    known = (side == -1) | (side == 0) | (side == 1)
    return jnp.where(known, jnp.where(side == 0, mj.log_prob(theta, y), mj.log_tail(theta, y, side > 0)), -jnp.inf)


def _censored_cases(dtype):
    z = np.array([-40.0, -20.0, -10.0, -8.0, -5.0, -1.0, 0.0, 1.0, 5.0, 8.0, 10.0, 20.0, 40.0])
    sides = np.array([-1.0, 0.0, 1.0])
    zz, ss = (a.ravel() for a in np.meshgrid(z, sides))
    mu, sigma = 0.5, 2.0
    return mu, sigma, mu + sigma * zz, ss


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_censored_normal_written_derivatives_against_scipy(dtype, request):
    """``normal.censored_log_prob`` (what ``mj.censored(mj.normal(...))`` calls): values against scipy's
    ``norm.logpdf`` / ``logcdf`` / ``logsf`` at z = 0 .. +-40 for each side; d/dmu, d/dsigma, d/dy against the
    closed forms (observed: z / sigma, (z^2 - 1) / sigma; censored: the Mills ratio exp(log phi - log Phi) from
    scipy); at y = +-inf, NaN and a side of 2 the same values and derivatives as autodiff of the generic selects."""
    if dtype == "float64":
        request.getfixturevalue("x64")
    dt = jnp.dtype(dtype)
    from mle_jax.distributions.normal import censored_log_prob
    mu, sigma, y, side = _censored_cases(dtype)
    n = len(y)
    f = lambda m, s, t, sd: censored_log_prob(mj.Normal(m, s), t, sd)  # noqa: E731
    vg = jax.jit(jax.vmap(jax.value_and_grad(f, argnums=(0, 1, 2))))
    args = (jnp.full(n, mu, dt), jnp.full(n, sigma, dt), jnp.asarray(y, dt), jnp.asarray(side, dt))
    value, (d_mu, d_sigma, d_y) = vg(*args)
    value, d_mu, d_sigma, d_y = (np.asarray(a, np.float64) for a in (value, d_mu, d_sigma, d_y))
    z = (np.asarray(args[2], np.float64) - mu) / sigma
    norm = stats.norm(mu, sigma)
    ref = np.where(side == 0, norm.logpdf(z * sigma + mu), np.where(side > 0, norm.logsf(z * sigma + mu),
                                                                      norm.logcdf(z * sigma + mu)))
    s = np.where(side > 0, -1.0, 1.0)
    mills = np.exp(stats.norm.logpdf(s * z) - np.where(side == 0, 0.0, ref))  # phi(s z) / Phi(s z) where censored
    ref_mu = np.where(side == 0, z / sigma, -s * mills / sigma)
    ref_sigma = np.where(side == 0, (z * z - 1) / sigma, -s * mills * z / sigma)
    tiny = np.finfo(dtype).tiny
    ok = np.abs(ref) > tiny
    rtol, atol = (2e-5, 1e-7) if dtype == "float32" else (1e-10, 1e-15)  # log_ndtr's own accuracy (first test)
    np.testing.assert_allclose(value[ok], ref[ok], rtol=rtol, atol=atol)
    drtol = 5e-5 if dtype == "float32" else 1e-8
    for got, want in ((d_mu, ref_mu), (d_sigma, ref_sigma), (d_y, -ref_mu)):
        big = np.abs(want) > 1e-30
        np.testing.assert_allclose(got[big], want[big], rtol=drtol, atol=1e-30)
        np.testing.assert_array_less(np.abs(got[~big]), 1e-29)
    # the edges: y = +-inf, NaN on each side, and sides 2, -3 (-inf, derivatives 0). Certain events (<= inf,
    # >= -inf) have value 0 and derivatives 0 (autodiff of the generic selects gives NaN there, from the unselected
    # branch); impossible ones (<= -inf, >= inf) value -inf and NaN derivatives, as jax's log_ndtr gives
    edge_y = np.array([np.inf, -np.inf, np.nan] * 3 + [0.3, np.inf, np.nan])
    edge_side = np.array([-1.0] * 3 + [0.0] * 3 + [1.0] * 3 + [2.0, 2.0, -3.0])
    m = len(edge_y)
    eargs = (jnp.full(m, mu, dt), jnp.full(m, sigma, dt), jnp.asarray(edge_y, dt), jnp.asarray(edge_side, dt))
    nan, inf = np.nan, np.inf
    want_value = [0, -inf, nan, -inf, -inf, nan, -inf, 0, nan, -inf, -inf, -inf]
    want_mu = [0, nan, nan, inf, -inf, nan, nan, 0, nan, 0, 0, 0]
    want_sigma = [0, nan, nan, inf, inf, nan, nan, 0, nan, 0, 0, 0]
    value, (d_mu, d_sigma, d_y) = vg(*eargs)
    for got, want in ((value, want_value), (d_mu, want_mu), (d_sigma, want_sigma), (d_y, -np.array(want_mu))):
        np.testing.assert_array_equal(np.asarray(got, np.float64), np.asarray(want, np.float64))
    generic = jax.jit(jax.vmap(_censored_generic))(*eargs)
    np.testing.assert_array_equal(np.asarray(value), np.asarray(generic))


@pytest.mark.deep
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_censored_normal_second_derivatives_match_autodiff_of_the_generic_form(dtype, request):
    """The Hessian in (mu, sigma) of ``normal.censored_log_prob`` (autodiff through its written first derivatives)
    equals the Hessian of the generic selects, at z = 0 .. +-40 on each side; in the far tail of a censored side
    (s z below -10, float32, or -20, float64), where autodiff of ``log_ndtr`` itself is off (1.7% at z = -40 in
    float32), it equals mpmath's."""
    if dtype == "float64":
        request.getfixturevalue("x64")
    dt = jnp.dtype(dtype)
    from mle_jax.distributions.normal import censored_log_prob
    mu, sigma, y, side = _censored_cases(dtype)
    n = len(y)

    def hess(f):
        g = lambda p, t, sd: f(p[0], p[1], t, sd)  # noqa: E731
        return jax.jit(jax.vmap(jax.hessian(g)))
    p = jnp.tile(jnp.asarray([mu, sigma], dt), (n, 1))
    got = np.asarray(hess(lambda m, s, t, sd: censored_log_prob(mj.Normal(m, s), t, sd))(p, jnp.asarray(y, dt),
                                                                                          jnp.asarray(side, dt)))
    want = np.array(hess(_censored_generic)(p, jnp.asarray(y, dt), jnp.asarray(side, dt)))
    t = np.where(side > 0, -1.0, 1.0) * (y - mu) / sigma
    far = (side != 0) & (t < (-10.0 if dtype == "float32" else -20.0))
    import mpmath as mp
    mp.mp.dps = 50
    for i in np.flatnonzero(far):
        s_i = -1.0 if side[i] > 0 else 1.0
        f = lambda m, g: mp.log(mp.ncdf(s_i * (mp.mpf(y[i]) - m) / g))  # noqa: E731
        at = (mp.mpf(mu), mp.mpf(sigma))
        want[i] = [[float(mp.diff(f, at, (2, 0))), float(mp.diff(f, at, (1, 1)))],
                   [float(mp.diff(f, at, (1, 1))), float(mp.diff(f, at, (0, 2)))]]
    np.testing.assert_allclose(got, want, rtol=1e-4 if dtype == "float32" else 1e-9, atol=1e-30)
