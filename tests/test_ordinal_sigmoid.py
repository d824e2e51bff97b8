"""The ordinal family's ``_sigmoid`` / ``_log_sigmoid`` rules (``sig(x) sig(-x)`` from one exp,
``special.sigmoid_pair``) against mpmath at 40 digits: the first derivative of ``sig`` and the second of
``log sig`` (the ordinal NLL's curvature) within 2 roundings from x = -800 to 800, in both dtypes, where
``s (1 - s)`` keeps only rounding (x >= 37 in float64: 0 for exp(-x))."""

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

from mle_jax.families.classification import _log_sigmoid, _sigmoid

mp.mp.dps = 40
XS = [-800.0, -100.0, -46.0, -37.0, -30.0, -15.0, -1.0, -1e-5, 0.0, 1e-5, 0.5, 1.0, 15.0, 30.0, 37.0, 46.0, 100.0, 800.0]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_rules_against_mpmath(dtype):
    eps, tiny = float(np.finfo(dtype).eps), float(np.finfo(dtype).tiny)
    with jax.enable_x64(dtype == "float64"):
        x = jnp.asarray(np.asarray(XS, dtype))
        slope, curvature = jax.jit(jax.vmap(lambda v: (jax.grad(_sigmoid)(v), jax.grad(jax.grad(_log_sigmoid))(v))))(x)
    for xv, d1, d2 in zip(np.asarray(x, float), np.asarray(slope, float), np.asarray(curvature, float)):
        e = mp.exp(-abs(mp.mpf(xv)))
        ref = float(e / (1 + e) ** 2)  # sig(x) sig(-x), never 1 - s at 40 digits (1 - 3.7e-44 at x = 100)
        if ref < tiny:  # below the dtype's normals: 0 or a subnormal
            assert 0.0 <= d1 <= 2 * tiny and -2 * tiny <= d2 <= 0.0, (dtype, xv, d1, d2)
            continue
        assert abs(d1 - ref) <= 2 * eps * ref, (dtype, xv, d1, ref)
        assert abs(d2 + ref) <= 2 * eps * ref, (dtype, xv, d2, -ref)
