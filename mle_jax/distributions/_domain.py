"""Parameter domains: where a theta's fields must lie, and the one check of the direct functions.

A theta type registers ``domain={"field": rule, ...}`` beside its support (``registry.register``); every
function the registry dispatches (``log_prob``, ``log_cdf``, ``quantile``, ``mean``, ``sample``, ``kl``, the
scores, ...) then checks the thetas it is given:

- concrete fields (arrays, NumPy, Python numbers): a ValueError naming the function, the type, the field,
  the rule, the count of bad examples and the first one, before anything is computed;
- traced fields (under ``jit``, ``vmap``, ``grad``): every floating output is NaN for an example whose
  parameters break a rule (scipy's answer there), never a number computed from them.

A NaN parameter breaks no rule: it makes that example's floating outputs NaN (NaN in, NaN out, as for targets;
a bisected quantile read 2.3e38 at a NaN Gamma concentration). The rules (a name or a `Rule`):

    real                any number          a field whose NaN alone is to be caught (locations, logits)
    vector              any vector          the same for one example's vector (the multivariate Normal's loc)
    positive            > 0                 scales, rates, concentrations, degrees of freedom (inf allowed)
    nonnegative         >= 0                the von Mises concentration (0: the uniform circle)
    open_unit           in (0, 1)           the asymmetric Laplace's quantile level
    whole               a whole number >= 0 the binomial's total count (0: the point mass at 0)
    positive_diagonal   a lower-triangular factor's diagonal > 0 (the multivariate Normal's scale_tril)

Without them a theta outside its domain gave plausible numbers: ``log_cdf(Gamma(-1, 1), 0.5)`` read 0.0,
``quantile(Normal(0, -1), 0.3)`` 0.52 (scipy: NaN for both).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Rule(NamedTuple):
    """One field's domain: ``text`` for errors (``"> 0"``) and ``bad(v)``, True where a value breaks it (NumPy
    or jnp alike; never at NaN). ``axes``: the trailing axes of the field that make ONE value (1 for a vector, 2 for
    a matrix), which ``bad`` reduces."""

    text: str
    bad: Callable[[Any], Any]
    axes: int = 0


def _diagonal(v):
    n = v.shape[-1]
    return v[..., np.arange(n), np.arange(n)]


def _above_diagonal(v):
    rows, cols = np.triu_indices(v.shape[-1], 1)
    return v[..., rows, cols]


def _below_normal(v):
    """``v`` under the smallest normal float of its dtype: 0, negative, or a subnormal that XLA on CPU flushes to 0
    (a float32 scale of 1e-45 computed as 0 where the eager check had passed it)."""
    if not jnp.issubdtype(v.dtype, jnp.inexact):
        return v <= 0
    return v < jnp.finfo(v.dtype).tiny


real = Rule("a number", lambda v: v < -np.inf)  # never bad: names a field whose NaN makes the outputs NaN
vector = Rule("a vector of numbers", lambda v: (v < -np.inf).any(axis=-1), 1)  # one example's vector (an MVN's loc)
positive = Rule("> 0", _below_normal)
nonnegative = Rule(">= 0", lambda v: v < 0)
open_unit = Rule("in (0, 1)", lambda v: (v <= 0) | (v >= 1))
whole = Rule("a whole number >= 0", lambda v: (v < 0) | ((v == v) & (v != v // 1)))  # inf // 1 is NaN: refused


def _not_lower_triangular(v):
    """A diagonal entry under the normal floats, or a (non-NaN) entry above the diagonal other than 0."""
    above = _above_diagonal(v)
    return _below_normal(_diagonal(v)).any(axis=-1) | ((above != 0) & (above == above)).any(axis=-1)


positive_diagonal = Rule("lower triangular (zeros above the diagonal) with a diagonal > 0", _not_lower_triangular, 2)

_NAMED = {"real": real, "vector": vector, "positive": positive, "nonnegative": nonnegative, "open_unit": open_unit,
          "whole": whole, "positive_diagonal": positive_diagonal}


def as_domain(kind: type, value: Any) -> tuple[tuple[str, Rule], ...]:
    """``register``'s ``domain=`` as ``((field, Rule), ...)``: a mapping from field names of ``kind`` to rules or
    their names. A TypeError for a field ``kind`` does not have or an unknown rule."""
    if not isinstance(value, Mapping):
        raise TypeError(f"register: {kind.__name__}'s domain must map field names to rules "
                        f"({sorted(_NAMED)} or a distributions._domain.Rule); got {value!r}")
    fields = getattr(kind, "_fields", ())
    out = []
    for name, rule in value.items():
        if name not in fields:
            raise TypeError(f"register: {kind.__name__}'s domain names {name!r}, which is not one of its fields "
                            f"{list(fields)}")
        if isinstance(rule, str) and rule in _NAMED:
            rule = _NAMED[rule]
        if not isinstance(rule, Rule):
            raise TypeError(f"register: {kind.__name__}'s domain rule for {name!r} must be one of {sorted(_NAMED)} "
                            f"or a Rule; got {rule!r}")
        out.append((name, rule))
    return tuple(out)


def _per_example(flags: Any, axes: int):
    return flags.any(axis=tuple(range(-axes, 0))) if axes and flags.ndim else flags


def _flags(rule: Rule, value: Any, component_axes: int):
    """``(bad, nan)``: one flag per example (the field's leading axes) where ``value`` breaks ``rule``, and where it
    holds a NaN (``v != v``: NumPy and jnp alike)."""
    nan = _per_example(value != value, rule.axes)
    return _per_example(rule.bad(value), component_axes), _per_example(nan, component_axes)


def first_index(bad: np.ndarray) -> tuple[int, ...]:
    """The index of ``bad``'s first set entry in C order (``()`` for a 0-d array): the entry an error message shows."""
    return tuple(int(i) for i in np.unravel_index(int(np.flatnonzero(bad)[0]), bad.shape)) if bad.ndim else ()


def check(who: str, theta: Any, domain: tuple[tuple[str, Rule], ...], component_axes: int,
          owner: str | None = None, counted: str = "examples") -> Any:
    """Raise a ValueError where a concrete ``theta`` breaks its ``domain`` (``who``: the function called; ``owner``:
    the type of the theta whose field ``theta`` is, a ``ZeroInflated`` or an ``Independent``, named with it;
    ``counted``: what the field's entries are, "entries" where they are not examples, an ``Independent``'s
    components); else None, or where its examples hold no NaN in a named field (a boolean array) if some do."""
    ok = None
    for name, rule in domain:
        value = np.asarray(getattr(theta, name))
        with np.errstate(invalid="ignore"):  # inf // 1
            bad, nan = (np.asarray(f) for f in _flags(rule, value, component_axes))
        if nan.any():
            ok = ~nan if ok is None else ok & ~nan
        if not bad.any():
            continue
        kind = type(theta).__name__ if owner is None else f"{owner}({type(theta).__name__})"
        first = first_index(bad)
        hint = (" (a subnormal float: XLA on CPU computes it as 0)"
                if rule is positive and np.all(np.asarray(value[first], np.float64) > 0) else "")
        if bad.ndim == 0:
            raise ValueError(f"{who}: {kind}'s {name} must be {rule.text}; got {value.tolist()!r}{hint} (scipy "
                             f"answers NaN here; mle_jax refuses a theta outside its domain)")
        index = first[0] if len(first) == 1 else first
        raise ValueError(f"{who}: {kind}'s {name} must be {rule.text}; got {value[first].tolist()!r}{hint} at "
                         f"index {index} ({int(bad.sum())} of {bad.size} {counted} outside the domain; the first is "
                         f"shown)")
    return None if ok is None else jnp.asarray(ok)


def inside(theta: Any, domain: tuple[tuple[str, Rule], ...], component_axes: int):
    """Where a traced ``theta``'s examples keep every rule and hold no NaN in a named field (a boolean array
    broadcastable to its batch shape)."""
    ok = jnp.asarray(True)
    for name, rule in domain:
        bad, nan = _flags(rule, getattr(theta, name), component_axes)
        ok = ok & ~(bad | nan)
    return ok


def poison(out: Any, ok: Any) -> Any:
    """``out`` with every floating leaf NaN where ``ok`` is False, value and slope: ``x * c`` with ``c = 1`` inside
    and NaN outside (a select would pass a 0 slope to an example outside, a silent number for a caller who reads
    gradients only; the price: such an example's NaN reaches a shared parameter's slope even where a later select
    drops its value, so mask the parameters, not only the losses). ``ok`` indexes the leading axes of each leaf (a
    batch of examples); a leaf whose leading axes are not ``ok``'s shape is NaN wherever any example is outside.
    Integer and boolean leaves (labels, counts) pass unchanged."""
    def leaf(x):
        if not isinstance(x, (jax.Array, np.ndarray)) or not jnp.issubdtype(x.dtype, jnp.inexact):
            return x
        flags = ok
        if flags.ndim > x.ndim or x.shape[:flags.ndim] != flags.shape:
            flags = jnp.all(flags)
        factor = jnp.where(flags, jnp.ones((), x.dtype), jnp.asarray(jnp.nan, x.dtype))
        return x * factor.reshape(flags.shape + (1,) * (x.ndim - flags.ndim))
    return jax.tree.map(leaf, out)
