"""Every built-in family (``tests/families_table.py``) with bfloat16 and float16 raw outputs and targets: ``r.nll`` and
its gradient against the float64 computation on the same (rounded) numbers, never NaN where that is finite, never a
TypeError.

Before the kernels computed in float32 at least (``families._family.at_least_float32``), the float16 NLL of
``gamma``, ``beta``, ``beta("mean")``, ``dirichlet``, the unshared independent Gamma and the censored Gamma and Beta
was NaN (``lgamma``-based shifts, squares of scales and the normal CDF's ``exp(-x^2/2)`` out of float16's range) and
the censored Normal and log-normal raised a TypeError in both (``jax.scipy.special.ndtr`` refuses half precision).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mle_jax as mj
from families_table import FAMILIES, raw_example

# K shares exact in bfloat16 (the table's 0.1, ..., 0.4 sum to 1.0017 there: off the simplex, as the check says)
SHARES = {"dirichlet": [0.25, 0.25, 0.25, 0.25], "dirichlet-exp": [0.25, 0.75]}
# the NLL of a fixed sigma of 1e-20 is 2e39: beyond float32, the reduction's dtype, whatever the raw dtype
SKIP = {"normal-tiny-fixed"}


def _nll_and_grad(name, dtype):
    """``(nll, d nll / d raw)`` of three examples in ``dtype`` and, x64 on, in float64 on the same rounded
    numbers (the family's parameters at ``init``'s float32 values)."""
    entry = FAMILIES[name]
    family = entry.family
    r = mj.recipe(lambda p, x_i: x_i, family, validate=False)
    raw = np.stack([raw_example(family, np.float64) * s for s in (1.0, -2.0, 0.5)])
    y = np.stack([np.asarray(SHARES.get(name, entry.valid))] * 3)
    floating = np.issubdtype(y.dtype, np.floating)
    raw_h, y_h = jnp.asarray(raw, dtype), jnp.asarray(y, dtype) if floating else jnp.asarray(y)
    params = r.init(None)
    got = jax.jit(jax.value_and_grad(lambda x: r.nll(params, x, y_h)))(raw_h)
    with jax.enable_x64(True):
        wide = params._replace(family=jax.tree_util.tree_map(
            lambda v: jnp.asarray(v, jnp.float64) if jnp.issubdtype(jnp.result_type(v), jnp.floating) else v,
            params.family))
        y64 = jnp.asarray(np.asarray(y_h, np.float64)) if floating else jnp.asarray(y)
        want = jax.jit(jax.value_and_grad(lambda x: r.nll(wide, x, y64)))(jnp.asarray(np.asarray(raw_h, np.float64)))
        want = tuple(np.asarray(v, np.float64) for v in want)
    return tuple(np.asarray(v, np.float64) for v in got), want, got[1].dtype


def _check(name, dtype):
    (value, grad), (value64, grad64), grad_dtype = _nll_and_grad(name, dtype)
    assert grad_dtype == jnp.dtype(dtype), name
    assert np.isfinite(value64) and np.all(np.isfinite(grad64)), name
    eps = float(jnp.finfo(dtype).eps)
    # float32 terms (2e-6 of the value); the gradient rounded once to the raw outputs' dtype
    np.testing.assert_allclose(value, value64, rtol=2e-6, atol=2e-6, err_msg=name)
    np.testing.assert_allclose(grad, grad64, rtol=eps, atol=eps * max(1.0, float(np.max(np.abs(grad64)))) / 4,
                               err_msg=name)


@pytest.mark.deep  # 2-4 s each (the float64 reference's compile)
@pytest.mark.parametrize("dtype,name", [("float16", "beta-mean"), ("bfloat16", "censored-log_normal")])
def test_half_precision_beta_mean_and_censored_log_normal(dtype, name):
    """The two reported: ``beta("mean")``'s float16 NLL was NaN, the censored log-normal's bfloat16 a TypeError."""
    _check(name, dtype)


# every family in float16 (the narrow range: its NaNs), the censored Normal's in bfloat16 too (the TypeError's path,
# ndtr; the censored log-normal's in the test above); the widening is one wrapper for every family's kernel, so one
# half dtype per family keeps CI's deep phase short (the censored Beta's and Gamma's compiles take 11-20 s each)
SWEEP = ([("float16", name) for name in sorted(set(FAMILIES) - SKIP)]
         + [("bfloat16", name) for name in sorted(FAMILIES) if name.startswith("censored-normal")])


@pytest.mark.deep  # ~1.3 s each (two compiles)
@pytest.mark.parametrize("dtype,name", SWEEP)
def test_every_family_in_half_precision_is_its_float64_value(name, dtype):
    _check(name, dtype)


@pytest.mark.parametrize("dtype", ["float16", pytest.param("bfloat16", marks=pytest.mark.deep)])
def test_half_precision_split_data_term_is_float32(dtype):
    """A full-batch fit's Poisson objective, ``free + data`` with the data's part summed once (``r.data_term`` in the
    model's dtype): with half-precision raw outputs and counts of 5e3-1e4 the data terms were rounded to that dtype
    (2.7e-4 of the float16 NLL off); both parts are float32 now, the objective the NLL's to float32 rounding, and
    that scipy's ``poisson.logpmf`` at the rounded means."""
    from scipy import stats
    r = mj.recipe(lambda p, x_i: p * x_i, mj.poisson(), validate=False)
    params = r.init(jnp.asarray(1.0, dtype))
    x, y = jnp.asarray([9.2, 9.0, 8.5], dtype), jnp.asarray([1e4, 8000.0, 5000.0], jnp.float32)
    split = r.objective(params, x, y, data=r.data_term(y, dtype=jnp.dtype(dtype)))[0]
    want = -np.sum(stats.poisson.logpmf(np.asarray(y, np.float64), np.exp(np.asarray(x, np.float64))))
    np.testing.assert_allclose(float(split), float(r.nll(params, x, y)), rtol=2e-6)
    np.testing.assert_allclose(float(split), want, rtol=2e-6)


@pytest.mark.deep  # 1.5-3 s (six small compiles)
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_learned_values_keep_their_link_floor(dtype):
    """``mj.losses.student_t`` and ``mj.losses.laplace`` with half-precision arrays for df and scale (exact in that
    dtype) against scipy: a value enters as ``softplus_inverse`` at its dtype's link floor (2^-7 in bfloat16), and the
    affine (``-log s``, the normaliser) reads it there; the kernel, widening the raw outputs to float32 before casting
    the parameters to them, read the same raw parameter with float32's floor, a scale 0.0078 smaller in bfloat16
    (0.03125: the NLL 2.77 for 1.54, 80% off). Within 8 roundings of the dtype."""
    from scipy import stats
    y, mu = np.array([0.125, 4.0, -3.0]), np.array([0.25, -1.0, 2.0])
    tol = 8 * float(jnp.finfo(dtype).eps)
    for df, s in ((4.0, 0.03125), (4.0, 0.015625), (0.03125, 1.0)):
        got = mj.losses.student_t(jnp.asarray(mu, dtype), jnp.asarray(y, dtype), df=jnp.full(3, df, dtype),
                                  scale=jnp.full(3, s, dtype))
        want = -stats.t.logpdf(y, df, mu, s)
        assert got.dtype == jnp.dtype(dtype)
        np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=tol, atol=tol, err_msg=f"t {df} {s}")
        got = mj.losses.laplace(jnp.asarray(mu, dtype), jnp.asarray(y, dtype), scale=jnp.full(3, s, dtype))
        want = -stats.laplace.logpdf(y, mu, s)
        np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=tol, atol=tol, err_msg=f"laplace {s}")
