"""Session 43: the Gamma at its edges. The Bregman divergence of lgamma (the Gamma, Beta and Dirichlet KL) and the
Gamma KL between close pairs against mpmath at 50 digits, each over a whole grid in one compiled program per dtype."""

import itertools

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

from mle_jax.distributions import gamma, normal
from mle_jax.distributions.incomplete import log_gammainc_tail
from mle_jax.distributions.special import lgamma_bregman


def _mp_bregman(a, b):
    """``lgamma(b) - lgamma(a) - (b - a) psi(a)`` at 50 digits."""
    a, b = mp.mpf(float(a)), mp.mpf(float(b))
    return float(mp.loggamma(b) - mp.loggamma(a) - (b - a) * mp.digamma(a))


def _mp_gamma_kl(ap, bp, aq, bq):
    ap, bp, aq, bq = (mp.mpf(float(v)) for v in (ap, bp, aq, bq))
    return float((ap - aq) * mp.digamma(ap) - mp.loggamma(ap) + mp.loggamma(aq) + aq * (mp.log(bp) - mp.log(bq))
                 + ap * (bq - bp) / bp)


def _close_pairs(dtype):
    """Shapes 1e-3..1e3, the second shape ``a (1 +- g)`` for relative gaps g of 1e-6..1 (as rounded in the dtype)."""
    a = np.geomspace(1e-3, 1e3, 13).astype(dtype)
    g = np.array([1e-6, 1e-4, 1e-2, 0.3, 1.0])
    a, g, s = (v.ravel() for v in np.meshgrid(a, g, [-1.0, 1.0], indexing="ij"))
    b = (a * (1.0 + s * g)).astype(dtype)
    keep = b > 0
    return a[keep], b[keep]


@pytest.mark.deep
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lgamma_bregman_and_gamma_kl_close_pairs_against_mpmath(dtype):
    """``B(d, a) = lgamma(a + d) - lgamma(a) - d psi(a)`` to a few roundings of itself at every shape (the plain
    difference of lgammas below 10 kept ``eps lgamma(a)``: 1e6 relative at a gap of 1e-6 in float32, 5e-3 in float64;
    Stirling's form above 10 two terms of ``d/(2a)``), exactly 0 at ``d = 0``; the Gamma KL of those pairs, rates 1
    and ``1 + 1e-4``, within 1e-5 (float32) / 1e-12 (float64) (KL(Gamma(9.99, 1) || Gamma(10, 1.0001)) was 7.79e-6
    for 4.31e-6 in float32; equal means at shape 1000, 2.5e-9, 2e-4 off), 0 at p = q. One program per dtype."""
    with jax.enable_x64(dtype == np.float64), mp.workdps(50):
        a, b = _close_pairs(dtype)
        rate = np.array([1.0, 1.0 + 1e-4], dtype)
        cells = np.array([(p, 1.0, q, r) for (p, q), r in itertools.product(zip(a, b), rate)]
                         + [(9.99, 1.0, 10.0, 1.0001)], dtype)

        def f(a, b, cells):
            kl = jax.vmap(lambda v: gamma.kl(gamma.Gamma(v[0], v[1]), gamma.Gamma(v[2], v[3])))
            return (lgamma_bregman(b - a, a, b), lgamma_bregman(0.0 * a, a, a), kl(cells),
                    kl(cells[:, jnp.array([0, 1, 0, 1])]))

        out = jax.jit(f)(jnp.asarray(a), jnp.asarray(b), jnp.asarray(cells))
        value, zero, kl, same = (np.asarray(v, np.float64) for v in out)
        want = np.array([_mp_bregman(p, q) for p, q in zip(a, b)])
        want_kl = np.array([_mp_gamma_kl(*row) for row in cells])
    np.testing.assert_allclose(value, want, rtol=10 * np.finfo(dtype).eps)
    assert np.all(zero == 0.0) and np.all(same == 0.0)
    np.testing.assert_allclose(kl, want_kl, rtol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("module, theta", [(gamma, gamma.Gamma(jnp.ones(3), jnp.ones(3))),
                                           (normal, normal.Normal(jnp.zeros(3), jnp.ones(3)))])
def test_censored_log_prob_refuses_a_side_of_another_shape(module, theta):
    """A direct call with a (3, 1) or scalar side against a (3,) y broadcast to a (3, 3) or silently mixed result;
    now a ValueError naming both shapes, before any tracing (``mj.censored``'s own tests call it with the right ones)."""
    y = jnp.array([0.5, 1.0, 2.0])
    for side in (jnp.zeros((3, 1)), jnp.asarray(0.0), jnp.zeros(1)):
        with pytest.raises(ValueError, match=r"side has shape \(.*\) but y has shape \(3,\)"):
            module.censored_log_prob(theta, y, side)


@pytest.mark.deep
def test_log_gammainc_second_derivative_in_a_at_integer_a_by_grad_of_grad():
    """``d^2 log P / da^2`` on the fraction's side at an integer a was 7.7e-3 off at (1, 2.5) (2.6e-4 at (2, 4)): the
    loop's value stops moving once converged, and at an integer a it converges (a partial numerator ``-m (m - a)``
    is 0) before its derivative, so forward mode of the value lost the rest. And ``jax.grad(jax.grad(f))`` raised
    JAX's while_loop reverse-mode error. Now grad of grad in a against mpmath's numerical second derivative at 40
    digits (float64; log P and log Q on the fraction's side, the series' and Temme's; one program, a second
    derivative's compile: a few seconds)."""
    cells = np.array([(1.0, 2.5, 0), (1.0 + 1e-9, 2.5, 0), (2.0, 4.0, 0), (3.0, 7.0, 0), (1.0, 2.5, 1), (1.0, 30.0, 0),
                      (0.5, 2.5, 0), (2.0, 0.5, 0), (2.0, 0.5, 1), (150.0, 160.0, 0)])
    with jax.enable_x64(True), mp.workdps(40):
        a, x, u = (jnp.asarray(c) for c in cells.T)
        total = lambda a: jnp.sum(log_gammainc_tail(a, x, u > 0))  # noqa: E731  (elementwise: its grad is per cell)
        d_aa = np.asarray(jax.jit(jax.grad(lambda a: jnp.sum(jax.grad(total)(a))))(a))

        def log_pq(a, x, u):
            return mp.log(mp.gammainc(a, x, mp.inf, regularized=True) if u else mp.gammainc(a, 0, x, regularized=True))

        want = [float(mp.diff(lambda v: log_pq(v, mp.mpf(x), u), mp.mpf(a), 2)) for a, x, u in cells]
    np.testing.assert_allclose(d_aa, want, rtol=1e-10)


@pytest.mark.deep
def test_log_gammainc_below_shape_one_beyond_x_1p1():
    """Below a = 1 the series took ``log P`` up to ``x = a + 1``; beyond ``x = 1.1`` (where the direct ``log Q`` stops)
    ``log P = prefix + log(sum)`` is close to 0 while its terms are near x: 222 float64 ulps at (0.13, 1.13), ``log Q``
    by ``log(1 - P)`` worse. The fraction takes them now (``log P = log1p(-Q)``): both within 50 ulps of mpmath (a
    sweep of a in 1e-6..1, x in 1e-10..50 finds 46 at most outside (0.2, 1) x (0.7, 1.1), 84 there: Lanczos's
    ``lgamma(1 + a)``, 35 ulps itself). One program."""
    a, x = (v.ravel() for v in np.meshgrid(np.geomspace(0.1, 0.9, 10), np.linspace(1.101, 1.4, 10), indexing="ij"))
    a, x = np.append(a, [0.130391, 0.17349, 0.25337, 0.5, 0.9]), np.append(x, [1.12552, 1.16862, 1.1279, 1.45, 1.85])
    keep = x < a + 1.0
    cells = np.array([(p, q, u) for p, q in zip(a[keep], x[keep]) for u in (0.0, 1.0)])
    with jax.enable_x64(True), mp.workdps(40):
        got = np.asarray(jax.jit(lambda a, x, u: log_gammainc_tail(a, x, u > 0))(*(jnp.asarray(c) for c in cells.T)))
        want = [float(mp.log(mp.gammainc(mp.mpf(p), mp.mpf(q), mp.inf, regularized=True)) if u
                      else mp.log1p(-mp.gammainc(mp.mpf(p), mp.mpf(q), mp.inf, regularized=True))) for p, q, u in cells]
    np.testing.assert_allclose(got, want, rtol=50 * np.finfo(np.float64).eps)


@pytest.mark.deep  # one compile of log P and log Q with their slopes; mpmath at 24 points
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gamma_tails_near_the_top_of_the_float_range(dtype):
    """``log Q(a, x)`` and ``log P(a, x)`` at finite x up to the largest float were NaN (float32 from x ~ 1e37.5,
    float64 from ~1e307.5): the fraction's ``D ~ 1/x`` is subnormal there, flushed to 0. Beyond ``x eps = 1 + a`` the
    fraction is its first term ``1/(x + 1 - a)`` (to ``(a - 1)/x^2``): the values against mpmath, the slopes against
    ``d log Q / dx = -x^(a-1) e^-x / (Gamma(a) Q)`` (mpmath) and ``d log Q / da = log x - psi(a) + 1/(x + 1 - a)``
    (the first term's, exact to 1/x^2 there), ``log P`` 0 with slopes 0."""
    top = np.finfo(dtype).max
    xs = np.array([top / 1.5, top / 3.0, top / 30.0, top / 1e6], dtype)
    cells = np.array([(a, x) for a in (0.5, 3.0, 1e4) for x in xs])
    with jax.enable_x64(dtype == np.float64):
        a, x = (jnp.asarray(c, dtype) for c in cells.T)

        def each(a_, x_):
            return jnp.stack([log_gammainc_tail(a_, x_, True), log_gammainc_tail(a_, x_, False)])
        value = np.asarray(jax.jit(jax.vmap(each))(a, x), np.float64)
        # reverse mode, each output alone (forward mode's tangent of log x, t / x, is subnormal beyond 1/tiny)
        slopes = np.stack([np.stack(jax.jit(jax.vmap(jax.grad(lambda a_, x_: each(a_, x_)[k], (0, 1))))(a, x), -1)
                           for k in range(2)], 1).astype(np.float64)
    eps = np.finfo(dtype).eps
    for (av, xv), v, s in zip(cells, value, slopes):
        with mp.workdps(50):
            am, xm = mp.mpf(float(av)), mp.mpf(float(np.asarray(xv, dtype)))
            log_q = mp.log(mp.gammainc(am, xm, mp.inf, regularized=True))
            d_x = -mp.exp((am - 1) * mp.log(xm) - xm - mp.loggamma(am) - log_q)
            d_a = mp.log(xm) - mp.digamma(am) + 1 / (xm + 1 - am)
        np.testing.assert_allclose(v, [float(log_q), 0.0], rtol=4 * eps, err_msg=f"a={av} x={xv}")
        # d/dx by the closed form exp(log R - log x): eps log x of rounding (float32 at 1e38: 30 ulps)
        np.testing.assert_allclose(s[0], [float(d_a), float(d_x)], rtol=4 * eps * float(mp.log(xm)),
                                   err_msg=f"a={av} x={xv}")
        assert np.all(s[1] == 0.0), (av, xv, s[1])
