"""Adversarial checks of session 41's ``log_ndtr`` (``normal.ndtr_minus_abs``'s Dekker correction, Laplace's series),
``mj.losses.*(..., mask=)`` and the family values of ``mj.losses``, against mpmath and scipy.stats.

``ndtr_minus_abs`` corrected XLA's erfc as ``r - r c`` with ``c ~ 1e-6``: beyond x = 12 in float32 (36.7 in float64)
``r c`` is below the smallest normal float and XLA flushes it to 0 unless it fuses the product and the difference into
one FMA, which it does inside one compiled fusion but not op by op (``mj.losses`` is not jitted: README): there the
upper tail was 120 ulps off in float32 and 990 in float64. The far lower tail's ``-x^2/2`` overflowed to -inf in
float32 from x = -1.8e19, where log Phi(x) is finite to -2.6e19."""

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest
from scipy import stats

import mle_jax as mj
from mle_jax.distributions.normal import log_ndtr


def _mp_log_ndtr(x):
    """``log Phi(x)`` at 60 digits (``log1p(-Phi(-x))`` above 0)."""
    with mp.workdps(60):
        t = mp.mpf(float(x))
        return float(mp.log1p(-mp.ncdf(-t)) if t > 0 else mp.log(mp.ncdf(t)))


@pytest.mark.deep  # op-by-op evaluation / a recipe's checks and NLL (seconds on a loaded machine)
@pytest.mark.parametrize("dtype, lo, hi", [("float32", 12.0, 12.8), ("float64", 36.7, 37.3)])
def test_log_ndtr_upper_tail_op_by_op_is_mpmaths(dtype, lo, hi):
    """Op by op (no jit, as ``mj.losses`` runs unless the caller jits it) log Phi(x) ~ -Phi(-x) in the last band
    where Phi(-x) is a normal float: within 5 ulps of mpmath, as under jit (it was 120 / 990 ulps off)."""
    xs = np.linspace(lo, hi, 13).astype(dtype)
    ref = np.array([_mp_log_ndtr(v) for v in xs])
    with jax.enable_x64(dtype == "float64"):
        got = np.asarray(log_ndtr(jnp.asarray(xs)), np.float64)
    eps = np.finfo(dtype).eps
    np.testing.assert_array_less(np.abs(got - ref), 5 * eps * np.abs(ref))


def test_log_ndtr_far_lower_tail_is_finite_while_float32_holds_it():
    """float32 log Phi(x) at x = -1.9e19 ... -2.5e19 is about -x^2/2 (-1.8e38 ... -3.1e38, float32 numbers): mpmath's
    value to float32's precision, not -inf (``-0.5 x^2`` overflowed there); below -2.7e19 it is -inf."""
    xs = np.asarray([-1.9e19, -2.2e19, -2.5e19, -1e19], np.float32)
    with mp.workdps(30):
        ref = np.array([float(mp.log(mp.ncdf(mp.mpf(float(v))))) for v in xs])
    got = np.asarray(jax.jit(log_ndtr)(jnp.asarray(xs)), np.float64)
    np.testing.assert_allclose(got, ref, rtol=4 * np.finfo(np.float32).eps)
    assert float(jax.jit(log_ndtr)(jnp.float32(-2.7e19))) == -np.inf


@pytest.mark.parametrize("loss, kw, ref", [
    (mj.losses.weibull, "concentration", lambda y, c: -stats.weibull_min.logpdf(y, c, scale=1.0)),
    (mj.losses.normal, "scale", lambda y, c: -stats.norm.logpdf(y, 0.0, c)),
])
def test_a_value_given_as_a_concrete_jax_scalar_inside_jit(loss, kw, ref):
    """A family value given as a concrete weakly typed 0-d JAX array closed over by the caller's ``jit``
    (``scale=jnp.array(1.5)``) is a value like any other: scipy's NLL (its floor check read the cast, a tracer inside
    jit: a TracerArrayConversionError; a (N,) array, a float32 scalar and NumPy scalars worked)."""
    c = jnp.array(1.5)
    assert c.weak_type
    y = np.array([0.5, 1.0, 2.0], np.float32)
    got = jax.jit(lambda r: loss(r, jnp.asarray(y), **{kw: c}))(jnp.zeros(3, jnp.float32))
    np.testing.assert_allclose(np.asarray(got, np.float64), ref(y.astype(np.float64), 1.5), rtol=2e-6)


@pytest.mark.deep  # op-by-op evaluation / a recipe's checks and NLL (seconds on a loaded machine)
def test_an_integer_mask_other_than_0_1_is_refused_as_the_recipe_refuses_it():
    """``mask=np.array([1, 2, 0])``: the recipe refuses the 2 ("not boolean (or 0/1)"), and so does ``mj.losses``,
    whose message asks for 0/1 integers (it read the 2 as True); a 0/1 integer mask is the recipe's mask: the same
    NLL as ``Recipe.nll(..., mask=)`` and scipy's over the kept rows."""
    r = mj.recipe(lambda p, x_i: p["b"] + x_i[0], mj.poisson())
    p = r.init({"b": jnp.float32(0.2)})
    x, y = np.zeros((3, 1), np.float32), np.array([1.0, 2.0, 3.0])
    for call in (lambda m: r.nll(p, x, y, mask=m), lambda m: mj.losses.poisson(jnp.full(3, 0.2), y, mask=m)):
        with pytest.raises(ValueError, match="not boolean"):
            call(np.array([1, 2, 0]))
    m = np.array([1, 0, 1])
    want = -stats.poisson.logpmf([1, 3], np.exp(np.float32(0.2))).sum()
    got = mj.losses.poisson(jnp.full(3, 0.2, jnp.float32), y, mask=m)
    np.testing.assert_allclose([float(jnp.sum(got)), float(r.nll(p, x, y, mask=m))], [want, want], rtol=1e-6)


def test_dekker_products_stay_exact_under_jit():
    """``normal._product_error`` (Veltkamp's split; XLA may contract products into FMAs and simplify sums) under jit:
    ``a b - fl(a b)`` for float32 a, b in [0, 64] and the two products ``ndtr_minus_abs`` takes (``a / sqrt 2`` and
    its square) equal NumPy's exact float64 ``a b - fl(a b)`` (a float32 product is exact in float64)."""
    from mle_jax.distributions.normal import _product_error
    rng = np.random.default_rng(0)
    a, b = (rng.uniform(0, 64, 4000).astype(np.float32) for _ in range(2))
    c = np.float32(np.sqrt(0.5))
    f = jax.jit(lambda a, b: (_product_error(a, b, a * b), _product_error(a, jnp.full_like(a, c), a * c),
                              _product_error(a * c, a * c, (a * c) * (a * c))))
    got = [np.asarray(g, np.float64) for g in f(jnp.asarray(a), jnp.asarray(b))]
    z = a * c
    exact = [a.astype(np.float64) * b - (a * b), a.astype(np.float64) * np.float64(c) - z,
             z.astype(np.float64) ** 2 - (z * z)]
    for g, e in zip(got, exact):
        np.testing.assert_array_equal(g, e)
