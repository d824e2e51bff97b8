"""The quantile of any scalar theta from its CDF: the registry's one fallback for ``quantile`` and ``isf``.

    quantile(theta, q) = the smallest y with F(y) >= q        (scipy's ``ppf``)
    isf(theta, p)      = the smallest y with Pr(Y > y) <= p   (scipy's ``isf``)

found by bisection on the ORDER of the dtype's floats: a float's bits, read as a signed integer and
mirrored for negative floats, number the floats in increasing order, so halving an interval of those
integers is bisection in a coordinate that is logarithmic far from 0 and linear near it, for any
location and scale, and ends on two adjacent floats. The loop is a ``lax.fori_loop`` of a fixed
count, the dtype's bit width (64 tail evaluations in float64, 32 in float32), between the support's
ends (``registry.support``: the real line, y > 0, (0, 1), the counts...). The test reads the lower tail
``log F(y) >= log q`` where ``q <= 1/2`` and the upper tail ``log S(y) <= log(1 - q)`` above, from one
``log_tail(theta, y, upper)`` (the type's own, else ``where(upper, log_sf, log_cdf)``), so
``isf(theta, 1e-30)`` and ``quantile(theta, 1e-30)`` are exact in float32 too.

The promise: the result is within one float of the point where the type's own ``log_cdf`` / ``log_sf``
cross ``q``, so its relative error is the tail's relative error divided by ``|d log F / d log y|``
(plus 2 eps); with the built-in tails (a few eps relative) that is below 1e-12 relative in float64 and
1e-5 in float32 where ``y`` is a normal float (tests/test_quantiles.py checks it against scipy's ``ppf``
and ``isf`` at q = 1e-30, 1e-10, 1/2 and 1 - 1e-10). A discrete type (``discrete=True`` with integer
targets) gets the smallest count k with ``F(k) >= q``: its ``log_cdf`` is read at ``floor(y)``, and the
smallest float with ``F(floor(y)) >= q`` is that integer. A continuous quantile beyond the dtype's floats
rounds to the support's end (``_rounded_to_the_end``: -inf, or 0 below the smallest normal float). At q = 0 the result is the support's lower end
(less 1 for counts), at q = 1 its upper end, as scipy; NaN outside [0, 1], and NaN where every tail
evaluation was NaN (NaN parameters). The derivative in theta and q is the implicit function's,
``dy = (dt - d_theta log_tail . dtheta) / d_y log_tail`` with ``t`` the log probability that was matched
(0 for counts, whose quantile is piecewise constant).

Reference: scipy.stats' generic ``rv_continuous._ppf`` (Brent's method on the CDF) does the same with a
tolerance; the bit-order bisection is the exact-to-the-float form of it.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from . import registry
from .special import log1mexp, log1p


def _int_dtype(dtype):
    return jnp.int64 if jnp.dtype(dtype).itemsize == 8 else jnp.int32


def _key(y, itype):
    """The floats' order as integers: the bits for y >= 0, minus the magnitude's bits below (-0 is 0)."""
    bits = jax.lax.bitcast_convert_type(y, itype)
    magnitude = bits & jnp.asarray(np.iinfo(itype).max, itype)
    return jnp.where(bits >= 0, bits, -magnitude)


def _float(k, dtype):
    itype = k.dtype
    sign = jnp.asarray(np.iinfo(itype).min, itype)
    return jax.lax.bitcast_convert_type(jnp.where(k >= 0, k, (-k) | sign), dtype)


def bisect(satisfied: Callable[[Any], Any], lower, upper, dtype, open_lower: bool = True):
    """The smallest float ``y`` in ``(lower, upper]`` (``[lower, upper]`` where not ``open_lower``) of ``dtype``
    with ``satisfied(y)``, for a ``satisfied`` monotone in y (False then True) that holds at ``upper`` and not
    below ``lower``: ``bits(dtype)`` halvings of the floats' order. Also returns whether every evaluation gave
    NaN-free answers (``satisfied`` returns ``(bool, is_nan)``)."""
    itype = _int_dtype(dtype)
    lower = jnp.asarray(lower, dtype)
    upper = jnp.asarray(upper, dtype)
    lo = _key(lower, itype)
    lo = jnp.where(open_lower | (lower == -jnp.inf), lo, lo - 1)  # exclusive: the answer lies in (lo, hi]
    hi = _key(upper, itype)

    def body(_, state):
        lo, hi, all_nan = state
        mid = (lo >> 1) + (hi >> 1) + (lo & hi & 1)  # no overflow across the whole range
        good, nan = satisfied(_float(mid, dtype))
        active = mid != lo
        hi = jnp.where(active & good, mid, hi)
        lo = jnp.where(active & ~good, mid, lo)
        return lo, hi, all_nan & (nan | ~active)

    start = (lo, hi, jnp.ones(jnp.shape(lo), bool))
    lo, hi, all_nan = jax.lax.fori_loop(0, 8 * jnp.dtype(dtype).itemsize, body, start)
    return _float(hi, dtype), all_nan


def invert(log_tail: Callable[[Any, Any], Any], log_q, log_p, lower, upper, *, discrete: bool = False,
           open_lower: bool = True):
    """The smallest y in the support ``[lower, upper]`` with ``F(y) >= q``, ``q + p = 1`` given as ``log q`` and
    ``log p`` (every argument of one shape and floating dtype): the lower tail's test ``log_tail(y, False) >=
    log q`` where ``q <= 1/2``, the upper tail's ``log_tail(y, True) <= log p`` elsewhere (``bisect``).
    ``discrete``: counts, ``log_tail`` read at ``floor(y)``; q = 0 gives ``lower - 1``, not ``lower``."""
    dtype = jnp.result_type(log_q)
    lower, upper = (jnp.broadcast_to(jnp.asarray(end, dtype), jnp.shape(log_q)) for end in (lower, upper))
    upper_tail = log_p < log_q

    def satisfied(y):
        at = jnp.floor(y) if discrete else y
        value = log_tail(at, upper_tail)
        good = jnp.where(upper_tail, value <= log_p, value >= log_q)
        return good, jnp.isnan(value)

    y, all_nan = bisect(satisfied, lower, upper, dtype, open_lower)
    if not discrete:
        y = _rounded_to_the_end(lambda v: log_tail(v, False), y, log_q, upper_tail, lower, open_lower)
    zero = jnp.asarray(lower, dtype) - (1 if discrete else 0)
    y = jnp.where(log_q == -jnp.inf, zero, jnp.where(log_p == -jnp.inf, jnp.asarray(upper, dtype), y))
    inner = (log_q > -jnp.inf) & (log_p > -jnp.inf)
    bad = jnp.isnan(log_q) | jnp.isnan(log_p) | (inner & all_nan)
    return jnp.where(bad, jnp.nan, y)


def _rounded_to_the_end(log_cdf, y, log_q, upper_tail, lower, open_lower):
    """The support's open lower end where the quantile lies beyond the dtype's floats: the bisection stops on
    the first float above that end (-max for -inf; the smallest normal float above 0, XLA:CPU flushing the
    subnormals to 0) even where ``F`` there is far above ``q`` (a Student t with df 0.7 at q = 1e-30 in float32:
    -1.4e42; a Gamma of shape 1/2 at q = 1e-30: 7.9e-61). The quantile rounds to the end itself (to -inf,
    to 0, as the float64 quantile cast to float32 does) when ``log F(first) - log q`` is more than half the
    step of ``log F`` to the next float."""
    dtype = y.dtype
    finfo = jnp.finfo(dtype)
    first = jnp.where(lower == -jnp.inf, -finfo.max,
                      jnp.where(lower == 0, finfo.tiny, jnp.nextafter(lower, jnp.asarray(jnp.inf, dtype))))
    at_first = (y == first) & ~upper_tail & (open_lower | (lower == -jnp.inf))
    a = log_cdf(first)
    b = log_cdf(jnp.nextafter(first, jnp.asarray(jnp.inf, dtype)))
    beyond = at_first & (a - log_q > 0.5 * (b - a))
    return jnp.where(beyond, lower, y)


def log_probabilities(q, dtype):
    """``(log q, log(1 - q))``, NaN outside [0, 1]."""
    q = jnp.asarray(q, dtype)
    q = jnp.where((q >= 0) & (q <= 1), q, jnp.nan)
    return jnp.log(q), log1p(-q)


def tail_function(table: registry.Ops) -> Callable[[Any, Any, Any], Any]:
    """``log_tail(theta, y, upper)`` from a table: its own, else ``where(upper, log_sf, log_cdf)``, else the
    one side it has and ``log1mexp`` of it for the other."""
    if table.log_tail is not None:
        return table.log_tail
    log_cdf, log_sf = table.log_cdf, table.log_sf
    if log_cdf is not None and log_sf is not None:
        return lambda theta, y, upper: jnp.where(upper, log_sf(theta, y), log_cdf(theta, y))
    if log_cdf is not None:
        return lambda theta, y, upper: (lambda v: jnp.where(upper, log1mexp(v), v))(log_cdf(theta, y))
    assert log_sf is not None
    return lambda theta, y, upper: (lambda v: jnp.where(upper, v, log1mexp(v)))(log_sf(theta, y))


def _broadcast(theta, table: registry.Ops, shape, dtype):
    """Every field of ``theta`` of the examples' shape ``shape`` (plus its component axes), in ``dtype``."""
    k = table.component_axes

    def field(f):
        f = jnp.asarray(f, dtype)
        return jnp.broadcast_to(f, tuple(shape) + jnp.shape(f)[jnp.ndim(f) - k:])
    return jax.tree.map(field, theta)


def _dtype(theta):
    leaves = [jnp.asarray(leaf) for leaf in jax.tree.leaves(theta)]
    dtype = jnp.result_type(*leaves) if leaves else jnp.result_type(float)
    return dtype if jnp.issubdtype(dtype, jnp.floating) else jnp.result_type(float)


def _support_bounds(theta):
    support = registry.support(theta)
    return support.lower, support.upper, support.open_lower


def solver(table: registry.Ops, tail: Callable[[Any, Any, Any], Any],
           bounds: Callable[[Any], tuple] = _support_bounds) -> Callable[[Any, Any, Any], Any]:
    """``solve(theta, log_q, log_p)`` for a type with ``table`` (its ``discrete``), of the examples' shape,
    between ``bounds(theta) = (lower, upper, open_lower)`` (the support's); continuous types carry the
    implicit function's derivative (module docstring)."""

    def search(theta, log_q, log_p):
        lower, upper, open_lower = bounds(theta)
        return invert(lambda y, up: tail(theta, y, up), log_q, log_p, lower, upper,
                      discrete=table.discrete, open_lower=open_lower)

    if table.discrete:
        return lambda theta, log_q, log_p: jax.lax.stop_gradient(search(theta, log_q, log_p))

    @jax.custom_jvp
    def solve(theta, log_q, log_p):
        return search(theta, log_q, log_p)

    @solve.defjvp
    def solve_jvp(primals, tangents):
        theta, log_q, log_p = primals
        d_theta, d_log_q, d_log_p = tangents
        y = solve(theta, log_q, log_p)
        upper = log_p < log_q
        finite = jnp.isfinite(y)
        at = jnp.where(finite, y, 0.0)
        _, slope = jax.jvp(lambda v: tail(theta, v, upper), (at,), (jnp.ones_like(at),))
        _, moved = jax.jvp(lambda th: tail(th, at, upper), (theta,), (d_theta,))
        target = jnp.where(upper, d_log_p, d_log_q)
        ok = finite & (slope != 0) & jnp.isfinite(slope)
        return y, jnp.where(ok, (target - moved) / jnp.where(ok, slope, 1.0), 0.0)

    return solve


def fallbacks(table: registry.Ops) -> dict[str, Callable]:
    """The ``quantile`` and ``isf`` entries ``table`` lacks, from its tails (empty where it has no tail, or
    has a quantile of its own; a type with its own quantile and no isf keeps ``quantile(theta, 1 - p)``)."""
    if table.quantile is not None or (table.log_cdf is None and table.log_sf is None and table.log_tail is None):
        return {}
    quantile, isf = pair(table, solver(table, tail_function(table)))
    quantile.fallback = isf.fallback = True  # type: ignore[attr-defined]
    return {"quantile": quantile, "isf": isf}


def pair(table: registry.Ops, solve: Callable[[Any, Any, Any], Any]) -> tuple[Callable, Callable]:
    """``(quantile(theta, q), isf(theta, p))`` from ``solve`` (``solver``), broadcasting theta and q."""

    def parts(theta, q):
        dtype = _dtype(theta)
        work = jnp.float32 if jnp.dtype(dtype).itemsize < 4 else dtype  # float16 / bfloat16: in float32
        q = jnp.asarray(q)
        shape = jnp.broadcast_shapes(registry.batch_shape(theta), jnp.shape(q))
        return _broadcast(theta, table, shape, work), jnp.broadcast_to(q.astype(work), shape), dtype

    def quantile(theta, q):
        """The smallest y with ``F(y) >= q`` by bisection of the type's tails (``_invert``); scipy's ``ppf``."""
        theta, q, dtype = parts(theta, q)
        return solve(theta, *log_probabilities(q, q.dtype)).astype(dtype)

    def isf(theta, p):
        """The smallest y with ``Pr(Y > y) <= p`` by bisection of the type's upper tail (``_invert``);
        scipy's ``isf``, exact for p far below the dtype's epsilon."""
        theta, p, dtype = parts(theta, p)
        log_p, log_q = log_probabilities(p, p.dtype)
        return solve(theta, log_q, log_p).astype(dtype)

    return quantile, isf
