"""The parameters of a recipe: any pytree, trained where a leaf is an inexact array.

``Params(model, family, state)`` holds the model's ``phi`` (a dict, a list, an
equinox or flax.nnx module, anything JAX flattens), the family's own
parameters (a learned sigma) and, for models with mutable state such as
BatchNorm statistics, that state. Its leaves fall in three kinds:

- **trained**: arrays of a floating or complex dtype in ``model`` and ``family``
  (the same rule as equinox's ``is_inexact_array``; inside a flax.nnx module, only
  those held by ``nnx.Param`` variables): these get gradients and optax updates;
- **carried**: every other array (integers, booleans, PRNG keys, an nnx
  module's float buffers in other variable types) and every leaf of ``state``:
  passed through each step unchanged (``state`` is replaced by the model's new
  state), never differentiated;
- **static**: leaves that are not arrays (functions, strings, Python numbers):
  part of the compiled program, like a ``static_argnum``.

``partition(params)`` separates them into a ``Parts`` pytree whose children are the
arrays and whose static data is the ``Layout``; ``Parts.params()`` puts them back.
"""

from __future__ import annotations

import sys
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Params(NamedTuple):
    """All parameters of a recipe: the model's ``phi``, the family's own, and the model's state.

    ``state`` (None for most models) is the mutable, never differentiated part of a
    stateful model (linen's ``batch_stats``, nnx's ``BatchStat`` state); see ``recipe``.
    """

    model: Any
    family: Any
    state: Any = None


TRAINED, CARRIED = "trained", "carried"


class _Static:
    """A non-array leaf, compared by value when it can be hashed, else by identity."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def _key(self):
        try:
            hash(self.value)
            return (type(self.value), self.value)
        except TypeError:
            return (id(self.value),)

    def __eq__(self, other):
        return isinstance(other, _Static) and type(self.value) is type(other.value) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        return f"static({self.value!r})"


class Layout(NamedTuple):
    """Where each leaf of the params goes: its tree structure and, per leaf, its kind."""

    treedef: Any
    kinds: tuple


def is_array(leaf) -> bool:
    return isinstance(leaf, (jax.Array, np.ndarray, np.generic))


def is_trained(leaf) -> bool:
    """An inexact (floating or complex) array: trained. Python floats are static, as in equinox."""
    return is_array(leaf) and jnp.issubdtype(leaf.dtype, jnp.inexact)


@jax.tree_util.register_pytree_node_class
class Parts:
    """``params`` as the arrays a compiled program takes and a static ``layout``.

    ``trained`` is the params tree with every leaf that is not trained set to None (what
    the optimizer sees: for a plain pytree of float arrays, the params themselves);
    ``carried`` lists the other arrays.
    """

    def __init__(self, trained, carried: list, layout: Layout):
        self.trained, self.carried, self.layout = trained, carried, layout

    def tree_flatten(self):
        return (self.trained, self.carried), self.layout

    @classmethod
    def tree_unflatten(cls, layout, children):
        return cls(children[0], list(children[1]), layout)

    def params(self):
        trained, carried = iter(jax.tree_util.tree_leaves(self.trained)), iter(self.carried)
        leaves = [next(trained) if k is TRAINED else next(carried) if k is CARRIED else k.value
                  for k in self.layout.kinds]
        return jax.tree_util.tree_unflatten(self.layout.treedef, leaves)

    def replace(self, trained=None, carried=None) -> "Parts":
        return Parts(self.trained if trained is None else trained,
                     self.carried if carried is None else list(carried), self.layout)


def partition(params) -> Parts:
    """``params`` (a ``Params``) as trained arrays, carried arrays and a static layout."""
    if not isinstance(params, Params):
        raise TypeError(
            f"params must come from recipe.init(model_params) (an mle_jax Params); got {type(params).__name__}")
    leaves, treedef = jax.tree_util.tree_flatten(params)
    mask = trained_mask(params)
    kinds, trained, carried = [], [], []
    for i, leaf in enumerate(leaves):
        if mask[i]:
            kinds.append(TRAINED)
            trained.append(leaf)
            continue
        trained.append(None)
        if is_array(leaf):
            kinds.append(CARRIED)
            carried.append(leaf)
        else:
            kinds.append(_Static(leaf))
    return Parts(jax.tree_util.tree_unflatten(treedef, trained), carried, Layout(treedef, tuple(kinds)))


def trained_mask(params: Params) -> list[bool]:
    """Per leaf of ``params`` (``jax.tree_util.tree_leaves`` order), whether it is trained: an
    inexact array outside ``state`` that no nnx rule carries (see ``_trainable_positions``)."""
    leaves = jax.tree_util.tree_leaves(params)
    first_state = len(leaves) - len(jax.tree_util.tree_leaves(params.state))  # state leaves come last
    trainable = _trainable_positions(params, len(leaves))
    return [is_trained(leaf) and i < first_state and trainable[i] for i, leaf in enumerate(leaves)]


def _trainable_positions(params, n: int) -> list[bool]:
    """Per leaf, whether it may be trained: inside a flax.nnx module only ``nnx.Param`` variables are
    (nnx's own rule, as ``nnx.Optimizer(..., wrt=nnx.Param)``); a float buffer kept in another
    variable type (``nnx.Variable``, ``nnx.Cache``, a user's subclass) is carried unchanged."""
    nnx = sys.modules.get("flax.nnx")
    if nnx is None:
        return [True] * n
    is_variable = lambda node: isinstance(node, nnx.Variable)  # noqa: E731
    flags: list[bool] = []
    for node in jax.tree_util.tree_leaves(params, is_leaf=is_variable):
        inner = len(jax.tree_util.tree_leaves(node)) if is_variable(node) else 1
        flags += [not is_variable(node) or isinstance(node, nnx.Param)] * inner
    return flags if len(flags) == n else [True] * n


def with_state(parts: Parts, state) -> Parts:
    """``parts`` whose state leaves are replaced by ``state`` (of the same structure)."""
    new = partition(parts.params()._replace(state=state))
    if new.layout != parts.layout:
        raise ValueError("the model returned a state whose structure differs from the state it was given")
    return parts.replace(carried=new.carried)


def float_dtype(tree):
    """The dtype of the first inexact array leaf of ``tree`` (the default float if none)."""
    for leaf in jax.tree_util.tree_leaves(tree):
        if is_trained(leaf):
            return jnp.result_type(leaf)
    return jnp.result_type(float)
