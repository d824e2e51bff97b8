"""Formulas: a model written as R and statsmodels write it, ``y ~ x1 + np.log(x2) + C(g) + x1:C(g)``.

    eta_i = x_i' beta + offset_i,        theta_i = family(eta_i)        (a generalised linear model)

``mj.formula(spec, data, family, offset=None, weights=None)`` builds the design matrix with formulaic
(Wilkinson formulas: transforms such as ``np.log(x)``, categoricals ``C(g)`` in treatment coding,
interactions ``a:b`` and ``a*b``, ``- 1`` for no intercept) and returns a ``Design``: its ``recipe``
(the linear model above composed with the family), ``init()`` (every coefficient 0), the data ``x``
and ``y``, the column ``names``, the ``weights`` and ``offset``; ``mj.fit(d.recipe, d.init(), d.x,
d.y, ...)``, ``mj.inference(d.recipe, params, d.x, d.y)`` (its rows named by the columns) and
``d.recipe.predict(params, d.x_for(new_data))`` follow.

The offset is per row, so it travels in x: with an offset, ``d.x`` is ``{"design": X, "offset": o}``
(a pytree whose leaves share the leading axis, so minibatches and shards cut both alike) and the
model adds ``o_i`` to the linear predictor (its first raw output where the family takes several).
Exposure ``E_i`` of a log-link count model is the offset ``log E_i`` (``offset="np.log(E)"``).

The response is the formula's left-hand side; for ``mj.binomial()`` two columns are read as R's
``cbind(successes, failures)`` (statsmodels' two-column endog) and become ``(successes, trials)``.
Rows with missing values are refused (formulaic's ``na_action="raise"``): drop them first
(``data.dropna()``), as statsmodels does silently. Reference: Wilkinson and Rogers (1973),
"Symbolic description of factorial models", Applied Statistics 22; McCullagh and Nelder, *GLMs*.
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
import warnings
from typing import Any

import jax.numpy as jnp
import numpy as np

from ._boundary import as_array, remember_names
from ._params import Params
from .families import Family
from .models import _linear_predictor
from .recipe import Recipe, recipe

__all__ = ["Design", "formula"]


def linear(params, x_i):
    """``eta = x_i' beta``: one example's raw outputs, ``beta`` of shape (p, *raw_shape)."""
    return _linear_predictor(x_i, params["coef"])


def linear_with_offset(params, x_i):
    """``eta = x_i' beta + offset_i`` (the offset on the first raw output), ``x_i = {"design", "offset"}``."""
    eta = _linear_predictor(x_i["design"], params["coef"])
    return (eta.reshape(-1).at[0].add(x_i["offset"])).reshape(eta.shape)


@dataclasses.dataclass(frozen=True, eq=False)
class Design:
    """A formula evaluated on a data set (see ``formula``).

    Fields: ``recipe`` (the linear model and the family), ``x`` (the (N, p) design matrix, or
    ``{"design": X, "offset": o}`` with an offset), ``y``, ``names`` (the p columns: ``Intercept``,
    ``np.log(x2)``, ``C(g)[T.b]``, ...), ``weights`` and ``offset`` (None or (N,) arrays),
    ``formula`` (the formula as given) and ``spec`` (formulaic's ``ModelSpec`` of the right-hand side).
    """

    recipe: Recipe
    x: Any
    y: np.ndarray
    names: tuple[str, ...]
    weights: np.ndarray | None
    offset: np.ndarray | None
    formula: str
    spec: Any
    offset_spec: Any = None

    def init(self, dtype=None) -> Params:
        """Every coefficient 0 (``coef`` of shape (p, *raw_shape)) and the family's own starting values;
        ``dtype`` defaults to jax's (float64 inside ``jax.enable_x64``)."""
        shape = (len(self.names),) + tuple(self.recipe.family.raw_shape)
        return self.recipe.init({"coef": jnp.zeros(shape, dtype)})

    def x_for(self, data, offset=None):
        """The model's input for new data, encoded as the fitted data were: the same transforms, the same
        categorical levels and reference level. A level the design never saw is a ValueError naming it
        and its factor. The offset is read from ``data`` where the design read it from a column or an
        expression; where it was given as an array, pass the new rows' ``offset=``."""
        frame = _pandas("formula", data)
        design = _rhs(self.spec, frame)
        if self.offset is None:
            if offset is not None:
                raise ValueError("formula: this design has no offset; build it with mj.formula(..., offset=...)")
            return design
        if offset is None:
            if self.offset_spec is None:
                raise ValueError("formula: the design's offset was given as an array; pass the new rows' "
                                 "offset: d.x_for(data, offset=...)")
            spec = self.offset_spec
            offset = frame[spec] if isinstance(spec, str) else _rhs(spec, frame)[:, 0]
        return {"design": design, "offset": _column("formula", "offset", offset, design.shape[0])}


def formula(spec: str, data, family: Family, offset=None, weights=None) -> Design:
    """A generalised linear model from a Wilkinson formula: ``eta = X beta + offset``, ``theta = family(eta)``.

    Args:
      spec: ``"y ~ x1 + np.log(x2) + C(g) + x1:C(g)"`` (formulaic's grammar, R's and statsmodels'):
        ``C(g)`` a categorical in treatment coding (``C(g, Treatment("b"))`` another reference level),
        ``a:b`` an interaction, ``a*b`` both and their interaction, ``- 1`` no intercept, ``I(x**2)``
        arithmetic, any numpy function of a column.
      data: a pandas DataFrame (a polars one is read into pandas; a dict of columns works too).
      family: the family the linear predictor feeds (``mj.poisson()``, ``mj.bernoulli()``,
        ``mj.binomial()``, ``mj.normal(scale="learned")``, ``mj.gamma("mean")``, ...): the formula's
        coefficients are the model's raw outputs (the log-rate, the logit, the mean, the log-mean).
      offset: added to the linear predictor: a column name, an expression of the columns
        (``"np.log(exposure)"``) or an array of N values.
      weights: per-row frequency weights: a column name, an expression or an array; pass
        ``weights=d.weights`` to ``fit`` and ``inference``.

    Returns:
      A ``Design`` (``d.recipe``, ``d.init()``, ``d.x``, ``d.y``, ``d.names``, ``d.weights``,
      ``d.offset``, ``d.x_for(new_data)``). statsmodels: ``smf.glm(spec, data, family=...,
      offset=..., freq_weights=...)``; the coefficients are equal, and the standard errors where
      the family has no free scale (Poisson, Bernoulli, binomial; for a learned Normal scale or a
      Gamma shape statsmodels divides by N - p and uses Pearson's chi^2, not the MLE).

    Example:
      >>> import pandas as pd, mle_jax as mj
      >>> data = pd.DataFrame({"y": [0, 1, 2, 1], "x": [0.5, 1.0, 1.5, 2.0], "g": ["a", "b", "a", "b"]})
      >>> d = mj.formula("y ~ x + C(g)", data, mj.poisson())
      >>> d.names, d.x.shape
      (('Intercept', 'x', 'C(g)[T.b]'), (4, 3))
    """
    if not isinstance(spec, str) or "~" not in spec:
        raise ValueError(f"formula: spec must be a formula string 'y ~ x1 + ...'; got {spec!r}")
    if not isinstance(family, Family):
        raise TypeError(f"formula: family must be an mle_jax Family (e.g. mj.poisson()); got {type(family).__name__}")
    frame = _pandas("formula", data)
    matrices = _formulaic("formula", lambda f: f.model_matrix(spec, frame, na_action="raise"))
    names = tuple(str(c) for c in matrices.rhs.columns)
    design = remember_names(_float("formula", "the right-hand side", matrices.rhs), names)
    n = design.shape[0]
    y = _response(family, matrices.lhs, n)
    w = None if weights is None else _column("formula", "weights", _values(weights, frame, n)[0], n)
    offset_spec, o = None, None
    if offset is not None:
        values, offset_spec = _values(offset, frame, n)
        o = _column("formula", "offset", values, n)
    x = design if o is None else {"design": design, "offset": o}
    r = recipe(linear if o is None else linear_with_offset, family)
    return Design(r, x, y, names, w, o, spec, matrices.rhs.model_spec, offset_spec)


def _formulaic(name: str, build):
    try:
        import formulaic
    except ImportError as error:  # pragma: no cover
        raise ImportError(f"{name} needs formulaic: pip install 'mle_jax[formula]'") from error
    try:
        return build(formulaic)
    except (ValueError, TypeError, KeyError, NameError) as error:
        raise ValueError(f"{name}: {error}") from error
    except Exception as error:  # formulaic's own errors (syntax, a factor it cannot evaluate)
        if type(error).__module__.startswith("formulaic"):
            raise ValueError(f"{name}: {type(error).__name__}: {error}") from error
        raise


def _pandas(name: str, data):
    """``data`` as a pandas DataFrame (polars frames and dicts of columns are read into one)."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    polars = sys.modules.get("polars")
    if polars is not None and isinstance(data, polars.DataFrame):
        return pd.DataFrame({c: data[c].to_numpy() for c in data.columns})
    if isinstance(data, dict):
        return pd.DataFrame(data)
    raise TypeError(f"{name}: data must be a pandas or polars DataFrame (or a dict of columns); "
                    f"got {type(data).__name__}")


def _float(name: str, what: str, matrix) -> np.ndarray:
    array = np.asarray(as_array(name, what, matrix), np.float64)
    return np.ascontiguousarray(array)


def _rhs(spec, frame) -> np.ndarray:
    """The right-hand side of a fitted formula evaluated on new rows; unseen levels refused by name."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        matrix = _formulaic("formula", lambda f: spec.get_model_matrix(frame, na_action="raise"))
    unseen = [str(w.message) for w in caught if type(w.message).__name__ == "DataMismatchWarning"]
    if unseen:
        raise ValueError(f"formula: the new data hold levels the design never saw, {_unseen(spec, frame)}; "
                         f"a coefficient exists only for the fitted data's levels ({unseen[0]})")
    for w in caught:  # anything else formulaic says is passed on
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return remember_names(_float("formula", "the new data", matrix), [str(c) for c in matrix.columns])


def _unseen(spec, frame) -> str:
    """'g: z (levels a, b, c)' for each categorical factor that is a column or C(column)."""
    found = []
    for factor, (kind, state) in getattr(spec, "encoder_state", {}).items():
        levels = state.get("categories") if isinstance(state, dict) else None
        match = re.fullmatch(r"(?:C\()?\s*(\w+)\s*(?:,.*)?\)?", str(factor))
        if levels is None or match is None or match.group(1) not in frame:
            continue
        new = sorted({str(v) for v in frame[match.group(1)].dropna().unique()} - {str(v) for v in levels})
        if new:
            found.append(f"{factor}: {', '.join(new)} (fitted levels: {', '.join(map(str, levels))})")
    return "; ".join(found) or "see formulaic's message"


def _values(given, frame, n: int):
    """A per-row quantity (offset, weights): a column name, an expression (evaluated by formulaic) or
    an array; returns ``(values, how to read it from new data: the column name, formulaic's spec, or None)``."""
    if isinstance(given, str) and given in frame:
        return frame[given], given
    if isinstance(given, str):
        matrix = _formulaic("formula", lambda f: f.model_matrix(f"0 + {given}", frame, na_action="raise"))
        if matrix.shape[1] != 1:
            raise ValueError(f"formula: {given!r} gives {matrix.shape[1]} columns; an offset or weights is one value "
                             f"per row")
        return _float("formula", given, matrix)[:, 0], matrix.model_spec
    return given, None


def _column(name: str, what: str, values, n: int) -> np.ndarray:
    array = np.asarray(as_array(name, what, values), np.float64)
    if array.shape != (n,):
        raise ValueError(f"{name}: {what} must have one value per row, shape ({n},); got {array.shape}")
    return array


def _response(family: Family, lhs, n: int) -> np.ndarray:
    """The left-hand side as the family's targets: (N,) for one value, (N, *event_shape) otherwise;
    for the binomial, two columns ``(successes, failures)`` become ``(successes, trials)``."""
    y = _float("formula", "the left-hand side", lhs)
    columns = [str(c) for c in lhs.columns]
    want = math.prod(family.event_shape)
    if family.spec.kind == "binomial" and y.shape[1] == 2:
        return np.stack([y[:, 0], y[:, 0] + y[:, 1]], axis=1)
    if y.shape[1] != want:
        raise ValueError(f"formula: the left-hand side gives {y.shape[1]} columns {columns}; {family.name} takes "
                         f"{want} value{'s' * (want > 1)} per row (a text or categorical response is encoded into "
                         f"several columns: code it as numbers first)")
    return y.reshape((n,) + tuple(family.event_shape))
