"""Dispatch from a theta type to its pure functions.

Each distribution module defines a NamedTuple theta type and registers an
`Ops` table of pure functions for it; the generic functions of
`mle_jax.distributions` (``log_prob(theta, y)``, ``mode(theta)``, ...) look the
table up by ``type(theta)``. KL divergences are registered per ordered pair of
types. The registry is filled at import time and never changes afterwards.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple


class Ops(NamedTuple):
    """The pure functions of one theta type (``None`` where none exists)."""

    log_prob: Callable[[Any, Any], Any]
    mode: Callable[[Any], Any]
    mean: Callable[[Any], Any]
    sample: Callable[[Any, Any], Any]
    entropy: Callable[[Any], Any] | None = None
    quantile: Callable[[Any, Any], Any] | None = None
    log_cdf: Callable[[Any, Any], Any] | None = None
    log_sf: Callable[[Any, Any], Any] | None = None
    event_shape: Callable[[Any], tuple[int, ...]] | None = None
    variance: Callable[[Any], Any] | None = None


_OPS: dict[type, Ops] = {}
_KL: dict[tuple[type, type], Callable[[Any, Any], Any]] = {}
_CE: dict[tuple[type, type], Callable[[Any, Any], Any]] = {}


def register(kind: type, ops: Ops) -> None:
    _OPS[kind] = ops


def register_kl(p_kind: type, q_kind: type, fn: Callable[[Any, Any], Any]) -> None:
    _KL[(p_kind, q_kind)] = fn


def register_cross_entropy(p_kind: type, q_kind: type, fn: Callable[[Any, Any], Any]) -> None:
    _CE[(p_kind, q_kind)] = fn


def ops(theta: Any) -> Ops:
    try:
        return _OPS[type(theta)]
    except KeyError:
        raise TypeError(
            f"{type(theta).__name__} is not a theta type of mle_jax; "
            f"known: {sorted(t.__name__ for t in _OPS)}") from None


def op(theta: Any, name: str) -> Callable:
    fn = getattr(ops(theta), name)
    if fn is None:
        raise NotImplementedError(f"{type(theta).__name__} has no closed-form {name}")
    return fn


def kl_fn(p: Any, q: Any) -> Callable[[Any, Any], Any] | None:
    return _KL.get((type(p), type(q)))


def ce_fn(p: Any, q: Any) -> Callable[[Any, Any], Any] | None:
    """The cross-entropy of the pair; ``(type(p), object)`` registers one for any q."""
    return _CE.get((type(p), type(q))) or _CE.get((type(p), object))
