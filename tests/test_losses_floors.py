"""A positive value given wider than the raw outputs is read by the kernels in the raw outputs' dtype (float32 at
least), where a value at or below that dtype's floor ``eps`` reads as the floor: ``mj.losses`` refuses a concrete
one there (a float64 scale of 1e-10 with float32 raw outputs was 1.19e-7 in the kernel and 1e-10 in the affine:
an NLL of -22.0 for scipy's -14.95) and computes one above it as scipy does."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import mle_jax as mj


def test_a_float64_scale_below_float32s_floor_with_float32_raw_outputs_is_refused():
    with jax.enable_x64(True):
        raw, y = jnp.zeros(1, jnp.float32), jnp.asarray([1e-9], jnp.float32)
        with pytest.raises(ValueError, match=r"mj.losses.student_t: scale 1e-10 at index 0 is not finite and > "
                                             r"1.19e-07, the link's floor in float32, the dtype the loss computes in"):
            mj.losses.student_t(raw, y, df=3.0, scale=jnp.asarray(1e-10, jnp.float64))
        # in float64 raw outputs the same scale is scipy's value
        got = mj.losses.student_t(raw.astype(jnp.float64), y.astype(jnp.float64), df=3.0,
                                  scale=jnp.asarray(1e-10, jnp.float64))
        np.testing.assert_allclose(np.asarray(got), -stats.t.logpdf(float(np.float32(1e-9)), 3, 0, 1e-10), rtol=1e-12)
        # above float32's floor it is computed, as scipy at float32's rounding of y
        above = mj.losses.student_t(raw, y, df=3.0, scale=jnp.asarray(2e-7, jnp.float64))
        np.testing.assert_allclose(np.asarray(above), -stats.t.logpdf(float(np.float32(1e-9)), 3, 0, 2e-7),
                                   rtol=1e-5)


@pytest.mark.parametrize("half", [jnp.bfloat16, jnp.float16])
def test_a_half_precision_scale_is_read_in_float32_as_scipy_reads_its_value(half):
    """A bfloat16 / float16 value goes to the raw parameter in the dtype the kernel computes in (float32 at least),
    not through ``softplus_inverse`` in its own dtype (in bfloat16 the NLL was 0.15-0.35% off scipy's)."""
    scale = jnp.asarray([0.3, 0.7, 2.5, 11.0], half)  # one per example, each exact in float64 below
    raw = jnp.asarray([0.1, -0.2, 1.5, -3.0], jnp.float32)
    y = jnp.asarray([0.5, 0.3, -1.0, 4.0], jnp.float32)
    got = mj.losses.normal(raw, y, scale=scale)
    ref = -stats.norm.logpdf(np.asarray(y, np.float64), np.asarray(raw, np.float64), np.asarray(scale, np.float64))
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(got), ref, rtol=2e-6)


@pytest.mark.parametrize("half", [jnp.bfloat16, jnp.float16])
def test_softplus_inverse_in_half_precision_is_the_exact_inverse_rounded_once(half):
    """``softplus_inverse`` of a bfloat16 / float16 scale computes in float32 and rounds once: on a grid of the
    dtype's values it is NumPy's float64 inverse (``s + log(-expm1(-s))``, ``s = v - eps``) rounded to the dtype
    (in bfloat16 throughout, 28% of the grid was off it and the scale read back up to 1.7% off)."""
    v = np.unique(np.asarray(jnp.asarray(np.geomspace(0.02, 50.0, 400), half), np.float64))
    s = v - float(jnp.finfo(half).eps)
    exact = s + np.log(-np.expm1(-s))
    got = mj.links.softplus_inverse(jnp.asarray(v, half))
    assert got.dtype == half
    np.testing.assert_array_equal(np.asarray(got, np.float64), np.asarray(jnp.asarray(exact, half), np.float64))


def test_a_float32_scale_with_float64_raw_outputs_is_read_in_float64():
    """A value narrower than the raw outputs is inverted in their dtype, where the kernel and the affine read it:
    a float32 scale with float64 raw outputs is scipy's value to float64's rounding (inverted in float32 it was
    5e-8 off), and one below float32's floor but above float64's (1e-7) is computed, not refused."""
    with jax.enable_x64(True):
        raw, y = jnp.asarray([0.1, -0.2], jnp.float64), jnp.asarray([0.5, 0.3], jnp.float64)
        for value in (0.3, 1e-7):
            scale = jnp.asarray(value, jnp.float32)
            got = mj.losses.normal(raw, y, scale=scale)
            ref = -stats.norm.logpdf(np.asarray(y), np.asarray(raw), float(scale))
            np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-12)


def test_float64_cutpoints_whose_gap_float32_reads_as_its_floor_are_refused_with_float32_raw_outputs():
    """Ordinal cutpoints are read in the raw outputs' dtype: a float64 gap of 1e-9 with float32 raw outputs would be
    float32's floor 1.19e-7 in the kernel, and is refused, with the reason."""
    with jax.enable_x64(True):
        with pytest.raises(ValueError, match=r"cutpoint gaps .* is not finite and > 1.19e-07, the link's floor in "
                                             r"float32.*pass raw outputs in float64"):
            mj.losses.ordinal(jnp.asarray([0.5, 0.2], jnp.float32), jnp.asarray([1, 2]),
                              cutpoints=jnp.asarray([0.0, 1.0, 1.0 + 1e-9]))


def test_a_float64_raw_scale_below_float32s_floor_reads_as_the_floor_in_kernel_and_affine_alike():
    """Given as raw-form parameters (``mj.losses.nll``, a recipe's ``params.family``), a float64 scale of 1e-10 with a
    float32 model is read in float32, where the link's floor is 1.19e-7: the kernel and the affine (the density's
    ``-log scale``) now read that same floor, scipy's density at scale = float32's eps (the kernel read the floor
    and the affine 1e-10: an NLL of -22.0, neither that -14.94 nor 1e-10's -14.95)."""
    with jax.enable_x64(True):
        family = mj.student_t(df=3.0, scale="learned")
        y = jnp.asarray([1e-9, -2e-7], jnp.float32)
        fp = {"scale": mj.links.softplus_inverse(jnp.asarray(1e-10, jnp.float64))}
        floor = float(np.finfo(np.float32).eps)
        ref = -stats.t.logpdf(np.asarray(y, np.float64), 3, 0, floor)
        got = mj.losses.nll(family, jnp.zeros(2, jnp.float32), y, fp)
        np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-6)
        r = mj.recipe(lambda p, x_i: p["b"] + x_i[0], family)
        p = r.init({"b": jnp.float32(0.0)})._replace(family=fp)
        np.testing.assert_allclose(float(r.nll(p, jnp.zeros((2, 1), jnp.float32), y)), ref.sum(), rtol=1e-6)
