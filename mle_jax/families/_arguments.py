"""Checks of a family constructor's arguments, and the one parser of scale specs.

Every bad argument is a ValueError naming the family, the argument, the rule and the
value, raised when the family is built (a NaN start would otherwise surface as a NaN
loss many steps later). Booleans are never numbers here (``True`` is not a df).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Union

import numpy as np

from .. import links
from .._checks import is_float


def _number(value: Any) -> float | None:
    """``value`` as a Python float when it is one real number (not a bool), else None."""
    arr = np.asarray(value) if not isinstance(value, (str, bytes)) else None
    if arr is None or arr.ndim != 0 or arr.dtype == np.bool_:
        return None
    if not (is_float(arr.dtype) or np.issubdtype(arr.dtype, np.integer)):
        return None
    return float(arr)


def positive_number(label: str, what: str, value: Any) -> float:
    """A finite real number > 0 (a scale, a df, a starting value)."""
    number = _number(value)
    if number is None or not (math.isfinite(number) and number > 0):
        raise ValueError(f"{label}: {what} must be a finite number > 0; got {value!r}")
    return number


def number_in(label: str, what: str, value: Any, low: float, high: float, *, open_high: bool = False) -> float:
    """A real number in ``[low, high]`` (or ``[low, high)``)."""
    number = _number(value)
    if number is None or not (low <= number and (number < high if open_high else number <= high)):
        raise ValueError(f"{label}: {what} must lie in [{low}, {high}{')' if open_high else ']'}; got {value!r}")
    return number


def whole_number(label: str, what: str, value: Any, minimum: int) -> int:
    """An integer ``>= minimum`` (a number of classes, components or outputs); never a bool."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{label}: {what} must be an integer >= {minimum}; got {value!r}")
    return int(value)


class Fixed(NamedTuple):
    """A scale fixed at ``value`` for every example (the model emits the location only)."""

    value: float


class Learned(NamedTuple):
    """One global scale ``softplus(s) + eps``, s a family parameter starting at ``init``."""

    init: float


class Linked(NamedTuple):
    """A scale per example: the model emits (location, raw scale), ``scale = link(raw)``."""

    link: links.Link


ScaleSpec = Union[Fixed, Learned, Linked]


def parse_scale(label: str, scale: Any, init_scale: Any) -> ScaleSpec:
    """``scale``: a positive float, ``"learned"``, or a positive link's name
    (``"softplus"``, ``"exp"``, ``"square"``). ``init_scale`` (> 0) starts ``"learned"``."""
    init = positive_number(label, "init_scale", init_scale)
    if isinstance(scale, str):
        if scale == "learned":
            return Learned(init)
        if scale in links.POSITIVE:
            return Linked(links.POSITIVE[scale])
        raise ValueError(f"{label}: scale must be a positive number or one of 'learned', "
                         f"{', '.join(repr(k) for k in links.POSITIVE)}; got {scale!r}")
    return Fixed(positive_number(label, "the fixed scale sigma", scale))


def scale_option(spec: ScaleSpec) -> float | str:
    """How a scale spec is shown in a family's name and kept in its ``Spec``."""
    if isinstance(spec, Fixed):
        return spec.value
    return "learned" if isinstance(spec, Learned) else spec.link.name
