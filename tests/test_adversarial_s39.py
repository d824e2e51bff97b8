"""Edge values found by an adversarial sweep (session 39) of the kernels rewritten for speed, each against an
independent reference: mpmath's log density in high precision (its derivatives by ``mp.diff`` or in closed form).

Student t: the cost ``(nu + 1)/2 log(1 + z^2/nu)`` took ``nu = min(df, 1e30)`` (a df of 1e31 read as 1e30: at
``z = 1e15`` in float32 the NLL was 27% off), its slope in z underflowed to 0 where ``z^2/nu`` overflows (so the
slope in a learned scale, ``-z g / s``, lost its ``(nu + 1)/s``: 0.67 for -6.7e7 at float32 ``z = 1e25``), and its
slope in nu was a difference of two terms of size ``q = z^2/nu`` (its sign wrong at nu = 1e8 in float32).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

import mle_jax as mj

EPS = {"float32": float(np.finfo(np.float32).eps), "float64": float(np.finfo(np.float64).eps)}


def _mp_softplus(r):
    return mp.log1p(mp.exp(r)) if r < 40 else r + mp.log1p(mp.exp(-r))


def _mp_nll(y, mu, scale, nu):
    """``-t.logpdf(y, nu, mu, scale)`` in mpmath."""
    z = (y - mu) / scale
    return -(mp.loggamma((nu + 1) / 2) - mp.loggamma(nu / 2) - mp.log(nu * mp.pi) / 2 - mp.log(scale)
             - (nu + 1) / 2 * mp.log1p(z * z / nu))


@pytest.mark.parametrize("dtype, df, y", [("float32", 1e31, 1e15), ("float64", 1e200, 1e100)])
def test_student_t_fixed_huge_df_value(dtype, df, y, request):
    """``mj.losses.student_t(mu, y, df, scale=1)`` for a df beyond 1e30, where ``z^2/nu`` is not small: mpmath."""
    if dtype == "float64":
        request.getfixturevalue("x64")
    dt = jnp.dtype(dtype)
    mp.mp.dps = 450
    got = mj.losses.student_t(jnp.zeros(2, dt), jnp.asarray([y, 1.0], dt), df=df, scale=1.0)
    for value, yi in zip(np.asarray(got, np.float64), (float(jnp.asarray(y, dt)), 1.0)):
        want = float(_mp_nll(mp.mpf(yi), 0, 1, mp.mpf(df)))
        assert abs(value - want) <= 16 * EPS[dtype] * abs(want), (yi, value, want)


def _mp_scale_slopes(y, mu, b, nu, eps):
    """The NLL's slope in mu, in raw scale b and its second derivative in b, closed forms in mpmath
    (``s = softplus(b) + eps``, ``Q = z^2/(nu + z^2)``): ``-(nu + 1) z / ((nu + z^2) s)``,
    ``A sig(b)`` with ``A = (1 - (nu + 1) Q)/s``, and ``A' sig(b)^2 + A sig(b)(1 - sig(b))``,
    ``A' = (2 nu (nu + 1) z^2/(nu + z^2)^2 - 1 + (nu + 1) Q)/s^2``."""
    s = _mp_softplus(b) + eps
    sig = 1 / (1 + mp.exp(-b))
    z = (y - mu) / s
    big_q = z * z / (nu + z * z)
    a = (1 - (nu + 1) * big_q) / s
    a_slope = (2 * nu * (nu + 1) * z * z / (nu + z * z) ** 2 - 1 + (nu + 1) * big_q) / s ** 2
    return -(nu + 1) * z / ((nu + z * z) * s), a * sig, a_slope * sig ** 2 + a * sig * (1 - sig)


@pytest.mark.deep  # a Hessian's compile and mpmath: 3-5 s a dtype
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_student_t_learned_df_scale_slope_at_far_outlier(dtype, request):
    """The learned-df, learned-scale NLL's gradient in (loc, raw scale, raw df) and second derivative in raw scale
    at z beyond ``sqrt(nu)`` times float's square-root range (float32 ``z = 1e25``, float64 ``1e200``), against
    mpmath: the slope in the scale is ``(1 - (nu + 1) q/(1 + q)) / s``, of the size of nu."""
    if dtype == "float64":
        request.getfixturevalue("x64")
    dt = jnp.dtype(dtype)
    eps = EPS[dtype]
    mp.mp.dps = 60
    family = mj.student_t("learned")

    def nll(mu, raw_scale, raw_df, y):
        raw = jnp.stack([mu, raw_scale])[None]
        return mj.losses.nll(family, raw, y[None], {"df": raw_df}, validate=False)[0]
    ys = (1e25, -3e30) if dtype == "float32" else (1e200, -3e250)
    fn = jax.jit(jax.vmap(lambda *a: (jax.grad(nll, (0, 1, 2))(*a), jax.hessian(nll, 1)(*a)), (None, None, None, 0)))
    mu, raw_scale, raw_df = (jnp.asarray(v, dt) for v in (0.25, 0.3, 2.0))
    grads, second = fn(mu, raw_scale, raw_df, jnp.asarray(ys, dt))
    m, b, c = (mp.mpf(float(v)) for v in (mu, raw_scale, raw_df))
    nu = _mp_softplus(c) + eps
    for i, yi in enumerate(ys):
        y = mp.mpf(float(jnp.asarray(yi, dt)))
        d_mu, d_b, d_bb = (float(v) for v in _mp_scale_slopes(y, m, b, nu, eps))
        d_c = float(mp.diff(lambda r: _mp_nll(y, m, _mp_softplus(b) + eps, _mp_softplus(r) + eps), c))
        for got, want in ((grads[0][i], d_mu), (grads[1][i], d_b), (grads[2][i], d_c), (second[i], d_bb)):
            assert abs(float(got) - want) <= 64 * eps * abs(want), (yi, got, want)


def test_student_t_fixed_df_scale_slope_at_far_outlier():
    """A fixed df (``mj.losses.student_t(raw, y, df=3.0)``, learned scale): the NLL's slope in the raw scale and
    in loc at float32 ``z = 1e25`` (``z^2/nu`` overflows), closed forms in mpmath (it lost ``(nu + 1)/s``)."""
    mp.mp.dps = 60
    raw = jnp.asarray([[0.25, 0.3], [0.25, 0.3]], jnp.float32)
    y = jnp.asarray([1e25, -2.0], jnp.float32)
    grad = jax.grad(lambda r: jnp.sum(mj.losses.student_t(r, y, df=3.0)))(raw)
    for i in range(2):
        d_mu, d_b, _ = _mp_scale_slopes(mp.mpf(float(y[i])), mp.mpf(float(raw[i, 0])), mp.mpf(float(raw[i, 1])),
                                        mp.mpf(3), EPS["float32"])
        for got, want in ((grad[i, 0], float(d_mu)), (grad[i, 1], float(d_b))):
            assert abs(float(got) - want) <= 64 * EPS["float32"] * abs(want), (i, got, want)


@pytest.mark.deep  # a Hessian's compile and mpmath: 5-7 s a dtype
@pytest.mark.parametrize("dtype, nu", [("float32", 1e8), ("float64", 1e15)])
def test_student_t_learned_df_slope_at_huge_df(dtype, nu, request):
    """The slope of the learned-df NLL in raw df and its second derivative, nu far past the data's z^2 (the
    Normal's limit): ``d/dnu = ((1 + 1/nu) u - log(1 + q))/2``, ``u = q/(1 + q)``, is ``-q^2/4 + q/(2 nu)`` to
    leading order, far under either term (``q``); the sum's sign was wrong at float32 ``nu = 1e8``, z = 3."""
    if dtype == "float64":
        request.getfixturevalue("x64")
    dt = jnp.dtype(dtype)
    eps = EPS[dtype]
    mp.mp.dps = 80
    family = mj.student_t("learned", 1.0)

    def nll(raw_df, y):
        return mj.losses.nll(family, jnp.zeros((1,), dt), y[None], {"df": raw_df}, validate=False)[0]
    ys = jnp.asarray([0.7, 3.0, -40.0], dt)
    raw_df = mj.links.softplus_inverse(jnp.asarray(nu, dt))
    grad, second = jax.jit(jax.vmap(lambda r, y: (jax.grad(nll)(r, y), jax.hessian(nll)(r, y)), (None, 0)))(raw_df, ys)
    r = mp.mpf(float(raw_df))
    for i, yi in enumerate(np.asarray(ys, np.float64)):
        def f(c):
            return _mp_nll(mp.mpf(yi), 0, 1, _mp_softplus(c) + eps)
        want, want2 = float(mp.diff(f, r)), float(mp.diff(f, r, 2))
        assert abs(float(grad[i]) - want) <= 1e-3 * abs(want), (yi, grad[i], want)
        assert abs(float(second[i]) - want2) <= 1e-3 * abs(want2), (yi, second[i], want2)


def test_student_t_learned_df_normaliser_slope_float32_below_20():
    """A learned df just below 20 in float32 (``R(nu/2)``'s direct ``lgamma`` difference, h < 10): the NLL at z = 0
    and its slope in raw df, which there is the normaliser's alone (``R'(nu/2)/2``), against mpmath: R' was 3.9e-4
    off at nu = 19.98 (``lgamma(10.5) = 13.9`` to a rounding, for an R of -0.0125)."""
    mp.mp.dps = 40
    family = mj.student_t("learned", 1.0)
    nus = (19.98, 15.0, 9.0)
    raw = mj.links.softplus_inverse(jnp.asarray(nus, jnp.float32))

    def nll(r):
        return mj.losses.nll(family, jnp.zeros((1,), jnp.float32), jnp.zeros((1,), jnp.float32), {"df": r},
                             validate=False)[0]
    value, grad = jax.vmap(jax.value_and_grad(nll))(raw)
    for i in range(len(nus)):
        c = mp.mpf(float(raw[i]))

        def f(r):
            return _mp_nll(mp.mpf(0), 0, 1, _mp_softplus(r) + EPS["float32"])
        assert abs(float(value[i]) - float(f(c))) <= 4 * EPS["float32"] * abs(float(f(c))), (nus[i], value[i])
        want = float(mp.diff(f, c))
        assert abs(float(grad[i]) - want) <= 64 * EPS["float32"] * abs(want), (nus[i], grad[i], want)


LEARNING_RATE = 0.1


def _wrapped_update_reading_a_global():
    """A user's update dressed as optax's own by ``functools.wraps`` (which copies ``__module__``), reading a
    module-level rate."""
    import functools

    import optax
    inner = optax.sgd(0.5)

    @functools.wraps(inner.update)
    def update(updates, state, params=None):
        return jax.tree.map(lambda g: -LEARNING_RATE * g, updates), state
    return optax.GradientTransformation(inner.init, update)


def test_a_users_function_wrapped_as_optaxs_is_keyed_by_identity():
    """``functools.wraps(optax_update)`` gives a user's function optax's ``__module__``: it was compared by code,
    globals and closure, so a fit after the script rebinds the rate it reads ran the first fit's program (rate 0.1
    for 0.0). The module a function is defined in is its globals' ``__name__``, which wraps cannot copy."""
    from mle_jax._cache import structure
    one, two = _wrapped_update_reading_a_global(), _wrapped_update_reading_a_global()
    assert one.update.__module__.startswith("optax")  # what made it look like optax's
    assert structure(one) != structure(two)
    assert structure(one) == structure(one)
