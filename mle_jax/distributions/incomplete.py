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
``betainc`` has none in ``a`` and ``b``) is computed by forward mode through the same convergent
loop and combined linearly (``forward_grad``): ``grad``, ``jacrev`` and ``hessian`` all work.

scipy equivalent: ``log(scipy.special.gammainc / gammaincc / betainc)``; the accuracy is stated in
docs/reliability.md.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import gammaln

from .special import HALF_LOG_2PI, STIRLING_MIN, _safe, betaln, log1mexp, log1pmx_series, stirling_corr

_MAX_TERMS = 10_000


def forward_grad(fn):
    """``fn`` (elementwise in its array arguments) with a JVP whose partial derivatives are computed
    by forward mode as primal values, so that reverse mode needs no transpose of ``fn``'s loops."""
    wrapped = jax.custom_jvp(fn)

    @wrapped.defjvp
    def _jvp(primals, tangents):
        shape = jnp.broadcast_shapes(*(jnp.shape(p) for p in primals))
        dtype = jnp.result_type(*primals)
        primals = tuple(jnp.broadcast_to(jnp.asarray(p, dtype), shape) for p in primals)
        n = len(primals)
        basis = [jnp.broadcast_to(jnp.eye(n, dtype=dtype)[:, i].reshape((n,) + (1,) * len(shape)), (n,) + shape)
                 for i in range(n)]
        values, partials = jax.vmap(lambda *ts: jax.jvp(fn, primals, ts))(*basis)
        out = sum(partials[i] * jnp.broadcast_to(t, shape) for i, t in enumerate(tangents))
        return values[0], out

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


def _log_p_series(a, x):
    """``log P(a, x) = a log x - x - lgamma(a + 1) + log sum_n x^n / ((a+1) ... (a+n))``: with
    ``lgamma(a + 1)``, not ``lgamma(a) - log a``, nothing cancels at small ``a``."""
    dtype = jnp.result_type(a, x)

    def body(state):
        n, term, total, _ = state
        term = term * x / (a + n)
        return n + 1, term, total + term, jnp.abs(term) >= jnp.abs(total) * _eps(dtype)

    one = jnp.ones(jnp.broadcast_shapes(jnp.shape(a), jnp.shape(x)), dtype)
    init = (jnp.asarray(1.0, dtype), one, one, jnp.ones(one.shape, bool))
    state = jax.lax.while_loop(_running, body, init)
    big = a >= STIRLING_MIN
    ab, as_ = _safe(big, a, STIRLING_MIN), _safe(~big, a, 1.0)
    prefix = jnp.where(big, gamma_prefix(ab, x) - jnp.log(ab), as_ * jnp.log(x) - x - gammaln(as_ + 1.0))
    return prefix + jnp.log(state[2])


def _log_q_fraction(a, x):
    dtype = jnp.result_type(a, x)

    def coefficient(m, c, d):
        an = -m * (m - a)
        bn = x + 1.0 - a + 2.0 * m
        return bn + an / c, an * d + bn

    return gamma_prefix(a, x) + jnp.log(_lentz(x + 1.0 - a, coefficient, dtype))


def _log_gamma_pq(a, x):
    """``(log P(a, x), log Q(a, x))`` for ``a > 0``, ``x > 0``."""
    series = x < a + 1.0
    a_s, x_s = _safe(series, a, 1.0), _safe(series, x, 0.5)
    a_f, x_f = _safe(~series, a, 1.0), _safe(~series, x, 3.0)
    log_p_s = _log_p_series(a_s, x_s)
    log_q_f = _with_shadow(_log_q_fraction, 0)(a_f, x_f)
    log_p = jnp.where(series, log_p_s, log1mexp(log_q_f))
    log_q = jnp.where(series, log1mexp(log_p_s), log_q_f)
    return log_p, log_q


@forward_grad
def log_gammainc(a, x):
    """``log P(a, x)``, the log of the regularised lower incomplete gamma; ``-inf`` at ``x <= 0``."""
    pos = x > 0
    return jnp.where(pos, _log_gamma_pq(a, _safe(pos, x, 1.0))[0], -jnp.inf)


@forward_grad
def log_gammaincc(a, x):
    """``log Q(a, x)``, the log of the regularised upper incomplete gamma; ``0`` at ``x <= 0``."""
    pos = x > 0
    return jnp.where(pos, _log_gamma_pq(a, _safe(pos, x, 1.0))[1], 0.0)


def _log_beta_fraction(a, b, log_x, log_1mx):
    """``log I_x(a, b)`` by the continued fraction, for ``x < (a + 1)/(a + b + 2)``."""
    dtype = jnp.result_type(a, b, log_x)
    eps, tiny = _eps(dtype), _tiny(dtype)
    x = jnp.exp(log_x)

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
    fraction = jax.lax.while_loop(_running, body, init)[3]
    return a * log_x + b * log_1mx - jnp.log(a) - betaln(a, b) + jnp.log(fraction)


@forward_grad
def log_betainc(a, b, log_x, log_1mx):
    """``log I_x(a, b)`` from ``log x`` and ``log(1 - x)`` (pass both, each computed stably by the
    caller: a Student t tail has ``x = 1e-40``, below float32's range)."""
    x = jnp.exp(log_x)
    direct = x < (a + 1.0) / (a + b + 2.0)
    quarter, three_quarters = math.log(0.25), math.log(0.75)
    fraction = _with_shadow(_log_beta_fraction, 1)
    lo = fraction(_safe(direct, a, 1.0), _safe(direct, b, 1.0), _safe(direct, log_x, quarter),
                            _safe(direct, log_1mx, three_quarters))
    hi = fraction(_safe(~direct, b, 1.0), _safe(~direct, a, 1.0), _safe(~direct, log_1mx, quarter),
                            _safe(~direct, log_x, three_quarters))
    return jnp.where(direct, lo, log1mexp(jnp.minimum(hi, 0.0)))
