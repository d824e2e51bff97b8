"""Session 46, adversarial: the direct functions on concrete arguments now run as one compiled program
(``registry._compiled``). Each test compares the eager call with scipy or with the same call op by op on main's
behaviour; three were regressions found against main and fixed (a known Student t df's float32 accuracy: the Student t runs op
by op, ``Ops.compiled=False``; a user's theta inside a built-in one: runs as given)."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import mle_jax as mj


def _ulps(got, ref):
    got = np.asarray(got, np.float32)
    return np.abs(got.astype(np.float64) - ref) / np.spacing(np.abs(got))


@pytest.mark.deep
def test_a_known_student_t_df_keeps_main_s_float32_accuracy_eagerly():
    """On main a concrete scalar df took ``_static_df``'s float64 normaliser, exact to an ulp in float32 (scipy's
    ``t.logcdf`` at df = 1e-3, y = 1: -0.68901744, main -0.6890175; compiled, -0.6890194: 32 ulps; ``t.logpdf`` at
    df = 1, y = 1: main 0.3 ulp, compiled 5.3). One call a case, the same shapes: one program a function."""
    for df, y in ((1e-3, 1.0), (2.5, 1.0)):
        got = mj.log_cdf(mj.StudentT(jnp.float32(df), jnp.float32(0.0), jnp.float32(1.0)), jnp.float32(y))
        assert _ulps(got, stats.t.logcdf(y, df)) <= 4, (df, y, float(got))
    got = mj.log_prob(mj.StudentT(jnp.float32(1.0), jnp.float32(0.0), jnp.float32(1.0)), jnp.float32(1.0))
    assert _ulps(got, stats.t.logpdf(1.0, 1.0)) <= 2, float(got)


@pytest.mark.deep
def test_a_subnormal_target_of_a_positive_type_is_scipys_value_or_nan_never_another_number():
    """``log_prob`` at y = tiny / 8 (a float32 subnormal), on a batch large enough to run compiled: XLA on CPU has no reliable
    ``log`` of a subnormal inside a program (docs/reliability.md, section 2), so the answer is scipy's or NaN, never
    another number (main's op-by-op Gamma(2, 1) and LogNormal(0, 1) gave -inf for scipy's -89 and -3.9e3)."""
    from mle_jax.distributions import registry
    y = jnp.full(registry.COMPILE_MIN_SIZE, np.finfo(np.float32).tiny / 8, jnp.float32)  # large: compiled
    for theta, ref in ((mj.Gamma(1.0, 1.0), stats.gamma.logpdf(float(y[0]), 1.0)),
                       (mj.Weibull(1.0, 1.0), stats.weibull_min.logpdf(float(y[0]), 1.0)),
                       (mj.Gamma(2.0, 1.0), stats.gamma.logpdf(float(y[0]), 2.0)),
                       (mj.LogNormal(0.0, 1.0), stats.lognorm.logpdf(float(y[0]), 1.0))):
        batch = type(theta)(*(jnp.full(y.shape, field, jnp.float32) for field in theta))  # one theta an example
        got = float(mj.log_prob(batch, y)[0])
        assert np.isnan(got) or got == pytest.approx(ref, rel=1e-5, abs=1e-30), (theta, got, ref)


class _Shifted(NamedTuple):
    loc: jax.Array


def _shifted_log_prob(theta, y):
    return -0.5 * (y - float(theta.loc)) ** 2 - 0.5 * np.log(2 * np.pi)  # reads a value: runs only as given


@pytest.fixture
def shifted():
    """``_Shifted`` registered for one test (other tests read every registered type: popped after)."""
    from mle_jax.distributions import registry
    mj.register(_Shifted, log_prob=_shifted_log_prob, mode=lambda t: t.loc, mean=lambda t: t.loc,
                sample=lambda key, t: t.loc + jax.random.normal(key, jnp.shape(t.loc)))
    yield _Shifted
    registry._OPS.pop(_Shifted, None)


@pytest.mark.parametrize("case", ["zero_inflated", "empirical"])
def test_a_users_theta_inside_a_built_in_one_runs_as_given(case, shifted):
    """A user's type whose ``log_prob`` calls ``float`` on a field worked on main inside a ``ZeroInflated`` and as
    the model of ``cross_entropy(empirical(y), theta)``; the values are scipy's."""
    theta = _Shifted(jnp.float32(0.5))
    if case == "zero_inflated":
        got = mj.log_prob(mj.ZeroInflated(jnp.float32(0.0), theta), jnp.float32(1.5))  # gate 1/2, y != 0
        ref = np.log(0.5) + stats.norm.logpdf(1.5, 0.5)
    else:
        got = mj.cross_entropy(mj.empirical(jnp.asarray([1.0, 2.0])), theta)
        ref = -np.mean(stats.norm.logpdf([1.0, 2.0], 0.5))
    np.testing.assert_allclose(float(got), ref, rtol=1e-6)


@pytest.mark.deep
def test_x64_toggled_between_eager_calls_of_the_same_shapes_never_reuses_the_other_mode_s_program():
    """One Weibull ``log_cdf`` shape called in float32, then under ``enable_x64`` on the same NumPy float64 inputs,
    then in float32 again: each result has its mode's dtype and scipy's value to its precision."""
    k, s, y = np.asarray([2.0, 0.5]), np.asarray([1.0, 2.0]), np.asarray([1.0, 1e-3])
    ref = stats.weibull_min.logcdf(y, k, scale=s)
    first = mj.log_cdf(mj.Weibull(k, s), y)
    with jax.enable_x64(True):
        wide = mj.log_cdf(mj.Weibull(k, s), y)
    again = mj.log_cdf(mj.Weibull(k, s), y)
    assert first.dtype == again.dtype == jnp.float32 and wide.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(wide), ref, rtol=1e-13)
    for out in (first, again):
        np.testing.assert_allclose(np.asarray(out, np.float64), ref, rtol=2e-6)
