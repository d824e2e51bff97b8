"""The one compile cache: programs kept by the object they belong to, bounded, dying with it.

    programs = Programs(limit=16)          # an attribute of the owner (a Recipe, a module)
    fn = programs.get(key, build)          # build() on a miss; the newest kept, the oldest dropped
    call = concrete_or_inline(fn, jitted)  # jitted on concrete arrays, fn itself inside a trace

Every compiled program of mle_jax is held in a ``Programs`` owned by the object whose functions it
compiles: a recipe's methods, fit programs and inference programs live on the recipe
(``recipe.programs``), so they, and the optimizers and closures they capture, are freed with it; a
module's own functions (the scores) live on the module. A cache is bounded: past ``limit`` entries
the least recently used one is dropped (JAX frees its executables with it). No module-level dict
keyed by a recipe exists anywhere: it would keep every recipe alive.

Inside a caller's ``jit`` / ``grad`` / ``vmap`` the arguments are tracers, and a nested jit
boundary only keeps XLA from fusing, so ``concrete_or_inline`` calls the plain function there.

An optimizer in a key is keyed by what it computes (``programs.key_of(optimizer)``, ``structure``), not by the
object: ``optax.lbfgs()`` makes new closures at every call, so a fit in a loop, ``fit(..., optax.lbfgs(), ...)``,
compiled its loop again each time (2-5 s). Two closures with the same code object, the same globals and, cell by
cell and default by default, equal immutable values (numbers and strings by type and ``repr``: ``-0.0`` is not
``0.0``; tuples, named tuples and ``functools.partial`` compared element by element, functions recursively) compute
the same function. Only optax's and mle_jax's own functions (``_trusted``: their module-level names are never
rebound) and objects that cannot change (``_fixed``: classes, code, jax arrays, dtypes) are walked or compared so;
an optimizer holding anything else anywhere (a function of the user's, whose globals a script may rebind, as its
schedule; a list, a dict, a NumPy array, an object, all of which may be changed in place) is keyed by its own
identity, as before: a fresh ``optax.sgd(schedule)`` reading a rebound module-level rate is a new program.
"""

from __future__ import annotations

import functools
import types
from collections import OrderedDict
from typing import Any, Callable, Hashable, TypeVar

import jax
import jax.core
import numpy as np

F = TypeVar("F", bound=Callable[..., Any])

#: Programs one owner keeps before the least recently used is dropped.
DEFAULT_LIMIT = 32


def is_concrete(*arrays: Any) -> bool:
    """True when no argument is a tracer, so its values can be read (and a jitted call pays off)."""
    return not any(isinstance(a, jax.core.Tracer) for a in jax.tree_util.tree_leaves(arrays))


class Programs:
    """A bounded least-recently-used map from a hashable key to a compiled program."""

    def __init__(self, limit: int = DEFAULT_LIMIT):
        if limit < 1:
            raise ValueError(f"Programs: limit must be >= 1; got {limit}")
        self.limit = int(limit)
        self._kept: OrderedDict[Hashable, Any] = OrderedDict()
        self._structures: OrderedDict[Same, Key] = OrderedDict()  # key_of's memory, as bounded

    def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """The program under ``key``, built by ``build()`` on a miss; marks it the newest."""
        if key in self._kept:
            self._kept.move_to_end(key)
            return self._kept[key]
        program = self._kept[key] = build()
        while len(self._kept) > self.limit:
            self._kept.popitem(last=False)
        return program

    def key_of(self, obj: Any) -> Key:
        """``structure(obj)``, remembered by the object's identity (an optimizer's closures are walked once):
        the key under which programs built for ``obj`` are kept, shared by every object of the same structure."""
        same = Same(obj)
        if same not in self._structures:
            self._structures[same] = Key(structure(obj))
            while len(self._structures) > self.limit:
                self._structures.popitem(last=False)
        return self._structures[same]

    def __contains__(self, key: Hashable) -> bool:
        return key in self._kept

    def __len__(self) -> int:
        return len(self._kept)

    def keys(self) -> list[Hashable]:
        return list(self._kept)

    def clear(self) -> None:
        self._kept.clear()
        self._structures.clear()


class Same:
    """``obj`` compared by identity (and hashed by ``id``), kept alive by the key that holds it (so its ``id``
    cannot be reused while the key exists)."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any):
        self.obj = obj

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Same) and other.obj is self.obj

    def __hash__(self) -> int:
        return id(self.obj)


class Key:
    """A ``structure`` with its hash computed once (a key is looked up at every fit: hashing the nested tuples of
    an L-BFGS took 18 us each time)."""

    __slots__ = ("value", "_hash")

    def __init__(self, value: Hashable):
        self.value, self._hash = value, hash(value)

    def __eq__(self, other: object) -> bool:
        return self is other or (isinstance(other, Key) and self._hash == other._hash and self.value == other.value)

    def __hash__(self) -> int:
        return self._hash


_VALUES = (type(None), bool, int, float, complex, str, bytes)
_EMPTY = ("empty cell",)
_DEPTH = 64  # deeper than any optax chain; past it (a self-referencing closure) objects are compared by identity


def structure(obj: Any) -> Hashable:
    """A hashable key equal for two objects only where they compute the same (module docstring): immutable values
    by type and ``repr``, tuples (named tuples by their type too) and ``functools.partial`` element by element,
    optax's and mle_jax's functions by code object, globals, defaults and closure cells, classes, code and jax
    arrays by identity; an object holding anything else anywhere is keyed by its identity (``Same(obj)``)."""
    loose: list = []
    walked = _walk(obj, 0, loose)
    return Same(obj) if loose else walked


def _walk(obj: Any, depth: int, loose: list) -> Hashable:
    """``structure``'s walk; an object that may compute something else while it stays the same object (a user's
    function, a mutable container, an object) is appended to ``loose``."""
    if depth > _DEPTH:  # a self-referencing closure: not walked further, so not known to be fixed
        loose.append(obj)
        return Same(obj)
    kind = type(obj)
    if kind in _VALUES or (isinstance(obj, np.generic) and obj.dtype.kind in "biufcSU"):
        return (kind, repr(obj))
    if isinstance(obj, tuple) and (kind is tuple or hasattr(kind, "_fields")):
        return (Same(kind), tuple(_walk(e, depth + 1, loose) for e in obj))
    if kind is functools.partial and isinstance(obj, functools.partial):
        return (Same(kind), _walk(obj.func, depth + 1, loose), _walk(obj.args, depth + 1, loose),
                _walk(tuple(sorted(obj.keywords.items())), depth + 1, loose))
    if isinstance(obj, types.FunctionType) and _trusted(obj):  # not subclassable: exactly a function
        cells = tuple(_walk(c.cell_contents, depth + 1, loose) if _filled(c) else _EMPTY
                      for c in obj.__closure__ or ())
        return (Same(kind), Same(obj.__code__), Same(obj.__globals__), _walk(obj.__defaults__, depth + 1, loose),
                _walk(tuple(sorted((obj.__kwdefaults__ or {}).items())), depth + 1, loose),
                _walk(tuple(sorted(obj.__dict__.items())), depth + 1, loose), cells)
    if not _fixed(obj):
        loose.append(obj)
    return Same(obj)


def _fixed(obj: Any) -> bool:
    """Whether ``obj`` computes the same for as long as it is the same object: a class, a code object, a module, a
    dtype, a jax array (immutable), a builtin function of no object. Not a NumPy array (written in place), a list, a
    dict, a user's function (its globals rebound) or any other object."""
    if isinstance(obj, (type, types.CodeType, types.ModuleType, np.dtype, jax.Array)):
        return True
    return isinstance(obj, types.BuiltinFunctionType) and isinstance(getattr(obj, "__self__", None),
                                                                     (type(None), types.ModuleType))


_TRUSTED = ("optax", "mle_jax")


def _trusted(fn: types.FunctionType) -> bool:
    """Whether ``fn`` is optax's or mle_jax's own (defined in their modules: ``fn.__globals__["__name__"]``, which
    ``functools.wraps`` does not copy): only their functions are compared by code and closure. A
    function keeps its globals by reference, so a user's ``update`` reading a module-level learning rate that the
    script rebinds between fits would compute something else under an equal code, globals and closure; a user's
    function is therefore compared by identity (the key before), and the libraries' functions, whose module-level
    names are functions, modules and constants never rebound, by what they compute."""
    # the module the function was defined in: its globals' name, not ``__module__``, which ``functools.wraps`` copies
    # (a user's update wrapped as optax's own read a rebound module-level rate from the first fit's program)
    return str(fn.__globals__.get("__name__") or "").split(".")[0] in _TRUSTED


def _filled(cell) -> bool:
    try:
        cell.cell_contents
    except ValueError:  # a cell not yet bound
        return False
    return True


def concrete_or_inline(fn: F, jitted: Callable[..., Any]) -> F:
    """A function that calls ``jitted`` when every argument is concrete and ``fn`` inside a trace."""
    def call(*args: Any, **kwargs: Any) -> Any:
        return (jitted if is_concrete(args, kwargs) else fn)(*args, **kwargs)
    call.__name__ = getattr(fn, "__name__", "program")
    call.__doc__ = fn.__doc__
    call.__wrapped__ = fn  # type: ignore[attr-defined]
    return call  # type: ignore[return-value]
