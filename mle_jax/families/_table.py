"""The table of families: each public constructor by name, with what a per-example loss needs to
build it from a call instead of from the constructor's arguments (``mle_jax.losses`` is generated
from this table; add a family here and it gets its ``mj.losses`` function).

    FAMILIES["categorical"] = Entry(categorical, inputs=("logits", "labels"),
                                    sizes=(Size("num_classes", "logits", "(N, K)", ...),))

- ``sizes``: a constructor argument read from the shape of an input (the K of ``categorical`` is
  ``logits.shape[-1]``; the K of ``ordinal`` is one more than the number of cutpoints).
- ``values``: an option that a call may also give as a value in natural units (``scale=sigma``, an
  array you learn or know): the family is built with that option ``"learned"`` and the value enters
  as its own parameter, through the inverse of its link (softplus + eps).
- ``init_*`` options (starting values of learned parameters) have no meaning for a loss, which is
  given the values; a family option (``family=`` of the combinators) comes with its ``fparams``.
"""

from __future__ import annotations

import numbers
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import links
from .._cache import is_concrete
from .._checks import computed, fail_entries
from ._family import Family
from .classification import bernoulli, categorical, ordinal
from .combinators import censored, independent
from .compositions import dirichlet
from .counts import negative_binomial, poisson
from .counts import binomial, negative_binomial, poisson, zero_inflated
from .directional import von_mises
from .multivariate import mvn_cholesky
from .quantile import asymmetric_laplace
from .ranking import plackett_luce
from .regression import beta, gamma, laplace, mixture_normal, normal, student_t
from .survival import exponential, log_normal, weibull


class Size(NamedTuple):
    """Constructor argument ``param`` read from the shape of input ``source``: ``read(shape)``, or
    None when the shape does not have the form ``rule`` (then a ValueError shows both)."""

    param: str
    source: str
    rule: str
    read: Callable[[tuple[int, ...]], int | None]


class Value(NamedTuple):
    """Keyword ``keyword`` of a loss given as a value: ``to_params(label, value, dtype)`` is the family's own
    parameters in raw form, in ``dtype``, the dtype the kernel computes in (``computes_in``; None: the
    value's). ``option`` is the constructor argument then set to ``"learned"`` (None: none), ``fixed``
    whether a Python number is instead that option's fixed setting, and a string (not ``"learned"``) is
    passed to ``option`` as is."""

    keyword: str
    option: str | None
    fixed: bool
    to_params: Callable[[str, Any, Any], dict]
    required: bool = False


class Entry(NamedTuple):
    """A family in the table: its constructor and how a loss on ``inputs`` builds it."""

    make: Callable[..., Family]
    inputs: tuple[str, str] = ("raw", "y")
    sizes: tuple[Size, ...] = ()
    values: tuple[Value, ...] = ()
    note: str = ""


def is_number(value: Any) -> bool:
    """A real Python or NumPy number that is not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def computes_in(raw: Any) -> Any:
    """The dtype a family's kernel computes in on the raw outputs ``raw``: theirs as JAX reads them
    (``canonicalize_dtype``: NumPy's float64 is float32 unless 64-bit mode is on), float32 at least
    (``_family.at_least_float32``, ``_family.params_as``); None where ``raw`` is no floating array (the loss
    refuses it later; read it with ``as_array`` first)."""
    kind = getattr(raw, "dtype", None)
    if kind is None or not jnp.issubdtype(kind, jnp.floating):
        return None
    return jnp.promote_types(jax.dtypes.canonicalize_dtype(kind), jnp.float32)


def positive_raw(label: str, what: str, value: Any, dtype: Any = None, infinite_ok: bool = False) -> jax.Array:
    """A positive value (an array, traced or not) as the raw parameter of a softplus + eps link, in ``dtype``, the
    dtype the kernel computes in (``computes_in``; None: the value's own, float32 at least).

    The value is cast to ``dtype`` first and inverted there (``links.softplus_inverse``), so the kernel and the
    affine read the same number, with ``dtype``'s floor ``eps``, and a bfloat16 or float16 value is inverted in
    float32 (in bfloat16 the scale read back was 0.2-0.65% off). A concrete value must be finite and exceed that
    floor once cast: one given wider than ``dtype`` (a float64 scale with float32 raw outputs under x64) at or
    below it would read as the floor (1e-10 was 1.19e-7 in the kernel and 1e-10 in the affine: an NLL of -22.0
    for scipy's -14.95), and is refused."""
    kind = value.dtype if hasattr(value, "dtype") else np.asarray(value).dtype  # None, bools: not numbers
    if not (jnp.issubdtype(kind, jnp.integer) or jnp.issubdtype(kind, jnp.floating)):
        raise TypeError(f"mj.losses.{label}: {what} must be a positive number or a real array; got {value!r}")
    value = jnp.asarray(value)
    if not jnp.issubdtype(value.dtype, jnp.floating):
        value = value.astype(jnp.result_type(float))
    target = jnp.promote_types(value.dtype if dtype is None else dtype, jnp.float32)
    cast = value.astype(target)
    if is_concrete(value):
        # read from the concrete value (a weakly typed scalar's cast is a tracer inside the caller's jit), as cast
        seen, floor = computed(np.asarray(value), target), links.floor(target)
        above = f"{'' if infinite_ok else 'finite and '}> {floor:.3g}"
        rule = f"{above} (the floor finfo(dtype).eps of the link)"
        if jnp.finfo(value.dtype).bits > jnp.finfo(target).bits:
            rule = (f"{above}, the link's floor in {jnp.dtype(target).name}, the dtype the loss "
                    f"computes in (the raw outputs'), where it would read as the floor; pass raw outputs in "
                    f"{jnp.dtype(value.dtype).name}")
        fail_entries(f"mj.losses.{label}", rule, ~((infinite_ok | np.isfinite(seen)) & (seen > floor)),
                     np.atleast_1d(np.asarray(value)), what)
    return links.softplus_inverse(cast)


def _positive(keyword: str, param: str, option: str | None = None, *, fixed: bool = True,
              required: bool = False, infinite_ok: bool = False) -> Value:
    """A positive option whose learned form is ``softplus(fparams[param]) + eps`` (``+inf`` allowed where
    ``infinite_ok``)."""
    return Value(keyword, keyword if option is None else option, fixed,
                 lambda label, value, dtype: {param: positive_raw(label, keyword, value, dtype, infinite_ok)},
                 required)


def _cutpoints(label: str, value: Any, dtype: Any = None) -> dict:
    """K - 1 increasing cutpoints as ``ordinal``'s parameters, in ``dtype`` (``computes_in``; None: the cutpoints'
    own, float32 at least): the first, and softplus-linked gaps, the differences taken in the cutpoints' own dtype
    (float32 at least) before the cast."""
    c = jnp.asarray(value)
    if not jnp.issubdtype(c.dtype, jnp.floating):
        c = c.astype(jnp.result_type(float))
    c = c.astype(jnp.promote_types(c.dtype, jnp.float32))
    target = jnp.promote_types(c.dtype if dtype is None else dtype, jnp.float32)
    return {"first_cut": c[0].astype(target), "gaps": positive_raw(label, "cutpoint gaps", jnp.diff(c), target)}


def _last(shape: tuple[int, ...]) -> int | None:
    return shape[-1] if len(shape) >= 2 else None


def _second(shape: tuple[int, ...]) -> int | None:
    return shape[1] if len(shape) >= 2 else None


def _thirds(shape: tuple[int, ...]) -> int | None:
    return shape[1] // 3 if len(shape) == 2 and shape[1] and shape[1] % 3 == 0 else None


def _one_more(shape: tuple[int, ...]) -> int | None:
    return shape[0] + 1 if len(shape) == 1 and shape[0] >= 1 else None


def _columns(shape: tuple[int, ...]) -> int | None:
    return shape[1] if len(shape) == 2 else None


_SCALE = _positive("scale", "scale")

FAMILIES: dict[str, Entry] = {
    "normal": Entry(normal, values=(_SCALE,), note=(
        "With scale=1: ``optax.losses.squared_error(mu, y) / 2 + log(2 pi) / 2``; with an array sigma, "
        "torch's ``GaussianNLLLoss(full=True)`` at variance sigma^2.")),
    "laplace": Entry(laplace, values=(_SCALE,)),
    "asymmetric_laplace": Entry(asymmetric_laplace, values=(_SCALE,), note=(
        "With scale=1: the check (pinball) loss ``max(q (y - mu), (q - 1)(y - mu))`` minus ``log(q (1 - q))``.")),
    "student_t": Entry(student_t, values=(_positive("df", "df", infinite_ok=True), _SCALE)),
    "mixture_normal": Entry(mixture_normal, sizes=(Size("num_components", "raw", "(N, 3K)", _thirds),)),
    "gamma": Entry(gamma),
    "beta": Entry(beta),
    "bernoulli": Entry(bernoulli, inputs=("logits", "labels"), note=(
        "Equals ``optax.losses.sigmoid_binary_cross_entropy(logits, labels)``, exact at logits of "
        "+-1e4 and +-inf.")),
    "categorical": Entry(categorical, inputs=("logits", "labels"),
                         sizes=(Size("num_classes", "logits", "(N, K)", _last),), note=(
        "Equals ``optax.losses.softmax_cross_entropy_with_integer_labels(logits, labels)``; with class "
        "weights w, term i is ``w[y_i]`` times the loss (with label smoothing too: torch's weighted, smoothed "
        "cross-entropy weights each class's smoothing term by its own ``w_k`` instead), and the recipe's "
        "weighted mean is ``sum(loss) / sum(w[y])``.")),
    "ordinal": Entry(ordinal, sizes=(Size("num_classes", "cutpoints", "(K - 1,) with K >= 2", _one_more),),
                     values=(Value("cutpoints", None, False, _cutpoints, required=True),), note=(
        "``cutpoints``: the K - 1 increasing cutpoints c (an array, traced or not); consecutive gaps "
        "must exceed the link's floor ``finfo(dtype).eps``.")),
    "poisson": Entry(poisson, inputs=("log_rate", "counts"), note=(
        "Equals torch's ``poisson_nll_loss(log_rate, counts, log_input=True, full=False)`` plus ``log y!``.")),
    "negative_binomial": Entry(negative_binomial, values=(
        _positive("total_count", "total_count", "dispersion", fixed=False, required=True),), note=(
        "``total_count``: the dispersion r as a value (a number, or an array of shape () or (N,); raw is "
        "the log-mean), or ``\"per_example\"`` (raw (N, 2) = (log-mean, raw r)).")),
    "binomial": Entry(binomial, inputs=("logits", "y"), note=(
        "``y``: (N, 2) rows (successes, trials); statsmodels' binomial GLM on ``column_stack([k, n - k])``.")),
    "von_mises": Entry(von_mises),
    "mvn_cholesky": Entry(mvn_cholesky, sizes=(Size("dim", "y", "(N, D)", _columns),)),
    "dirichlet": Entry(dirichlet, sizes=(Size("num_components", "raw", "(N, K)", _columns),)),
    "plackett_luce": Entry(plackett_luce, inputs=("scores", "rankings"),
                           sizes=(Size("num_items", "scores", "(N, K)", _columns),)),
    "independent": Entry(independent, sizes=(Size("dim", "raw", "(N, D, ...)", _second),)),
    "censored": Entry(censored),
    "exponential": Entry(exponential, inputs=("log_rate", "y")),
    "weibull": Entry(weibull, values=(_positive("concentration", "concentration"),)),
    "log_normal": Entry(log_normal, values=(_SCALE,)),
    "zero_inflated": Entry(zero_inflated),
}
"""Every public family constructor by name, with how ``mj.losses.<name>`` builds it from a call."""
