"""``inference`` over a stream of batches: ``mj.inference(r, params, batches, None, cov=...)``.

Every quantity of ``mle_jax.inference`` is a sum over examples, so over batches b it is the sum of
the batches' terms (``mle_jax._curvature``, each batch chunked as in memory):

    log L = sum_b log L_b      nobs = sum_b sum_{i in b} w_i
    H = sum_b H_b              B = sum_b sum_{i in b} w_i s_i s_i'        I = sum_b I_b

then the covariance by the in-memory function (``mle_jax.inference.assemble``: observed ``H^-1``,
expected ``I^-1``, robust ``H^-1 B H^-1``, diagonal ``1 / H_jj``). One pass over the stream, in float64; memory holds one batch and a k x k
total. Batches are read as ``fit`` reads them (``_stream.Batch``: one shape, the last batch padded
and masked, so one compiled program per quantity). ``cov="hvp"`` (conjugate gradients: a pass
per iteration) is refused, and the separation checks of an in-memory call are not made. The
result's ``natural()`` and ``mean_interval()`` work as in memory (they need the params, the
covariance and the recipe); ``conf_int(method="profile")`` re-fits over all the data and is refused.
"""

from __future__ import annotations

import importlib

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ._curvature import Data
from ._params import partition
from ._stream import Batch

COV_TYPES = ("observed", "expected", "robust", "diagonal")


def stream_inference(recipe, params, batches, cov: str, *, weights, mask, max_params: int, index, batch_size: int,
                     chunk_size: int | None):
    """``inference`` summed over the batches of ``batches`` (see the module docstring): each batch's
    ``curvature_terms`` added up, then ``assemble``d as in memory (both ``mle_jax.inference``'s)."""
    inf = importlib.import_module("mle_jax.inference")  # the module (mle_jax.inference is also the function)
    if weights is not None or mask is not None:
        raise ValueError("inference: with a stream of batches, weights come in each batch as (x, y, weights); "
                         "pass weights=None and mask=None")
    if cov not in COV_TYPES:
        raise ValueError(f"inference: cov={cov!r} is not available over a stream of batches (conjugate gradients "
                         f"would need a pass over the stream per iteration); use one of {COV_TYPES}")
    if index is not None:
        raise ValueError("inference: index chooses the parameters of cov='hvp', which a stream does not offer")
    with jax.enable_x64(True):
        params = inf._to64(params, numbers=False)
        parts = partition(params)
        v = ravel_pytree(parts.trained)[0]
        k = int(v.size)
        inf.check_dense(cov, k, max_params)
        totals, loglik, nobs, reading = None, 0.0, 0.0, Batch("inference")
        for i, item in enumerate(batches):
            (x, y, w, m), rows = reading.read(item, i)
            if recipe.validate:
                recipe.check(*jax.tree_util.tree_map(lambda a: a[:rows], (x, y, w)))
            w = np.ones(reading.size) if w is None else np.asarray(w, np.float64)
            data = Data(inf._to64(x), inf._to64(y), jnp.asarray(w, jnp.float64), jnp.asarray(m))
            nobs += float(np.sum(w[:rows]))
            loglik -= float(recipe._reduce(parts, data.x, data.y, data.w, data.m, None, kind="nll",
                                           reduction="sum", train=False)[0])
            terms = inf.curvature_terms(cov, recipe, v, parts, data, inf._Sizes(reading.size, k, batch_size, chunk_size))
            totals = terms if totals is None else tuple(t + s for t, s in zip(totals, terms))
        if totals is None:
            raise ValueError("inference: the stream of batches is empty")
        if not nobs > 0:
            raise ValueError("inference: the weights leave no example (sum_i w_i = 0)")
        if not np.isfinite(loglik):
            raise ValueError(f"inference: the log-likelihood at params is {loglik}; is params the fitted MLE?")
        matrix, variance = inf.assemble(cov, totals, k, max_params)
    # no data: natural() and mean_interval() work from the params, the covariance and the recipe; a
    # profile interval (re-fits over all the data) is refused with the reason
    return inf.result(recipe, params, None, None, loglik, nobs, cov, v, matrix, variance,
                      inf._Fit(recipe, params, None, None, "frequency"))
