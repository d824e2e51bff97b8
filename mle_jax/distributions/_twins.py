"""Library twins: the optional extras' imports and the dispatch of ``mle_jax.interop`` through the registry.

Each theta type's module converts itself: ``to_tfp(theta)``, ``to_distrax(theta)`` and
``from_tfp(dist)``, registered in its `Ops` with ``tfp_names``, the TFP classes it converts from. This
module imports TensorFlow Probability's JAX substrate and distrax on first use only (``pip install
'mle_jax[tfp]'``, ``'mle_jax[distrax]'``) and finds the converter: a theta's by its type, a TFP
distribution's by its class's name or, failing that, a base class's (``MultivariateNormalDiag`` is a
``MultivariateNormalLinearOperator``). Missing twins raise the registry's documented ``TypeError``.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

import jax.numpy as jnp
import numpy as np

from .._cache import is_concrete
from . import registry
from ._domain import first_index


def _quietly_import(name: str):
    """Import an optional extra; TFP's JAX substrate touches deprecated JAX internals while it
    imports, DeprecationWarnings a user cannot act on, so they are ignored during the import only."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return importlib.import_module(name)


def tfd() -> Any:
    """``tensorflow_probability.substrates.jax.distributions``; an ImportError naming the extra."""
    try:
        tfp = _quietly_import("tensorflow_probability.substrates.jax")
    except ImportError as error:
        raise ImportError("mle_jax's TFP interop needs TensorFlow Probability's JAX substrate: "
                          "pip install 'mle_jax[tfp]'") from error
    return tfp.distributions


def linalg() -> Any:
    """TFP's linear operators (``tf2jax.linalg``)."""
    return _quietly_import("tensorflow_probability.substrates.jax").tf2jax.linalg


def distrax() -> Any:
    """The ``distrax`` module; an ImportError naming the extra."""
    try:
        return _quietly_import("distrax")
    except ImportError as error:
        raise ImportError("mle_jax's distrax interop needs distrax: pip install 'mle_jax[distrax]'") from error


def full(dist) -> Any:
    """``(value, event=()) -> value`` broadcast to ``dist``'s batch shape plus ``event``."""
    batch = tuple(dist.batch_shape)
    return lambda value, event=(): jnp.broadcast_to(jnp.asarray(value), batch + tuple(event))


def describe(dist) -> str:
    """``tensorflow_probability Logistic``: the library and the class of a foreign distribution."""
    return f"{type(dist).__module__.split('.')[0]} {type(dist).__name__}"


def unconvertible(dist, why: str = "") -> TypeError:
    """The one error of ``from_tfp`` for a distribution no theta type converts (``why``: a detail)."""
    names = [name for table in registry._OPS.values() if table.from_tfp is not None for name in table.tfp_names]
    return TypeError(f"mj.from_tfp: no mle_jax theta for {describe(dist)}{why}; convertible: {', '.join(names)}")


def _twin(theta, entry: str, label: str):
    """``theta``'s own converter ``entry`` applied to it; the documented TypeError where there is none."""
    table = registry._OPS.get(type(theta))
    fn = None if table is None else getattr(table, entry)
    if fn is not None:
        return fn(registry.promote(theta))
    if table is None:
        raise TypeError(f"mj.{entry}: no {label} twin for {type(theta).__name__} ({registry._unknown(theta)})")
    if entry == "to_distrax" and table.to_tfp is not None:
        raise TypeError(f"mj.to_distrax: distrax has no {type(theta).__name__}; use mj.to_tfp(theta)")
    raise TypeError(f"mj.{entry}: no {label} twin for {type(theta).__name__}")


def to_tfp(theta):
    tfd()  # a missing extra is named before anything else
    return _twin(theta, "to_tfp", "TFP")


def to_distrax(theta):
    distrax()
    return _twin(theta, "to_distrax", "distrax")


# the TFP parameters whose conversion to a theta's field is a logarithm: outside these ranges it is NaN, which a
# theta reads as a missing value, not as a mistake (TFP computes with them unless validate_args=True)
_RANGES = {"probs": ("in [0, 1]", lambda v: (v >= 0) & (v <= 1)), "rate": (">= 0", lambda v: v >= 0)}


def check_parameters(dist) -> None:
    """Raise a ValueError naming the parameter, the first bad entry and the count where ``dist`` was given a
    probability outside [0, 1] or a negative rate (``dist.parameters``, concrete values only; NaN passes as NaN)."""
    for name, (text, holds) in _RANGES.items():
        value = dist.parameters.get(name)
        if value is None or not is_concrete(value):
            continue
        value = np.asarray(value)
        with np.errstate(invalid="ignore"):
            bad = ~holds(value) & ~np.isnan(value)
        if bad.any():
            first = first_index(bad)
            where = f" at index {first}" if first else ""
            raise ValueError(f"mj.from_tfp: {describe(dist)}'s {name} must be {text}; got {value[first].tolist()!r}"
                             f"{where} ({int(bad.sum())} of {bad.size} entries outside; the first is shown)")


def from_tfp(dist):
    tfd()
    for cls in type(dist).__mro__:
        if not cls.__module__.startswith("tensorflow_probability"):
            continue
        for table in registry._OPS.values():
            if table.from_tfp is not None and cls.__name__ in table.tfp_names:
                check_parameters(dist)
                return table.from_tfp(dist)
    raise unconvertible(dist)
