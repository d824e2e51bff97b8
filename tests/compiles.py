"""Counting XLA compiles in a test: ``with compiles() as count: ...`` then ``assert count.n == 0``."""

import contextlib
import types

import jax

_COMPILE = "/jax/core/compile/backend_compile_duration"


@contextlib.contextmanager
def compiles():
    """The number of backend compiles inside the block (``count.n``), from JAX's monitoring events."""
    count = types.SimpleNamespace(n=0)

    def listener(event, duration, **kwargs):
        if event == _COMPILE:
            count.n += 1
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield count
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
