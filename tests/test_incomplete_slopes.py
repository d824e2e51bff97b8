"""The incomplete beta's closed-form derivative in x (incomplete._closed_form_in_x) against mpmath, in
float64: on both sides of the fraction's switch point x = (a + 1)/(a + b + 2), in both far tails, with
``log x`` and ``log(1 - x)`` tied to one variable (the smaller one's tangent) or only one of them live;
and the Student t's log CDF gradient in its location, scale and df in the far tails, where the tangent
of ``log(1 - x)`` is lost to rounding and the one of ``log x`` must be taken."""

import functools

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

import mle_jax as mj
from mle_jax.distributions import incomplete


def _slope(a, b, x):
    """d log I_x(a, b) / dx = x^(a-1) (1-x)^(b-1) / (B(a, b) I_x(a, b))."""
    a, b, x = mp.mpf(a), mp.mpf(b), mp.mpf(x)
    return float(x ** (a - 1) * (1 - x) ** (b - 1) / (mp.beta(a, b) * mp.betainc(a, b, 0, x, regularized=True)))


@pytest.mark.deep
@pytest.mark.parametrize("a, b", [(0.5, 0.5), (2.0, 3.0), (30.0, 40.0), (1e3, 0.5), (0.2, 200.0)])
def test_log_betainc_slope_in_x_matches_the_density_ratio(a, b):
    mp.mp.dps = 40
    switch = (a + 1) / (a + b + 2)
    xs = [1e-6, switch * (1 - 1e-3), switch * (1 + 1e-3), 1 - 1e-9]
    with jax.enable_x64(True):
        def tied(x):
            return incomplete.log_betainc(jnp.float64(a), jnp.float64(b), jnp.log(x), jnp.log1p(-x))

        def in_log_x(log_x, log_1mx):
            return incomplete.log_betainc(jnp.float64(a), jnp.float64(b), log_x, log_1mx)

        for x in xs:
            ref = _slope(a, b, x)
            np.testing.assert_allclose(jax.grad(tied)(jnp.float64(x)), ref, rtol=1e-9)
            # only one of the two live: d/d log x = x I'/I (log(1 - x) held), d/d log(1 - x) = -(1 - x) I'/I
            log_x, log_1mx = jnp.log(jnp.float64(x)), jnp.log1p(-jnp.float64(x))
            np.testing.assert_allclose(jax.grad(lambda v: in_log_x(v, log_1mx))(log_x), x * ref, rtol=1e-9)
            np.testing.assert_allclose(jax.grad(lambda v: in_log_x(log_x, v))(log_1mx), -(1 - x) * ref, rtol=1e-9)


@pytest.mark.deep
@pytest.mark.parametrize("y", [-1e6, -3.0, 0.5, 40.0, 1e8])
def test_student_t_log_cdf_gradient_in_the_far_tails(y):
    mp.mp.dps = 40
    loc, scale, df = 0.2, 1.3, 4.0

    def ref(loc, scale, df):
        t = (mp.mpf(y) - loc) / scale
        x = df / (df + t * t)
        half = mp.betainc(df / 2, mp.mpf(0.5), 0, x, regularized=True) / 2
        return mp.log(half if t < 0 else 1 - half)

    want = [mp.diff(lambda v: ref(v, mp.mpf(scale), mp.mpf(df)), mp.mpf(loc)),
            mp.diff(lambda v: ref(mp.mpf(loc), v, mp.mpf(df)), mp.mpf(scale)),
            mp.diff(lambda v: ref(mp.mpf(loc), mp.mpf(scale), v), mp.mpf(df))]
    with jax.enable_x64(True):
        got = jax.grad(lambda m, s, d: mj.log_cdf(mj.StudentT(d, m, s), jnp.float64(y)), argnums=(0, 1, 2))(
            jnp.float64(loc), jnp.float64(scale), jnp.float64(df))
    np.testing.assert_allclose(got, [float(w) for w in want], rtol=1e-8)


@pytest.mark.deep
@pytest.mark.parametrize("a", [0.3, 5.0, 500.0])
def test_log_gammainc_slope_in_x_matches_the_density_ratio(a):
    """Series (x < a + 1), Legendre's fraction and Temme's expansion (a = 500, |x/a - 1| < 1/4) alike:
    d log P / dx = x^(a-1) e^-x / (Gamma(a) P), d log Q / dx = -x^(a-1) e^-x / (Gamma(a) Q), from ``x`` or
    from the caller's ``log x``."""
    mp.mp.dps = 40
    for x in (1e-3 * a, 0.9 * a, 1.1 * a, 3.0 * a + 2):
        density = mp.mpf(x) ** (a - 1) * mp.exp(-mp.mpf(x)) / mp.gamma(a)
        ref_p = float(density / mp.gammainc(a, 0, x, regularized=True))
        ref_q = float(-density / mp.gammainc(a, x, mp.inf, regularized=True))
        with jax.enable_x64(True):
            a_, x_ = jnp.float64(a), jnp.float64(x)
            got = [jax.grad(lambda v: incomplete.log_gammainc_tail(a_, v, up))(x_) for up in (False, True)]
            via_log = [jax.grad(lambda v: incomplete.log_gammainc_tail(a_, x_, up, v))(jnp.log(x_)) for up in (False, True)]
        np.testing.assert_allclose(got, [ref_p, ref_q], rtol=1e-9)
        np.testing.assert_allclose(via_log, [x * ref_p, x * ref_q], rtol=1e-9)


def test_log1pmx_series_derivative_is_the_closed_form():
    """``-t/(1 + t)`` written out for the prefixes' series: against mpmath across |t| < 1/4."""
    with jax.enable_x64(True):
        for t in (-0.249, -1e-5, 1e-7, 0.1, 0.249):
            ref = float(mp.diff(lambda v: mp.log1p(v) - v, t))
            np.testing.assert_allclose(jax.grad(incomplete._log1pmx_series)(jnp.float64(t)), ref, rtol=1e-12)


# (a, x) at the incomplete gamma's branch edges: Temme's expansion (a >= 100, |x/a - 1| < 1/4; x = a exactly;
# Mills' asymptotic series from v = 10 in float32, 20 in float64: v = 42 at a = 3e4, u = 0.249) against the
# series (x < a + 1) and Legendre's fraction on either side of each edge, and the prefix's switch to
# Stirling's series at a = 10
_GAMMA_EDGES = ([(a, a * (1.0 + u)) for a in (100.0, 3e4) for u in (-0.249, 0.0, 0.249)]
                + [(99.9, 99.0), (100.0, 74.9), (100.0, 125.1), (2e3, 2e3 * 0.76), (9.99, 11.0), (10.0, 11.5),
                   (0.5, 1.49), (0.5, 1.51), (5.0, 5.99), (5.0, 6.01)])


@pytest.mark.deep
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_log_gammainc_gradients_at_the_branch_edges(dtype):
    """d/da and d/dx of log P and log Q (Temme's written derivative, the loops' forward mode, the prefix's
    written derivative) against mpmath's numerical derivatives at 40 digits, on each side of every switch."""
    mp.mp.dps = 40
    tol = dict(rtol=1e-9, atol=1e-300) if dtype == "float64" else dict(rtol=2e-3, atol=1e-30)
    rows = {upper: _log_q_jax(_GAMMA_EDGES, dtype, upper)[1] for upper in (False, True)}
    for i, (a, x) in enumerate(_GAMMA_EDGES):
        a_, x_ = mp.mpf(a), mp.mpf(x)
        # the smaller side S by numerical derivatives; the other, 1 - S, by d log(1 - S) = -S/(1 - S) d log S
        # (1 - S rounds to 1 at 40 digits where S = 1e-490)
        lower = mp.gammainc(a_, 0, x_, regularized=True) < 0.5

        def log_small(av, xv):
            lo, hi = (0, xv) if lower else (xv, mp.inf)
            return mp.log(mp.gammainc(av, lo, hi, regularized=True))
        small = mp.exp(log_small(a_, x_))
        d_small = [mp.diff(lambda v: log_small(v, x_), a_), mp.diff(lambda v: log_small(a_, v), x_)]
        d_large = [-small / (1 - small) * d for d in d_small]
        for upper in (False, True):
            want = [float(d) for d in (d_small if upper != lower else d_large)]
            got = rows[upper][i, 1:3]  # d/da, d/dx
            np.testing.assert_allclose(got, want, err_msg=f"a={a} x={x} upper={upper}", **tol)


# points where log P's series or log Q's fraction runs (not Temme): shapes 1e-3 .. 1e4, x tiny, near a, far
# below and above it, an integer a (the fraction's zero numerator, where the shadow keeps the derivative going)
_LOOP_POINTS = [(1e-3, 1e-30), (1e-3, 5.0), (0.5, 0.3), (0.5, 3.0), (3.0, 8.0), (7.0, 2.0), (50.0, 50.5),
                (50.0, 52.0), (1e3, 10.0), (1e3, 5e3), (1e4, 10.0), (1e4, 2e4)]


@pytest.mark.deep
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_log_gammainc_loops_written_derivatives_against_mpmath(dtype):
    """The series' and fraction's written derivative loops: d/da, d/dx and the Hessian in (a, x) of the
    smaller of log P and log Q against mpmath's numerical derivatives at 40 digits."""
    mp.mp.dps = 40
    tol = dict(rtol=1e-8, atol=1e-300) if dtype == "float64" else dict(rtol=3e-3, atol=1e-30)
    rows = {upper: _log_q_jax(_LOOP_POINTS, dtype, upper)[1] for upper in (False, True)}
    for i, (a, x) in enumerate(_LOOP_POINTS):
        a_, x_ = mp.mpf(a), mp.mpf(x)
        upper = x > a  # the smaller side, or both moderate (mpmath's lower series stalls at a = 1e6)

        def log_small(av, xv):
            lo, hi = (xv, mp.inf) if upper else (0, xv)
            return mp.log(mp.gammainc(av, lo, hi, regularized=True))
        want = [mp.diff(log_small, (a_, x_), order) for order in ((1, 0), (0, 1), (2, 0), (1, 1), (0, 2))]
        got = rows[upper][i, [1, 2, 3, 4, 6]]  # d/da, d/dx, d2/da2, d2/da dx, d2/dx2
        want = np.array([float(w) for w in want])
        fits = np.abs(want) < float(jnp.finfo(dtype).max)  # float32's d2/dx2 at x = 1e-30 is -1e57: -inf
        np.testing.assert_allclose(got[fits], want[fits], err_msg=f"a={a} x={x} upper={upper}", **tol)
        assert np.all(np.isinf(got[~fits]) & (np.sign(got[~fits]) == np.sign(want[~fits])))


def _log_q_reference(a, x, upper=True):
    """log Q(a, x) (log P where not upper), its gradient and Hessian in (a, x) by mpmath at 40 digits (numerical
    derivatives)."""
    mp.mp.dps = 40

    def f(av, xv):
        q = mp.gammainc(av, xv, mp.inf, regularized=True)
        return mp.log(q) if upper else mp.log1p(-q)  # P = 1 - 1e-50 at x = 100: 1 at 40 digits
    at = (mp.mpf(a), mp.mpf(x))
    return np.array([float(mp.diff(f, at, order)) for order in ((0, 0), (1, 0), (0, 1), (2, 0), (1, 1), (0, 2))])


_POINTS = 40  # every table below is padded to this many points: one compile per dtype and side, for all of them


@functools.partial(jax.jit, static_argnums=1)
def _value_gradient_hessian(points, upper):
    """The value, gradient and Hessian from one reverse pass and its forward derivative (the Hessian as the forward
    Jacobian of ``value_and_grad``, which carries the value and gradient out): 30% less compile than three."""
    def f(p):
        return incomplete.log_gammainc_tail(p[0], p[1], upper)

    def gradient(p):
        value, grad = jax.value_and_grad(f)(p)
        return grad, (value, grad)

    def each(p):
        hess, (value, grad) = jax.jacfwd(gradient, has_aux=True)(p)
        return value, grad, hess
    return jax.vmap(each)(points)


def _log_q_jax(points, dtype, upper=True):
    """value, gradient, Hessian (a-a, a-x, x-a, x-x) of incomplete.log_gammaincc (log_gammainc where not upper) at
    each (a, x), in dtype: the points as the dtype holds them, and a row for each."""
    n = len(points)
    assert n <= _POINTS
    with jax.enable_x64(dtype == "float64"):
        p = np.asarray(points, dtype)
        value, grad, hess = _value_gradient_hessian(jnp.asarray(np.resize(p, (_POINTS, 2))), upper)
        return np.asarray(p, np.float64), np.concatenate([np.asarray(value, np.float64)[:n, None],
                                                          np.asarray(grad, np.float64)[:n],
                                                          np.asarray(hess, np.float64)[:n].reshape(-1, 4)], axis=1)


def _check_log_q(points, dtype, rtol, upper=True):
    p, got = _log_q_jax(points, dtype, upper)
    for (a, x), row in zip(p, got):
        want = _log_q_reference(a, x, upper)  # at the points as the dtype holds them
        # [value, d/da, d/dx, d2/da2, d2/da dx, d2/dx da, d2/dx2]: both orders of the mixed derivative
        # atol: float32 flushes log P ~ -Q = -1e-48 at x = 100 (and its derivatives) to 0
        np.testing.assert_allclose(row, want[[0, 1, 2, 3, 4, 4, 5]], rtol=rtol, atol=float(np.finfo(dtype).tiny),
                                   err_msg=f"a={a} x={x}")


@pytest.mark.deep  # ~9 s: the Hessian's compile
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_log_gammaincc_hessian_at_a_tiny_shape_below_x_one(dtype):
    """log Q(1e-3, 1) (Q = 2.2e-4) on the series' side of x = a + 1: log(1 - P) kept 3.7 fewer digits (8e-4 of
    log Q in float32) and forward mode multiplied d log P's rounding by P/Q = 4,500: d2 log Q / da dx was 1.24
    (and 2.03 the other way round) for mpmath's 0.748; log Q is now taken directly (DLMF 8.7.3)."""
    _check_log_q([(1e-3, 1.0), (1e-4, 0.5)], dtype, 2e-5 if dtype == "float32" else 1e-12)


@pytest.mark.deep
@pytest.mark.parametrize("upper", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_log_gammaincc_value_gradient_hessian_over_tiny_shapes_against_mpmath(dtype, upper):
    """log Q and log P, their gradients and Hessians in (a, x) over a = 1e-4 .. 1e-1 and x = 1e-3 .. 1e2 (the direct
    log Q of DLMF 8.7.3 below x = 1.1, the series' complement and the fraction beyond) against mpmath. log P's
    d2/da2 at tiny a was 4e-4 (float32) off beyond x = a + 1 and 3e-3 below, through log(1 - exp(log Q))."""
    points = [(a, x) for a in (1e-4, 1e-3, 1e-2, 1e-1) for x in (1e-3, 1e-2, 0.1, 0.5, 1.0, 1.05, 1.1, 2.0, 10.0, 1e2)]
    _check_log_q(points, dtype, 2e-5 if dtype == "float32" else 1e-12, upper)
