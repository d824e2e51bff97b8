"""Log incomplete gamma and beta functions: stable in the far tails, differentiable in every argument.

``log P(a, x)``, ``log Q(a, x)`` (regularised incomplete gamma) and ``log I_x(a, b)`` (regularised
incomplete beta) are evaluated in log space, so a tail probability of 1e-80 is ``-184.2``, not
``log(0) = -inf`` (float32 underflows below 1e-45):

    log P(a, x)   = a log x - x - lgamma(a) + log sum_n x^n / (a (a+1) ... (a+n))        x < a + 1
    log Q(a, x)   = a log x - x - lgamma(a) + log CF_Q(a, x)  (Legendre's continued fraction)  x >= a + 1
    log I_x(a, b) = a log x + b log(1 - x) - log a - log B(a, b) + log CF_I(a, b, x)       x < (a+1)/(a+b+2)

and the other side of each by ``log(1 - exp(.))``. The series and continued fractions run in a
``while_loop`` until the next term changes the sum by less than the dtype's epsilon (Numerical
Recipes, 3rd ed., 6.2 and 6.4, in the modified Lentz form). A ``while_loop`` cannot be
reverse-differentiated, so every partial derivative (in ``a`` and ``b`` as well as ``x``; JAX's own
``betainc`` has none in ``a`` and ``b``) of the loop's log is computed by forward mode through the
same convergent loop and combined linearly (``forward_grad``), only in the arguments that carry a
tangent (the incomplete gamma's series and fraction instead carry their partial derivatives in the
same loop as the value, by written recursions: ``_p_sum_loop``, ``_q_fraction_loop``; no JVP is traced
through them); the closed-form prefix around the loop is differentiated as usual, except where a written
derivative compiles to less: in ``x`` the density over the probability, Temme's expansion
(``_log_temme_jvp``), the prefix's ``lgamma`` (``_lgamma1p``) and ``log Q`` near ``x = 0`` (``_log_q_small``).
``grad``, ``jacrev`` and ``hessian`` all work.

scipy equivalent: ``log(scipy.special.gammainc / gammaincc / betainc)``; the accuracy is stated in
docs/reliability.md.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero
from jax.extend.core import Literal
from jax.extend.core.primitives import jit_p
from jax.scipy.special import erf, erfc

from .special import (HALF_LOG_2PI, MILLS, STIRLING_MIN, poly, powers, safe_where, betaln_small,
                      betaln_with_gaps, lgamma1p_ratio, lgamma_digamma,
                      lgamma_digamma_lanczos_shifted, log1mexp, log1p, log1pmx_p, log1pmx_ratio, log1pmx_series,
                      mills_min, mills_series, stirling_corr, with_slope)

# Below TEMME_MIN, or away from x = a, the series and fraction of the incomplete gamma converge
# geometrically: the series at x ~ a < 100 needs about sqrt(2 a log(1/eps)) ~ 90 terms, a ratio
# x/(a + n) <= 3/4 at most log(eps)/log(3/4) ~ 130, the fraction at x >= a + 1 fewer
# (tests/test_special_extremes.py: none needs 400 on a grid of a from 1e-3 to 1e12). A loop that
# meets _MAX_TERMS before converging returns NaN, never a truncated sum.
_MAX_TERMS = 2_000
TEMME_MIN = 100.0


def forward_grad(fn, tied=None, primal=None):
    """``fn`` (elementwise in its array arguments) with a JVP whose partial derivatives are computed
    by forward mode as primal values, so that reverse mode needs no transpose of ``fn``'s loops.

    Only the arguments whose tangent is not a symbolic zero get a forward pass: a fit of a Beta's
    concentrations differentiates in ``a`` and ``b`` only, not in the data's ``log x``. ``tied = (i, j)``
    says that ``args[j]`` is ``1 - args[i]`` (the incomplete beta's ``x`` and ``1 - x``, passed apart for
    their precision): where both carry a tangent they are one direction, ``d/dx_i - d/dx_j`` along
    ``t_i`` where ``args[i] <= args[j]`` and ``-t_j`` elsewhere (the tangent of the smaller one: that of
    ``1 - x`` at ``x = 1e-30`` is lost to rounding). A single direction is one ``jvp``, with no ``vmap`` over directions. ``primal``
    (default ``fn``) is what runs where nothing is differentiated (a loop without its shadow copy)."""
    wrapped = jax.custom_jvp(fn if primal is None else primal)

    def _jvp(primals, tangents):
        shape = jnp.broadcast_shapes(*(jnp.shape(p) for p in primals))
        dtype = jnp.result_type(*primals)
        primals = tuple(jnp.broadcast_to(jnp.asarray(p, dtype), shape) for p in primals)
        live = [i for i, t in enumerate(tangents) if not isinstance(t, SymbolicZero)]
        if not live:
            value = (fn if primal is None else primal)(*primals)
            return value, jnp.zeros_like(value)
        # each direction: (moves as {argument: sign}, its tangent)
        directions = [({i: 1.0}, tangents[i]) for i in live]
        if tied is not None and tied[0] in live and tied[1] in live:
            i, j = tied
            directions = [d for d in directions if not ({i, j} & set(d[0]))]
            directions.append(({i: 1.0, j: -1.0}, jnp.where(primals[i] <= primals[j], tangents[i], -tangents[j])))

        def directional(unit):
            """The JVP along ``unit`` (one-hot over the directions): one directional derivative."""
            moves = [jnp.zeros(shape, dtype)] * len(primals)
            for k, (signs, _) in enumerate(directions):
                for i, sign in signs.items():
                    moves[i] = moves[i] + jnp.broadcast_to(sign * unit[k], shape)
            return jax.jvp(fn, primals, tuple(moves))

        if len(directions) == 1:
            value, partial = directional(jnp.ones(1, dtype))
            return value, partial * jnp.broadcast_to(directions[0][1], shape)
        values, partials = jax.vmap(directional)(jnp.eye(len(directions), dtype=dtype))
        out = sum(partials[k] * jnp.broadcast_to(t, shape) for k, (_, t) in enumerate(directions))
        return values[0], out

    wrapped.defjvp(_jvp, symbolic_zeros=True)
    return wrapped


def _running(state):
    """A loop's condition: some entry has not converged and the term budget is not spent."""
    return jnp.any(state[-1]) & (state[0] < _MAX_TERMS)


def _converged(value, state):
    """``value`` where its loop converged, NaN where it stopped at the term budget."""
    return jnp.where(state[-1], jnp.nan, value)


def _with_shadow(fraction, shift_index):
    """Evaluate ``fraction`` together with a shadow copy whose ``args[shift_index]`` is moved by 1/2,
    and run until both have converged; return the first.

    At an integer ``a`` (Gamma) or ``b`` (Beta) a partial numerator of the fraction is exactly 0: the
    value is final from there on, but its derivative in that parameter still needs the remaining
    terms. The shadow never has that zero, so the loop runs as long as the derivative needs."""
    def wrapped(*args):
        stacked = [jnp.stack([v, v + 0.5 if i == shift_index else v]) for i, v in enumerate(args)]
        return fraction(*stacked)[0]
    return wrapped


def _frozen(old, new):
    """``old``'s value with ``new``'s tangent: ``new - (new - old)``, exact where the two are within a factor 2
    (Sterbenz: ``new - old`` is exact, and so is the difference back to ``old``); the tangent is ``new``'s, as
    forward mode through a loop needs where the value has converged before its derivative."""
    return new - jax.lax.stop_gradient(new - old)


def _eps(dtype):
    return jnp.finfo(dtype).eps


def _tiny(dtype):
    return jnp.finfo(dtype).tiny / jnp.finfo(dtype).eps


def _lentz(first, coefficient, dtype):
    """The modified Lentz evaluation of ``first * prod_m delta_m``: ``coefficient(m, c, d)`` returns the
    next ``(c, d)`` pair of the continued fraction; stops when ``|delta - 1| < eps`` everywhere."""
    eps, tiny = _eps(dtype), _tiny(dtype)

    def guard(v):
        return jnp.where(jnp.abs(v) < tiny, tiny, v)

    def body(state):
        m, c, d, h, running = state
        c, d = coefficient(m, c, d)
        c, d = guard(c), 1.0 / guard(d)
        delta = d * c
        # every entry iterates while any runs; one that has converged stays converged (rounding
        # makes |delta - 1| flicker around eps), and its h stays put: multiplied on by deltas within an ulp of 1,
        # each rounded, while a slower entry ran, it drifted (float64 8 eps after 80 more steps)
        return m + 1, c, d, jnp.where(running, h * delta, h), running & (jnp.abs(delta - 1.0) >= eps)

    d0 = 1.0 / guard(first)
    init = (jnp.asarray(1, jnp.int32), jnp.full_like(d0, 1.0 / tiny), d0, d0, jnp.ones(d0.shape, bool))
    state = jax.lax.while_loop(_running, body, init)
    return _converged(state[3], state)


@jax.custom_jvp
def _log1pmx_series(t):
    """``special.log1pmx_series`` (``log(1 + t) - t`` for ``|t| < 1/4``) with its derivative written out,
    ``-t/(1 + t)``: reverse mode does not unroll the 12-term polynomial."""
    return log1pmx_series(t)


@_log1pmx_series.defjvp
def _log1pmx_series_jvp(primals, tangents):
    (t,), (dt,) = primals, tangents
    return _log1pmx_series(t), -t / (1.0 + t) * dt


def gamma_prefix(a, x, log_x=None, over_a=False):
    """The prefix ``a log x - x - lgamma(a)``, for ``a >= 10`` as ``a log1pmx(u) + log(a)/2 - log(2 pi)/2 -
    corr(a)``, ``u = (x - a)/a`` (no cancellation of huge terms), with ``a log1pmx(u) = a log(x/a) - (x - a)``
    written out where ``|u| >= 1/4`` (``x = 1e-22`` would round ``u`` to -1); below 10 with ``lgamma(1 + a)`` by
    ``_lgamma1p``.

    ``log_x`` (default ``log x``) may be passed separately: a Gamma's ``x = b y`` underflows or
    overflows where ``log b + log y`` does not (``b = 1e-30``, ``y = 1e-30``). Where ``over_a`` (a bool
    or bool array) holds, the prefix less ``log a``: ``a log x - x - lgamma(a + 1)`` below 10, with
    ``lgamma(a + 1)``, not ``lgamma(a) + log a``, so that nothing cancels at small ``a``."""
    log_x = jnp.log(x) if log_x is None else log_x
    big, ab, stirling, (as_, xs, log_xs) = gamma_prefix_branches(a, x, log_x)
    stirling = stirling - jnp.where(over_a, jnp.log(ab), 0.0)
    lgamma1 = _lgamma1p(as_)
    return jnp.where(big, stirling, as_ * log_xs - xs - jnp.where(over_a, lgamma1, lgamma1 - jnp.log(as_)))


# lgamma(1.7 + t) = sum_k _LGAMMA_1P7[k] t^k: lgamma(1.7), psi(1.7), then (-1)^k zeta(k, 1.7) / k (Hurwitz's zeta;
# mpmath, 40 digits); 32 terms leave (0.51 / 1.7)^32 / 32 = 6e-19 for |t| <= 0.51
_LGAMMA_1P7 = (
    -0.09580769740706586, 0.20854787487349397, 0.3966164150819992, -0.10068151401724316, 0.037065083609346516,
    -0.015921748367899596, 0.007423866480251529, -0.003637014877796919, 0.0018404226333056716, -0.0009525001275786043,
    0.0005011206657463312, -0.0002669490634252671, 0.00014360016640241953, -7.785728960845688e-05,
    4.248770437707045e-05, -2.3313062966661997e-05, 1.2851797828745389e-05, -7.113559979431821e-06,
    3.951411821998254e-06, -2.201826966304336e-06, 1.2303630769428375e-06, -6.892544952459853e-07,
    3.8700588694597034e-07, -2.1774960338264924e-07, 1.227499128187906e-07, -6.931721070529795e-08,
    3.9206429305542137e-08, -2.220838574870521e-08, 1.2597176044578709e-08, -7.154576467161043e-09,
    4.068286332458784e-09, -2.3159117179124293e-09)
_TAYLOR_1P7 = (0.2, 1.21)  # Lanczos is a rounding of lgamma(1 + a) below, where it is -0.58 a


def _lgamma1p_pair(a):
    """``(lgamma(1 + a), psi(1 + a))`` for ``0 < a <= 10``: Lanczos's form (``special.lgamma_digamma_lanczos_shifted``),
    in float64 for ``0.2 < a <= 1.21`` the Taylor series about ``a = 0.7`` (``_LGAMMA_1P7``). Lanczos's sum of terms
    of size ~8 keeps an absolute 2.4e-15 of ``lgamma(1 + a)`` in float64, which is near 0 there: the series' ``log P =
    a log x - x - lgamma(1 + a) + log(sum)`` at ``(0.87, 0.77)`` was 45 ulps off (float32's absolute 1e-7 is a rounding
    or two of the prefix)."""
    lanczos = lgamma_digamma_lanczos_shifted(a)
    if jnp.dtype(a.dtype).itemsize < 8:
        return lanczos
    near = (a > _TAYLOR_1P7[0]) & (a <= _TAYLOR_1P7[1])
    value, slope = _series_pair(_LGAMMA_1P7, safe_where(near, a - 0.7, 0.0))
    return jnp.where(near, value, lanczos[0]), jnp.where(near, slope, lanczos[1])


@jax.custom_jvp
def _lgamma1p(a):
    """``lgamma(1 + a)`` for ``0 < a <= 10`` with its derivative ``psi(1 + a)`` from the same polynomials
    (``_lgamma1p_pair``): no XLA ``lgamma`` and ``digamma`` per element, and no ``trigamma`` traced where only the
    first derivative is taken."""
    return _lgamma1p_pair(a)[0]


@_lgamma1p.defjvp
def _lgamma1p_jvp(primals, tangents):
    lgamma1, digamma1 = _lgamma1p_pair(primals[0])
    return lgamma1, digamma1 * tangents[0]


def gamma_prefix_branches(a, x, log_x):
    """``gamma_prefix``'s two branches: ``(big, a_big, stirling, (a_small, x_small, log_x_small))``, with
    ``big = a >= 10``, Stirling's form of ``a log x - x - lgamma(a)`` on ``a_big`` (``a`` where big, 10
    elsewhere) and the small branch's inputs made safe (1, 1, 0 where big), for the caller's
    ``lgamma``: ``_lgamma1p`` here, ``special.lgamma_digamma_lanczos`` in ``gamma.py``."""
    big = a >= STIRLING_MIN
    ab = safe_where(big, a, STIRLING_MIN)
    xb, log_xb = safe_where(big, x, STIRLING_MIN), safe_where(big, log_x, 0.0)
    u = (xb - ab) / ab
    near = jnp.abs(u) < 0.25
    linear = jnp.where(near, ab * _log1pmx_series(safe_where(near, u, 0.0)),
                       ab * (safe_where(~near, log_xb, 0.0) - jnp.log(ab)) - (safe_where(~near, xb, 1.0) - ab))
    stirling = linear + 0.5 * jnp.log(ab) - HALF_LOG_2PI - stirling_corr(ab)
    small = (safe_where(~big, a, 1.0), safe_where(~big, x, 1.0), safe_where(~big, log_x, 0.0))
    return big, ab, stirling, small


def _live(tangents):
    """The unit directions ``(d a, d x)`` of the arguments whose tangent is not a symbolic zero."""
    return [unit for unit, t in zip(((1.0, 0.0), (0.0, 1.0)), tangents) if not isinstance(t, SymbolicZero)]


def _common(*args):
    """The arguments broadcast to one shape and dtype."""
    shape = jnp.broadcast_shapes(*(jnp.shape(v) for v in args))
    dtype = jnp.result_type(*args)
    return tuple(jnp.broadcast_to(jnp.asarray(v, dtype), shape) for v in args)


def _combine(value, partials, tangents):
    """``value`` and the JVP ``sum_k partial_k t_k`` over the live tangents (partials are primal values: the
    loops that made them need no transpose)."""
    live = [t for t in tangents if not isinstance(t, SymbolicZero)]
    return value, sum((p * jnp.broadcast_to(t, value.shape) for p, t in zip(partials, live)), jnp.zeros_like(value))


def _p_sum_loop(a, x, units):
    """``log sum_n x^n / ((a+1) ... (a+n))`` and its partial derivatives along ``units`` (``(d a, d x)``
    pairs), in one loop: term ``n``'s log slope is ``sum_(k<=n) (d x / x - d a / (a+k))``, summed with the
    term's weight (no JVP traced through a loop)."""
    dtype = a.dtype
    zero = jnp.zeros_like(a)

    def body(state):
        n, term, total, slopes, d_totals, running = state
        term = term * x / (a + n)
        step = 1.0 / (a + n)
        slopes = tuple(s - u * step + (v / x if v else zero) for s, (u, v) in zip(slopes, units))
        return (n + 1, term, total + term, slopes, tuple(d + term * s for d, s in zip(d_totals, slopes)),
                running & (jnp.abs(term) >= jnp.abs(total) * _eps(dtype)))

    one = jnp.ones_like(a)
    init = (jnp.asarray(1.0, dtype), one, one, (zero,) * len(units), (zero,) * len(units), jnp.ones(a.shape, bool))
    state = jax.lax.while_loop(_running, body, init)
    return _converged(jnp.log(state[2]), state), [_converged(d / state[2], state) for d in state[4]]


def _on_the_batch(loop):
    """``loop(a, x, units)`` (elementwise in ``a`` and ``x``) under ``vmap`` run once on the batched arrays: its own
    ``any`` over every entry stops it, with no per-row counter and no select of every carry per step that
    ``vmap`` of a ``while_loop`` adds (the recipe maps its kernel over the examples)."""
    cache = {}

    def make(units):
        @jax.custom_batching.custom_vmap
        def run(a, x):
            return loop(a, x, units)

        @run.def_vmap
        def _rule(axis_size, in_batched, a, x):
            a, x = (v if batched else jnp.broadcast_to(v, (axis_size,) + jnp.shape(v))
                    for v, batched in zip((a, x), in_batched))
            out = loop(a, x, units)
            return out, jax.tree_util.tree_map(lambda _: True, out)

        outer = jax.custom_jvp(run)
        outer.defjvp(_second_order(loop, units), symbolic_zeros=True)
        return outer

    def call(a, x, units):
        key = tuple(units)
        if key not in cache:
            cache[key] = make(units)
        return cache[key](a, x)

    return call


def _second_order(loop, units):
    """The JVP of ``loop(a, x, units) = (value, partials along units)`` (a second derivative), by forward mode
    through the plain loop (custom_vmap's own JVP does not take it) run along each live direction of ``(a, x)``
    as a primal computation, with ``(1, 0)`` added to ``units``:

    * the value's tangent in ``a`` is ``d value/da t_a`` from the added partial, not forward mode of the value
      itself (which gives the tangent in ``x``): a loop stops moving an entry's value where it has converged, and at
      an integer ``a`` the
      fraction's value is final (a partial numerator ``-m (m - a)`` is 0) long before its derivative, which the
      shadow copy keeps running (``_with_shadow``): its forward tangent then stopped too (``d^2 log P / da^2`` 7.7e-3
      off at ``(a, x) = (1, 2.5)``, where ``log P = log(1 - Q)`` multiplies it by ``d log Q / da``);
    * each partial's tangent is ``sum_k (d partial / d arg_k) t_k``, the second partials primal values, so that
      reverse mode of this JVP transposes only that sum, never the loop (``jax.grad(jax.grad(f))`` raised JAX's
      ``while_loop`` reverse-mode error; ``forward_grad``'s pattern)."""
    everything = tuple(units) + ((1.0, 0.0),)
    n = len(units)

    def jvp(primals, tangents):
        a, x = primals
        live = [(k, t) for k, t in enumerate(tangents) if not isinstance(t, SymbolicZero)]

        def along(k):
            unit = [jnp.zeros_like(a), jnp.zeros_like(x)]
            unit[k] = jnp.ones_like(unit[k])
            return jax.jvp(lambda a, x: loop(a, x, everything), (a, x), tuple(unit))

        runs = [along(k) for k, _ in live]
        if not runs:
            value, partials = loop(a, x, units)
            return (value, partials), (jnp.zeros_like(value), [jnp.zeros_like(p) for p in partials])
        value, partials = runs[0][0]
        # in a from the added partial; in x forward mode's own (a terminating fraction's value moves with x exactly:
        # the added partial's sum of per-step differences lost a float32 d2 log Q / dx2 of 1/x^2 to 2e-5 at x = 100)
        t_value = sum((partials[n] if k == 0 else run[1][0]) * t for run, (k, t) in zip(runs, live))
        t_partials = [sum(run[1][1][i] * t for run, (_, t) in zip(runs, live)) for i in range(n)]
        return (value, partials[:n]), (t_value, t_partials)

    return jvp


@jax.custom_jvp
def _log_p_sum(a, x):
    """``log sum_n x^n / ((a+1) ... (a+n))``, the loop of ``log P``'s series."""
    a, x = _common(a, x)
    return _p_sum_loop(a, x, [])[0]


def _log_p_sum_jvp(primals, tangents):
    a, x = _common(*primals)
    value, partials = _p_sum_on_batch(a, x, _live(tangents))
    return _combine(value, partials, tangents)


_log_p_sum.defjvp(_log_p_sum_jvp, symbolic_zeros=True)


def _q_fraction(a, x):
    """Legendre's continued fraction of ``Q(a, x)`` without its prefix (the Lentz loop)."""
    dtype = jnp.result_type(a, x)

    def coefficient(m, c, d):
        an = -m * (m - a)
        bn = x + 1.0 - a + 2.0 * m
        return bn + an / c, an * d + bn

    return jnp.log(_lentz(x + 1.0 - a, coefficient, dtype))


def _q_fraction_loop(a, x, units):
    """``_q_fraction`` and its partial derivatives along ``units`` (``(d a, d x)`` pairs) in one Lentz loop:
    with ``a_m = -m (m - a)``, ``b_m = x + 1 - a + 2m``, ``C_m = b_m + a_m / C_(m-1)`` and
    ``D_m = a_m D'_(m-1) + b_m`` (``D' = 1/D``), ``log h`` gains ``log C_m - log D_m`` per step and its
    derivative ``dC_m / C_m - dD_m / D_m``, with ``dC_m = db_m + (da_m - (a_m / C_(m-1)) dC_(m-1)) / C_(m-1)``
    and ``dD_m = da_m D'_(m-1) + a_m dD'_(m-1) + db_m`` (a guarded entry's derivative is 0, as autodiff of
    the guard gives)."""
    dtype = a.dtype
    eps, tiny = _eps(dtype), _tiny(dtype)

    def guard(v):
        return jnp.abs(v) < tiny, jnp.where(jnp.abs(v) < tiny, tiny, v)

    def body(state):
        m, c, d, h, dcs, dds, slopes, running = state
        an = -m * (m - a)
        bn = x + 1.0 - a + 2.0 * m
        ratio = an / c
        small_c, c_new = guard(bn + ratio)
        small_d, big_d = guard(an * d + bn)
        d_new = 1.0 / big_d
        out = [], [], []
        for (u, v), dc, dd, slope in zip(units, dcs, dds, slopes):
            dc = jnp.where(small_c, 0.0, (v - u) + (m * u - ratio * dc) / c)
            d_big_d = jnp.where(small_d, 0.0, m * u * d + an * dd + (v - u))
            out[0].append(dc)
            out[1].append(-d_big_d * d_new * d_new)
            out[2].append(slope + dc / c_new - d_big_d * d_new)
        delta = d_new * c_new
        # a converged entry's h stays put while slower ones run (``_lentz``); its slopes go on (at an integer a the
        # value is final where its slope in a is not: ``_with_shadow``)
        return (m + 1, c_new, d_new, jnp.where(running, h * delta, h), *map(tuple, out),
                running & (jnp.abs(delta - 1.0) >= eps))

    small, first = guard(x + 1.0 - a)
    d0 = 1.0 / first
    d_first = [jnp.where(small, 0.0, v - u) for u, v in units]
    init = (jnp.asarray(1, jnp.int32), jnp.full_like(d0, 1.0 / tiny), d0, d0, (jnp.zeros_like(d0),) * len(units),
            tuple(-t * d0 * d0 for t in d_first), tuple(-t * d0 for t in d_first), jnp.ones(d0.shape, bool))
    state = jax.lax.while_loop(_running, body, init)
    return _converged(jnp.log(state[3]), state), [_converged(s, state) for s in state[6]]


_log_q_cf = jax.custom_jvp(_with_shadow(_q_fraction, 0))
_p_sum_on_batch, _q_fraction_on_batch = _on_the_batch(_p_sum_loop), _on_the_batch(_q_fraction_loop)


def _log_q_cf_jvp(primals, tangents):
    """The fraction and its partials from ``_q_fraction_loop``, run with the shadow copy (``a + 1/2``), which
    keeps the loop going where an integer ``a`` makes the value final but not its derivative."""
    a, x = _common(*primals)
    value, partials = _q_fraction_on_batch(jnp.stack([a, a + 0.5]), jnp.stack([x, x]), _live(tangents))
    return _combine(value[0], [p[0] for p in partials], tangents)


_log_q_cf.defjvp(_log_q_cf_jvp, symbolic_zeros=True)


# _TEMME[k][n]: the coefficient of eta^n in Temme's c_k(eta) (see _log_temme), exact fractions rounded
_TEMME = (
    (
        -0.3333333333333333, 0.08333333333333333, -0.014814814814814815, 0.0011574074074074073,
        0.0003527336860670194, -0.0001787551440329218, 3.919263178522438e-05, -2.185448510679992e-06,
        -1.85406221071516e-06, 8.296711340953087e-07, -1.7665952736826078e-07, 6.707853543401498e-09,
        1.0261809784240309e-08, -4.382036018453353e-09, 9.14769958223679e-10, -2.5514193994946248e-11,
    ),
    (
        -0.001851851851851852, -0.003472222222222222, 0.0026455026455026454, -0.0009902263374485596,
        0.00020576131687242798, -4.018775720164609e-07, -1.8098550334489977e-05, 7.64916091608111e-06,
        -1.6120900894563446e-06, 4.647127802807434e-09, 1.378633446915721e-07, -5.752545603517705e-08,
        1.1951628599778148e-08, -1.7543241719747647e-11, -1.0091543710600413e-09, 4.162792991842583e-10,
    ),
    (
        0.004133597883597883, -0.0026813271604938273, 0.0007716049382716049, 2.0093878600823047e-06,
        -0.0001073665322636516, 5.2923448829120125e-05, -1.2760635188618728e-05, 3.423578734096138e-08,
        1.3721957309062934e-06, -6.298992138380055e-07, 1.4280614206064242e-07, -2.0477098421990866e-10,
        -1.409252991086752e-08, 6.228974084922022e-09, -1.3670488396617114e-09, 9.428356159014678e-13,
    ),
    (
        0.0006494341563786008, 0.00022947209362139917, -0.0004691894943952557, 0.00026772063206283885,
        -7.561801671883977e-05, -2.396505113867297e-07, 1.1082654115347302e-05, -5.6749528269915965e-06,
        1.4230900732435883e-06, -2.7861080291528143e-11, -1.6958404091930278e-07, 8.099464905388083e-08,
        -1.9111168485973655e-08, 2.3928620439808118e-12, 2.0620131815488797e-09, -9.460496661855133e-10,
    ),
    (
        -0.0008618882909167117, 0.0007840392217200666, -0.0002990724803031902, -1.4638452578843418e-06,
        6.641498215465122e-05, -3.968365047179435e-05, 1.1375726970678419e-05, 2.507497226237533e-10,
        -1.6954149536558305e-06, 8.907507532205309e-07, -2.292934834000805e-07, 2.956794137544049e-11,
        2.8865829742708783e-08, -1.4189739437803219e-08, 3.4463580499464896e-09, -2.3024517174528067e-13,
    ),
    (
        -0.00033679855336635813, -6.972813758365857e-05, 0.0002772753244959392, -0.00019932570516188847,
        6.797780477937208e-05, 1.419062920643967e-07, -1.3594048189768693e-05, 8.018470256334202e-06,
        -2.291481176508095e-06, -3.252473551298454e-10, 3.4652846491085265e-07, -1.8447187191171344e-07,
        4.8240967037894184e-08, -1.7989466721743514e-14, -6.306194500013523e-09, 3.162417628774568e-09,
    ),
    (
        0.0005313079364639922, -0.0005921664373536939, 0.0002708782096718045, 7.902353232660328e-07,
        -8.153969367561969e-05, 5.61168275310625e-05, -1.8329116582843375e-05, -3.0796134506033047e-09,
        3.465155368803609e-06, -2.0291327396058603e-06, 5.788792863149004e-07, 2.338630673826657e-13,
        -8.828600746330484e-08, 4.7435958880408125e-08, -1.2545415020710383e-08, 8.649648858010293e-14,
    ),
    (
        0.00034436760689237765, 5.171790908260592e-05, -0.00033493161081142234, 0.0002812695154763237,
        -0.00010976582244684731, -1.2741009095484485e-07, 2.7744451511563645e-05, -1.8263488805711332e-05,
        5.7876949497350525e-06, 4.93875893393627e-10, -1.0595367014026043e-06, 6.166714376110408e-07,
        -1.7562973359060463e-07, -1.297447328701544e-12, 2.695423606288966e-08, -1.4578352908731272e-08,
    ),
    (
        -0.0006526239185953094, 0.0008394987206720873, -0.000438297098541721, -6.969091458420552e-07,
        0.00016644846642067547, -0.00012783517679769218, 4.629953263691304e-05, 4.557909867922708e-09,
        -1.0595271125805195e-05, 6.783342904865167e-06, -2.1075476666258803e-06, -1.7213731432817144e-11,
        3.773587741611098e-07, -2.1867506700122867e-07, 6.220228804018927e-08, 6.597703826733e-16,
    ),
    (
        -0.0005967612901927463, -7.204895416020011e-05, 0.0006782308837667328, -0.0006401475260262758,
        0.00027750107634328704, 1.819700838046515e-07, -8.479507117068503e-05, 6.105192082501531e-05,
        -2.1073920183404862e-05, -8.858589014125599e-10, 4.5284535953805374e-06, -2.8427815022504407e-06,
        8.708234177864641e-07, 3.6886101871706966e-12, -1.534469519070206e-07, 8.862466778790695e-08,
    ),
)


_TEMME_ARRAY = np.array(_TEMME)  # float64; cast to the arguments' dtype where used


# the table with its derivative tables: [S, dS/d eta, dS/d(1/a)] from one contraction
_TEMME_D_ETA = np.zeros_like(_TEMME_ARRAY)
_TEMME_D_ETA[:, :-1] = _TEMME_ARRAY[:, 1:] * np.arange(1, _TEMME_ARRAY.shape[1])
_TEMME_D_INV = np.zeros_like(_TEMME_ARRAY)
_TEMME_D_INV[:-1, :] = _TEMME_ARRAY[1:, :] * np.arange(1, _TEMME_ARRAY.shape[0])[:, None]
_TEMME_TABLES = np.stack([_TEMME_ARRAY, _TEMME_D_ETA, _TEMME_D_INV])


def _temme_contract(eta, inv_a):
    """``[S, dS/d eta, dS/d(1/a)]`` along a new last axis: each ``sum_k sum_n T[k][n] eta^n a^-k`` as one
    elementwise product and sum of the coefficient tables with the powers of ``eta`` and ``1/a`` (every
    term below the first in size: ``|eta| < 0.28``, ``1/a <= 0.01``), a few dozen operations to compile
    instead of 160 unrolled Horner steps and their reverse-mode transpose."""
    tables = jnp.asarray(_TEMME_TABLES, jnp.result_type(eta))
    _, rows, cols = tables.shape
    tables = jnp.reshape(tables, (1,) * jnp.ndim(eta) + tables.shape)  # explicit rank (rank promotion may raise)
    terms = powers(eta, cols)[..., None, None, :] * tables * powers(inv_a, rows)[..., None, :, None]
    return jnp.sum(terms, axis=(-1, -2))


@jax.custom_jvp
def _temme_sum(eta, inv_a):
    """``S = sum_k sum_n _TEMME[k][n] eta^n a^-k``; its derivatives from the same contraction."""
    return _temme_contract(eta, inv_a)[..., 0]


@_temme_sum.defjvp
def _temme_sum_jvp(primals, tangents):
    out = _temme_contract(*primals)
    return out[..., 0], out[..., 1] * tangents[0] + out[..., 2] * tangents[1]


SQRT_HALF = float(np.sqrt(0.5))


def _log_ndtr_mills(v):
    """``(log Phi(-v), phi(v) / Phi(-v))`` for ``v >= 0``. Beyond ``special.mills_min`` both come from the
    asymptotic series of Mills' ratio (``special.mills_series``), ``log Phi(-v) = -v^2/2 - log(2 pi)/2 - log v
    + log S``: the ratio is never ``exp`` of the difference of two exponents of size ``v^2/2``, which one rounding
    apart (a GPU's FMA or fast log: 4,096 at v = 2.6e5 in float32) is inf, and a NaN log P."""
    limit = mills_min(v.dtype)
    big = v >= limit
    vb, vs = safe_where(big, v, limit), safe_where(big, 0.0, v)
    series = mills_series(1.0 / jnp.square(vb))
    log_big = -0.5 * jnp.square(vb) - HALF_LOG_2PI - jnp.log(vb) + jnp.log(series)
    log_small = jnp.log(0.5 * erfc(vs * SQRT_HALF))  # log_ndtr(-v): erfc is relative-exact up to the limit
    mills_small = jnp.exp(-0.5 * jnp.square(vs) - HALF_LOG_2PI - log_small)
    return jnp.where(big, log_big, log_small), jnp.where(big, vb / series, mills_small)


# 1 - v / M = 1 - S(1/v^2) = z P1(z): Mills' ratio less v, M - v = P1(z) M z, without cancellation
_MILLS_GAP = tuple(-c for c in MILLS[1:])


def _mills_gap(v, mills):
    """``M - v`` for Mills' ratio ``M = phi(v)/Phi(-v)`` (from ``_log_ndtr_mills``): ``P1(z) M z``, ``z = 1/v^2``,
    beyond ``mills_min`` (where ``M - v ~ 1/v`` is 1e-10 of ``M``); the difference itself below."""
    limit = mills_min(v.dtype)
    big = v >= limit
    z = 1.0 / jnp.square(safe_where(big, v, limit))
    return jnp.where(big, poly(_MILLS_GAP, z) * mills * z, mills - v)


def _temme_parts(a, u):
    """The pieces of Temme's expansion that its value and its derivatives share."""
    ratio = jnp.sqrt(-2.0 * log1pmx_ratio(u))  # eta / u > 0
    eta = u * ratio
    inv_a = 1.0 / a
    sign = jnp.where(eta >= 0, 1.0, -1.0)
    v = jnp.abs(eta) * jnp.sqrt(a)
    log_tail, mills = _log_ndtr_mills(v)
    return ratio, eta, inv_a, sign, v, log_tail, mills


def _temme_sides(eta, log_tail, mills, w):
    small = jnp.minimum(log_tail + jnp.log1p(w), 0.0)
    large = log1mexp(small)
    return small, large, jnp.where(eta >= 0, large, small), jnp.where(eta >= 0, small, large)


@jax.custom_jvp
def _log_temme(a, u):
    """``(log P(a, x), log Q(a, x))`` at ``x = a (1 + u)`` by Temme's uniform expansion (DLMF 8.12.3-8.12.11):
    with ``eta = u sqrt(-2 log1pmx(u) / u^2)`` (the sign of ``u``) and ``v = |eta| sqrt(a)``, the smaller
    side is ``Phi(-v) + sign(eta) phi(v) S / sqrt(a)``, ``S = sum_k c_k(eta) a^-k``; in log space
    ``log Phi(-v) + log1p(sign(eta) S / sqrt(a) phi(v) / Phi(-v))`` (the Mills ratio keeps it finite).

    ``_TEMME[k][n]`` is the coefficient of ``eta^n`` in ``c_k`` (k < 10, n < 16), derived exactly by
    the recursion ``c_0 = 1/(lambda - 1) - 1/eta``, ``c_k = c_{k-1}'(eta)/eta + (-1)^k g_k/(lambda - 1)``
    (``g_k`` the Stirling coefficients of ``Gamma*(a)``; tests/test_special_incomplete.py derives them
    again). For ``a >= TEMME_MIN = 100`` and ``|u| < 1/4`` (``|eta| < 0.28``, a tenth of the radius of
    convergence ``2 sqrt(pi)``) both truncations are below 1e-17 relative.

    Its derivatives are written out (``_log_temme_jvp``), not traced through the polynomials."""
    _, eta, inv_a, sign, _, log_tail, mills = _temme_parts(a, u)
    w = sign * _temme_sum(eta, inv_a) * jnp.sqrt(inv_a) * mills
    return _temme_sides(eta, log_tail, mills, w)[2:]


@_log_temme.defjvp
def _log_temme_jvp(primals, tangents):
    """``d eta/du = 1/((1 + u) eta/u)`` (from ``eta^2/2 = u - log(1 + u)``), ``v = |eta| sqrt(a)``,
    ``d log Phi(-v)/dv = -M`` and ``dM/dv = M (M - v)`` for Mills' ratio ``M`` (``_mills_gap``: ``M - v``
    without cancellation), ``S``'s partials from its contraction; ``d log(1 - e^s) = -e^(s - log(1 - e^s)) ds``."""
    a, u = primals
    t_a, t_u = tangents
    ratio, eta, inv_a, sign, v, log_tail, mills = _temme_parts(a, u)
    out = _temme_contract(eta, inv_a)
    total, d_total_eta, d_total_inv = out[..., 0], out[..., 1], out[..., 2]
    root = jnp.sqrt(inv_a)
    w = sign * total * root * mills
    small, large, log_p, log_q = _temme_sides(eta, log_tail, mills, w)
    d_eta = t_u / ((1.0 + u) * ratio)
    d_v = sign * d_eta / root + 0.5 * v * inv_a * t_a
    d_total = d_total_eta * d_eta - d_total_inv * inv_a * inv_a * t_a
    d_mills = mills * _mills_gap(v, mills) * d_v
    d_w = sign * ((d_total * mills + total * d_mills) * root - 0.5 * total * root * inv_a * mills * t_a)
    d_small = jnp.where(log_tail + jnp.log1p(w) < 0.0, -mills * d_v + d_w / (1.0 + w), 0.0)
    d_large = -jnp.exp(small - large) * d_small
    return (log_p, log_q), (jnp.where(eta >= 0, d_large, d_small), jnp.where(eta >= 0, d_small, d_large))


def _series_pair(coeffs, t):
    """``(sum_n c_n t^n, sum_n n c_n t^(n - 1))``, a polynomial and its derivative by one Horner pass (``p' <- p' t +
    p``, ``p <- p t + c``): no autodiff through the unrolled steps, nor reverse mode's transpose of them."""
    value, slope = jnp.zeros_like(t), jnp.zeros_like(t)
    for c in reversed(coeffs):
        slope = slope * t + value
        value = value * t + c
    return value, slope


# lgamma(1 + a) / a = sum_k _LGAMMA1P_RATIO[k] (a - 0.6)^k (mpmath's Taylor coefficients, 50 digits), for 0 < a <= 1.21
# (every shape _log_q_small takes): the branch point at a = -1 leaves (0.61 / 1.6)^k / k, 1.5e-9 after 18 terms,
# 1.1e-18 after 39
_LGAMMA1P_RATIO = (
    -0.1876529428279263, 0.5228339926690042, -0.15603007684452386, 0.06461338421748451, -0.03055392167848258,
    0.015496027511083806, -0.00819836329829052, 0.004459798847162798, -0.00247386755636126, 0.0013921366885066172,
    -0.0007920948971693234, 0.00045464218925269105, -0.00026281808005384653, 0.00015283299330648016,
    -8.93233487551148e-05, 5.243195980232802e-05, -3.089371627597675e-05, 1.826386728424064e-05,
    -1.0829384654915783e-05, 6.438275120202484e-06, -3.8368679653059705e-06, 2.2915481655538085e-06,
    -1.371331369142277e-06, 8.221374384906843e-07, -4.937093184821624e-07, 2.96938777536504e-07,
    -1.7884687890232572e-07, 1.0786244263551898e-07, -6.51319075109178e-08, 3.937460794747676e-08,
    -2.382897213390789e-08, 1.4435497800988208e-08, -8.75324423648764e-09, 5.312426629449028e-09,
    -3.2268689914201656e-09, 1.961615730211405e-09, -1.193361772153427e-09, 7.265052180452076e-10,
    -4.4258628558930225e-10)
# exprel(w) = sum_n w^n / (n + 1)! (special.exprel)
_EXPREL = tuple(1.0 / math.factorial(n + 1) for n in range(10))


def _exprel_pair(w):
    """``(exprel(w), exprel'(w))``, ``exprel(w) = (e^w - 1)/w`` (``special.exprel``): its Taylor series for
    ``|w| < 0.1``, else ``expm1(w)/w`` and ``(e^w - exprel(w))/w``."""
    small = jnp.abs(w) < 0.1
    series, slope = _series_pair(_EXPREL, safe_where(small, w, 0.0))
    wl = safe_where(~small, w, 1.0)
    far = jnp.expm1(wl) / wl
    return jnp.where(small, series, far), jnp.where(small, slope, (jnp.exp(wl) - far) / wl)


def _q_small_sums(a, x):
    """``T = sum_(n=1..K) (-x)^n / (n! (a + n))`` and its partials ``dT/da = -sum (-x)^n / (n! (a + n)^2)``,
    ``dT/dx = -sum (-x)^(n-1) / ((n-1)! (a + n))``, in one pass over ``n`` (K = 14 in float32, 23 in float64:
    ``2^K / (K! K)`` below the dtype's rounding for ``x < 2``)."""
    power = jnp.ones_like(x)  # (-x)^(n-1) / (n-1)!
    total, total_a, total_x = jnp.zeros_like(x), jnp.zeros_like(x), jnp.zeros_like(x)
    for n in range(1, 15 if jnp.dtype(x.dtype).itemsize < 8 else 24):
        inv = 1.0 / (a + n)
        total_x = total_x - power * inv
        power = power * x * (-1.0 / n)
        term = power * inv
        total, total_a = total + term, total_a - term * inv
    return total, total_a, total_x


def _log_q_small_parts(a, x, log_x):
    """``_log_q_small``'s pieces: ``(log F, (F, v, w, exprel(w), exprel'(w), e^w, T, dT/da, dT/dx), dr/da)``, ``F = Q /
    a``, ``r = lgamma(1 + a) / a`` (``_LGAMMA1P_RATIO``)."""
    ratio, d_ratio = _series_pair(_LGAMMA1P_RATIO[:18 if jnp.dtype(a.dtype).itemsize < 8 else 39], a - 0.6)
    v = log_x - ratio
    w = a * v
    rel, rel_slope = _exprel_pair(w)
    ew = jnp.exp(w)
    total, total_a, total_x = _q_small_sums(a, x)
    f = -v * rel - ew * total
    return jnp.log(f), (f, v, w, rel, rel_slope, ew, total, total_a, total_x), d_ratio


@jax.custom_jvp
def _log_q_small(a, x, log_x):
    """``log(Q(a, x) / a)`` directly (DLMF 8.7.3, as scipy's ``igamc_series``) where the series' ``log P`` is close
    to 0: ``Q / a = -v exprel(a v) - e^(a v) T``, ``T = sum_(n >= 1) (-x)^n / (n! (a + n))``, ``v = log x - lgamma(1
    + a) / a``, every term of the size of ``Q / a`` (``E_1(x)`` as ``a -> 0``). ``1 - P`` kept 3.7 fewer digits at
    ``Q(1e-3, 1) = 2.2e-4`` (8e-4 of ``log Q`` in float32) and forward mode of ``log(1 - P)`` multiplied ``d log P``'s
    rounding by ``P/Q = 4,500`` (``d^2 log Q / da dx`` 1.24 and 2.03 for 0.748); ``log Q`` itself as ``log a + log(Q /
    a)`` gave the slope ``log x - psi(a) - d log Q / da`` two terms of ``1/a`` that cancel (3e-3 off at a = 1e-4).
    For ``x < 2``: 14 terms (float32), 23 (float64) leave ``2^n / (n! n)`` below the dtype's rounding.
    ``r = lgamma(1 + a) / a`` by its Taylor series about ``a = 0.6`` for every shape taken here (``0 < a <= 1.21``:
    ``_LGAMMA1P_RATIO``), not Lanczos's ``lgamma(1 + a)`` over ``a``: that form keeps only an absolute 1e-7
    (float32) or 2.4e-15 (float64) of ``lgamma(1 + a)``, which is near 0 there (float64 ``log P(0.21, 0.97)`` 130 ulps
    off, float32 ``log P(0.29, 1.24)`` 120).
    Derivatives written (``_log_q_small_jvp``): no autodiff through the unrolled sums."""
    return _log_q_small_parts(a, x, log_x)[0]


def _log_q_small_jvp(primals, tangents):
    """``dF = -E dv - v E' dw - e^w (T dw + dT)`` for ``F = -v E(w) - e^w T``, ``w = a v``, ``v = log x - r(a)``:
    ``dv = d log x - dr``, ``dr = r'(a) da`` (the series' own slope), ``dw = v da + a dv``, ``dT = T_a da + T_x dx``;
    ``d log F = dF / F``."""
    a, x, log_x = primals
    d_a, d_x, d_log_x = (None if isinstance(t, SymbolicZero) else t for t in tangents)
    value, (f, v, w, rel, rel_slope, ew, total, total_a, total_x), dr = _log_q_small_parts(a, x, log_x)
    zero = jnp.zeros_like(value)
    d_ratio = zero if d_a is None else dr * d_a
    d_v = (zero if d_log_x is None else d_log_x) - d_ratio
    d_w = a * d_v + (zero if d_a is None else v * d_a)
    d_total = (zero if d_a is None else total_a * d_a) + (zero if d_x is None else total_x * d_x)
    d_f = -rel * d_v - v * rel_slope * d_w - ew * (total * d_w + d_total)
    return value, d_f / f


_log_q_small.defjvp(_log_q_small_jvp, symbolic_zeros=True)


_Q_SMALL_X = 1.1


def _log_gamma_pq(a, x, log_x):
    """``(log P(a, x), log Q(a, x), log(x P'(x) / P), log(x Q'(x) / Q) less its sign, a log x - x - lgamma(a))`` for
    ``a > 0``, ``x > 0`` (the last, the log of ``x P'(x)``, is a Gamma's log density at ``y = x / b`` less ``log y``):
    Temme's expansion for ``a >= 100`` within a quarter of ``a`` of ``x = a`` (where the series and the
    fraction need O(sqrt(a)) terms), the series for ``x < a + 1`` and Legendre's fraction above it elsewhere;
    on the series' side, where P is close to 1 (``x <= 1.1`` and ``a <= 1.1 x``, ``x < a + 1`` below ``a = 1``, or ``a <= -0.4 / log x``
    below 1/2: scipy's ``igamc`` choice), ``log Q`` directly (``_log_q_small``) and ``log P = log1p(-Q)``. The
    other side by one ``log(1 - exp(.))``. ``x P'(x) = x^a e^-x / Gamma(a)``; on a loop's own side its log ratio
    is the loop's alone (the prefix cancels exactly: in float32 a prefix of -9,210 rounds by 5e-4)."""
    u = (x - a) / a
    temme = (a >= TEMME_MIN) & (jnp.abs(u) < 0.25)
    series = ~temme & (x < a + 1.0)
    fraction = ~temme & ~series
    # below a = 1 log Q is direct up to x = a + 1 < 2 (_log_q_small's sums run to x = 2): the series' log P = prefix +
    # log(sum) is close to 0 there, its terms near x (222 ulps at a = 0.13, x = 1.13 in float64); the fraction's
    # log1p(-Q) was as accurate, but its loop is slow to converge near x = 1 (the batch's loop ran 8% longer)
    small_q = series & jnp.where(x <= 0.5, -a * log_x <= 0.4, (a <= _Q_SMALL_X * x) & ((x <= _Q_SMALL_X) | (a < 1.0)))
    direct_p = series & ~small_q  # where the near side is log P
    frac_small = fraction & (a < 1.0)  # log P = log1p(-a (Q/a)) there too (below)
    over_a = series | frac_small
    # one prefix for both loops (each entry uses one of them): ``a log x - x - lgamma(a + 1)`` for the
    # series of log P (and the fraction at a < 1, less its log a), ``a log x - x - lgamma(a)`` for the fraction
    # of log Q and Temme's slope
    prefix = gamma_prefix(a, x, log_x, over_a=over_a)
    # far out on the fraction's side (x eps > 1 + a) the fraction is its first term 1/(x + 1 - a) to a relative
    # (a - 1)/x^2 below eps; the loop is not run there, whose D ~ 1/x is subnormal from x ~ 1/tiny (float32 1e38,
    # float64 1e308: flushed to 0, log h = -inf, NaN tails at finite x)
    first_only = fraction & (x * _eps(x.dtype) > 1.0 + a)
    loop = fraction & ~first_only
    a_s, x_s = safe_where(series, a, 1.0), safe_where(series, x, 0.5)
    a_f, x_f = safe_where(loop, a, 1.0), safe_where(loop, x, 3.0)
    first_term = -jnp.log(safe_where(first_only, x + 1.0 - a, 1.0))
    log_loop = jnp.where(series, _log_p_sum(a_s, x_s), jnp.where(first_only, first_term, _log_q_cf(a_f, x_f)))
    # log(Q / a) where P is close to 1: log Q = log a + log(Q / a), whose slope's log a is the prefix's (they cancel)
    log_g = _log_q_small(safe_where(small_q, a, 0.5), safe_where(small_q, x, 0.5), safe_where(small_q, log_x, -0.5))
    log_a = jnp.log(a)
    # the near side: log P from the series, log Q from the fraction or _log_q_small; the other by log(1 - exp(.))
    # near <= 0 (a probability): rounding on another device may put it an ulp above 0, log1mexp's NaN
    near = jnp.where(temme, -1.0, jnp.where(small_q, log_a + log_g, prefix + log_loop + jnp.where(frac_small, log_a,
                                                                                                   0.0)))
    near = jnp.minimum(near, 0.0)  # Temme's: no log1mexp(0) in its gradient
    far = log1mexp(near)
    log_p_t, log_q_t = _log_temme(safe_where(temme, a, TEMME_MIN), safe_where(temme, u, 0.0))
    # log P = log1p(-a Q/a) there and on the fraction's side at a < 1, not log(1 - exp(log a + log(Q/a))), whose
    # second derivative in a cancels two terms of Q/a^2 (3e-3 off at a = 1e-4, x = 1e-3; 4e-4 at x = 2, float32)
    tiny_a = small_q | frac_small
    log_g_all = safe_where(tiny_a, jnp.where(small_q, log_g, prefix + log_loop), -1.0)
    log_p_small = log1p(-safe_where(tiny_a, a, 0.0) * jnp.exp(log_g_all))
    log_p = jnp.where(temme, log_p_t, jnp.where(direct_p, near, jnp.where(tiny_a, log_p_small, far)))
    log_q = jnp.where(temme, log_q_t, jnp.where(direct_p, far, near))
    full = prefix + jnp.where(over_a, log_a, 0.0)  # a log x - x - lgamma(a)
    ratio_p = jnp.where(series, log_a - log_loop, full - log_p)
    ratio_q = jnp.where(fraction, -log_loop, jnp.where(small_q, prefix - log_g, full - log_q))
    return log_p, log_q, ratio_p, ratio_q, full


def _log_gamma_tail_parts(a, upper, observed, x, log_x):
    log_p, log_q, ratio_p, ratio_q, full = _log_gamma_pq(a, x, log_x)
    return jnp.where(observed, full, jnp.where(upper, log_q, log_p)), jnp.where(upper, ratio_q, ratio_p)


def _parts_jvp(a, t_a, upper, observed, x, log_x):
    """``_log_gamma_tail_parts`` and its tangent along ``t_a``, the shape's forward-mode derivative."""
    return jax.jvp(lambda v: _log_gamma_tail_parts(v, upper, observed, x, log_x), (a,), (t_a,))


def _replay(jaxpr, consts, args):
    """``jaxpr`` evaluated on ``args`` primitive by primitive, its nested ``jit`` calls (``jnp.where``'s) inlined."""
    env = dict(zip(jaxpr.constvars, consts)) | dict(zip(jaxpr.invars, args))

    def read(v):
        return v.val if isinstance(v, Literal) else env[v]

    for eqn in jaxpr.eqns:
        inputs = [read(v) for v in eqn.invars]
        if eqn.primitive is jit_p:
            inner = eqn.params["jaxpr"]
            out = _replay(inner.jaxpr, inner.consts, inputs)
        else:
            out = eqn.primitive.bind(*inputs, **eqn.primitive.get_bind_params(eqn.params))
            out = out if eqn.primitive.multiple_results else [out]
        env.update(zip(eqn.outvars, out))
    return [read(v) for v in jaxpr.outvars]


def _staged(fn):
    """``fn`` traced once with no transformation around it, then replayed as primitives (``_replay``).

    Every ``jnp`` call is a small ``jit`` of its own: traced under the recipe's per-example ``vmap`` and the
    gradient's linearization, each is batched and split again (``jnp.where``, kept as a nested ``jit``, each time
    as a sub-program). Traced plainly its calls are inlined once, and the transformations above see its ~850
    primitives, not a nested program for each: the censored Gamma's value and gradient trace 0.61 -> 0.49 s CPU,
    with the same values and gradients to the bit. ``fn`` takes and returns arrays (pytrees of them) and closes over no
    tracer; its own ``custom_jvp`` rules stay as they are, traced where they are differentiated."""
    def wrapped(*args):
        flat, tree = jax.tree.flatten(args)
        closed, shape = jax.make_jaxpr(lambda *f: fn(*jax.tree.unflatten(tree, f)), return_shape=True)(*flat)
        return jax.tree.unflatten(jax.tree.structure(shape), _replay(closed.jaxpr, closed.consts, flat))
    return wrapped


@partial(jax.custom_jvp, nondiff_argnums=(0,))
def _log_gamma_tail(own_log_x, a, upper, observed, x, log_x):
    """``log Q`` where ``upper``, ``log P`` elsewhere, ``a log x - x - lgamma(a)`` where ``observed`` (the prefix of
    both: a censored Gamma's density and tails from one evaluation); its derivative in ``x`` (or ``log x``, the same
    variable: the caller's ``log x`` where it carries a tangent, but ``x``'s from ``x = 1/tiny``) is the closed form
    ``+- x^a e^-x / (Gamma(a) P or Q)`` (``a - x`` where observed), in ``a`` forward mode through the prefix and
    Temme's expansion, whose loops carry their own written derivative (``_p_sum_loop``, ``_q_fraction_loop``).

    ``own_log_x`` (static): ``log_x`` is ``log x`` made from ``x`` by ``log_gammainc_tail``, so that ``x``'s tangent is
    the one to use, as ``(x P'(x) / P) / x`` times ``t_x``, never ``log x``'s tangent ``t_x / x``, which is subnormal
    and flushed to 0 from ``x ~ 1/tiny`` (float32 1e38: ``jacfwd`` read 0 where the slope of ``log Q`` is -1); the
    rule's primal ``log x`` keeps its dependence on ``x`` for a second derivative."""
    return _log_gamma_tail_parts(a, upper, observed, x, log_x)[0]


def _log_gamma_tail_jvp(own_log_x, primals, tangents):
    a, upper, observed, x, log_x = primals
    t_a, _, _, t_x, t_log_x = tangents
    if isinstance(t_a, SymbolicZero):
        value, ratio = _log_gamma_tail_parts(a, upper, observed, x, log_x)
        t_value = jnp.zeros_like(value)
    else:
        (value, ratio), (t_value, _) = _staged(_parts_jvp)(a, t_a, upper, observed, x, log_x)
    if own_log_x and not isinstance(t_x, SymbolicZero):
        # 1/x near subnormal from x = eps/tiny (float32 1e31): there exp(ratio - log x); below, exp(ratio) / x,
        # whose second derivative in x cancels its two terms (d2 log Q / dx2 = 1e-4 at x = 100) a rounding better
        far = log_x > -jnp.log(_tiny(x.dtype))
        ratio = jnp.where(far, ratio - log_x, ratio)
        slope = jnp.where(observed, a / x - 1.0, jnp.where(upper, -1.0, 1.0) * jnp.exp(ratio) / jnp.where(far, 1.0, x))
        return value, t_value + slope * t_x
    if not isinstance(t_log_x, SymbolicZero):
        if not isinstance(t_x, SymbolicZero):
            # both carry a tangent (a Gamma's x = b y, log x = log b + log y): far out x's, as above; log x's, t_y / y
            # + t_b / b, is subnormal there (float32 y = 1e38: jacfwd of log_sf read 0 for -1)
            far = log_x > -jnp.log(_tiny(x.dtype))
            slope = jnp.where(observed, jnp.where(far, a / x - 1.0, a - x),
                              jnp.where(upper, -1.0, 1.0) * jnp.exp(jnp.where(far, ratio - log_x, ratio)))
            return value, t_value + slope * jnp.where(far, t_x, t_log_x)
        t_move = t_log_x
    elif not isinstance(t_x, SymbolicZero):
        t_move = t_x / x
    else:
        return value, t_value
    slope = jnp.where(observed, a - x, jnp.where(upper, -1.0, 1.0) * jnp.exp(ratio))
    return value, t_value + slope * t_move


_log_gamma_tail.defjvp(_log_gamma_tail_jvp, symbolic_zeros=True)


def log_gammainc(a, x):
    """``log P(a, x)``, the log of the regularised lower incomplete gamma; ``-inf`` at ``x <= 0``."""
    return log_gammainc_tail(a, x, False)


def log_gammaincc(a, x):
    """``log Q(a, x)``, the log of the regularised upper incomplete gamma; ``0`` at ``x <= 0``."""
    return log_gammainc_tail(a, x, True)


def log_gammainc_tail(a, x, upper, log_x=None, observed=False):
    """``log Q(a, x)`` where ``upper``, ``log P(a, x)`` elsewhere, from one evaluation of both; where ``observed``
    (a bool or bool array) for ``0 < x < inf``, the prefix ``a log x - x - lgamma(a)`` they share (a censored Gamma's
    density at ``y = x / b`` is it less ``log y``: ``gamma.censored_log_prob``).

    ``log_x`` (default ``log x``) may be passed separately, for an ``x`` that underflows or overflows.
    At ``x <= 0`` the limits ``log P = -inf``, ``log Q = 0``; at ``x = +inf`` ``0`` and ``-inf``; NaN stays NaN."""
    own_log_x = log_x is None
    log_x = jnp.log(jnp.maximum(x, 0)) if own_log_x else log_x
    inside = jnp.isfinite(log_x) & (x < jnp.inf)
    shape = jnp.broadcast_shapes(jnp.shape(a), jnp.shape(x), jnp.shape(log_x), jnp.shape(upper), jnp.shape(observed))
    dtype = jnp.result_type(a, x, log_x)
    a, upper, observed, x, log_x = (jnp.broadcast_to(jnp.asarray(v, jnp.bool_ if k in (1, 2) else dtype), shape)
                                    for k, v in enumerate((a, upper, observed, x, log_x)))
    inside = jnp.broadcast_to(inside, shape)
    tail = _log_gamma_tail(own_log_x, a, upper, observed, safe_where(inside, x, 1.0), safe_where(inside, log_x, 0.0))
    below = jnp.where(upper, 0.0, -jnp.inf)
    above = jnp.where(upper, -jnp.inf, 0.0)
    edge = jnp.where(jnp.isnan(x) | jnp.isnan(log_x), jnp.nan, jnp.where(log_x > 0, above, below))
    return jnp.where(inside, tail, edge)


# The incomplete beta's fraction near the mean needs O(sqrt(a + b)) steps (about 1.6 sqrt(a) at a = b);
# each entry may run to _beta_budget(a, b) steps, at most _BETA_MAX_TERMS (a = b = 1e11), then is NaN.
_BETA_MAX_TERMS = 2 ** 20


def _beta_budget(a, b):
    return jnp.minimum(200.0 + 4.0 * jnp.sqrt(a + b), _BETA_MAX_TERMS)


def _beta_fraction(a, b, x, y, form):
    """``log`` of the continued fraction of ``I_x(a, b)`` without its prefix, for
    ``x < (a + 1)/(a + b + 2)``, ``y = 1 - x`` (the Lentz loop, two partial numerators a step). Where ``form``
    is 1 or 2 (else 0), the same loop evaluates a fraction of the incomplete gamma at ``(b, u)``,
    ``u = -(a + (b - 1)/2) log(1 - y)`` (``_log_betainc_parts``' a >> b form): 1, ``log CF_Q`` for Legendre's
    fraction ``Q(b, u) = u^b e^-u / Gamma(b) CF_Q``; 2, ``log CF_P`` for Kummer's ``P(b, u) = u^b e^-u / Gamma(b + 1) CF_P``.

    The incomplete beta's partial numerators are ``d_2m = m (s - w m) x/((g + 2m - 1)(g + 2m))`` and
    ``d_(2m+1) = -(p + m)(r + w m) x/((g + 2m)(g + 2m + 1))`` with ``(g, s, p, r, w) = (a, b, a, a + b, 1)``.
    Legendre's ``CF_Q = 1/(B_0 + A_1/(B_1 + A_2/(B_2 + ...)))``, ``A_k = -k (k - b)``, ``B_k = u + 1 - b + 2k``, is
    ``1/(B_0 (1 + e_1/(1 + e_2/(1 + ...))))``, ``e_k = A_k/(B_(k-1) B_k)``: the same two forms with
    ``(g, s, p, r, w, x) = (B_0/2, b/2, 1/2, (1 - b)/2, 1, 1)``. Kummer's (the limit of the beta's at ``a -> inf``,
    ``(a + b)(1 - x) -> u``) has ``(g, s, p, r, w, x) = (b, u, b, u, 0, 1)``. One loop body serves all three, and no
    incomplete gamma (Temme's expansion, series, prefixes) is evaluated for every entry under a ``where``.

    The first denominator ``1 - (a + b) x/(a + 1)`` is ``((1 - b) + (a + b) y)/(a + 1)`` where that has
    the smaller terms: at ``a = 5e9``, ``b = 1/2``, ``y = 1e-10`` (a Student t at df 1e10) the first
    form keeps 7 digits of a value of 2e-10, the second all of them."""
    dtype = jnp.result_type(a, b, x)
    eps, tiny = _eps(dtype), _tiny(dtype)
    budget = _beta_budget(a, b)
    on_q, on_p = form == 1, form == 2
    u = (a + 0.5 * (b - 1.0)) * -jnp.log1p(-jnp.minimum(y, 0.5))
    b0 = safe_where(on_q, u + 1.0 - b, 1.0)  # Legendre's B_0
    g = jnp.where(on_q, 0.5 * b0, jnp.where(on_p, b, a))
    s = jnp.where(on_q, 0.5 * b, jnp.where(on_p, u, b))
    p = jnp.where(on_q, 0.5, jnp.where(on_p, b, a))
    r = jnp.where(on_q, 0.5 * (1.0 - b), jnp.where(on_p, u, a + b))
    w = jnp.where(on_p, 0.0, 1.0)
    xx = jnp.where(on_q | on_p, 1.0, x)

    def guard(v):
        return jnp.where(jnp.abs(v) < tiny, tiny, v)

    def half_step(aa, c, d):
        d = 1.0 / guard(1.0 + aa * d)
        c = guard(1.0 + aa / c)
        return c, d, c * d

    def body(state):
        m, c, d, h, active, done, steps = state
        # two quotients, not one: (g + 2m)^2 overflows float32 beyond a = 1.8e19 (Beta(1e20, 1e20) was NaN at any x)
        even = (m * xx / (g + 2 * m - 1)) * ((s - w * m) / (g + 2 * m))
        c2, d2, delta = half_step(even, c, d)
        h2 = h * delta
        odd = -((p + m) * xx / (g + 2 * m)) * ((r + w * m) / (g + 2 * m + 1))
        c2, d2, delta = half_step(odd, c2, d2)
        h2 = h2 * delta
        # every entry keeps iterating while any runs (the forward-mode derivative converges after the value), but a
        # converged entry's value stays put (``_frozen``: multiplied on by deltas within an ulp of 1 while a slower
        # entry ran, Beta(2, 3)'s log CDF at 0.3 drifted 40 float32 ulps beside a Beta(1e6, 1e6))
        h2 = jnp.where(done, _frozen(h, h2), h2)
        steps = jnp.where(done, steps, m)
        done = done | (jnp.abs(delta - 1.0) < eps)
        return m + 1, c2, d2, h2, ~done & (m + 1 < budget), done, steps

    small_terms = jnp.abs(1.0 - b) + (a + b) * y < a + 1.0
    first = jnp.where(small_terms, ((1.0 - b) + (a + b) * y) / (a + 1.0), 1.0 - (a + b) * x / (a + 1.0))
    first = jnp.where(on_q, 1.0 - (1.0 - b) / (b0 * (b0 + 2.0)), jnp.where(on_p, 1.0 - u / (b + 1.0), first))
    d0 = 1.0 / guard(first)
    flags = jnp.ones(d0.shape, bool)
    init = (jnp.asarray(1.0, dtype), jnp.ones_like(d0), d0, d0, flags, ~flags, jnp.zeros_like(d0))
    *_, h, _, done, steps = jax.lax.while_loop(lambda state: jnp.any(state[4]) & (state[0] < _BETA_MAX_TERMS), body, init)
    # an entry that stopped at its budget, not at convergence, is NaN (never a truncated fraction); so
    # is a long one whose rounding exceeds 1e-3 relative: each step rounds ``a + 2m`` (error about
    # eps sqrt(a + b) near the mean, 7e-4 at a = b = 1e8 in float32), and beyond ~8,000 float32 steps
    # (Legendre's coefficients are in u and b, of the size of the step count: no such rounding)
    long_loop = (steps > 100) & (jnp.sqrt(a + b) * eps > 1e-3) & (form == 0)
    # Legendre's B_0 leaves here, with the value it entered with (the caller's own u + 1 - b, rounded apart from this
    # one, put 2.7e-4 into log Q and 1.6e-2 into its slope in b at a = 1e6, b = 3000, u = b in float32)
    log_h = jnp.log(h) - jnp.log(b0)
    return jnp.where(done & (steps * eps < 1e-3) & ~long_loop, log_h, jnp.nan)


_log_beta_cf = forward_grad(_with_shadow(_beta_fraction, 1), tied=(2, 3), primal=_beta_fraction)


def _log_beta_prefix(a, b, log_x, log_1mx, stirling=True, log_beta=None):
    """``a log x + b log(1 - x) - log a - log B(a, b)``. For ``a, b >= 10`` with Stirling's ``log B``
    and ``p = a/(a + b)``: ``a log(x/p) + b log((1 - x)/(1 - p)) + log(p (1 - p)(a + b))/2 - log(2 pi)/2
    - log a - corr(a) - corr(b) + corr(a + b)``, where ``a log(x/p) + b log((1-x)/(1-p)) = -dev_a - dev_b``
    (``special.deviance`` at ``m = a x/p``): no terms of size ``a`` cancel (at a = b = 1e10 they are
    6.9e9, and float64 keeps 7 digits of their sum). ``stirling=False`` (one of ``a, b`` below 10 for
    every entry, as a Student t's 1/2) compiles the direct form alone, with the caller's ``log_beta``
    (``log B(a, b)``) where given. The direct form's ``log B`` is ``betaln_small``: one of ``a, b`` is below 10
    wherever it is taken, so ``betaln``'s own Stirling branch for two large arguments is not compiled again."""
    if not stirling:
        return a * log_x + b * log_1mx - jnp.log(a) - (betaln_small(a, b) if log_beta is None else log_beta)
    both = jnp.minimum(a, b) >= STIRLING_MIN
    ab, bb = safe_where(both, a, STIRLING_MIN), safe_where(both, b, STIRLING_MIN)
    lx, l1x = safe_where(both, log_x, -1.0), safe_where(both, log_1mx, -1.0)
    s = ab + bb
    log_p, log_q = jnp.log(ab / s), jnp.log(bb / s)
    stirling = (_log_likelihood_ratio(ab, bb, lx, l1x) + 0.5 * (log_p + log_q + jnp.log(s)) - HALF_LOG_2PI
                - jnp.log(ab) - stirling_corr(ab) - stirling_corr(bb) + stirling_corr(s))
    as_, bs = safe_where(~both, a, 1.0), safe_where(~both, b, 1.0)
    lxs, l1xs = safe_where(~both, log_x, -1.0), safe_where(~both, log_1mx, -1.0)
    direct = as_ * lxs + bs * l1xs - jnp.log(as_) - betaln_with_gaps(as_, bs)  # min(a, b) < 10 here
    return jnp.where(both, stirling, direct)


def _log_likelihood_ratio(a, b, log_x, log_1mx):
    """``a log(x/p) + b log((1 - x)/(1 - p)) <= 0``, ``p = a/(a + b)``: with ``delta = (a + b) x - a
    = b - (a + b)(1 - x)`` (from the smaller of ``x``, ``1 - x``), ``a log(x/p) = a log1pmx(delta/a)
    + delta`` within a quarter of ``p`` and the plain log ratio elsewhere; the ``+- delta`` cancel exactly."""
    s = a + b
    x, y = jnp.exp(log_x), jnp.exp(log_1mx)
    delta = jnp.where(x <= y, s * x - a, b - s * y)
    wa, wb = delta / a, -delta / b
    near_a, near_b = jnp.abs(wa) < 0.25, jnp.abs(wb) < 0.25
    term_a = jnp.where(near_a, a * _log1pmx_series(safe_where(near_a, wa, 0.0)) + delta, a * (log_x - jnp.log(a / s)))
    term_b = jnp.where(near_b, b * _log1pmx_series(safe_where(near_b, wb, 0.0)) - delta, b * (log_1mx - jnp.log(b / s)))
    return term_a + term_b


# The small-parameter series (``_log_betainc_small``) holds ``I_z(p, q)`` for ``p`` up to this (float32, float64):
# its ``log c`` by two-point Gauss-Legendre is within ``0.006 p^4`` relative of ``p`` there (below each dtype's eps),
# where the fraction's prefix cancels ``log p + log B(p, q)`` (about ``-log p + log p``) to ``eps log(1/p) / p``.
_SMALL_P = {4: 0.03, 8: 1e-3}
_SMALL_TERMS = {4: 28, 8: 60}
_GAUSS2 = (0.5 - 0.5 / math.sqrt(3.0), 0.5 + 0.5 / math.sqrt(3.0))


def _log_c_small(p, q):
    """``log c = -log(p B(p, q)) = lgamma(p + q) - lgamma(q) - lgamma(1 + p)`` for small ``p``, with no terms
    of size ``log(1/p)`` or ``lgamma(q)`` (in ``log p + log B(p, q)`` they cancel to an absolute ``eps log(1/p)``,
    of the size of ``p`` itself at p = 1e-8 in float64): ``lgamma(q + p) - lgamma(q) = int_(1+q)^(1+q+p) psi
    - log1p(p/q)`` (as ``lgamma(1 + v) = lgamma(v) + log v``), the integral by two-point Gauss-Legendre
    (error ``p^5 max|psi^(4)| / 4320 <= 0.006 p^5``: ``psi`` is smooth above 1 whatever ``q``), and
    ``lgamma(1 + p) = p lgamma1p_ratio(p)``."""
    psi = sum(lgamma_digamma(1.0 + q + node * p)[1] for node in _GAUSS2)
    return 0.5 * p * psi - jnp.log1p(p / q) - p * lgamma1p_ratio(p)


def _log_betainc_small(p, q, log_z):
    """``(log I_z(p, q), log(1 - I_z(p, q)))`` for ``p <= _SMALL_P`` and ``z`` on the fraction's side
    (``z < (p + 1)/(p + q + 2)``, so ``q z < 1`` and ``z <= 1/2`` up to ``p``), from the hypergeometric series
    (Abramowitz and Stegun 26.5.4, DLMF 8.17.7; the idea of DiDonato and Morris's BPSER and APSER, ACM TOMS 708, 1992):

        I_z(p, q) = c z^p (1 + p S),   c = 1/(p B(p, q)),   S = sum_(j >= 1) (1 - q)_j z^j / (j! (p + j))

    With ``L = log c + p log z`` the complement is ``J = 1 - I = -expm1(L) - e^L p S``: both terms of the size
    of ``p``, with ``log c`` from ``_log_c_small`` (no ``log p + log B(p, q)`` cancelling), so ``J`` keeps its
    relative digits where ``I`` is within ``p`` of 1 (the fraction's ``1 - I_(1-z)(q, p)`` lost them all:
    Beta(0.5, 1e-8)'s CDF at 0.99 read ``-inf`` or -14.3 for -16.6 in float32). Where ``J >= 1/2`` (``z^p``
    itself small) ``log I = L + log1p(p S)`` and ``log J = log1mexp(log I)``. The terms ``t_j = t_(j-1) (j - q)
    z / j`` shrink by at least ``max(z, q z)`` a step: a fixed ``_SMALL_TERMS`` (28 in float32, 60 in float64).
    """
    dtype = jnp.result_type(p)
    z = jnp.exp(log_z)

    def body(j, state):
        term, total = state
        jf = jnp.asarray(j, dtype)
        term = term * ((jf - q) * z / jf)
        return term, total + term / (p + jf)

    terms = _SMALL_TERMS[jnp.dtype(dtype).itemsize]
    _, s = jax.lax.fori_loop(1, terms + 1, body, (jnp.ones_like(z), jnp.zeros_like(z)))
    ps = p * s
    big_l = _log_c_small(p, q) + p * log_z
    log_i = big_l + jnp.log1p(ps)
    j = -jnp.expm1(big_l) - jnp.exp(big_l) * ps
    near_one = j < 0.5
    j_safe = safe_where(near_one, j, 0.5)
    return (jnp.where(near_one, jnp.log1p(-j_safe), log_i),
            jnp.where(near_one, jnp.log(j_safe), log1mexp(jnp.minimum(safe_where(near_one, -1.0, log_i), 0.0))))


@jax.custom_jvp
def _small_series(p, q, log_z, use):
    """``_log_betainc_small`` where some entry of ``use`` is set, zeros elsewhere (a ``cond``: a batch without a small
    parameter computes nothing, when the batch is the array's own; under a ``vmap`` of one example, as the recipe's,
    the ``cond`` on a batched predicate becomes a ``select`` and both branches run). Its JVP carries the partial
    derivatives out of the ``cond`` as values (a forward pass inside it for each argument with a tangent):
    differentiated as it stands, the ``cond``'s untaken branch still wrote zeros for every residual of the series' 60 terms (Beta ``log_cdf`` with its gradient in (a, b) was 27% slower at a, b in (0.5, 5))."""
    return jax.lax.cond(jnp.any(use), lambda: _log_betainc_small(p, q, log_z),
                        lambda: (jnp.zeros_like(p), jnp.zeros_like(p)))


def _small_series_jvp(primals, tangents):
    """Only the directions that carry a tangent get a forward pass: inside ``log_betainc``'s own JVP (its parameters'
    directions) ``log z`` carries none, and its partial, a third pass through the series, was computed and multiplied
    by a zero."""
    p, q, log_z, use = primals
    zero, one = jnp.zeros_like(p), jnp.ones_like(p)
    live = [k for k in range(3) if not isinstance(tangents[k], SymbolicZero)]

    def with_partials():
        args = (p, q, log_z)
        value, partials = None, []
        for k in live:
            value, d = jax.jvp(_log_betainc_small, args, tuple(one if j == k else zero for j in range(3)))
            partials.append(d)
        return (_log_betainc_small(*args) if value is None else value), partials

    pair = (zero, zero)
    value, partials = jax.lax.cond(jnp.any(use), with_partials, lambda: (pair, [pair] * len(live)))
    return value, tuple(sum((d[i] * tangents[k] for d, k in zip(partials, live)), zero) for i in range(2))


_small_series.defjvp(_small_series_jvp, symbolic_zeros=True)


def _log_betainc_parts(a, b, log_x, log_1mx, log_beta, stirling, with_beta, half=False, gamma_form=True):
    """``(log I_x(a, b), log(x (1 - x) I'(x) / I))``, ``x (1 - x) I'(x) = x^a (1 - x)^b / B(a, b)``: the value
    and its log slope, from one evaluation of the prefix and the fraction. On the fraction's own side
    the slope is ``log a - log CF`` (the prefix cancels exactly: in float32 a prefix of -9,210 rounds
    by 5e-4).

    The side is chosen by ``x < (a + 1)/(a + b + 2)``, i.e. ``1 - x > (b + 1)/(a + b + 2)``, tested on the
    smaller of ``x`` and ``1 - x``: near 1 neither ``x`` nor the threshold survives rounding (float32, a = 1e8,
    b = 2, x = sig(17) = 1 - 4.1e-8: both round to 1 - 6e-8 and 1, and the fraction ran on the wrong side).

    ``half`` (a Python bool): ``b = 1/2`` for every entry (the Student t), and the a >> b form is the closed
    form ``Q(1/2, u) = erfc(sqrt(u))`` (``_log_q_half``), not the whole incomplete gamma. ``gamma_form=False`` (a
    Python bool, with ``half``): every a is below ``gamma_form_min``, where that form is never taken: not compiled."""
    if half:
        b = jnp.full_like(a, 0.5)
    x, y = jnp.exp(log_x), jnp.exp(log_1mx)
    direct = _direct(a, b, x, y)
    gamma = _gamma_region(a, b, x, y, direct)
    if half:
        return _log_betainc_half(a, b, x, y, log_x, log_1mx, direct, gamma if gamma_form else None, log_beta,
                                 stirling, with_beta)
    # at 1 - x = 0 (u = 0) log I = 0 and its slopes 0; the gamma form sees u = 1 there
    ends = gamma & (log_1mx == -jnp.inf)
    # the fraction's own parameter (a where direct, else b) small: the series (``_log_betainc_small``), before the
    # a >> b form (1.4% off at a = 3000, b = 1e-4, x = 0.9999 in float32) and the fraction
    series = ((jnp.where(direct, a, b) <= _SMALL_P[jnp.dtype(x.dtype).itemsize]) & (log_x > -jnp.inf)
              & (log_1mx > -jnp.inf))
    gamma = gamma & ~ends & ~series
    # a and b both large, x near the mean: Temme's expansion (the fraction's O(sqrt(a + b)) steps round and run out)
    temme = (_temme_beta_region(a, b, x, y) & ~gamma & ~ends & ~series & (log_x > -jnp.inf)
             & (log_1mx > -jnp.inf))
    # the mirror image, b >> a and x < 1/2: I_x(a, b) = 1 - I_(1-x)(b, a) = P(a, u), u = -(b + (a - 1)/2) log(1 - x),
    # from the same form with the roles swapped (Beta(1e6, 1e-3)'s log_sf at 0.99999 read 15% off in float32: the
    # fraction's complement, eps a/10 of its I_x ~ 2e-3)
    mirror = (_gamma_region(b, a, y, x, _direct(b, a, y, x)) & ~gamma & ~ends & ~series & ~temme & (log_x > -jnp.inf)
              & (log_1mx > -jnp.inf))
    either = gamma | mirror
    ga, gb = jnp.where(mirror, b, a), jnp.where(mirror, a, b)
    ag, bg = safe_where(either, ga, 1.0), safe_where(either, gb, 1.0)
    t = ag + 0.5 * (bg - 1.0)
    minus_log_x = safe_where(either, -jnp.where(mirror, log_1mx, log_x), 1.0 / t)
    u = t * minus_log_x
    log_u = jnp.log(t) + jnp.log(minus_log_x)
    # where P(b, u) is close to 1 (b small, u <= 1.1) Q directly (``_log_q_small``, as ``_log_gamma_pq`` does); else in
    # the beta's loop (``_beta_fraction``) Q(b, u) by Legendre's fraction from u = b (its first denominator B_0 >= 1)
    # and 1 - P(b, u) by Kummer's below (the limit of the beta's own, its first denominator 1 - u/(b + 1) >= 1/(b + 1)).
    # The beta's complement 1 - I_{1-x}(b, a) is not used there: its first denominator 1 - (a + b)(1 - x)/(b + 1)
    # vanishes at (a + b)(1 - x) = b + 1, which is u + b^2/(2a) (4.5 apart at a = 1e6, b = 3000), and near it its slope
    # in a, of the size of 1 - x, cancels terms 1e7 times larger in float32 (50% off at a = 1e8, b = 4, u = 5).
    q_small = (either & (u <= _Q_SMALL_X) & jnp.where(u <= 0.5, -bg * log_u <= 0.4, bg <= _Q_SMALL_X * u))
    legendre = either & ~q_small & (u >= bg)
    kummer = either & ~q_small & ~legendre
    # one loop for both sides: I_x(a, b) directly, or 1 - I_{1-x}(b, a) where the fraction converges; the gamma form's
    # entries enter as (a, b, x, 1 - x), its mirror's as (b, a, 1 - x, x)
    first, second = jnp.where(direct, a, b), jnp.where(direct, b, a)
    log_near, log_far = jnp.where(direct, log_x, log_1mx), jnp.where(direct, log_1mx, log_x)
    prefix = _log_beta_prefix(first, second, log_near, log_far, stirling, log_beta if with_beta else None)
    # the fraction sees harmless inputs where it is not used (a NaN there would reach the gradient as 0 * NaN)
    aside = q_small | ends | series | temme
    loop_args = (jnp.where(either, ga, first), jnp.where(either, gb, second),
                 jnp.where(either, jnp.where(mirror, y, x), jnp.exp(log_near)),
                 jnp.where(either, jnp.where(mirror, x, y), jnp.exp(log_far)))
    log_cf = _log_beta_cf(*(safe_where(aside, fill, v) for v, fill in zip(loop_args, (1.0, 1.0, 0.5, 0.5))),
                          jnp.where(legendre, 1.0, jnp.where(kummer, 2.0, 0.0)))
    # each branch's log1mexp sees a harmless value where another is taken (a slope of inf there is 0 * inf = NaN in
    # the transposed JVP)
    value = prefix + safe_where(either | ends | series | temme, -1.0, log_cf)
    far = log1mexp(jnp.minimum(value, 0.0))
    log_first = jnp.log(first)
    fraction = jnp.where(direct, value, far), jnp.where(direct, log_first - log_cf, prefix + log_first - far)
    # log P = b log u - u - lgamma(b + 1) + log CF_P, log Q = b log u - u - lgamma(b) + log CF_Q
    g_prefix = gamma_prefix(bg, u, log_u, over_a=~legendre)
    log_p = jnp.minimum(safe_where(kummer, g_prefix + log_cf, -1.0), 0.0)
    q_loop = jnp.where(legendre, g_prefix + log_cf, log1mexp(log_p))
    sb, su, slu = safe_where(q_small, bg, 0.5), safe_where(q_small, u, 0.5), safe_where(q_small, log_u, -0.5)
    tail = jnp.minimum(jnp.where(q_small, jnp.log(sb) + _log_q_small(sb, su, slu), q_loop), 0.0)
    # the series runs only where some entry takes it (a cond: nothing is computed for a batch without one)
    sp, sq = safe_where(series, first, 1e-3), safe_where(series, second, 1.0)
    slz = safe_where(series, log_near, -1.0)
    small_i, small_j = _small_series(sp, sq, slz, series)
    # the mirror's log P: Kummer's own where it ran, else log(1 - Q) (Q <= 1/2 there, or P near 1)
    mirrored = jnp.where(kummer, log_p, log1mexp(jnp.minimum(safe_where(mirror & ~kummer, tail, -1.0), 0.0)))
    st = tuple(safe_where(temme, v, fill) for v, fill in zip((a, b, x, y), (1e4, 1e4, 0.5, 0.5)))
    value = jnp.where(ends, 0.0, jnp.where(gamma, tail, jnp.where(mirror, mirrored, jnp.where(
        series, jnp.where(direct, small_i, small_j), jnp.where(temme, _log_betainc_temme(*st), fraction[0])))))
    # log(x (1 - x) I'(x) / I): the prefix of whichever side the fraction took, plus log first, less log I
    return value, jnp.where(either | ends | series | temme, prefix + log_first - value, fraction[1])


# Temme's uniform expansion of I_x(a, b) (``_log_betainc_temme``) is taken where both a and b are at least this
# (float32, float64) and x is within a quarter of the mean's p and q: its first omitted term, c_1(eta)/r^(3/2) of
# Phi's size, is below each dtype's eps there (mpmath: 3e-8 relative at a = b = 1e4, x 20 sd below the mean,
# shrinking as r^-1.5), while the fraction needs O(sqrt(a + b)) steps, each rounding a + 2m (float32: log I at the
# mean 5e-6 off at a = b = 1e4, 8e-3 at 3e7, NaN from 1.4e8; float64: NaN beyond its 2^20 steps, a + b = 7e10).
_TEMME_BETA_MIN = {4: 1e4, 8: 1e9}


def _temme_beta_region(a, b, x, y):
    """Where ``_log_betainc_parts`` takes ``_log_betainc_temme``: ``min(a, b) >= _TEMME_BETA_MIN`` and
    ``|x - p| < min(p, q)/4``, ``p = a/(a + b)``, ``q = 1 - p``."""
    r = a + b
    delta = jnp.where(x <= y, x - a / r, b / r - y)
    return (jnp.minimum(a, b) >= _TEMME_BETA_MIN[jnp.dtype(x.dtype).itemsize]) & (4.0 * jnp.abs(delta) * r < jnp.minimum(a, b))


def _log_betainc_temme(a, b, x, y):
    """``log I_x(a, b)`` for large ``a``, ``b`` near the mean by Temme's uniform expansion (Temme, *Special
    Functions*, 1996, section 11.3.3; Gil, Segura & Temme, *Numerical Methods for Special Functions*, 2007,
    section 8.7): with ``r = a + b``, ``p = a/r``, ``q = b/r``, ``delta = x - p`` and ``eta`` of the sign of ``delta``,
    ``-r eta^2/2 = a log(x/p) + b log((1 - x)/q)``,
    ``I_x(a, b) = Phi(eta sqrt(r)) + phi(eta sqrt(r)) (c_0(eta) + O(1/r)) / sqrt(r)``,
    ``c_0 = 1/eta - sqrt(p q)/delta``. Both are written without cancellation for ``|delta| < min(p, q)/4``:
    with ``K(t) = (log1pmx(t) + t^2/2)/t^3`` (``1/3`` at 0), ``(eta/delta)^2 = E = 1/(p q) - 2 delta (K(delta/p)/p^2
    - K(-delta/q)/q^2)`` and ``c_0 = 2 W / (sqrt(E) (1 + sqrt(p q E)))``, ``W = q K(delta/p)/p - p K(-delta/q)/q``
    (``(q - p)/(3 sqrt(p q))`` at the mean). The smaller side is ``Phi(-v) (1 + w)`` with ``v = |eta| sqrt(r)``,
    ``w = -sign(eta) M(v) c_0/sqrt(r)`` (Mills' ratio ``M``), in log space as Temme's incomplete gamma
    (``_temme_sides``). scipy equivalent: ``log(betainc(a, b, x))``."""
    r = a + b
    p, q = a / r, b / r
    delta = jnp.where(x <= y, x - p, q - y)

    def k_of(t):  # (log1pmx(t) + t^2/2)/t^3 for |t| < 1/4, from log1pmx_series' P(s^2)
        return 0.5 / (2.0 + t) + 2.0 * log1pmx_p(t)[1] / (2.0 + t) ** 3

    ka, kb = k_of(delta / p), k_of(-delta / q)
    e = 1.0 / (p * q) - 2.0 * delta * (ka / jnp.square(p) - kb / jnp.square(q))
    root_e = jnp.sqrt(e)
    c0 = 2.0 * (q * ka / p - p * kb / q) / (root_e * (1.0 + jnp.sqrt(p * q) * root_e))
    eta = delta * root_e
    v = jnp.abs(eta) * jnp.sqrt(r)
    log_tail, mills = _log_ndtr_mills(v)
    w = -jnp.where(eta >= 0, 1.0, -1.0) * mills * c0 / jnp.sqrt(r)
    return _temme_sides(eta, log_tail, mills, w)[2]


def _direct(a, b, x, y):
    """Whether the fraction runs on ``I_x(a, b)`` itself: ``x < (a + 1)/(a + b + 2)``, tested on the smaller of
    ``x`` and ``1 - x`` (``_log_betainc_parts``)."""
    return jnp.where(x <= y, x < (a + 1.0) / (a + b + 2.0), y > (b + 1.0) / (a + b + 2.0))


def _gamma_region(a, b, x, y, direct):
    """Where ``_log_betainc_parts`` takes the a >> b form ``Q(b, u)`` (the reasons below)."""
    # a >> b and x > 1/2: I_x(a, b) = Q(b, u), u = -(a + (b - 1)/2) log x, to relative about
    # 0.04 b (b + u)^2/a^2 (the leading term of DiDonato & Morris's BGRAT; mpmath: 1.5e-4 at a = 1e4, b = 10,
    # u <= 200; 7e-15 at a = 1e8, b = 2; 1.7e-8 at a = 5e5, b = 1/2, u = 450).
    # There both fractions fail in float32: the direct one cancels 1 + d_odd D ~ b/a at every step (x rounds
    # within 6e-8 of 1, a + 2m by 8 at a = 1e8: log I at a = 1e8, b = 2, x = sig(17) read -2.443 for -2.503),
    # the complement subtracts I_{1-x}(b, a) ~ 1 (-inf at I_x = 1e-5). The fractions' own error there is
    # about eps a/10 (measured: 1e-4 at a = 1e4 in float32, 2e-9 at a = 1e8 in float64): Q where it is smaller.
    u_est = (a + b) * y
    # Below b = 1/2 the error does not shrink with b (the expansion's next term is of order 1/t^2, t = a + (b - 1)/2,
    # and y^2: with b = 1 in the estimate); on the fraction's own side (``direct``) its error is eps a/10 as above, on
    # the complement's it cancels about 10 eps / I_x, I_x ~ b (the prefix's log B(b, a) ~ -log b carries eps log b):
    # Beta(0.5, 1e-8) at x = 0.99 read log I = 0 for -16.6 in float32 (t = 5e-9), Beta(0.5, 1e-4) -6.58 for -7.42
    small_b = b < 0.5
    t_est = jnp.where(small_b, a + 0.5 * (b - 1.0), a)
    b_err = jnp.where(small_b, 1.0, b)
    gain = jnp.where(small_b & ~direct, jnp.maximum(a, 100.0 / b), a)
    return (y < 0.5) & (t_est > 0) & (0.4 * b_err * (b_err + u_est) ** 2 < _eps(x.dtype) * t_est ** 2 * gain)


def half_gamma_region(a, log_x, log_1mx):
    """Where ``log_betainc(a, 1/2, log x, log(1 - x), half=True)`` takes its a >> b form ``Q(1/2, u)``,
    ``u = (a - 1/4)(-log x)`` (``_gamma_region``): the Student t writes that form itself there
    (``student_t.log_cdf``: its derivative in nu must not go through the fraction's prefix)."""
    x, y = jnp.exp(log_x), jnp.exp(log_1mx)
    b = jnp.full_like(a, 0.5)
    return _gamma_region(a, b, x, y, _direct(a, b, x, y))


def _log_betainc_half(a, b, x, y, log_x, log_1mx, direct, gamma, log_beta, stirling, with_beta):
    """``_log_betainc_parts`` at ``b = 1/2``: the a >> b form is ``_log_q_half`` (``gamma`` None: never taken)."""
    first, second = jnp.where(direct, a, b), jnp.where(direct, b, a)
    log_near, log_far = jnp.where(direct, log_x, log_1mx), jnp.where(direct, log_1mx, log_x)
    prefix = _log_beta_prefix(first, second, log_near, log_far, stirling, log_beta if with_beta else None)
    aside = jnp.zeros_like(direct) if gamma is None else gamma
    log_cf = _log_beta_cf(safe_where(aside, 1.0, first), safe_where(aside, 1.0, second),
                          safe_where(aside, 0.5, jnp.exp(log_near)), safe_where(aside, 0.5, jnp.exp(log_far)),
                          jnp.zeros_like(a))
    value = prefix + log_cf
    far = log1mexp(jnp.minimum(value, 0.0))
    log_first = jnp.log(first)
    fraction = jnp.where(direct, value, far), jnp.where(direct, log_first - log_cf, prefix + log_first - far)
    if gamma is None:
        return fraction
    ag, bg = safe_where(gamma, a, 1.0), safe_where(gamma, b, 1.0)
    minus_log_x = safe_where(gamma, -log_x, 1.0)
    tail = _log_q_half((ag + 0.5 * (bg - 1.0)) * minus_log_x)
    return jnp.where(gamma, tail, fraction[0]), jnp.where(gamma, prefix + log_first - tail, fraction[1])


def gamma_form_min(dtype) -> float:
    """The a below which ``log_betainc(..., half=True)`` never takes its a >> b form: that form needs
    ``0.4 b (b + u)^2 < eps a^3`` with ``b = 1/2`` and ``u >= 0``, whose left side is at least 0.05; below
    ``a^3 = 0.04 / eps`` (a margin for rounding) it is never true. float32: a < 69.5 (nu < 139); float64:
    a < 56,000."""
    return float((0.04 / np.finfo(dtype).eps) ** (1.0 / 3.0))


def _log_q_half_parts(u):
    """``(log Q(1/2, u), d log Q / du)`` for ``u >= 0`` (``_log_q_half``)."""
    v = jnp.sqrt(2.0 * u)
    log_tail, mills = _log_ndtr_mills(v)
    root = jnp.sqrt(u)
    near = root < 0.5
    log_near = log1p(-erf(safe_where(near, root, 0.0)))  # special.log1p: -erf(root) crosses XLA's bad float64 band
    log_q = jnp.where(near, log_near, _LOG_2 + log_tail)
    return log_q, jnp.where(u > 0, -mills / safe_where(u > 0, v, 1.0), 0.0)


# ``log Q(1/2, u) = log erfc(sqrt(u))`` for ``u >= 0``: ``log1p(-erf(sqrt(u)))`` below ``sqrt(u) = 1/2`` (``log Q`` to
# its last digit near 0: ``-1.128e-11`` at ``u = 1e-22``, where ``erfc`` rounds to 1; ``special.log1p``, as XLA's float64
# ``log1p`` was 114 ulps off for ``sqrt(u)`` in (0.27, 0.39), where ``-erf`` is in (-0.414, -0.293)), else ``log 2 + log Phi(-v)``,
# ``v = sqrt(2 u)`` (``_log_ndtr_mills``: Mills' series beyond ``special.mills_min``, no ``log(0)`` in the far tail).
# Its derivative ``-e^-u / (sqrt(pi u) Q) = -M / v`` from Mills' ratio ``M = phi(v) / Phi(-v)``; 0 at ``u = 0``,
# where the caller's ``u = (a + (b - 1)/2)(-log x)`` moves in ``a`` as ``-log x = 0`` times a slope ``~ u^(-1/2)``
# (the limit of the product is 0). scipy equivalent: ``log(gammaincc(0.5, u))``.
_log_q_half = with_slope(_log_q_half_parts)


_LOG_2 = float(np.log(2.0))


def _closed_form_in_x(parts, n_params, signs):
    """``parts(*params, *log_xs) -> (log F, log R)`` made a function of ``(*params, *log_xs)`` returning
    ``log F``, whose derivative in each ``log_xs[k]`` is the closed form ``signs[k] exp(log R - sum of the
    other log_xs)`` (``d log F / d log x = x F'(x) / F``; an incomplete function's ``F'(x)`` is the
    density: no loop is differentiated for it), and in the parameters by ``jvp`` through ``parts``
    (``forward_grad``'s loops), only in those that carry a tangent. Two ``log_xs`` (``log x`` and
    ``log(1 - x)``) are one variable: where both carry a tangent, the smaller one's (that of ``log(1 - x)``
    at ``x = 1e-30`` is lost to rounding)."""
    wrapped = jax.custom_jvp(lambda *args: parts(*args)[0])

    def _jvp(primals, tangents):
        params, log_xs = primals[:n_params], primals[n_params:]
        live = [k for k in range(n_params) if not isinstance(tangents[k], SymbolicZero)]
        if live:
            def of_live(*values):
                args = list(primals)
                for k, v in zip(live, values):
                    args[k] = v
                return parts(*args)
            (value, log_ratio), (t_value, _) = jax.jvp(of_live, tuple(params[k] for k in live),
                                                    tuple(tangents[k] for k in live))
        else:
            value, log_ratio = parts(*primals)
            t_value = jnp.zeros_like(value)
        moving = [k for k in range(len(log_xs)) if not isinstance(tangents[n_params + k], SymbolicZero)]
        for k in moving:
            others = sum(log_xs[j] for j in range(len(log_xs)) if j != k)
            exponent = log_ratio - others
            if len(moving) == 2:  # log x and log(1 - x): the smaller one's tangent
                smaller = (log_xs[0] <= log_xs[1]) if k == 0 else (log_xs[0] > log_xs[1])
                exponent = jnp.where(smaller, exponent, -jnp.inf)
            t_value = t_value + signs[k] * jnp.exp(exponent) * tangents[n_params + k]
        return value, t_value

    wrapped.defjvp(_jvp, symbolic_zeros=True)
    return wrapped


_LOG_BETAINC = {(stirling, with_beta, half, gamma_form): _closed_form_in_x(
    lambda a, b, lb, log_x, log_1mx, s=stirling, w=with_beta, h=half, g=gamma_form: _log_betainc_parts(
        a, b, log_x, log_1mx, lb, s, w, h, g),
    3, (1.0, -1.0)) for stirling in (False, True) for with_beta in (False, True) for half in (False, True)
    for gamma_form in ((False, True) if half else (True,))}


def log_betainc(a, b, log_x, log_1mx, stirling=True, log_beta=None, half=False, gamma_form=True):
    """``log I_x(a, b)`` from ``log x`` and ``log(1 - x)`` (pass both, each computed stably by the
    caller: a Student t tail has ``x = 1e-40``, below float32's range; at df 1e10 ``1 - x = 1e-10``).
    ``stirling=False`` (a Python bool) where ``min(a, b) < 10`` for every entry (a Student t's ``b = 1/2``):
    the prefix's Stirling branch, never taken there, is not compiled; ``log_beta``, ``log B(a, b)`` as the
    caller already has it (used only with ``stirling=False``; the Student t's from its normaliser), saves
    compiling ``betaln`` again. The derivative in ``x`` is the closed form ``x^(a-1) (1-x)^(b-1) / (B I)``;
    those in ``a`` and ``b`` by forward mode through the fraction. ``half=True`` (a Python bool) says ``b = 1/2``
    for every entry (the Student t): ``b`` is then that constant (the argument is not read, and nothing is
    differentiated in it), and at ``a >> b``, ``x`` near 1 the value is the closed form ``erfc(sqrt(u))``, not a
    whole incomplete gamma (which compiles for seconds and runs for every entry under a ``where``);
    ``gamma_form=False`` (a Python bool, with ``half``) where every ``a`` is known to be below ``gamma_form_min``,
    where that form is never taken: it is not compiled (a Student t of a fixed df)."""
    with_beta = log_beta is not None and not stirling
    lb = log_beta if with_beta else jnp.zeros((), jnp.result_type(a, b, log_x))
    return _LOG_BETAINC[(bool(stirling), with_beta, bool(half), bool(gamma_form) or not half)](a, b, lb, log_x, log_1mx)
