"""Session 43's edges of the Student t, Beta, Weibull and von Mises against independent references (mpmath at
high precision, closed forms): one jitted call over a whole grid per test."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

import mle_jax as mj
from mle_jax.distributions import student_t

# ----------------------------------------------------------------------------- Student t: d log F / d nu

T_DF = np.array([200.0, 1e4, 3e6, 6e6, 1e8])
T_Z = np.array([-40.0, -30.0, -3.0, 3.0, 30.0])


@functools.lru_cache(maxsize=None)
def _t_slope_reference(dtype):
    """``d/d nu log F(z; nu)`` by mpmath (30 digits: ``I_x(nu/2, 1/2)/2``, a central difference) at the grid rounded
    to ``dtype``."""
    out = np.zeros((T_DF.size, T_Z.size))
    with mp.workdps(30):
        for i, nu in enumerate(np.asarray(T_DF, dtype).astype(float)):
            for j, z in enumerate(np.asarray(T_Z, dtype).astype(float)):
                zz = mp.mpf(z)

                def log_f(n):
                    lower = mp.betainc(n / 2, 0.5, 0, n / (n + zz * zz), regularized=True) / 2
                    return mp.log(lower) if zz < 0 else mp.log1p(-lower)
                out[i, j] = float(mp.diff(log_f, mp.mpf(nu), h=mp.mpf(nu) * mp.mpf("1e-10")))
    return out


@jax.jit
def _t_slopes(df, z):
    one = jnp.zeros((), z.dtype)
    slope = jax.grad(lambda d, y: student_t.log_cdf(mj.StudentT(d, one, one + 1), y))
    return jax.vmap(jax.vmap(slope, (None, 0)), (0, None))(df, z)


@pytest.mark.deep  # mpmath's 25 points (1 s) and one compile of log_cdf's slope in nu (7 s: the traced df's branches)
@pytest.mark.parametrize("dtype", ["float32"])  # float64 (4e-6 at worst) in the session's sweep, nu 1..1e8, z -40..40
def test_student_t_log_cdf_slope_in_df_at_huge_df(dtype, request):
    """The censored Student t's slope in nu where the incomplete beta takes its a >> b form: through the fraction's
    prefix the slopes in a = nu/2 and in x cancelled to z^2/nu of each, and float32 read 1.1e-10 (the wrong sign)
    for -6.4e-11 at nu = 1e8, z = -40, 17-43% off at nu = 3e6-6e6, z = -30. Now ``log Phi(-v)`` in z and 1/nu
    (``student_t._wallace``)."""
    if dtype == "float64":
        request.getfixturevalue("x64")
    got = np.asarray(_t_slopes(jnp.asarray(T_DF, dtype), jnp.asarray(T_Z, dtype)), float)
    want = _t_slope_reference(dtype)
    tiny = 1e-30 if dtype == "float32" else 1e-290  # the upper tail's slopes underflow below these
    rtol = 1e-2 if dtype == "float32" else 1e-5  # the a >> b form's own slope error: 3e-3 / 4e-6 at its edge
    np.testing.assert_array_less(np.abs(got - want), rtol * np.abs(want) + tiny)
