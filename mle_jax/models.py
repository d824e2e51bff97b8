"""Small per-example models for the recipe, in the style of ``jax.example_libraries.stax``.

A model is an ``(init, apply)`` pair: ``init(key) -> params`` and
``apply(params, x_i) -> raw`` for ONE example; the recipe adds the batch axis.
Bring any other pure function of the same shape (flax, equinox, haiku's
``apply``); these exist for the lecture's examples, the tests and the benchmarks.
"""

from __future__ import annotations

import math
import weakref
from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np


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


@jax.custom_jvp
def _dot(x, w):
    return x @ w


@_dot.defjvp
def _dot_jvp(primals, tangents):
    x, w = primals
    dx, dw = tangents
    # the tangent as a multiply-reduce: its transpose (the gradient in w) is ``g_i * x_i``, which the
    # batching vmap sums over the rows as one fused reduce instead of XLA:CPU's row-contracting dot
    return x @ w, jnp.sum(x * dw) + jnp.sum(dx * w)


def _linear_predictor(x, w):
    """``x' w`` for one example: ``x`` of shape (d,), ``w`` of shape (d, *raw_shape).

    The value is the dot product; for one raw output (``w`` of shape (d,)) its derivative is written
    as ``sum(x * dw)`` (a ``custom_jvp``) so the batched gradient is a fused multiply-reduce. With
    several raw outputs plain ``tensordot`` is kept (measured faster there: the multiply-reduce over an
    (N, d, K) product is 4-10x slower than the dot).
    """
    if w.ndim == 1:  # an int / bool x in the float dtype x @ w promotes to: its tangent is a float, never float0
        return _dot(jnp.asarray(x, jnp.result_type(x, w)), w)
    return jnp.tensordot(x, w, axes=1)


class LinearForm(NamedTuple):
    """What ``linear`` made an ``apply`` compute (``linear_form``): ``eta = x' w (+ b)`` with ``w`` of shape
    ``(d, *raw_shape)``, and a zero raw output put first where ``reference``."""

    d: int
    raw_shape: tuple
    intercept: bool
    reference: bool


_FORMS: "weakref.WeakKeyDictionary[Callable, LinearForm]" = weakref.WeakKeyDictionary()
_ROWS: "weakref.WeakKeyDictionary[Callable, Callable]" = weakref.WeakKeyDictionary()

# A float64 design of at most this many bytes: the gradient of ``X w`` as XLA:CPU's row-contracting dot
# (``dot(g, X)``), which there beats the fused multiply-reduce ``sum(g[:, None] * X, 0)`` (``_dot``). Measured
# (CPU us for ``exp(X w)`` and its gradient in a loop, one iteration; dot / multiply-reduce): float64 1e4 x 20
# 53 / 134, 1e4 x 100 (8 MB) 313 / 513, 1e5 x 20 (16 MB) 1,492 / 2,356, 3e4 x 100 (24 MB) 6,079 / 5,924,
# 3e5 x 20 (48 MB) 14,563 / 9,218; float32 the multiply-reduce at every size from 1e4 x 20 (61 / 37). Whole fits
# at 1e5 x 20 were mixed on a loaded machine (the logistic's and Poisson's L-BFGS 0.72-0.80x, the negative
# binomial's 1.17-1.42x, load 14-17: the L3 shared with other processes), so the bound stops below them.
DOT_BYTES = 1 << 23


def _rows_by_dot(x, w) -> bool:
    """Whether ``x @ w`` over a batch ``x`` of shape (N, d) takes the plain dot's gradient (``DOT_BYTES``)."""
    if not isinstance(x, (jax.Array, np.ndarray)) or x.ndim != 2:
        return False  # anything else: the vmapped apply (and its errors)
    dtype = jnp.result_type(x, w)
    return (jax.default_backend() == "cpu" and dtype == jnp.float64
            and math.prod(jnp.shape(x)) * dtype.itemsize <= DOT_BYTES)


def linear_rows(apply) -> Callable | None:
    """For an ``apply`` made by ``linear`` with one raw output, its batched twin ``(params, x) -> eta`` of
    shape (N,) or None (``recipe`` vmaps ``apply`` then); else None. The twin computes ``x @ w + b``, the
    value of the vmapped ``apply`` to the bit, with the plain dot's gradient, where that is the faster form
    (a float64 design of at most ``DOT_BYTES`` on the CPU; ``_rows_by_dot``), and is None elsewhere."""
    try:
        return _ROWS.get(apply)
    except TypeError:  # not weak-referenceable: not linear's
        return None


def linear_form(apply) -> LinearForm | None:
    """The ``LinearForm`` of an ``apply`` made by ``linear`` (this very function object), else None.

    Kept in a table keyed by the function itself, not as an attribute: a wrapper (even one made with
    ``functools.wraps``, which copies attributes) computes something else and is not in the table.
    ``mle_jax._curvature`` reads it to build a GLM's Hessian as weighted Gram blocks."""
    try:
        return _FORMS.get(apply)
    except TypeError:  # not weak-referenceable (a builtin, a partial of one): not linear's
        return None


def linear(d: int, raw_shape: Sequence[int] = (), *, intercept: bool = True, reference: bool = False,
           dtype=jnp.float32) -> Model:
    """The linear predictor ``eta_i = x_i' w + b`` of a GLM, for one example ``x_i`` of shape ``(d,)``.

    Params ``{"w": (d, *raw_shape), "b": raw_shape}`` (``{"w"}`` alone with ``intercept=False``),
    all 0 at ``init`` (the key is accepted and unused). ``raw_shape=()`` gives one raw output (a
    scalar: Bernoulli, Poisson, Gamma...); ``(K - 1,)`` the free logits of a multinomial with a
    reference class with ``reference=True``, which puts a raw output fixed at 0 first (K logits for
    ``mj.categorical(K)``, class 0 the reference, as statsmodels' ``MNLogit``). The same as ``x_i @ w + b``
    in value and every derivative; statsmodels' ``GLM`` linear predictor ``exog @ params``.

    Newton and ``mj.inference`` recognise an ``apply`` made here (``linear_form``) and build the
    Hessian ``sum_i J_i' C_i J_i`` from its structure ``J_i = I_q (x) (1, x_i')`` (q raw outputs,
    ``C_i`` example i's curvature in them) as ``q (q + 1) / 2`` weighted Grams
    ``X' diag(u C[a, b]) X``, instead of a dense product over the stacked Jacobians.

    Why a library form: differentiating the vmapped ``x_i @ w`` gives the gradient
    ``sum_i g_i x_i`` as a dot contracting the rows (``dot(g, X)``, lhs_contracting_dims={0}), which
    XLA:CPU runs at a third of the forward's speed. For one raw output the derivative here is written
    as a multiply-reduce (a ``custom_jvp``), so the batched gradient is ``sum(g[:, None] * X, 0)``,
    fused; the value stays the dot. Measured (CPU ms, value and value+grad of a Poisson NLL through
    ``mj.recipe``, float64, 1e6 x 20): dot 33 / 95, this form 33 / 52 (float32: 10.5 / 23 and
    10.5 / 21). With several raw outputs the dot is kept (the multiply-reduce was 4-10x slower). A float64
    design of at most ``DOT_BYTES`` (8 MiB: 1e4 x 100) is the other way round on the CPU (the dot's gradient
    2.5x faster at 1e4 x 20): there the recipe computes all rows at once through the batched twin
    ``linear_rows(apply)``, ``x @ w + b`` with the plain dot's gradient, the same value to the bit.

    >>> import jax.numpy as jnp, mle_jax as mj
    >>> m = mj.models.linear(3)
    >>> p = {"w": jnp.array([1.0, 2.0, 3.0]), "b": jnp.array(0.5)}
    >>> float(m.apply(p, jnp.array([1.0, 1.0, 1.0])))
    6.5
    """
    if isinstance(d, bool) or not isinstance(d, int) or d < 1:
        raise ValueError(f"linear: d (the number of columns) must be an int >= 1; got {d!r}")
    try:
        raw_shape = tuple(int(k) for k in raw_shape)
    except TypeError:
        raise ValueError(f"linear: raw_shape must be a tuple of ints (() for one raw output); got {raw_shape!r}")
    if any(k < 1 for k in raw_shape):
        raise ValueError(f"linear: raw_shape sizes must be >= 1; got {raw_shape}")
    if reference and len(raw_shape) != 1:
        raise ValueError(f"linear: reference=True needs raw_shape = (K - 1,) (one axis); got {raw_shape}")

    def init(key=None):
        del key
        p = {"w": jnp.zeros((d, *raw_shape), dtype)}
        if intercept:
            p["b"] = jnp.zeros(raw_shape, dtype)
        return p

    def check(params, example_shape):
        if "w" not in params:
            raise ValueError(f"linear: params need 'w' (shape {(d, *raw_shape)}); got keys {sorted(params)}")
        if example_shape != (d,):
            raise ValueError(f"linear: one example must have shape ({d},); got {example_shape}")
        if jnp.shape(params["w"]) != (d, *raw_shape):
            raise ValueError(f"linear: params['w'] must have shape {(d, *raw_shape)}; got {jnp.shape(params['w'])}")
        if intercept and "b" not in params:
            raise ValueError(f"linear: params need 'b' (intercept=True; params from linear(..., intercept=False) "
                             f"have 'w' only); got keys {sorted(params)}")

    def apply(params, x):
        check(params, jnp.shape(x))
        eta = _linear_predictor(x, params["w"])
        eta = eta + params["b"] if intercept else eta
        return jnp.concatenate([jnp.zeros((1,), eta.dtype), eta]) if reference else eta

    def rows(params, x):
        """``apply`` over every row of ``x`` (N, d) as ``x @ w + b``, its gradient in ``w`` the plain dot's
        ``dot(g, x)``: where ``_rows_by_dot`` says it is faster, else None (``linear_rows``)."""
        if "w" not in params or not _rows_by_dot(x, params["w"]):
            return None
        check(params, jnp.shape(x)[1:])
        eta = jnp.asarray(x, jnp.result_type(x, params["w"])) @ params["w"]
        return eta + params["b"] if intercept else eta

    _FORMS[apply] = LinearForm(d, raw_shape, bool(intercept), bool(reference))
    if not raw_shape:
        _ROWS[apply] = rows
    return Model(init, apply)
