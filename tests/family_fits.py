"""A helper for the family tests: fit an unconditional model (raw = the parameters) with Adam."""

import jax.numpy as jnp
import optax

import mle_jax as mj


def fit_constant(family, start, y, steps=3000, lr=0.05):
    """Fit ``raw = p`` (the same raw output for every example) to targets ``y``; returns (recipe, result)."""
    y = jnp.asarray(y)
    x = jnp.zeros((y.shape[0], 1), jnp.float32)
    r = mj.recipe(lambda p, x_i: p, family)
    return r, mj.fit(r, r.init(start), x, y, optax.adam(lr), steps=steps)
