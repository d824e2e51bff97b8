"""A Student t whose df is known when traced (a family's fixed df, ``mj.student_t(4.0)``) compiles only the
branches of ``log_cdf`` that df takes (``student_t._static_df``): neither the Normal's ``log Phi`` (df = inf),
nor Fisher's expansion (large df), nor the incomplete beta's a >> b form ``erfc(sqrt(u))`` at df = 4.

References: scipy's ``t.logcdf`` / ``t.logsf``, and the same ``log_cdf`` with df traced (every branch under
its select), at a df in each branch's regime of float32 and float64, value and slope in loc.
"""

import collections

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import mle_jax as mj
from mle_jax.distributions import StudentT, log_cdf, log_sf

# 4: none of the three; 300: the a >> b form in float32 (a = 150); 3e5: Fisher's in float32, the a >> b form in
# float64; 3e8: Fisher's in float64; inf: the Normal
DFS = (4.0, 300.0, 3e5, 3e8, np.inf)
Y = np.array([-40.0, -3.0, -0.7, 0.0, 0.3, 0.31, 2.0, 9.0, 25.0])
LOC, SCALE = 0.3, 1.7


def _tails(theta, y):
    """``log_cdf`` and ``log_sf`` at y, each value with its slope in loc."""
    return tuple(jax.value_and_grad(lambda loc: fn(theta._replace(loc=loc), y))(theta.loc) for fn in (log_cdf, log_sf))


def _traced(d, loc, y):
    return _tails(StudentT(d, loc, jnp.asarray(SCALE, loc.dtype)), y)


# df traced: every branch under its select, one compile per dtype (both tails in it), shared by every df below
_TRACED = jax.jit(jax.vmap(_traced, (None, None, 0)))


@pytest.mark.deep  # one compile of log_cdf's and log_sf's values and slopes with df known (and _TRACED's, once a dtype)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("df", DFS)
def test_known_df_is_traced_df_and_scipy(x64, dtype, df):
    known_df = jnp.asarray(df, dtype)  # concrete inside the jitted function below: the static branches

    def known(loc, y):
        return _tails(StudentT(known_df, loc, jnp.asarray(SCALE, dtype)), y)

    y, loc = jnp.asarray(Y, dtype), jnp.asarray(LOC, dtype)
    eps = np.finfo(dtype).eps
    both_known, both_traced = jax.jit(jax.vmap(known, (None, 0)))(loc, y), _TRACED(known_df, loc, y)
    for (value_k, slope_k), (value_t, slope_t), ref in zip(both_known, both_traced, (stats.t.logcdf, stats.t.logsf)):
        want = ref(Y.astype(dtype).astype(np.float64), df, LOC, SCALE)
        # scipy's own error grows with df in float64 (9e-11 relative at df = 3e5 near log 1)
        rtol = 2e-5 if dtype == np.float32 else 1e-11 if df < 1e5 else 1e-9
        np.testing.assert_allclose(np.asarray(value_k, np.float64), want, rtol=rtol, atol=1e-30)
        np.testing.assert_allclose(value_k, value_t, rtol=64 * eps, atol=16 * eps)
        np.testing.assert_allclose(slope_k, slope_t, rtol=64 * eps, atol=16 * eps)


@pytest.mark.deep  # two traces of the censored NLL's gradient: 2 s
def test_fixed_df_compiles_none_of_the_large_df_branches():
    """The value and gradient of ``censored(student_t(4.0))``'s NLL holds no ``erf``/``erfc`` (the Normal's
    ``log Phi``, Fisher's expansion from it, the a >> b form's ``log Phi(-v)``); with a learned df every branch is there."""
    def primitives(family):
        r = mj.recipe(lambda b, x_i: b, family, validate=False)
        x = jnp.zeros((8, 1))
        y = jnp.stack([jnp.full(8, 0.5), jnp.tile(jnp.asarray([0.0, -1.0, 1.0, 1.0]), 2)], axis=1)
        p = r.init(jnp.full(family.raw_shape, 0.3))
        seen = collections.Counter()

        def walk(jaxpr):
            for eqn in jaxpr.eqns:
                seen[eqn.primitive.name] += 1
                for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                    walk(sub)
        walk(jax.make_jaxpr(jax.value_and_grad(lambda p: r.nll(p, x, y)))(p).jaxpr)
        return seen

    fixed, learned = primitives(mj.censored(mj.student_t(4.0))), primitives(mj.censored(mj.student_t("learned")))
    assert fixed["erf"] == fixed["erfc"] == 0
    assert learned["erfc"] > 0  # one log Phi for the Normal's, Fisher's and the a >> b form (``student_t._wallace``)
