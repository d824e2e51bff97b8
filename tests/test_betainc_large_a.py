"""``incomplete.log_betainc`` at ``a >> b`` (a negative binomial's ``I_p(r, k + 1)`` at a large total count):
value and slopes against mpmath over the bulk of the distribution, float32 and float64."""
import functools

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

from mle_jax.distributions.incomplete import log_betainc

A_GRID = (1e4, 1e6, 1e8)
B_GRID = (0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 10.0)
# lambda = (a + b)(1 - x), the Gamma(b) variable the distribution tends to; kept where 1e-30 < I_x < 1 - 1e-6
LAMBDAS = (0.01, 0.05, 0.2, 0.5, 1.0, 2.0, 3.5, 5.0, 8.0, 12.0, 20.0, 35.0, 60.0)


def _cases(dtype, b_grid=B_GRID):
    """The rows of the grid at the b's of ``b_grid`` (mpmath's value and slopes, computed once a dtype)."""
    return [row for row in _all_cases(np.dtype(dtype).name) if row[1] in b_grid]


@functools.lru_cache(maxsize=None)
def _all_cases(dtype):
    with mp.workdps(40):
        return _grid(dtype)


def _grid(dtype):
    rows = []
    for a in A_GRID:
        for b in B_GRID:
            for lam in LAMBDAS:
                y = float(np.asarray(lam / (a + b), dtype))  # the input as the dtype holds it
                log_1mx, log_x = np.log(y), np.log1p(-y)
                ym = mp.mpf(y)

                def f(a_, b_, y_):
                    return mp.log(mp.betainc(a_, b_, 0, 1 - y_, regularized=True))
                value = f(mp.mpf(a), mp.mpf(b), ym)
                if not (mp.log(1e-30) < value < mp.log(1 - mp.mpf(1e-6))):
                    continue
                slopes = (mp.diff(lambda v: f(v, mp.mpf(b), ym), mp.mpf(a)), mp.diff(lambda v: f(mp.mpf(a), v, ym), mp.mpf(b)),
                          mp.diff(lambda v: f(mp.mpf(a), mp.mpf(b), v), ym))
                rows.append((a, b, y, log_x, log_1mx, float(value), [float(s) for s in slopes]))
    return rows


def _fn(a, b, y, log_x, log_1mx):
    # the derivative in y goes through both logs, as a caller's log x = log1p(-y), log(1 - x) = log y
    del log_x, log_1mx
    return log_betainc(a, b, jnp.log1p(-y), jnp.log(y))


@pytest.mark.deep
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_betainc_at_large_a_small_b_matches_mpmath(dtype):
    """Before the fix float32 read -2.443 / -1.332 / -0.380 at a = 1e8, b = 2 / 3 / 4, x = sig(17) (mpmath -2.503 /
    -1.522 / -0.900): both continued fractions lose every digit of ``1 - x`` there. The value to 3e-5 relative
    in I (float32; 1e-10 in float64) and each slope ``d log I / d(a, b, 1 - x)`` to 1e-3 relative of its scale
    (float32; 1e-7 in float64) at a = 1e6, 1e8; a = 1e4 in float32, still on the fractions, to 5e-4 and 3e-3."""
    with jax.enable_x64(dtype == np.float64):
        rows = _cases(dtype)
        a, b, y, lx, l1, ref, slopes = (np.array(c, dtype=np.float64) for c in zip(*rows))
        cast = [jnp.asarray(v, dtype) for v in (a, b, y, lx, l1)]
        got = np.asarray(jax.vmap(_fn)(*cast), np.float64)
        grads = jax.vmap(jax.grad(lambda *v: _fn(*v), argnums=(0, 1, 2)))(*cast)
        grads = np.stack([np.asarray(g, np.float64) for g in grads], axis=1)
    f32 = dtype == np.float32
    small = a < 1e5
    v_tol = np.where(small, 5e-4, 3e-5) if f32 else 1e-10
    g_tol = np.where(small, 3e-3, 1e-3) if f32 else 1e-7
    assert np.all(np.isfinite(got)) and np.all(np.isfinite(grads))
    err = np.abs(got - ref)
    worst = np.argmax(err / v_tol)
    assert np.all(err < v_tol), (a[worst], b[worst], y[worst], got[worst], ref[worst])
    # each slope against its own scale: |d/da| ~ y, |d/db| ~ 1, |d/dy| ~ a
    scale = np.stack([np.abs(slopes[:, 0]) + y, np.abs(slopes[:, 1]) + 1.0 / (1.0 + b), np.abs(slopes[:, 2]) + a / (1 + b)], 1)
    rel = np.abs(grads - slopes) / scale
    worst = np.unravel_index(np.argmax(rel / np.asarray(g_tol).reshape(-1, 1) if f32 else rel), rel.shape)
    assert np.all(rel < np.asarray(g_tol).reshape(-1, 1) if f32 else rel < g_tol), (
        a[worst[0]], b[worst[0]], y[worst[0]], worst[1], grads[worst], slopes[worst])


@pytest.mark.deep
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_betainc_half_matches_mpmath(dtype):
    """``half=True`` (the Student t's ``b = 1/2``): the a >> b form is the closed form ``erfc(sqrt(u))``, not the whole
    incomplete gamma; the same grid, tolerances and slopes (in ``a`` and ``1 - x``) as the general form's test."""
    with jax.enable_x64(dtype == np.float64):
        rows = _cases(dtype, (0.5,))
        a, b, y, lx, l1, ref, slopes = (np.array(c, dtype=np.float64) for c in zip(*rows))
        cast = [jnp.asarray(v, dtype) for v in (a, y)]

        def fn(a_, y_):
            return log_betainc(a_, jnp.full_like(a_, 0.5), jnp.log1p(-y_), jnp.log(y_), half=True)
        got = np.asarray(jax.vmap(fn)(*cast), np.float64)
        grads = jax.vmap(jax.grad(fn, argnums=(0, 1)))(*cast)
        grads = np.stack([np.asarray(g, np.float64) for g in grads], axis=1)
    f32 = dtype == np.float32
    small = a < 1e5
    v_tol = np.where(small, 5e-4, 3e-5) if f32 else 1e-10
    g_tol = np.where(small, 3e-3, 1e-3) if f32 else 1e-7
    assert np.all(np.isfinite(got)) and np.all(np.isfinite(grads))
    err = np.abs(got - ref)
    assert np.all(err < v_tol), (a[np.argmax(err / v_tol)], got[np.argmax(err / v_tol)])
    scale = np.stack([np.abs(slopes[:, 0]) + y, np.abs(slopes[:, 2]) + a / 1.5], 1)
    rel = np.abs(grads - slopes[:, [0, 2]]) / scale
    assert np.all(rel < np.asarray(g_tol).reshape(-1, 1)), np.unravel_index(np.argmax(rel), rel.shape)


@pytest.mark.deep
def test_log_betainc_half_second_derivatives_match_mpmath():
    """The closed form's Hessian in (a, 1 - x), float64, where the a >> b form is taken: there ``log I`` is
    ``log Q(1/2, u) = log erfc(sqrt(u))``, ``u = (a - 1/4)(-log x)`` (its value against mpmath's incomplete beta is
    tested above), here against mpmath's second derivatives of that at 40 digits; and its forward-mode Jacobian
    against its reverse-mode gradient. One jitted program per derivative over the four points. Tolerance 1e-7: at
    a = 1e7, u = 300 the slope in ``1 - x`` is 1.9e-11 relative off and its derivative 2.3e-8 (the closed-form slope
    ``exp(log R)`` in x, whose ``log R`` cancels terms of size a; the general form's agree with it to 1e-9)."""
    def ref(a, y):
        return mp.log(mp.erfc(mp.sqrt((a - mp.mpf(0.25)) * -mp.log1p(-y))))

    cases = [(1e8, 0.3), (1e8, 30.0), (1e6, 5.0), (1e7, 300.0)]
    with mp.workdps(40):
        want = np.array([[[float(mp.diff(ref, (mp.mpf(a), mp.mpf(y)), (2 - i - j, i + j) if i == j else (1, 1)))
                           for j in range(2)] for i in range(2)]
                         for a, y in ((a, float(lam / (a + 0.5))) for a, lam in cases)])
    with jax.enable_x64(True):
        def fn(p):
            return log_betainc(p[0], jnp.asarray(0.5), jnp.log1p(-p[1]), jnp.log(p[1]), half=True)
        points = jnp.asarray([[a, lam / (a + 0.5)] for a, lam in cases])
        got, forward, reverse = (np.asarray(jax.jit(jax.vmap(d(fn)))(points))
                                 for d in (jax.hessian, jax.jacfwd, jax.grad))
    assert np.all(np.isfinite(got)) and np.all(np.isfinite(forward))
    np.testing.assert_allclose(got, want, rtol=1e-7)
    np.testing.assert_allclose(forward, reverse, rtol=1e-12)


@pytest.mark.deep
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_betainc_half_near_one(dtype):
    """Where ``I_x`` is within 1e-11 of 1 (``u = a (1 - x) ~ 1e-22``) the closed form keeps ``log I`` to its last digits
    (``erfc(sqrt u)`` rounds to 1 there: ``log erfc`` read 0), the general form's too; at ``1 - x = 0`` the value is 0
    and the slope in ``a`` 0 (the closed form's ``d log Q/du ~ u^(-1/2)`` times ``du/da = -log x = 0`` gave NaN)."""
    mp.mp.dps = 40
    with jax.enable_x64(dtype == np.float64):
        for a, y in [(1e8, 1e-30), (1e6, 1e-20), (1e8, 1e-12)]:
            ref = float(mp.log(mp.betainc(a, 0.5, 0, 1 - mp.mpf(float(np.asarray(y, dtype))), regularized=True)))
            for half in (False, True):
                got = float(log_betainc(jnp.asarray(a, dtype), jnp.asarray(0.5, dtype), jnp.log1p(-jnp.asarray(y, dtype)),
                                        jnp.log(jnp.asarray(y, dtype)), half=half))
                assert abs(got - ref) <= 1e-5 * abs(ref), (a, y, half, got, ref)
        for half in (False, True):
            def at_one(a_):
                return log_betainc(a_, jnp.asarray(0.5, dtype), jnp.asarray(0.0, dtype), jnp.asarray(-np.inf, dtype),
                                   half=half)
            value, slope = jax.value_and_grad(at_one)(jnp.asarray(1e8, dtype))
            assert float(value) == 0.0 and float(slope) == 0.0


@pytest.mark.deep
def test_log_betainc_slopes_at_tiny_b_are_finite_and_match_mpmath():
    """a >> b with b = 1e-3 (``I_x = Q(b, u)`` with P close to 1, ``u <= 1.1``): float64 value and slopes in ``(a, b, 1 - x)``
    against mpmath. The slopes in ``a`` and ``b`` were NaN where the whole incomplete gamma ran under a ``where`` (its
    other branches' infinite slopes, transposed); the a >> b form in the beta's own loop keeps them to 8e-8."""
    mp.mp.dps = 40
    with jax.enable_x64(True):
        for a, b, u in [(1e3, 1e-3, 3e-4), (1e3, 1e-3, 1e-2), (1e4, 1e-3, 0.5)]:
            y = u / (a + b)
            ym = mp.mpf(y)

            def f(a_, b_, y_):
                return mp.log(mp.betainc(a_, b_, 0, 1 - y_, regularized=True))
            am, bm = mp.mpf(a), mp.mpf(b)
            ref = [float(f(am, bm, ym)), float(mp.diff(lambda v: f(v, bm, ym), am)),
                   float(mp.diff(lambda v: f(am, v, ym), bm)), float(mp.diff(lambda v: f(am, bm, v), ym))]
            args = (jnp.asarray(a), jnp.asarray(b), jnp.asarray(y))
            value = float(_fn(*args, None, None))
            slopes = [float(g) for g in jax.grad(lambda *v: _fn(*v, None, None), argnums=(0, 1, 2))(*args)]
            assert abs(value - ref[0]) < 1e-7, (a, b, u, value, ref[0])
            scale = [abs(ref[1]) + y, abs(ref[2]) + 1.0 / (1.0 + b), abs(ref[3]) + a / (1.0 + b)]
            for k in range(3):
                assert abs(slopes[k] - ref[k + 1]) < 1e-6 * scale[k], (a, b, u, k, slopes[k], ref[k + 1])


@pytest.mark.deep
def test_log_betainc_large_b_near_the_mean_float32():
    """a = 1e6, b = 3000, ``u`` within 3% of ``b`` (float32): Legendre's fraction starts there with ``B_0 = u + 1 - b``
    near 1, whose rounding must cancel within the loop (a ``log B_0`` taken outside from a ``u`` rounded apart put
    2.7e-4 into ``log I`` and 1.6e-2 into its slope in ``b`` at ``u = b``). Value to 1e-4 (BGRAT's own error there is
    up to 9e-5) and the slope in ``b`` to 2e-4 of its scale, against mpmath."""
    mp.mp.dps = 30
    a, b = 1e6, 3000.0
    for k in (0.97, 1.0, 1.03):
        y = float(np.float32(k * b / (a + b)))
        ym, am, bm = mp.mpf(y), mp.mpf(a), mp.mpf(b)

        def f(b_):
            return mp.log(mp.betainc(am, b_, 0, 1 - ym, regularized=True))
        ref, slope = float(f(bm)), float(mp.diff(f, bm))
        args = (jnp.float32(a), jnp.float32(b), jnp.float32(y))
        value = float(_fn(*args, None, None))
        got = float(jax.grad(lambda *v: _fn(*v, None, None), argnums=1)(*args))
        assert abs(value - ref) < 1e-4, (k, value, ref)
        assert abs(got - slope) < 2e-4 * (abs(slope) + 1.0 / (1.0 + b)), (k, got, slope)
