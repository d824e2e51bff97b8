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


def stopped_and_warned(recipe, params, x, y):
    """Two steps of ``sgd(0)`` from ``params`` (nothing moves): the fit's ``stopped`` and how many
    ``BoundaryWarning``s it gave; the boundary tests read these at a leaf put on (or off) the link's floor."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = mj.fit(recipe, params, x, y, optax.sgd(0.0), steps=2, run=mj.Run(progress=False))
    return res.stopped, sum(issubclass(w.category, mj.BoundaryWarning) for w in caught)
