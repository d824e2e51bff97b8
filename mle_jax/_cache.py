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
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Hashable, TypeVar

import jax
import jax.core

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

    def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """The program under ``key``, built by ``build()`` on a miss; marks it the newest."""
        if key in self._kept:
            self._kept.move_to_end(key)
            return self._kept[key]
        program = self._kept[key] = build()
        while len(self._kept) > self.limit:
            self._kept.popitem(last=False)
        return program

    def __contains__(self, key: Hashable) -> bool:
        return key in self._kept

    def __len__(self) -> int:
        return len(self._kept)

    def keys(self) -> list[Hashable]:
        return list(self._kept)

    def clear(self) -> None:
        self._kept.clear()


def concrete_or_inline(fn: F, jitted: Callable[..., Any]) -> F:
    """A function that calls ``jitted`` when every argument is concrete and ``fn`` inside a trace."""
    def call(*args: Any, **kwargs: Any) -> Any:
        return (jitted if is_concrete(args, kwargs) else fn)(*args, **kwargs)
    call.__name__ = getattr(fn, "__name__", "program")
    call.__doc__ = fn.__doc__
    call.__wrapped__ = fn  # type: ignore[attr-defined]
    return call  # type: ignore[return-value]
