"""Adversarial checks of session 40's weighted reductions (``_reductions.weights_as``), against NumPy float64 sums
of scipy's terms.

A sum's float64 weights with a float32 model were scaled into float32's range and its sums scaled back by ``2^e``
in float32: where ``2^e`` is out of float32's range (weights of 1e-40 or 1e-300) the derivative in the weights,
``d/dw_i sum_j w_j t_j = t_i``, was 0, and at weights of 1e300 the value NaN. A mean's float16 weights were scaled
into (0, 1] in float16, whose subnormals lost the small weights' digits (float32's sum and mean held them)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import mle_jax as mj
from mle_jax._reductions import reduce_terms

N = 5
X = np.linspace(-1.0, 1.0, N, dtype=np.float32)[:, None]
Y = np.array([0, 2, 1, 5, 3])
U = np.array([1.0, 0.5, 2.0, 0.0, 3.0])  # a weight of 0 among them


def _poisson(n_x=X, y=Y, validate=True):
    """A float32 Poisson model and scipy's terms ``t_i`` and ``d t_i / d b = exp(eta_i) - y_i`` at its inputs."""
    r = mj.recipe(lambda p, x_i: p["b"] + p["a"] * x_i[0], mj.poisson(), validate=validate)
    p = r.init({"a": jnp.float32(0.3), "b": jnp.float32(0.2)})
    eta = np.float64(np.float32(0.2)) + np.float64(np.float32(0.3)) * n_x[:, 0].astype(np.float64)
    return r, p, -stats.poisson.logpmf(y, np.exp(eta)), np.exp(eta) - y


def test_a_weighted_sums_derivative_in_float64_weights_is_the_term_at_any_scale():
    """``d/dw_i`` of the weighted sum NLL is ``t_i`` (NumPy, scipy) for float64 weights with a float32 model under x64,
    also where the weights are below float32's range (1e-40, 1e-300: it was 0) or above it (1e300: the value is
    float32's overflow, inf, where it was NaN); ``d/db`` is ``sum_i w_i (exp(eta_i) - y_i)`` where float32 holds it."""
    with jax.enable_x64(True):
        r, p, t, dt = _poisson(validate=False)  # the weights traced
        x = jnp.asarray(X)
        objective = jax.jit(jax.value_and_grad(lambda p, w: r.nll(p, x, Y, weights=w), argnums=(0, 1)))
        for c in (1.0, 1e-20, 1e-40, 1e-300, 1e300):
            w = c * U
            value, (dp, dw) = objective(p, jnp.asarray(w, jnp.float64))
            assert value.dtype == jnp.float32 and dw.dtype == jnp.float64
            np.testing.assert_allclose(np.asarray(dw), t, rtol=1e-6)
            if c == 1e300:
                assert np.isposinf(float(value))
            elif c >= 1e-20:
                np.testing.assert_allclose(float(value), np.sum(w * t), rtol=1e-6)
                np.testing.assert_allclose(float(dp.model["b"]), np.sum(w * dt), rtol=1e-5)


def test_a_weighted_mean_of_float16_weights_is_that_of_their_exact_values():
    """Float16 weights (exact in float64) with one large weight: the weighted mean of float32 terms (scipy's Poisson
    NLLs) is NumPy's float64 mean with those weights (scaled in float16, the small weights fell into its subnormals:
    2.4e-5 off), as the recipe reduces its terms (``reduce_terms``, which ``mean_nll`` and newton's weights share)."""
    n = 2001
    t = -stats.poisson.logpmf(np.arange(n) % 5, np.exp(np.linspace(-1.0, 1.0, n)))
    w = np.full(n, 0.11, np.float16)
    w[0] = 60000.0
    u = w.astype(np.float64)
    got = jax.jit(reduce_terms, static_argnames="reduction")(jnp.asarray(t, jnp.float32), jnp.asarray(w), reduction="mean")
    ref = np.sum(u * t.astype(np.float32)) / np.sum(u)
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(float(got), ref, rtol=2e-6)


def test_a_weighted_sum_whose_weights_sum_overflows_but_it_does_not_is_numpys():
    """Two float32 weights of 2e38 times Poisson terms of 0.4 (y = 0, rate 0.4): the sum 1.6e38 is a float32 number, the
    weights' sum 4e38 is not; the unit affine's ``count * 0`` made it NaN."""
    r = mj.recipe(lambda p, x_i: p["b"] + 0.0 * x_i[0], mj.poisson())
    b = np.float32(np.log(0.4))
    w = np.array([2e38, 2e38], np.float32)
    got = r.nll(r.init({"b": jnp.float32(b)}), np.zeros((2, 1), np.float32), np.array([0, 0]), weights=w)
    ref = np.sum(w.astype(np.float64) * -stats.poisson.logpmf(0, np.exp(np.float64(b))))
    np.testing.assert_allclose(float(got), ref, rtol=1e-6)


def test_numpy_float64_raw_outputs_without_x64_take_an_array_value_as_scipy_does():
    """Without x64, NumPy float64 raw outputs (``np.array([0.1, -0.2])``) are float32 to JAX (``computes_in``): a
    value given as an array is read in float32, without the warning of a float64 ``astype`` JAX cannot do (an error
    under ``-W error``; cutpoints took the same path), and is scipy's."""
    raw, y = np.array([0.1, -0.2, 0.4]), np.array([0.5, 0.3, -1.0])
    got = jax.jit(lambda s: mj.losses.normal(raw, y, scale=s))(np.array([0.5, 0.7, 1.1]))  # raw NumPy inside
    np.testing.assert_allclose(np.asarray(got), -stats.norm.logpdf(y, raw, [0.5, 0.7, 1.1]), rtol=1e-6)


def test_a_count_that_float64_rounds_is_refused_and_one_it_keeps_is_not():
    """Integer counts are compared with their float reading as integers: 2^53 + 1 is 2^53 in float64 (NumPy), and
    compared in float64 it equalled its rounding, so it passed as kept (an NLL at the wrong count)."""
    from mle_jax._checks import check_cast

    counts = np.array([2 ** 53, 2 ** 53 + 1, 3, -(2 ** 53) - 1, 2 ** 62 + 2 ** 40, 2 ** 62 + 1])
    rounded = [int(float(c)) != int(c) for c in counts]  # Python's float is float64
    assert rounded == [False, True, False, True, False, True]
    for count, off in zip(counts, rounded):
        for dtype in (np.float64, None):
            with jax.enable_x64(True):  # JAX computes the integers in float64 (dtype None: the validate check)
                if not off:
                    check_cast("poisson", np.array([count]), "y", exact=True, dtype=dtype)
                    continue
                with pytest.raises(ValueError, match=f"y {count} at index 0 is not kept by the cast to float64"):
                    check_cast("poisson", np.array([count]), "y", exact=True, dtype=dtype)
    with jax.enable_x64(True):
        with pytest.raises(ValueError, match="y 9007199254740993 at index 0 is not kept by the cast to float64") as e:
            mj.losses.poisson(jnp.zeros(1, jnp.float64), np.array([2 ** 53 + 1]))
    assert "64-bit mode" not in str(e.value)  # on already: it cannot help
