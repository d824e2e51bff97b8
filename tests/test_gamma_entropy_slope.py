"""The Gamma entropy's slope in its shape at large shapes, against mpmath.

``h(a) = a + lgamma(a) + (1 - a) psi(a)`` has ``h'(a) = 1 + (1 - a) psi'(a) = 1/(2a) + O(1/a^2)``; the
``(1 - a) (psi - log)`` part's own slope is ``O(1/a^2)``, computed as ``-D + (1 - a) D'``: two ``1/(2a)`` that
cancel, whose second underflowed first (``1/(2a^2)``: float32 at a = 1e20, float64 at 1e160), leaving a slope
``1/a``, twice the truth."""

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

import mle_jax as mj


def _slope(a: float) -> float:
    """``d/da`` of the entropy ``a + lgamma(a) + (1 - a) psi(a)``: ``1 + (1 - a) psi'(a)`` in mpmath (60 digits;
    it cancels ``log10 a`` of them) below 1e6, above by the asymptotic series of ``psi'`` (``1/a + 1/(2a^2) +
    1/(6a^3) - 1/(30a^5) + ...``): ``1/(2a) + 1/(3a^2) + 1/(6a^3)``, the next term ``O(1/a^4)``, 1e-19 relative at
    1e6."""
    with mp.workdps(60):
        a = mp.mpf(a)
        if a >= 1e6:
            return float(1 / (2 * a) + 1 / (3 * a**2) + 1 / (6 * a**3))
        return float(1 + (1 - a) * mp.polygamma(1, a))


@pytest.mark.deep  # compiles the entropy's unrolled steps and their derivative (seconds in float64)
@pytest.mark.parametrize("dtype, shapes, rtol", [
    ("float32", (9.99, 10.0, 1e3, 1e6, 1e15, 1e20, 1e30), 3e-7),
    ("float64", (9.99, 20.0, 1e3, 1e20, 1e160, 1e300), 2e-15),
])
def test_gamma_entropy_slope_in_the_shape(x64, dtype, shapes, rtol):
    a = jnp.asarray(shapes, dtype)
    slope = jax.jit(jax.vmap(jax.grad(lambda s: mj.entropy(mj.Gamma(s, jnp.ones((), dtype))))))(a)
    np.testing.assert_allclose(slope, [_slope(float(s)) for s in np.asarray(a)], rtol=rtol)
