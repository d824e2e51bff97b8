"""Named, reusable supports: the domain of one example's target y, and the one validator.

A ``Support`` is data: the dtypes it accepts, an interval (open or closed ends), whether
its values are whole numbers, or a finite set of allowed values, and, for structured
targets such as ``(value, side)``, one support per column. ``validate`` is the only
function that checks concrete targets; every family's ``check(y)`` calls it. It checks,
in order: the dtype, finiteness, the support on the values as given, and the support on
the values as the computation will see them (cast to the dtype JAX uses, subnormals
flushed: ``mle_jax._checks.check_cast``). Every failure is a ValueError naming the
family, the rule, the count of bad entries, and the first index and value.

    real, angle               any finite number          normal, laplace, student_t, mixture_normal, von_mises, mvn_cholesky
    positive                  y > 0                      gamma
    unit_interval             0 < y < 1                  beta
    probability               0 <= y <= 1                bernoulli(soft_labels=True)
    binary                    y in {0, 1}                bernoulli
    nonnegative_integer       y in {0, 1, 2, ...}        poisson, negative_binomial
    labels(K)                 integer y in [0, K)        categorical, ordinal
    censored_pair(support)    (value, side), side in {-1, 0, +1}   censored
    binomial_pair             (successes, trials), 0 <= successes <= trials   binomial
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import jax.numpy as jnp
import numpy as np

from .._checks import as_float64, check_cast, fail_entries, is_float

_DTYPE_RULES = {
    frozenset({"float", "int"}): "real numbers (an integer or floating dtype)",
    frozenset({"float", "int", "bool"}): "numbers (a boolean, integer or floating dtype)",
    frozenset({"int", "bool"}): "integers",
}


@dataclasses.dataclass(frozen=True)
class Support:
    """The domain of one example's target.

    name: e.g. ``"positive"``, ``"labels(4)"``. rule: the text of the rule in errors
    (``"> 0"``). dtypes: the accepted dtype kinds among ``"float"``, ``"int"``, ``"bool"``.
    lower, upper, open_lower, open_upper: the interval. integer: whole numbers only.
    values: a finite set of allowed values, or None. what: how errors call an entry
    (``"y"``, ``"label"``). hint: appended to the rule in errors. columns: one support per
    column of a structured target of shape ``(N, len(columns))``.
    """

    name: str
    rule: str
    dtypes: frozenset[str] = frozenset({"float", "int"})
    lower: float = -math.inf
    upper: float = math.inf
    open_lower: bool = False
    open_upper: bool = False
    integer: bool = False
    values: tuple[float, ...] | None = None
    what: str = "y"
    hint: str = ""
    columns: tuple[Support, ...] = ()
    # a rule across the columns of one row (successes <= trials): its text, and rows (N, k) -> off (NumPy rows for the
    # eager check, jnp rows for ``holds``)
    row_rule: str = ""
    row_off: Callable[[Any], Any] | None = None

    def off(self, y: np.ndarray) -> np.ndarray:
        """Where the (finite) entries of ``y`` lie off the support."""
        y = np.asarray(y)
        bad = np.zeros(y.shape, bool)
        if self.values is not None:
            bad |= ~np.isin(y, self.values)
        if self.integer:
            bad |= y != np.floor(y)
        if self.lower > -math.inf:
            bad |= (y <= self.lower) if self.open_lower else (y < self.lower)
        if self.upper < math.inf:
            bad |= (y >= self.upper) if self.open_upper else (y > self.upper)
        return bad

    def holds(self, y):
        """Where each example's target lies on the support, traced (``jnp``): ``y`` (N, *event) -> (N,) bool,
        False where any entry is non-finite or ``off``'s rule refuses it. What a dropped row's target is tested
        with before the kernel sees it (``mle_jax.families._family.drop_rows``); ``off`` is the eager check's."""
        y = jnp.asarray(y)
        if self.columns:
            ok = jnp.stack([c.holds(y[:, j]) for j, c in enumerate(self.columns)], axis=-1).all(axis=-1)
            return ok if self.row_off is None else ok & ~self.row_off(y)
        ok = jnp.ones(y.shape, bool)
        floating = jnp.issubdtype(y.dtype, jnp.inexact)
        if floating:
            ok &= jnp.isfinite(y)
        if self.values is not None:
            values = jnp.asarray(self.values, y.dtype if floating else float)
            ok &= jnp.any(y[..., None] == values.reshape((1,) * y.ndim + values.shape), axis=-1)
        if self.integer and floating:
            ok &= y == jnp.floor(y)
        if self.lower > -math.inf:
            ok &= (y > self.lower) if self.open_lower else (y >= self.lower)
        if self.upper < math.inf:
            ok &= (y < self.upper) if self.open_upper else (y <= self.upper)
        return ok if ok.ndim == 1 else ok.reshape(ok.shape[:1] + (-1,)).all(axis=-1)  # no reduce over one entry

    def filler(self, event_shape: tuple[int, ...], dtype) -> np.ndarray:
        """One example's target on the support, of ``event_shape`` and ``dtype``: ``inside`` in every entry (each
        column's own for a structured target). What a dropped row's target off the support is replaced with."""
        if self.columns:
            return np.array([c.inside() for c in self.columns], dtype)
        return np.full(event_shape, self.inside(), dtype)

    @property
    def exact(self) -> bool:
        """Whether every value must survive the cast unchanged (whole numbers, finite sets; any column's)."""
        return self.integer or self.values is not None or any(column.exact for column in self.columns)

    def inside(self) -> float:
        """A value on the support (for tests and examples)."""
        if self.values is not None:
            return self.values[-1]
        if self.lower > -math.inf and self.upper < math.inf:
            return 0.5 * (self.lower + self.upper) if not self.integer else float(self.lower)
        return float(self.lower) + 1.0 if self.lower > -math.inf else 0.5

    def outside(self) -> tuple[float, ...]:
        """Values off the support (empty for the whole real line)."""
        out = []
        if self.lower > -math.inf:
            out.append(self.lower if self.open_lower else self.lower - 1.0)
        if self.upper < math.inf:
            out.append(self.upper if self.open_upper else self.upper + 1.0)
        if self.integer or self.values is not None:
            out.append(self.inside() + 0.5)
        return tuple(out)


def _category(dtype: np.dtype) -> str:
    if dtype == np.bool_:
        return "bool"
    if np.issubdtype(dtype, np.integer):
        return "int"
    return "float" if is_float(dtype) else str(dtype)


def validate(name: str, support: Support, y) -> None:
    """Check all examples' targets ``y`` (leading axis: examples) against ``support``.

    Raises a ValueError naming ``name`` (the family), the rule, the number of bad entries,
    and the first bad index and value. See the module docstring for the order of checks.
    """
    y = np.asarray(y)
    if support.columns:
        width = len(support.columns)
        if y.ndim != 2 or y.shape[1] != width:
            raise ValueError(f"{name}: y must have shape (N, {width}), one row ({support.rule}) per example; "
                             f"got {y.shape}")
        for j, column in enumerate(support.columns):
            validate(name, column, y[:, j])
        if support.row_off is not None:
            fail_entries(name, support.row_rule, support.row_off(as_float64(y)), y, support.what)
        return
    kind = _category(y.dtype)
    if kind not in support.dtypes:
        rule = _DTYPE_RULES.get(support.dtypes, "/".join(sorted(support.dtypes)))
        plural = support.what if support.what == "y" else support.what + "s"
        cast = " (cast with y.astype(int) if the values are whole numbers)" if support.integer and kind == "float" else ""
        raise ValueError(f"{name}: {plural} must be {rule} ({support.name}); got dtype {y.dtype}{cast}")
    values = as_float64(y) if kind == "float" else y.astype(np.int64)
    if kind == "float":
        fail_entries(name, "finite (no NaN or inf)", ~np.isfinite(values), y, support.what)
    rule = f"{support.rule} ({support.hint})" if support.hint else support.rule
    fail_entries(name, rule, support.off(values), y, support.what)
    check_cast(name, y, support.what, lost=support.off, exact=support.exact)


def check_kept(name: str, support: Support, y, dtype) -> None:
    """Counts and labels (an exact support) must stay whole in ``dtype``, the float dtype the kernels compute in
    (the model's raw outputs', float32 at least). ``validate`` checks the cast to the dtype JAX computes in; under
    x64 that is float64, while float32 raw outputs read every target in float32: a count above 2^24 rounded
    (99,999,999 successes of 100,000,000 trials read as 100,000,000 of them: an NLL of 1e-5 for 11.6). Raises a
    ValueError naming the first such target (``check_cast`` with the model's ``dtype``); nothing to check where
    ``dtype`` is as wide as JAX's float."""
    dtype = jnp.promote_types(dtype, jnp.float32)
    if not support.exact or jnp.dtype(dtype).itemsize >= jnp.dtype(jnp.result_type(float)).itemsize:
        return  # as wide as the dtype JAX computes in: ``validate``'s cast check covers it
    y = np.asarray(y)
    if support.columns:
        for j, column in enumerate(support.columns):
            check_kept(name, column, y[:, j], dtype)
        return
    check_cast(name, y, support.what, exact=True, dtype=dtype)


real = Support("real", "a real number")
angle = Support("angle", "an angle in radians (any real number)")
positive = Support("positive", "> 0", lower=0.0, open_lower=True)
unit_interval = Support("unit_interval", "in the open interval (0, 1)", lower=0.0, upper=1.0,
                        open_lower=True, open_upper=True)
probability = Support("probability", "in [0, 1]", frozenset({"float", "int", "bool"}), lower=0.0, upper=1.0)
binary = Support("binary", "0 or 1", frozenset({"float", "int", "bool"}), values=(0.0, 1.0))
nonnegative_integer = Support("nonnegative_integer", "a count (a whole number >= 0)", lower=0.0, integer=True)
side = Support("side", "-1, 0 or +1", values=(-1.0, 0.0, 1.0), what="side")


def labels(num_classes: int) -> Support:
    """Class labels: integers in ``[0, K)`` (booleans count as 0 and 1)."""
    return Support(f"labels({num_classes})", f"in [0, {num_classes})", frozenset({"int", "bool"}),
                   lower=0.0, upper=float(num_classes), open_upper=True, integer=True, what="label")


def _successes_above_trials(y: np.ndarray) -> np.ndarray:
    return y[:, 0] > y[:, 1]


binomial_pair = Support("binomial_pair", "(successes, trials)", columns=(
    dataclasses.replace(nonnegative_integer, what="successes"), dataclasses.replace(nonnegative_integer, what="trials")),
    row_rule="a pair with successes <= trials", row_off=_successes_above_trials, what="(successes, trials)")


def censored_pair(inner: Support) -> Support:
    """Targets ``(value, side)``: the value on ``inner``'s support, the side -1, 0 or +1."""
    return Support(f"censored_pair({inner.name})", "(value, side)", columns=(inner, side))
