"""Small per-example models for the recipe, in the style of ``jax.example_libraries.stax``.

A model is an ``(init, apply)`` pair: ``init(key) -> params`` and
``apply(params, x_i) -> raw`` for ONE example; the recipe adds the batch axis.
Bring any other pure function of the same shape (flax, equinox, haiku's
``apply``); these exist for the lecture's examples, the tests and the benchmarks.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp


class Model(NamedTuple):
    """``init(key) -> params``; ``apply(params, x_i) -> raw output`` for one example."""

    init: Callable
    apply: Callable


def mlp(sizes: Sequence[int], activation: Callable = jax.nn.relu, *, squeeze: bool = True,
        dtype=jnp.float32) -> Model:
    """A fully connected network ``sizes[0] -> ... -> sizes[-1]`` for one example.

    Weights are He/LeCun-normal (``N(0, 2 / fan_in)`` for ReLU-like activations),
    biases 0. A scalar input is accepted when ``sizes[0] == 1``; with ``squeeze``
    a single output is returned as a scalar (what one-value families expect).

    Example: the lecture's shallow network ``1 -> 3 -> 1`` is ``mlp([1, 3, 1])``.
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"mlp: sizes must list at least an input and an output size >= 1; got {sizes}")

    def init(key):
        keys = jax.random.split(key, len(sizes) - 1)
        return [
            {"w": jax.random.normal(k, (n_out, n_in), dtype) * math.sqrt(2.0 / n_in),
             "b": jnp.zeros((n_out,), dtype)}
            for k, n_in, n_out in zip(keys, sizes[:-1], sizes[1:])
        ]

    def apply(params, x):
        h = jnp.reshape(x, (sizes[0],))
        for layer in params[:-1]:
            h = activation(layer["w"] @ h + layer["b"])
        out = params[-1]["w"] @ h + params[-1]["b"]
        return out[0] if squeeze and sizes[-1] == 1 else out

    return Model(init, apply)
