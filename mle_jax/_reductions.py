"""One reduction algebra for every family: sums and means with weights and masks.

With per-example terms ``t_i``, weights ``w_i`` (default 1) and a mask ``m_i``
(default all True),

    sum  = sum_i m_i w_i t_i
    mean = sum_i m_i w_i t_i / sum_i m_i w_i      (the honest denominator; the weights first scaled into (0, 1]
                                                  by a power of two, ``unit_scaled``: the sums neither overflow
                                                  nor underflow)

Masked-out examples and examples of weight 0 contribute exactly 0 to the value, even where their term is not
finite (``0 * inf`` would be NaN: such a term is selected away, not multiplied), and 0 to the gradient where the
term's own derivative is finite. Here only the terms are seen, so a dropped row's NaN derivative (a NaN target's)
would still reach the gradient through the select: the recipe makes such rows harmless before the kernel
(``families._family.drop_rows``: a target off the support replaced, the row masked), so
through it a dropped row adds exactly 0 to every derivative; a masked row's NaN x still reaches the model's own
derivative (``fit`` then stops as ``non_finite``). A mean over no
example (every weight 0, as in a minibatch of masked-out examples) is 0 with a zero gradient.
Terms in bfloat16 / float16 are accumulated in float32.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

import jax.numpy as jnp
import numpy as np

Reduction: TypeAlias = Literal["sum", "mean"]
"""``"sum"``: ``sum_i m_i w_i t_i``; ``"mean"``: that over ``sum_i m_i w_i``."""


def _accumulate(terms):
    """Sum in at least float32: bfloat16 / float16 terms must not drift."""
    acc = jnp.promote_types(terms.dtype, jnp.float32)
    return jnp.sum(terms, dtype=acc).astype(jnp.promote_types(terms.dtype, acc))


def affine_as(affine, dtype):
    """A family's ``(scale, shift)`` (``Density.affine``) in ``dtype``, that of the kernel's terms they map.

    They are functions of the family's own parameters alone, whose dtype is the terms' (``theta`` and the
    kernels see them in the raw outputs' dtype: ``families._family.params_as``), so they must not widen the
    terms: a parameter fixed as a Python float is weakly typed, but ``lgamma`` and its like return a strong
    float64 under x64, and that shift added to float32 terms made the NLL float64 (and L-BFGS's line search
    refused the mixed dtypes).

    ``dtype`` None (a kernel of Python or NumPy numbers, not JAX's) or not floating (an integer kernel,
    ``(y - mu)^2`` of integer raw outputs and targets): the affine stands as it is, and its floats make the terms
    floats (cast to an integer, a least-squares ``-1/(2 sigma^2)`` would be 0)."""
    if dtype is None or not jnp.issubdtype(dtype, jnp.inexact):
        return affine
    scale, shift = affine
    return jnp.asarray(scale, dtype), jnp.asarray(shift, dtype)


def unit_scaled(w):
    """``w 2^-e`` with ``2^e`` the power of two just above the largest weight (``frexp``): exact (a power of two),
    and a weighted mean is invariant to scaling its weights, so the mean's weights are scaled into (0, 1] first. Its
    sums then neither overflow (float32 weights of 1e38: the sum of the weights was inf and the mean NaN) nor
    underflow (weights of 1e-30 times terms of 1e-10: the products flushed to 0, and the mean was 0). ``e`` is an
    integer: the derivative in ``w`` is the chain rule's through the constant factor. Two scalar factors of
    ``2^(-e/2)`` each (``2^-128``, for weights of 3e38, is subnormal in float32: read as 0), one multiply per weight
    (``jnp.ldexp`` per element cost a weighted mean NLL a third)."""
    e = jnp.frexp(jnp.max(w))[1]
    half = e // 2
    one = jnp.ones((), w.dtype)
    return w * jnp.ldexp(one, -half) * jnp.ldexp(one, half - e)


def weights_as(weights, dtype, reduction: str = "mean"):
    """The weights for terms in ``dtype``: a mean's scaled into (0, 1] (``unit_scaled``) in the wider of their dtype
    and ``dtype``, then cast to ``dtype``; a sum's in that wider dtype, unscaled (``reduce_terms`` then takes the
    products, the sums and the affine in it and casts the result once). Cast to a narrower ``dtype`` first, float64
    weights of 1e-40 were 0 in float32 (XLA flushes its subnormals: the weighted mean NLL 0); a sum's weights
    scaled there and its sums scaled back by ``2^e`` lost d/dw_i = t_i (``2^e`` out of float32's range: 0); float16
    weights scaled in float16 lost digits to its subnormals (a ratio of 2^14 between weights). Integer and boolean
    weights are cast first (``dtype``'s range holds them)."""
    w = jnp.asarray(weights)
    if not (jnp.issubdtype(dtype, jnp.floating) and jnp.issubdtype(w.dtype, jnp.floating)):
        w = w.astype(dtype)
        return unit_scaled(w) if reduction == "mean" else w
    w = w.astype(jnp.promote_types(w.dtype, dtype))
    return unit_scaled(w).astype(dtype) if reduction == "mean" else w


def reduce_terms(terms, weights=None, mask=None, reduction: str = "sum", affine=None):
    """Reduce per-example terms ``t_i`` (shape (N,)) by ``sum`` or ``mean``, with weights and a mask.

    ``affine = (a, b)`` (optional) maps every term to ``a t_i + b``, applied once after the sum:
    ``sum = a sum_i m_i w_i t_i + b sum_i m_i w_i``, ``mean = sum / sum_i m_i w_i``; a and b in the sum's
    dtype (``affine_as``).
    """
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean'; got {reduction!r}")
    weighted = weights is not None or mask is not None
    back = None  # the dtype to cast the result to where a sum's weights are wider than the terms (``weights_as``)
    if weighted:
        # scaled by the weights as given (before the mask): the scale is one reduction of the weights alone,
        # computed apart from the terms, in the wider of their dtype and the terms' (``weights_as``)
        w = jnp.ones_like(terms) if weights is None else weights_as(weights, terms.dtype, reduction)
        if w.dtype != terms.dtype:  # the products, sums and affine in the weights' dtype, the result cast once
            back, terms = jnp.promote_types(terms.dtype, jnp.float32), terms.astype(w.dtype)
        if mask is not None:
            w = jnp.where(mask, w, jnp.zeros_like(w))
            terms = jnp.where(mask, terms, jnp.zeros_like(terms))
        if weights is not None:  # a weight of 0 drops its row as a mask does, also where 0 * t_i is NaN (t_i = -inf);
            # a finite term is kept, so that d/dw_i of the sum stays t_i at w_i = 0
            terms = jnp.where((w == 0) & ~jnp.isfinite(terms), jnp.zeros_like(terms), terms)
        total, count = _accumulate(w * terms), _accumulate(w)
    else:
        total, count = _accumulate(terms), terms.shape[0]
    reduced = _reduced(total, count, reduction, weighted, affine)
    return reduced if back is None else reduced.astype(back)


def _reduced(total, count, reduction: str, weighted: bool, affine):
    """The sum or mean from ``total = sum_i m_i w_i t_i`` and ``count = sum_i m_i w_i`` (``reduce_terms``)."""
    scale, shift = (1, 0) if affine is None else affine_as(affine, jnp.result_type(total))
    if reduction == "sum":
        if affine is None:
            return total
        if _is_zero(affine[1]):  # a shift fixed at 0 (the unit affine's) adds nothing: ``count * 0`` is NaN where
            return scale * total  # the weights' sum overflows though the sum does not (float32 weights 2e38, terms 0.4)
        return scale * total + count * shift
    if not weighted:
        return total / count if affine is None else scale * (total / count) + shift
    # a mean over no example (every weight 0: a minibatch of masked-out examples inside a fit) is 0,
    # with a zero gradient, not 0/0; on concrete data the recipe refuses such a mean before this
    some = count > 0
    mean = total / jnp.where(some, count, jnp.ones_like(count))
    return jnp.where(some, mean if affine is None else scale * mean + shift, jnp.zeros_like(mean))


def _is_zero(value) -> bool:
    """Whether ``value`` is a Python or NumPy number equal to 0 (known before tracing; an array is not)."""
    return isinstance(value, (int, float, np.number)) and value == 0
