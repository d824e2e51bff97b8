"""Tables and tensors at every public boundary (mle_jax._frames): pandas and polars frames and series,
torch tensors and array-likes give the numbers the plain NumPy arrays give, or a named ValueError."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
import polars as pl
import pytest

import mle_jax as mj
from mle_jax._boundary import as_array, names_of
from mle_jax.inference import parameter_names

N = 24


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=N), "b": rng.integers(0, 4, size=N), "c": rng.normal(size=N) > 0})
    y = pd.Series(1.5 * frame["a"] - 0.5 * frame["b"] + frame["c"] + rng.normal(size=N), name="y")
    return frame, y


@pytest.fixture(scope="module")
def linear():
    r = mj.recipe(lambda p, x: x @ p["w"] + p["b"], mj.normal(scale="learned"))
    return r, r.init({"w": jnp.array([1.0, -0.5, 0.5]), "b": jnp.float32(0.1)})


def _plain(frame):
    return frame.to_numpy(np.float64)


class ArrayLike:
    """Neither numpy nor jax: only the array protocols (as xarray, dask or cupy-on-host values are)."""

    def __init__(self, array, dlpack_only=False):
        self._array = np.asarray(array)
        if not dlpack_only:
            self.__array__ = lambda dtype=None, copy=None: self._array

    def __dlpack__(self, **kwargs):
        return self._array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._array.__dlpack_device__()


def test_pandas_and_polars_give_the_numpy_numbers(data, linear):
    frame, y = data
    r, params = linear
    x_np, y_np = _plain(frame), y.to_numpy()
    want = float(r.nll(params, x_np, y_np))
    polars_frame = pl.DataFrame({c: frame[c].to_numpy() for c in frame.columns})
    for x, target in ((frame, y), (polars_frame, pl.Series("y", y_np)), (ArrayLike(x_np), ArrayLike(y_np)),
                      (ArrayLike(x_np, dlpack_only=True), ArrayLike(y_np, dlpack_only=True))):
        assert float(r.nll(params, x, target)) == want
        np.testing.assert_array_equal(r.log_prob(params, x, target), r.log_prob(params, x_np, y_np))
        np.testing.assert_array_equal(r.predict(params, x).loc, r.predict(params, x_np).loc)
    np.testing.assert_array_equal(as_array("t", "x", frame), x_np)  # a boolean column is 0/1, promoted
    assert as_array("t", "x", frame[["c"]]).dtype == np.bool_


@pytest.mark.deep
def test_fit_scores_and_losses_take_frames(data, linear):
    frame, y = data
    r, params = linear
    x_np, y_np = _plain(frame), y.to_numpy()
    adam = optax.adam(0.05)  # one optimizer: both fits run one compiled program
    a = mj.fit(r, params, frame, y, adam, steps=5, weights=pd.Series(np.ones(N)))
    b = mj.fit(r, params, x_np, y_np, adam, steps=5, weights=np.ones(N))
    np.testing.assert_array_equal(a.history, b.history)
    theta = r.predict(params, x_np)
    np.testing.assert_array_equal(mj.crps(theta, y), mj.crps(theta, y_np))
    np.testing.assert_array_equal(mj.pit(theta, pl.Series(y_np)), mj.pit(theta, y_np))
    assert r.evaluate(params, frame, y) == r.evaluate(params, x_np, y_np)
    np.testing.assert_array_equal(mj.losses.normal(pd.Series(theta.loc), y, scale=1.0),
                                  mj.losses.normal(theta.loc, y_np, scale=1.0))
    probs = pd.Series(np.linspace(-2, 2, N))
    labels = pd.Series((y_np > 0).astype(np.int32))
    np.testing.assert_array_equal(mj.losses.bernoulli(probs, labels),
                                  mj.losses.bernoulli(probs.to_numpy(), labels.to_numpy()))
    theta_b = mj.Bernoulli(jnp.asarray(probs.to_numpy(), jnp.float32))
    np.testing.assert_array_equal(mj.brier(theta_b, labels), mj.brier(theta_b, labels.to_numpy()))
    assert float(mj.calibration(theta_b, labels).ece) == float(mj.calibration(theta_b, labels.to_numpy()).ece)


@pytest.mark.deep  # a few seconds of compiling: CI's deep phase, for README's 5-minute suite
def test_torch_tensors_detached_on_the_host(data, linear):
    torch = pytest.importorskip("torch", reason="torch is in the bench extra, not the test extra (a multi-GB "
                                                "CUDA build from PyPI); the array protocols are tested above")
    frame, y = data
    r, params = linear
    x_np, y_np = _plain(frame), y.to_numpy()
    x_t = torch.tensor(x_np, requires_grad=True)  # .numpy() alone refuses a tensor that requires grad
    assert float(r.nll(params, x_t, torch.tensor(y_np))) == float(r.nll(params, x_np, y_np))
    half = as_array("t", "x", torch.tensor(x_np, dtype=torch.bfloat16))  # numpy has no bfloat16: through DLPack
    assert half.dtype == jnp.bfloat16 and half.shape == x_np.shape


def _mle(r, x, y):
    """The closed-form MLE of the linear Normal model: least squares, sigma^2 = SSR / N."""
    design = np.column_stack([x, np.ones(len(y))])
    coef, ssr = np.linalg.lstsq(design, y, rcond=None)[:2]
    return mj.Params({"w": jnp.asarray(coef[:-1]), "b": jnp.asarray(coef[-1])},
                     {"scale": mj.links.softplus.inverse(jnp.asarray(np.sqrt(ssr[0] / len(y))))})


def test_inference_rows_named_by_the_columns(data, linear):
    frame, y = data
    r, _ = linear
    with jax.enable_x64(True):
        params = _mle(r, _plain(frame), y.to_numpy())
        s = mj.inference(r, params, frame, y)
        plain = mj.inference(r, params, _plain(frame), y.to_numpy())
    assert s.names == ("model.b", "a", "b", "c", "family.scale")  # ravel order: the dict sorted
    assert plain.names[1:4] == ("model.w[0]", "model.w[1]", "model.w[2]")
    np.testing.assert_array_equal(s.variance, plain.variance)
    assert "a  " in s.summary() and "model.w" not in s.summary()
    assert names_of(pl.DataFrame({"u": [1.0], "v": [2.0]})) == ("u", "v")
    assert names_of(np.zeros((2, 2))) is None


def test_a_weight_matrix_with_one_row_per_column_is_named():
    """One trained model leaf with a row per column is named by the columns; two such leaves (an
    ambiguous match, as an MLP whose hidden width equals p) leave the default names."""
    columns = ("a", "b", "c")
    r = mj.recipe(lambda p, x: x @ p["w"], mj.normal(scale="softplus"))  # (mu, raw sigma) linear in x
    assert parameter_names(r.init({"w": jnp.zeros((3, 2))}), columns) == [
        "a[0]", "a[1]", "b[0]", "b[1]", "c[0]", "c[1]"]
    two = r.init({"w": jnp.zeros((3, 2)), "v": jnp.zeros(3)})
    assert parameter_names(two, columns) == parameter_names(two)
    assert parameter_names(two)[:2] == ["model.v[0]", "model.v[1]"]


def _bad(frame, column, values):
    bad = frame.copy()
    bad[column] = values
    return bad


@pytest.mark.parametrize("make, message", [
    (lambda f: _bad(f, "s", ["u"] * N), "x's column 's' has the non-numeric dtype"),
    (lambda f: _bad(f, "a", f["a"].astype(object)), "x's column 'a' has dtype object"),
    (lambda f: _bad(f, "g", pd.Categorical(["u", "v"] * (N // 2))), "x's column 'g' is categorical; encode it with "
                                                                     "a formula, mj.formula('y ~ C(g)"),
    (lambda f: _bad(f, "b", pd.array([None, 1, None] + [2] * (N - 3), dtype="Int64")),
     "x's column 'b' has 2 missing values (of 24)"),
    (lambda f: _bad(f, "a", pd.array([None] + [1.0] * (N - 1), dtype="Float64")),
     "x's column 'a' has 1 missing value (of 24)"),
    (lambda f: _bad(f, "d", pd.date_range("2020-01-01", periods=N)), "x's column 'd' has the non-numeric dtype"),
    (lambda f: pl.DataFrame({"a": [1.0, None] * (N // 2)}), "x's column 'a' has 12 missing values (of 24)"),
    (lambda f: pl.DataFrame({"s": ["u"] * N}), "x's column 's' has the non-numeric polars dtype"),
    (lambda f: pl.DataFrame({"g": pl.Series(["u"] * N, dtype=pl.Categorical)}), "x's column 'g' is categorical"),
    (lambda f: pl.DataFrame({"a": [1.0] * N}).lazy(), "x is a polars LazyFrame; collect it first"),
    (lambda f: np.array([1.0, "u"] * (N // 2), dtype=object), "x has dtype object"),
])
def test_what_cannot_be_read_is_named(data, linear, make, message):
    frame, y = data
    r, params = linear
    with pytest.raises(ValueError, match=re.escape(message)):
        r.nll(params, make(frame), y)
    with pytest.raises(ValueError, match=re.escape(message)):
        mj.fit(r, params, make(frame), y, optax.adam(0.1), steps=1)


def test_nullable_columns_without_missing_values_are_read(data, linear):
    frame, y = data
    r, params = linear
    nullable = frame.astype({"a": "Float64", "b": "Int64", "c": "boolean"})
    assert float(r.nll(params, nullable, y.astype("Float64"))) == float(r.nll(params, _plain(frame), y.to_numpy()))
    with pytest.raises(ValueError, match=re.escape("y's column 'y' has 1 missing value")):
        r.nll(params, frame, pd.Series([None] + [1.0] * (N - 1), dtype="Float64", name="y"))
