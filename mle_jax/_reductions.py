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
    e = _exponent(w)
    half = e // 2
    one = jnp.ones((), w.dtype)
    return w * jnp.ldexp(one, -half) * jnp.ldexp(one, half - e)


def _exponent(w):
    """``e`` with the largest weight in ``[2^(e-1), 2^e)`` (``frexp``; 0 for weights all 0)."""
    return jnp.frexp(jnp.max(w))[1]


def times_power_of_two(a, e):
    """``a 2^e`` (``e`` an integer scalar), exact, by two scalar factors ``2^(e/2)`` in ``a``'s dtype: one of
    ``2^e`` may be out of its range where the product is not."""
    half = e // 2
    one = jnp.ones((), a.dtype)
    return a * jnp.ldexp(one, half) * jnp.ldexp(one, e - half)


def weights_as(weights, dtype, reduction: str = "mean"):
    """``(w, e)``: the weights in ``dtype`` (the terms'), scaled by ``2^-e`` in their own dtype before the cast, where
    the scale matters: a mean's always (``unit_scaled``; ``e`` None, the mean is invariant to it), and a sum's
    where the weights are wider than ``dtype`` (float64 weights with a float32 model under x64), ``e`` then the
    exponent to scale the sums back by. Cast first, float64 weights of 1e-40 were 0 in float32 (XLA flushes its
    subnormals): the weighted mean NLL 0, the sum 0 for 2^e times the float32 sum of the scaled weights' products.
    Integer and boolean weights are cast first (``dtype``'s range holds them); ``e`` is None where nothing is
    scaled back."""
    w = jnp.asarray(weights)
    if not (jnp.issubdtype(dtype, jnp.floating) and jnp.issubdtype(w.dtype, jnp.floating)):
        w = w.astype(dtype)
        return (unit_scaled(w) if reduction == "mean" else w), None
    if reduction == "mean":
        return unit_scaled(w).astype(dtype), None
    if jnp.finfo(w.dtype).bits <= jnp.finfo(dtype).bits:
        return w.astype(dtype), None
    e = _exponent(w)
    return times_power_of_two(w, -e).astype(dtype), e


def reduce_terms(terms, weights=None, mask=None, reduction: str = "sum", affine=None):
    """Reduce per-example terms ``t_i`` (shape (N,)) by ``sum`` or ``mean``, with weights and a mask.

    ``affine = (a, b)`` (optional) maps every term to ``a t_i + b``, applied once after the sum:
    ``sum = a sum_i m_i w_i t_i + b sum_i m_i w_i``, ``mean = sum / sum_i m_i w_i``; a and b in the sum's
    dtype (``affine_as``).
    """
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean'; got {reduction!r}")
    weighted = weights is not None or mask is not None
    if weighted:
        # scaled by the weights as given (before the mask): the scale is one reduction of the weights alone,
        # computed apart from the terms, in the weights' own dtype (``weights_as``)
        w, e = (jnp.ones_like(terms), None) if weights is None else weights_as(weights, terms.dtype, reduction)
        if mask is not None:
            w = jnp.where(mask, w, jnp.zeros_like(w))
            terms = jnp.where(mask, terms, jnp.zeros_like(terms))
        if weights is not None:  # a weight of 0 drops its row as a mask does, also where 0 * t_i is NaN (t_i = -inf);
            # a finite term is kept, so that d/dw_i of the sum stays t_i at w_i = 0
            terms = jnp.where((w == 0) & ~jnp.isfinite(terms), jnp.zeros_like(terms), terms)
        total, count = _accumulate(w * terms), _accumulate(w)
        if e is not None:  # a sum's weights scaled for the cast: its sums scaled back
            total, count = times_power_of_two(total, e), times_power_of_two(count, e)
    else:
        total, count = _accumulate(terms), terms.shape[0]
    scale, shift = (1, 0) if affine is None else affine_as(affine, jnp.result_type(total))
    if reduction == "sum":
        return total if affine is None else scale * total + count * shift
    if not weighted:
        return total / count if affine is None else scale * (total / count) + shift
    # a mean over no example (every weight 0: a minibatch of masked-out examples inside a fit) is 0,
    # with a zero gradient, not 0/0; on concrete data the recipe refuses such a mean before this
    some = count > 0
    mean = total / jnp.where(some, count, jnp.ones_like(count))
    return jnp.where(some, mean if affine is None else scale * mean + shift, jnp.zeros_like(mean))
