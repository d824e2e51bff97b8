"""The recipe's boundary with the user: what is read from the model, the data and the params before
anything is traced, and what the recipe remembers between calls.

- ``keywords(model)``: the model's keyword names (``key`` makes it random, ``state`` stateful);
- ``as_array``: the one converter every public boundary calls (``fit``, the recipe's methods,
  ``inference``, ``mj.losses``, the scores): a Python list of numbers, a pandas or polars frame or
  series, a torch tensor or any array-like read as an array, once (``mle_jax._frames``), and
  ``names_of`` the column names it remembers;
- ``CheckMemory``: the data sets whose values were checked (each is checked once);
- ``check_nnx_modules``: an nnx module hands its BatchNorm statistics to the recipe as state, and takes
  its dropout key at call time rather than storing an RNG stream.
"""

from __future__ import annotations

import inspect
import sys
import weakref
from typing import Any

import jax
import jax.numpy as jnp

from ._frames import names_of, remember_names, to_array

__all__ = ["CheckMemory", "as_array", "check_nnx_modules", "keywords", "names_of", "remember_names"]


class CheckMemory:
    """What a recipe remembers between calls: the last few data sets whose values it checked
    (by weak reference: the same immutable jax arrays are checked once), what it found about
    their weights, the model dtypes their counts were found kept in (``distributions._support.check_kept``),
    the GLM starts found finite on their targets (``glm_start``), and whether it has warned that traced data
    could not be checked."""

    def __init__(self, size: int = 4):
        self.size, self.sets, self.warned = size, [], False

    def _find(self, leaves):
        for entry in self.sets:
            seen = entry[0]
            if len(seen) == len(leaves) and all(a is ref() for a, ref in zip(leaves, seen)):
                return entry
        return None

    def recall(self, leaves):
        """The weight problem found when these arrays were checked ("" if none); None if never checked."""
        entry = self._find(leaves)
        return None if entry is None else entry[1]

    def remember(self, leaves, problem: str) -> None:
        self.sets = (self.sets + [([weakref.ref(a) for a in leaves], problem, set(), set())])[-self.size:]

    def kept(self, leaves, dtype) -> bool:
        """Whether these (checked) arrays' targets were found kept in the model dtype ``dtype``."""
        entry = self._find(leaves)
        return entry is not None and jnp.dtype(dtype) in entry[2]

    def keep(self, leaves, dtype) -> None:
        """Remember that these checked arrays' targets are kept in ``dtype`` (nothing if they are not remembered)."""
        entry = self._find(leaves)
        if entry is not None:
            entry[2].add(jnp.dtype(dtype))

    def started(self, leaves, key) -> bool:
        """Whether the intercept-only start ``key`` (``glm_start._started``'s static arguments) of these (checked)
        targets was found finite: a repeated fit on the same arrays need not wait for the start to check it."""
        entry = self._find(leaves)
        return entry is not None and key in entry[3]

    def start(self, leaves, key) -> None:
        """Remember that the start ``key`` of these checked targets is finite (nothing if they are not remembered)."""
        entry = self._find(leaves)
        if entry is not None:
            entry[3].add(key)


def keywords(model) -> set:
    try:
        parameters = inspect.signature(model).parameters.values()
    except (TypeError, ValueError):
        return set()
    return {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def as_array(name: str, what: str, value) -> Any:
    """``value`` read as an array, once, before anything is traced: a Python list (one entry per
    example), a pandas / polars DataFrame ((N, p), its column names remembered: ``names_of``) or
    Series, a torch tensor (detached, on the host), anything with ``__array__`` or ``__dlpack__``;
    a pytree has each leaf read. jax and NumPy arrays, tracers and None come back unchanged.
    What cannot be read is a ``ValueError`` naming ``name``, ``what`` and the column (non-numeric,
    categorical, object, or nullable with missing values, counted); see ``mle_jax._frames``."""
    if not isinstance(value, list):
        return to_array(name, what, value)
    try:
        array = jnp.asarray(value)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name}: {what} is a Python list that is not a rectangular array of numbers; "
                        f"pass a numpy or jax array ({error})") from None
    return array


def check_nnx_modules(name: str, model_params) -> None:
    """nnx variables that the recipe cannot treat as plain leaves are refused before anything is traced.

    - ``BatchStat`` (BatchNorm statistics): float arrays that would be trained, and whose in-place
      updates would be lost (a silently wrong model). They belong in the recipe's state.
    - ``RngState`` (a stream stored by ``nnx.Dropout(rate, rngs=rngs)`` or ``self.rngs = rngs``): its
      key and count would be carried unchanged through ``fit``, so every step would draw the same
      dropout mask (silently no regularisation). The key belongs at call time, from the recipe.
    """
    nnx = sys.modules.get("flax.nnx")
    if nnx is None:
        return
    is_node = lambda node: isinstance(node, (nnx.Module, nnx.Variable))  # noqa: E731
    nodes = jax.tree_util.tree_leaves(model_params, is_leaf=is_node)

    def holds(kind) -> bool:
        return any(bool(jax.tree_util.tree_leaves(nnx.state(node, kind))) if isinstance(node, nnx.Module)
                   else isinstance(node, kind) for node in nodes if is_node(node))

    if holds(nnx.BatchStat):
        raise ValueError(
            f"{name}: this nnx module holds BatchStat variables (BatchNorm statistics), which must be the "
            f"recipe's state, not trained params: graphdef, params, stats = nnx.split(module, nnx.Param, "
            f"nnx.BatchStat); a batched model(params, x, state, train) that merges them and returns "
            f"(raw, nnx.state(module, nnx.BatchStat)); then recipe.init(params, state=stats)")
    if holds(nnx.RngState):
        raise ValueError(
            f"{name}: this nnx module stores an RNG stream (nnx.Rngs kept by a layer, such as "
            f"nnx.Dropout(rate, rngs=rngs)); inside fit its key and count would be carried unchanged, so "
            f"every step would draw the same dropout mask. Build the layer without rngs= (nnx.Dropout(rate)) "
            f"and take the key at call time: model(params, x, key=None) calling "
            f"dropout(h, deterministic=key is None, rngs=key); fit(..., key=jax.random.key(0)) then gives "
            f"a fresh key every step, and key=None (predict, validation) evaluates without dropout")
