"""Dispatch from a theta type to its pure functions.

Each distribution module defines a NamedTuple theta type and registers an
`Ops` table of pure functions for it; the generic functions of
`mle_jax.distributions` (``log_prob(theta, y)``, ``mode(theta)``, ...) look the
table up by ``type(theta)``. KL divergences and cross-entropies are registered
per ordered pair of types. The registry is filled at import time and never
changes afterwards.

Every entry of `Ops` is optional: ``None`` means the theta type has no such
function (no closed form, or no meaning), and calling it raises a
``NotImplementedError`` naming the type, the function and, where given, the
type's own ``missing`` explanation. A distribution object of another library
(TensorFlow Probability, distrax) gets a ``TypeError`` naming the converter.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, TypeAlias

#: A theta field: a jax.Array, a NumPy array or a Python number (array-likes are accepted as given).
Param: TypeAlias = Any


class Ops(NamedTuple):
    """The pure functions of one theta type (``None`` where none exists).

    ``sample_log`` / ``log_prob_log`` are the log-domain pair used by ``kl_mc`` where draws
    underflow (Gamma and Beta at tiny concentrations): a draw's logs, and the log density at it.
    ``log_tail(theta, y, upper)`` is ``log_sf`` where ``upper`` and ``log_cdf`` elsewhere from one
    evaluation (one incomplete-function loop, not two); without it both are evaluated and selected.
    ``missing`` is a sentence added to the error for every function left ``None``.
    """

    log_prob: Callable[[Any, Any], Any] | None = None
    mode: Callable[[Any], Any] | None = None
    mean: Callable[[Any], Any] | None = None
    sample: Callable[[Any, Any], Any] | None = None
    entropy: Callable[[Any], Any] | None = None
    quantile: Callable[[Any, Any], Any] | None = None
    log_cdf: Callable[[Any, Any], Any] | None = None
    log_sf: Callable[[Any, Any], Any] | None = None
    log_tail: Callable[[Any, Any, Any], Any] | None = None
    event_shape: Callable[[Any], tuple[int, ...]] | None = None
    variance: Callable[[Any], Any] | None = None
    probs: Callable[[Any], Any] | None = None
    sample_log: Callable[[Any, Any], Any] | None = None
    log_prob_log: Callable[[Any, Any], Any] | None = None
    missing: str = ""


_OPS: dict[type, Ops] = {}
_KL: dict[tuple[type, type], Callable[[Any, Any], Any]] = {}
_CE: dict[tuple[type, type], Callable[[Any, Any], Any]] = {}

_FOREIGN = {"tensorflow_probability": "convert it with mj.from_tfp(dist)",
            "distrax": "convert it with mj.from_tfp(dist)",
            "numpyro": "build the matching mle_jax theta (e.g. mj.Normal(loc, scale))",
            "torch": "build the matching mle_jax theta (e.g. mj.Normal(loc, scale))"}


def register(kind: type, ops: Ops) -> None:
    _OPS[kind] = ops


def register_kl(p_kind: type, q_kind: type, fn: Callable[[Any, Any], Any]) -> None:
    _KL[(p_kind, q_kind)] = fn


def register_cross_entropy(p_kind: type, q_kind: type, fn: Callable[[Any, Any], Any]) -> None:
    _CE[(p_kind, q_kind)] = fn


def _unknown(theta: Any) -> TypeError:
    kind = type(theta)
    library = kind.__module__.split(".")[0]
    if library in _FOREIGN:
        return TypeError(
            f"{kind.__name__} is a {library} distribution, not an mle_jax theta; {_FOREIGN[library]}")
    return TypeError(f"{kind.__name__} is not a theta type of mle_jax; known: {sorted(t.__name__ for t in _OPS)}")


def ops(theta: Any) -> Ops:
    """The `Ops` table of ``type(theta)``; a TypeError for anything that is not a theta."""
    try:
        return _OPS[type(theta)]
    except KeyError:
        raise _unknown(theta) from None


def op(theta: Any, name: str) -> Callable:
    """The function ``name`` of ``theta``'s type; NotImplementedError where it has none."""
    table = ops(theta)
    fn = getattr(table, name)
    if fn is None:
        note = f"; {table.missing}" if table.missing else ""
        raise NotImplementedError(f"{type(theta).__name__} has no closed-form {name}{note}")
    return fn


def kl_fn(p: Any, q: Any) -> Callable[[Any, Any], Any] | None:
    ops(p)
    ops(q)
    return _KL.get((type(p), type(q)))


def ce_fn(p: Any, q: Any) -> Callable[[Any, Any], Any] | None:
    """The cross-entropy of the pair; ``(type(p), object)`` registers one for any q."""
    ops(p)
    ops(q)
    return _CE.get((type(p), type(q))) or _CE.get((type(p), object))


def kl(p: Any, q: Any):
    """``KL(p || q)`` from the registered closed form; NotImplementedError naming ``kl_mc`` otherwise."""
    fn = kl_fn(p, q)
    if fn is None:
        raise NotImplementedError(
            f"no closed-form KL({type(p).__name__} || {type(q).__name__}); use mle_jax.kl_mc")
    return fn(p, q)


def cross_entropy(p: Any, q: Any):
    """``CE(p, q)`` from the registered closed form, else ``H(p) + KL(p || q)``."""
    fn = ce_fn(p, q)
    if fn is not None:
        return fn(p, q)
    return op(p, "entropy")(p) + kl(p, q)
