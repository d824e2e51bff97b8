"""Tables and tensors in: pandas and polars frames and series, torch tensors and any array-like
(``__array__``, ``__dlpack__``) read as arrays once, at the public boundary, before anything is traced.

- a DataFrame becomes an (N, p) array, one column per column; a Series an (N,) array;
- numeric columns keep their dtype, promoted together (``np.result_type``): int and float columns
  give float64; a boolean column is 0/1 in that dtype (an all-boolean frame stays boolean);
- refused by name, with a ``ValueError`` naming the column: a non-numeric column (strings, dates),
  an ``object`` column (Python objects: ``df[c].astype(float)`` if they are numbers), a categorical
  column (encode it with ``mj.formula``, which also names the coefficients), and a nullable column
  (pandas ``Int64`` / ``Float64`` / ``boolean``, polars) holding missing values, counted;
  a NaN in an ordinary float column is left to the recipe's value check, which names its row;
- a torch tensor is detached and copied to the host (``t.detach().cpu()``; bfloat16 through DLPack);
- the column names are remembered beside the array (``names_of``), so that ``inference`` can name
  the coefficients of a model linear in the columns.

pandas, polars and torch are never imported here: a value is recognised by the module that made
it, so each costs nothing unless the user already holds one.
"""

from __future__ import annotations

import sys
import weakref
from typing import Any, Sequence

import jax
import jax.core
import jax.numpy as jnp
import numpy as np

_NAMES: dict[int, tuple[Any, tuple[str, ...]]] = {}  # id(array) -> (weak reference, column names)


def remember_names(array, names: Sequence[str]):
    """Keep ``names`` (one per column of ``array``) for as long as ``array`` lives; returns ``array``."""
    key = id(array)
    _NAMES[key] = (weakref.ref(array, lambda _: _NAMES.pop(key, None)), tuple(str(n) for n in names))
    return array


def names_of(x) -> tuple[str, ...] | None:
    """The column names of ``x``: a DataFrame's columns, or those remembered for an array (or for
    the first leaf of a pytree that has them); None when nothing names them."""
    columns = _frame_columns(x)
    if columns is not None:
        return columns
    for leaf in jax.tree_util.tree_leaves(x):
        columns = _frame_columns(leaf)
        if columns is not None:
            return columns
        found = _NAMES.get(id(leaf))
        if found is not None and found[0]() is leaf:
            return found[1]
    return None


def _frame_columns(x) -> tuple[str, ...] | None:
    if _kind(x) in ("pandas.DataFrame", "polars.DataFrame"):
        return tuple(str(c) for c in x.columns)
    return None


def _kind(value) -> str | None:
    """``"pandas.DataFrame"``, ``"polars.Series"``, ``"torch.Tensor"``, ... or None (never imports)."""
    for module, names in (("pandas", ("DataFrame", "Series")), ("polars", ("DataFrame", "Series", "LazyFrame")),
                          ("torch", ("Tensor",))):
        lib = sys.modules.get(module)
        if lib is None:
            continue
        for name in names:
            if isinstance(value, getattr(lib, name)):
                return f"{module}.{name}"
    return None


def to_array(name: str, what: str, value):
    """``value`` as a NumPy (or, for bfloat16 tensors, jax) array; arrays, tracers, None, Python and
    NumPy scalars come back unchanged; a pytree (dict, tuple) has each leaf converted."""
    if value is None or isinstance(value, jax.Array) or (type(value) is np.ndarray and value.dtype.kind != "O"):
        return value  # the common case, first: a few hundred nanoseconds per call
    return jax.tree_util.tree_map(lambda leaf: _leaf(name, what, leaf), value)


def _leaf(name: str, what: str, value):
    if value is None or isinstance(value, (jax.Array, jax.core.Tracer, int, float, bool, complex, np.generic)):
        return value
    if isinstance(value, np.ndarray):  # other dtypes (text, dates) are named by the recipe's checks
        _not_object(name, what, value.dtype)
        return value
    kind = _kind(value)
    if kind == "pandas.DataFrame":
        return _frame(name, what, [(c, value[c]) for c in value.columns], _pandas_column)
    if kind == "pandas.Series":
        return _pandas_column(name, what, value.name, value)
    if kind == "polars.DataFrame":
        return _frame(name, what, [(c, value[c]) for c in value.columns], _polars_column)
    if kind == "polars.Series":
        return _polars_column(name, what, value.name, value)
    if kind == "polars.LazyFrame":
        raise ValueError(f"{name}: {what} is a polars LazyFrame; collect it first ({what}.collect())")
    if kind == "torch.Tensor":
        return _host(name, what, value.detach().cpu())
    if hasattr(value, "__array__") or hasattr(value, "__dlpack__"):
        return _host(name, what, value)
    return value


def _host(name: str, what: str, value):
    """An array-like (``__array__``, else ``__dlpack__``) read into a NumPy array; bfloat16, which
    NumPy lacks, through DLPack into a jax array."""
    try:
        array = np.asarray(value) if hasattr(value, "__array__") else np.from_dlpack(value)
    except (TypeError, RuntimeError, BufferError, ValueError):
        if not hasattr(value, "__dlpack__"):
            raise
        return jnp.from_dlpack(value)
    _not_object(name, what, array.dtype)
    return array


def _not_object(name: str, what: str, dtype) -> None:
    if np.dtype(dtype).kind == "O":
        _numeric(name, what, dtype, None)


def _numeric(name: str, what: str, dtype, column) -> None:
    """Refuse object, string, byte and date dtypes (``column`` named when there is one)."""
    dtype = np.dtype(dtype)
    if dtype.kind in "biufc":
        return
    where = _where(what, column)
    if dtype.kind == "O":
        raise ValueError(f"{name}: {where} has dtype object (Python objects, or a mix of types); convert it to "
                         f"numbers first (.astype(float) if its values are numbers)")
    raise ValueError(f"{name}: {where} has the non-numeric dtype {dtype}; only numbers and booleans can be "
                     f"fitted: encode text and categories with mj.formula('y ~ C(g) + ...', data, family), "
                     f"convert dates to numbers")


def _frame(name: str, what: str, columns: list, read) -> np.ndarray:
    """Columns read one by one (``read(name, what, column_name, column)``), promoted together,
    stacked into (N, p); the names remembered beside the array."""
    arrays = [read(name, what, c, column) for c, column in columns]
    if not arrays:
        raise ValueError(f"{name}: {what} is a frame without columns")
    dtype = np.result_type(*arrays)
    return remember_names(np.stack([a.astype(dtype, copy=False) for a in arrays], axis=1), [c for c, _ in columns])


def _where(what: str, column) -> str:
    """``x's column 'age'``, or ``y`` for an unnamed series."""
    return what if column is None else f"{what}'s column {column!r}"


def _missing(name: str, what: str, column, count: int, n: int, hint: str) -> None:
    if count:
        raise ValueError(f"{name}: {_where(what, column)} has {count} missing value{'s' * (count > 1)} "
                         f"(of {n}); drop or fill them first ({hint})")


def _pandas_column(name: str, what: str, column, series) -> np.ndarray:
    import pandas as pd

    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        raise ValueError(f"{name}: {_where(what, column)} is categorical; encode it with a formula, "
                         f"mj.formula('y ~ C({column}) + ...', data, family), which also names the coefficients "
                         f"(or pass its integer codes: {what}[{column!r}].cat.codes)")
    if not isinstance(dtype, np.dtype):  # an extension dtype: nullable Int64 / Float64 / boolean, str, ...
        if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
            raise ValueError(f"{name}: {_where(what, column)} has the non-numeric dtype {dtype}; only numbers "
                             f"and booleans can be fitted: encode text and categories with "
                             f"mj.formula('y ~ C({column}) + ...', data, family)")
        _missing(name, what, column, int(series.isna().sum()), len(series), ".dropna() or .fillna(value)")
        numpy_dtype = np.dtype(getattr(dtype, "numpy_dtype", np.float64))
        return series.to_numpy(dtype=numpy_dtype)
    _numeric(name, what, dtype, column)
    return series.to_numpy()


def _polars_column(name: str, what: str, column, series) -> np.ndarray:
    import polars as pl

    dtype = series.dtype
    if isinstance(dtype, (pl.Categorical, pl.Enum)) or dtype in (pl.Categorical, pl.Enum):
        raise ValueError(f"{name}: {_where(what, column)} is categorical; encode it with a formula, "
                         f"mj.formula('y ~ C({column}) + ...', data, family), which also names the coefficients "
                         f"(or pass its integer codes: .to_physical())")
    if not (dtype.is_numeric() or dtype == pl.Boolean):
        raise ValueError(f"{name}: {_where(what, column)} has the non-numeric polars dtype {dtype}; only "
                         f"numbers and booleans can be fitted: encode text and categories with "
                         f"mj.formula('y ~ C(g) + ...', data, family)")
    _missing(name, what, column, int(series.null_count()), len(series), ".drop_nulls() or .fill_null(value)")
    array = series.to_numpy()
    _numeric(name, what, array.dtype, column)
    return array
