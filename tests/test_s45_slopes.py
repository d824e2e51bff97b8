"""Session 45: forward-mode slopes at the edges of the distributions, against mpmath at 50 digits (closed forms of the
slopes where they exist, ``mpmath.diff`` of the value elsewhere)."""

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

from mle_jax.distributions import gamma


def _mp_gamma_slopes(a, b, y, side):
    """``(d/db, d/dy)`` of a censored Gamma(a, b)'s log-likelihood at y: the density's ``(a/b - y, (a - 1)/y - b)``
    where side 0, else ``+-(y, b) x^(a-1) e^-x / (Gamma(a) P or Q)`` at ``x = b y`` (Q where side +1, sign -)."""
    with mp.workdps(50):
        a, b, y = (mp.mpf(float(v)) for v in (a, b, y))
        if side == 0:
            return float(a / b - y), float((a - 1) / y - b)
        x = b * y
        tail = mp.gammainc(a, x, mp.inf, regularized=True) if side > 0 else mp.gammainc(a, 0, x, regularized=True)
        d_x = (-1 if side > 0 else 1) * mp.exp((a - 1) * mp.log(x) - x - mp.loggamma(a) - mp.log(tail))
        return float(d_x * y), float(d_x * b)


@pytest.mark.deep  # one compile per dtype of the slopes over 21 points (~3 s)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_censored_gamma_forward_slopes_where_x_is_near_the_top_of_the_range(dtype):
    """``jax.jacfwd`` of a Gamma's ``log_sf`` in y at y = 1e38 (float32) read 0 for -1: its tail was passed ``log x =
    log b + log y``, whose tangent ``t_y / y + t_b / b`` is subnormal (flushed to 0) from ``x ~ 1/tiny``. The censored
    density and both tails in (b, y) at x from 1e37 to the largest float, in the rate's direction too, and ordinary
    points, where nothing changed."""
    top = float(np.finfo(dtype).max)
    cells = [(2.0, 1.0, top / 3.4), (0.5, 1.0, top / 1.2), (30.0, top / 3.4e8, 1e8), (2.0, top / 3.4, 1.0),
             (3.0, top / 100, 2.0), (2.0, 1.0, 3.0), (0.5, 2.0, 0.1)]
    a, b, y = (np.array(c, dtype) for c in zip(*cells))
    sides = np.array([-1, 0, 1])
    with jax.enable_x64(dtype == np.float64):
        def each(a_, b_, y_, s_):
            lp = lambda b__, y__: gamma.censored_log_prob(gamma.Gamma(a_, b__), y__, s_)  # noqa: E731
            tail = lambda b__, y__: gamma.log_tail(gamma.Gamma(a_, b__), y__, s_ > 0)  # noqa: E731
            return jnp.stack([jnp.stack(jax.jacfwd(lp, (0, 1))(b_, y_)), jnp.stack(jax.jacfwd(tail, (0, 1))(b_, y_))])
        rep = lambda v: jnp.asarray(np.repeat(v, sides.size))  # noqa: E731
        got = np.asarray(jax.jit(jax.vmap(each))(rep(a), rep(b), rep(y), jnp.asarray(np.tile(sides, a.size))),
                         np.float64).reshape(a.size, sides.size, 2, 2)
    eps = np.finfo(dtype).eps
    for k, (av, bv, yv) in enumerate(zip(a, b, y)):
        for j, side in enumerate(sides):
            want = _mp_gamma_slopes(av, bv, yv, side)
            # eps log x of rounding in the closed form exp(log R - log x)
            tol = 4 * eps * max(4.0, np.log(float(bv) * float(yv)))
            for m in range(2 if side else 1):  # log_tail is the density nowhere
                np.testing.assert_allclose(got[k, j, m], want, rtol=tol, atol=1e-30,
                                           err_msg=f"a={av} b={bv} y={yv} side={side} form={m}")


def _mp_von_mises_tail(k, x, upper):
    """``log Pr(X > x)`` where ``upper``, else ``log Pr(X <= x)``, for the centred von Mises on [-pi, pi)."""
    norm = 2 * mp.pi * mp.besseli(0, k) * mp.exp(-k)
    g = lambda t: mp.exp(k * (mp.cos(t) - 1))  # noqa: E731
    lo, hi = (x, mp.pi) if upper else (-mp.pi, x)
    return mp.log(mp.quad(g, [lo, 0, hi] if lo < 0 < hi else [lo, hi], maxdegree=8) / norm)  # the peak a node


@pytest.mark.deep  # one float32 compile over 40 points, mpmath's quadrature (~3 s)
def test_von_mises_tail_slopes_near_the_centre_float32():
    """The slope in k of ``log_cdf`` / ``log_sf`` near ``x = 0`` (float32 3e-3 off at ``x = 1e-4``, 7e-4 at 1e-3: the
    tail's ``E[cos t] - A(k)``, terms of size 1 cancelling to one of size x), now ``1/2 -+ C`` with ``C = Pr(0 < X <
    |x|)``; and the slope in x at ``x = 0`` exactly, ``f(0)/F(0) = 2 f(0)`` (it was NaN: the window's 1/sin|x|)."""
    from mle_jax.distributions import von_mises
    ks, xs = [1e-8, 1e-3, 1.0, 30.0], [-1e-4, 1e-3, -0.01, 0.5, 0.0]
    cells = [(k, x, u) for k in ks for x in xs for u in (False, True)]
    k, x = (jnp.asarray([c[i] for c in cells], jnp.float32) for i in (0, 1))
    upper = jnp.asarray([c[2] for c in cells])

    def each(k_, x_, u_):
        tail = lambda k__, x__: von_mises.log_tail(von_mises.VonMises(jnp.zeros_like(x__), k__), x__, u_)  # noqa: E731
        return jnp.stack([tail(k_, x_), *jax.jacfwd(tail, (0, 1))(k_, x_)])
    got = np.asarray(jax.jit(jax.vmap(each))(k, x, upper), np.float64)
    with mp.workdps(30):
        for (kv, xv, u), g in zip(cells, got):
            km, xm = mp.mpf(float(np.float32(kv))), mp.mpf(float(np.float32(xv)))
            if xv == 0:  # the density at 0 over 1/2, of either sign
                f0 = 1 / (2 * mp.pi * mp.besseli(0, km) * mp.exp(-km))
                np.testing.assert_allclose(g[[0, 2]], [-np.log(2), float(-2 * f0 if u else 2 * f0)], rtol=1e-6)
                continue
            want = [float(_mp_von_mises_tail(km, xm, u)),
                    float(mp.diff(lambda t: _mp_von_mises_tail(t, xm, u), km, h=km * mp.mpf("1e-12")))]
            np.testing.assert_allclose(g[:2], want, rtol=1e-5, err_msg=f"k={kv} x={xv} upper={u}")


def _mp_beta_tails(a, b, y):
    """``(log I_y(a, b), log I_{1-y}(b, a))`` (log_cdf, log_sf) by DLMF 8.17.8, ``I_z(p, q) = z^p (1 - z)^q / (p B(p,
    q)) 2F1(p + q, 1; p + 1; z)`` at ``z = 1 - y``, ``p = b`` (its terms positive), the cdf as ``1 - I`` at the
    precision its size needs."""
    z = 1 - y
    log_i = (b * mp.log(z) + a * mp.log(y) - mp.log(b) - mp.log(mp.beta(a, b))
             + mp.log(mp.hyp2f1(a + b, 1, b + 1, z, maxterms=10**6)))
    return mp.log(-mp.expm1(log_i)), log_i


@pytest.mark.deep  # one compile per dtype over 27 points (5-20 s of compiling: .ci/run leaves it to a run by hand)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_beta_tail_slopes_in_the_concentrations_in_the_mirror_region(dtype):
    """``log_cdf`` / ``log_sf`` of Beta(a, b) with a 1e4 .. 1e8, b 1e-4 .. 1, y within 0.3/a .. 30/a of 1 (where the
    incomplete beta is taken in its mirror ``I_{1-y}(b, a)``): the slopes in a and b (forward mode) track
    the value's own error (session 45's sweep of 720 points: worst 5e-6 relative in float32, 2e-11 in float64)."""
    from mle_jax.distributions import beta
    cells = [(a, b, float(dtype(1 - c / a))) for a in (1e4, 1e6, 1e8) for b in (1e-4, 0.01, 1.0)
             for c in (0.3, 3.0, 30.0)]
    cells = [c for c in cells if c[2] < 1]
    a, b, y = (np.array(v, dtype) for v in zip(*cells))
    with jax.enable_x64(dtype == np.float64):
        def each(a_, b_, y_, upper):
            tail = lambda a__, b__: beta.log_tail(beta.Beta(a__, b__), y_, upper)  # noqa: E731
            return jnp.stack([tail(a_, b_), *jax.jacfwd(tail, (0, 1))(a_, b_)])
        two = lambda v: jnp.asarray(np.concatenate([v, v]))  # noqa: E731
        got = np.asarray(jax.jit(jax.vmap(each))(two(a), two(b), two(y), jnp.asarray(np.repeat([False, True], a.size))),
                         np.float64).reshape(2, a.size, 3).transpose(1, 0, 2).reshape(a.size, 6)
    tol = 2e-5 if dtype == np.float32 else 1e-10
    for (av, bv, yv), g in zip(zip(a, b, y), got):
        am, bm, ym = (mp.mpf(float(v)) for v in (av, bv, yv))
        with mp.workdps(60 + int(float(am * (1 - ym)) / 2)):
            for k, upper in enumerate((False, True)):
                f = lambda s, t: _mp_beta_tails(s, t, ym)[upper]  # noqa: E731
                want = [f(am, bm), mp.diff(lambda s: f(s, bm), am, h=am * mp.mpf("1e-15")),
                        mp.diff(lambda t: f(am, t), bm, h=bm * mp.mpf("1e-15"))]
                want = np.array([float(w) for w in want])
                normal = np.abs(want) > np.finfo(dtype).tiny  # below it the float's 0 is right
                part = g[3 * k: 3 * k + 3]
                ok = np.where(normal, np.abs(part - want) <= tol * np.abs(want), np.abs(part) <= np.finfo(dtype).tiny)
                assert ok.all(), (av, bv, 1 - float(yv), upper, part, want)
