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
tangent; the closed-form prefix around the loop is differentiated as usual. ``grad``, ``jacrev`` and
``hessian`` all work.

scipy equivalent: ``log(scipy.special.gammainc / gammaincc / betainc)``; the accuracy is stated in
docs/reliability.md.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero
from jax.scipy.special import gammaln

from .special import HALF_LOG_2PI, STIRLING_MIN, _safe, betaln, log1mexp, log1pmx_series, stirling_corr

_MAX_TERMS = 10_000


def forward_grad(fn):
    """``fn`` (elementwise in its array arguments) with a JVP whose partial derivatives are computed
    by forward mode as primal values, so that reverse mode needs no transpose of ``fn``'s loops.

    Only the arguments whose tangent is not a symbolic zero get a forward pass: a fit of a Beta's
    concentrations differentiates in ``a`` and ``b`` only, not in the data's ``log x``."""
    wrapped = jax.custom_jvp(fn)

    def _jvp(primals, tangents):
        shape = jnp.broadcast_shapes(*(jnp.shape(p) for p in primals))
        dtype = jnp.result_type(*primals)
        primals = tuple(jnp.broadcast_to(jnp.asarray(p, dtype), shape) for p in primals)
        live = [i for i, t in enumerate(tangents) if not isinstance(t, SymbolicZero)]
        if not live:
            value = fn(*primals)
            return value, jnp.zeros_like(value)

        def directional(unit):
            """The JVP along ``unit`` (one-hot over the live arguments): one partial derivative."""
            moves = [jnp.zeros(shape, dtype)] * len(primals)
            for k, i in enumerate(live):
                moves[i] = jnp.broadcast_to(unit[k], shape)
            return jax.jvp(fn, primals, tuple(moves))

        values, partials = jax.vmap(directional)(jnp.eye(len(live), dtype=dtype))
        out = sum(partials[k] * jnp.broadcast_to(tangents[i], shape) for k, i in enumerate(live))
        return values[0], out

    wrapped.defjvp(_jvp, symbolic_zeros=True)
    return wrapped


def _running(state):
    """A loop's condition: some entry has not converged and the term budget is not spent."""
    return jnp.any(state[-1]) & (state[0] < _MAX_TERMS)


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
        m, c, d, h, _ = state
        c, d = coefficient(m, c, d)
        c, d = guard(c), 1.0 / guard(d)
        delta = d * c
        return m + 1, c, d, h * delta, jnp.abs(delta - 1.0) >= eps

    d0 = 1.0 / guard(first)
    init = (jnp.asarray(1, jnp.int32), jnp.full_like(d0, 1.0 / tiny), d0, d0, jnp.ones(d0.shape, bool))
    state = jax.lax.while_loop(_running, body, init)
    return state[3]


def gamma_prefix(a, x):
    """``a log x - x - lgamma(a)``; for ``a >= 10`` as ``a log1pmx(u) + log(a)/2 - log(2 pi)/2 - corr(a)``,
    ``u = (x - a)/a`` (no cancellation of huge terms), with ``a log1pmx(u) = a log(x/a) - (x - a)``
    written out where ``|u| >= 1/4`` (``x = 1e-22`` would round ``u`` to -1)."""
    big = a >= STIRLING_MIN
    ab = _safe(big, a, STIRLING_MIN)
    xb = _safe(big, x, STIRLING_MIN)
    u = (xb - ab) / ab
    near = jnp.abs(u) < 0.25
    linear = jnp.where(near, ab * log1pmx_series(_safe(near, u, 0.0)),
                       ab * (jnp.log(_safe(~near, xb, 1.0)) - jnp.log(ab)) - (_safe(~near, xb, 1.0) - ab))
    stirling = linear + 0.5 * jnp.log(ab) - HALF_LOG_2PI - stirling_corr(ab)
    as_ = _safe(~big, a, 1.0)
    xs = _safe(~big, x, 1.0)
    return jnp.where(big, stirling, as_ * jnp.log(xs) - xs - gammaln(as_))


@forward_grad
def _log_p_sum(a, x):
    """``log sum_n x^n / ((a+1) ... (a+n))``, the loop of ``log P``'s series."""
    dtype = jnp.result_type(a, x)

    def body(state):
        n, term, total, _ = state
        term = term * x / (a + n)
        return n + 1, term, total + term, jnp.abs(term) >= jnp.abs(total) * _eps(dtype)

    one = jnp.ones(jnp.broadcast_shapes(jnp.shape(a), jnp.shape(x)), dtype)
    init = (jnp.asarray(1.0, dtype), one, one, jnp.ones(one.shape, bool))
    return jnp.log(jax.lax.while_loop(_running, body, init)[2])


def _log_p_series(a, x):
    """``log P(a, x) = a log x - x - lgamma(a + 1) + log sum_n x^n / ((a+1) ... (a+n))``: with
    ``lgamma(a + 1)``, not ``lgamma(a) - log a``, nothing cancels at small ``a``."""
    big = a >= STIRLING_MIN
    ab, as_ = _safe(big, a, STIRLING_MIN), _safe(~big, a, 1.0)
    prefix = jnp.where(big, gamma_prefix(ab, x) - jnp.log(ab), as_ * jnp.log(x) - x - gammaln(as_ + 1.0))
    return prefix + _log_p_sum(a, x)


def _q_fraction(a, x):
    """Legendre's continued fraction of ``Q(a, x)`` without its prefix (the Lentz loop)."""
    dtype = jnp.result_type(a, x)

    def coefficient(m, c, d):
        an = -m * (m - a)
        bn = x + 1.0 - a + 2.0 * m
        return bn + an / c, an * d + bn

    return jnp.log(_lentz(x + 1.0 - a, coefficient, dtype))


_log_q_cf = forward_grad(_with_shadow(_q_fraction, 0))


def _log_gamma_pq(a, x):
    """``(log P(a, x), log Q(a, x))`` for ``a > 0``, ``x > 0``."""
    series = x < a + 1.0
    a_s, x_s = _safe(series, a, 1.0), _safe(series, x, 0.5)
    a_f, x_f = _safe(~series, a, 1.0), _safe(~series, x, 3.0)
    log_p_s = _log_p_series(a_s, x_s)
    log_q_f = gamma_prefix(a_f, x_f) + _log_q_cf(a_f, x_f)
    log_p = jnp.where(series, log_p_s, log1mexp(log_q_f))
    log_q = jnp.where(series, log1mexp(log_p_s), log_q_f)
    return log_p, log_q


def log_gammainc(a, x):
    """``log P(a, x)``, the log of the regularised lower incomplete gamma; ``-inf`` at ``x <= 0``."""
    return log_gammainc_tail(a, x, False)


def log_gammaincc(a, x):
    """``log Q(a, x)``, the log of the regularised upper incomplete gamma; ``0`` at ``x <= 0``."""
    return log_gammainc_tail(a, x, True)


def log_gammainc_tail(a, x, upper):
    """``log Q(a, x)`` where ``upper``, ``log P(a, x)`` elsewhere, from one evaluation of both."""
    pos = x > 0
    log_p, log_q = _log_gamma_pq(a, _safe(pos, x, 1.0))
    return jnp.where(upper, jnp.where(pos, log_q, 0.0), jnp.where(pos, log_p, -jnp.inf))


def _beta_fraction(a, b, x):
    """``log`` of the continued fraction of ``I_x(a, b)`` without its prefix, for
    ``x < (a + 1)/(a + b + 2)`` (the Lentz loop, two partial numerators a step)."""
    dtype = jnp.result_type(a, b, x)
    eps, tiny = _eps(dtype), _tiny(dtype)

    def guard(v):
        return jnp.where(jnp.abs(v) < tiny, tiny, v)

    def half_step(aa, c, d):
        d = 1.0 / guard(1.0 + aa * d)
        c = guard(1.0 + aa / c)
        return c, d, c * d

    def body(state):
        m, c, d, h, _ = state
        even = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        c, d, delta = half_step(even, c, d)
        h = h * delta
        odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        c, d, delta = half_step(odd, c, d)
        return m + 1, c, d, h * delta, jnp.abs(delta - 1.0) >= eps

    d0 = 1.0 / guard(1.0 - (a + b) * x / (a + 1.0))
    init = (jnp.asarray(1.0, dtype), jnp.ones_like(d0), d0, d0, jnp.ones(d0.shape, bool))
    return jnp.log(jax.lax.while_loop(_running, body, init)[3])


_log_beta_cf = forward_grad(_with_shadow(_beta_fraction, 1))


def log_betainc(a, b, log_x, log_1mx):
    """``log I_x(a, b)`` from ``log x`` and ``log(1 - x)`` (pass both, each computed stably by the
    caller: a Student t tail has ``x = 1e-40``, below float32's range)."""
    direct = jnp.exp(log_x) < (a + 1.0) / (a + b + 2.0)
    # one loop for both sides: I_x(a, b) directly, or 1 - I_{1-x}(b, a) where the fraction converges
    first, second = jnp.where(direct, a, b), jnp.where(direct, b, a)
    log_near, log_far = jnp.where(direct, log_x, log_1mx), jnp.where(direct, log_1mx, log_x)
    value = (first * log_near + second * log_far - jnp.log(first) - betaln(first, second)
             + _log_beta_cf(first, second, jnp.exp(log_near)))
    return jnp.where(direct, value, log1mexp(jnp.minimum(value, 0.0)))
