"""Edge values found by an adversarial sweep (session 39) of the kernels rewritten for speed, each against an
independent reference: mpmath's log density in high precision (its derivatives by ``mp.diff`` or in closed form).

Student t: the normaliser ``R(nu/2)`` of a learned df in float32 below nu = 20; ``fit``'s compile cache: a user's
function dressed as optax's by ``functools.wraps``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np

import mle_jax as mj

EPS = {"float32": float(np.finfo(np.float32).eps), "float64": float(np.finfo(np.float64).eps)}


def _mp_softplus(r):
    return mp.log1p(mp.exp(r)) if r < 40 else r + mp.log1p(mp.exp(-r))


def _mp_nll(y, mu, scale, nu):
    """``-t.logpdf(y, nu, mu, scale)`` in mpmath."""
    z = (y - mu) / scale
    return -(mp.loggamma((nu + 1) / 2) - mp.loggamma(nu / 2) - mp.log(nu * mp.pi) / 2 - mp.log(scale)
             - (nu + 1) / 2 * mp.log1p(z * z / nu))


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
