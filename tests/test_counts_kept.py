"""Counts must stay whole in the dtype the model computes in (``check_kept``): under x64 JAX computes in float64,
so the eager cast check passes a count above 2^24, but a float32 model reads every target in float32, where
99,999,999 successes of 100,000,000 trials become 100,000,000 of them (an NLL of 1e-5 for scipy's 11.6)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import special, stats

import mle_jax as mj

Y = np.array([[99_999_999, 100_000_000], [3, 10]])
Z = float(special.logit(0.99999999))  # one trial's logit near the first row's own


def _recipe():
    return mj.recipe(lambda p, x_i: p["b"] + x_i[0], mj.binomial())


def _scipy_nll(z):
    return -np.sum(stats.binom.logpmf(Y[:, 0], Y[:, 1], special.expit(z)))


@pytest.mark.parametrize("call", ["nll", "losses", "fit"])
def test_a_float32_model_under_x64_refuses_counts_it_would_round(call):
    with jax.enable_x64(True):
        r = _recipe()
        p = r.init({"b": jnp.float32(Z)})
        x = np.zeros((2, 1), np.float32)
        with pytest.raises(ValueError, match=r"successes 99999999 at index 0 is not kept by the cast to float32, "
                                             r"the dtype the model computes in"):
            if call == "nll":
                r.nll(p, x, Y)
            elif call == "losses":
                mj.losses.binomial(jnp.full(2, Z, jnp.float32), Y)
            else:
                mj.fit(r, p, x, Y, optax.sgd(0.0), steps=1, run=mj.Run(progress=False))


def test_the_same_counts_in_a_float64_model_are_scipys_value():
    with jax.enable_x64(True):
        r = _recipe()
        p = r.init({"b": jnp.float64(Z)})
        for x in (np.zeros((2, 1), np.float64), np.zeros((2, 1), np.float32)):  # float64 params: float64 raw
            np.testing.assert_allclose(float(r.nll(p, x, Y)), _scipy_nll(Z), rtol=1e-7)
        # float32 params with float64 x: a linear model's raw outputs are float64, the counts kept
        q = r.init({"b": jnp.float32(Z)})
        np.testing.assert_allclose(float(r.nll(q, np.zeros((2, 1), np.float64), Y)), _scipy_nll(float(np.float32(Z))),
                                   rtol=1e-7)
        np.testing.assert_allclose(float(mj.losses.binomial(jnp.full(2, Z), Y).sum()), _scipy_nll(Z), rtol=1e-7)
        # mj.inference computes in float64 whatever the params' dtype: a float32 model's counts are kept there
        info = mj.inference(r, q, np.zeros((2, 1), np.float32), Y)
        np.testing.assert_allclose(info.loglik, -_scipy_nll(float(np.float32(Z))), rtol=1e-7)


def test_a_poisson_count_above_2_to_the_24_in_float32_under_x64_is_refused_and_one_below_is_not():
    with jax.enable_x64(True):
        r = mj.recipe(lambda p, x_i: p["b"] + x_i[0], mj.poisson())
        p = r.init({"b": jnp.float32(16.0)})
        x = np.zeros((1, 1), np.float32)
        with pytest.raises(ValueError, match="16777217 at index 0 is not kept by the cast to float32"):
            r.nll(p, x, np.array([2 ** 24 + 1]))
        np.testing.assert_allclose(float(r.nll(p, x, np.array([2 ** 24]))),
                                   -stats.poisson.logpmf(2 ** 24, np.exp(np.float32(16.0))), rtol=2e-5)


def test_check_cast_in_the_models_dtype_refuses_exactly_the_counts_that_float32_rounds():
    """One function serves JAX's dtype and the model's: ``check_cast(..., dtype=)`` is what ``check_kept`` runs."""
    from mle_jax._checks import check_cast

    counts = np.array([2 ** 24, 2 ** 24 + 1, 3, 2 ** 25 + 4, 2 ** 25 + 3, 10 ** 8 - 1])
    rounded = np.float32(counts).astype(np.int64) != counts  # NumPy's float32 rounds 16777217, 33554435, 99999999
    assert rounded.tolist() == [False, True, False, False, True, True]
    for count, off in zip(counts, rounded):
        if not off:
            check_cast("binomial", np.array([count]), "successes", exact=True, dtype=np.float32)
            continue
        becomes = float(np.float32(count))
        with pytest.raises(ValueError, match=rf"successes {count} at index 0 is not kept by the cast to float32, "
                                             rf"the dtype the model computes in \(it becomes {becomes!r}\)"):
            check_cast("binomial", np.array([count]), "successes", exact=True, dtype=np.float32)
    with pytest.raises(ValueError, match=r"successes 16777217 at index 1 .* \(3 bad entries"):
        check_cast("binomial", counts, "successes", exact=True, dtype=np.float32)


def test_the_kept_check_is_remembered_with_the_data_by_the_models_dtype(monkeypatch):
    """``Recipe.check(params=)`` runs ``check_kept`` (an O(N) compare) once per data set and model dtype: the same
    immutable arrays with the same dtype are not compared again, a new dtype or new arrays are; a refusal is not
    remembered. Counted calls, not times."""
    import sys

    from mle_jax.distributions._support import check_kept

    recipe_module = sys.modules["mle_jax.recipe"]  # the module (mj.recipe is the function)

    calls = []

    def counted(name, support, y, dtype):
        calls.append(jnp.dtype(dtype).name)
        return check_kept(name, support, y, dtype)

    monkeypatch.setattr(recipe_module, "check_kept", counted)
    with jax.enable_x64(True):
        r = _recipe()
        p32, p64 = r.init({"b": jnp.float32(Z)}), r.init({"b": jnp.float64(Z)})
        x, y = jnp.zeros((2, 1), jnp.float32), jnp.asarray(Y[1:].repeat(2, axis=0))
        for p in (p32, p32, p64, p64, p32):
            r.nll(p, x, y)
        assert calls == ["float32", "float64"]
        r.nll(p32, x, jnp.asarray(Y[1:].repeat(2, axis=0)))  # new arrays, same values: checked again
        assert calls == ["float32", "float64", "float32"]
        big = jnp.asarray(Y)
        for _ in range(2):  # refused each time: a failed check is not remembered as kept
            with pytest.raises(ValueError, match="not kept by the cast to float32"):
                r.nll(p32, x, big)
        assert calls[3:] == ["float32", "float32"]
