"""The Plackett-Luce distribution over rankings: permutations of K items, best first.

    Pr(pi | s) = prod_{j=1}^{K} exp(s_{pi_j}) / sum_{m=j}^{K} exp(s_{pi_m})

``logits`` s has shape (K,): item k's score. The target ``pi`` is a permutation of ``range(K)`` (shape
(K,)), ``pi[0]`` the item ranked first: the ranking is built by drawing the best item with probabilities
``softmax(s)``, then the best of the rest, and so on (Luce's choice axiom). The log probability is
``sum_j s_{pi_j} - L_j`` with ``L_j = logsumexp(s_{pi_j}, ..., s_{pi_K})``, the reverse cumulative
logsumexp, built from the back with a running maximum (``ranked_log_prob``: ``L_j = M_j + log1p(D_j)``,
``M_j = max(s_{pi_j}, ..., s_{pi_K})``, one ``exp`` and one division per item and one ``log1p`` per ranking, its
derivative written and mapped back to the items by compares, not a scatter): never a log of a sum that can
underflow, exact for logits of 1e4.
Adding a constant to every logit changes nothing. ``-inf`` for any target that is not a permutation.

Mode: the items sorted by logit, descending (each factor is largest when the best remaining item comes
first). Sample: ``argsort(s + Gumbel noise)``, descending (Yellott 1977: the Gumbel-max trick). Entropy
and KL have no closed form: they are sums over all K! rankings; they are computed by exact enumeration
for K <= ``ENUMERATE_MAX`` (8!, 40320 rankings) and are not available above (``mj.kl_mc`` estimates the KL);
so is the expected (Fisher) information.

scipy has no Plackett-Luce; the reference is the product formula over all K! permutations
(tests/test_plackett_luce.py) and TFP's ``tfd.PlackettLuce(scores=exp(s))`` (positive scores, the same
best-first convention).
Reference: Plackett (1975), *The analysis of permutations*; Luce (1959), *Individual choice behavior*;
Hunter (2004), *MM algorithms for generalized Bradley-Terry models*.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _support, _twins, registry
from .special import nonnegative
from .._checks import check_event_shape
from .registry import Param

#: entropy and KL enumerate every ranking up to this many items (8! = 40320)
ENUMERATE_MAX = 8


class PlackettLuce(NamedTuple):
    """Parameters of one example's Plackett-Luce ranking: ``logits`` (item scores) of shape (K,)."""

    logits: Param


@dataclasses.dataclass(frozen=True)
class Permutation(_support.Support):
    """Rankings of K items: each row a permutation of ``range(K)`` (whole numbers, each exactly once).
    ``off`` flags every entry of a row that is not a permutation; a row of another shape is left to the
    shape check."""

    size: int = 2

    def off(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y)
        if y.ndim != 2 or y.shape[1] != self.size:
            return np.zeros(y.shape, bool)
        with np.errstate(invalid="ignore"):
            ranks = np.sort(y, axis=1)
            row = np.any(ranks != np.arange(self.size), axis=1)
        return np.broadcast_to(row[:, None], y.shape).copy()

    def holds(self, y):
        return is_permutation(y, self.size)

    def inside(self):  # pyright: ignore[reportIncompatibleMethodOverride]
        """A value on the support: a whole ranking (no single number is one; ``np.full`` broadcasts a row)."""
        return np.arange(self.size)[::-1].copy()

    def outside(self) -> tuple[float, ...]:
        return (-1.0, float(self.size), 0.5)


def permutations(k: int) -> Permutation:
    """The support of a Plackett-Luce over K items: permutations of ``range(K)``, integer or whole floats."""
    return Permutation(f"permutations({k})", f"a permutation of range({k}) (each item 0..{k - 1} exactly once, "
                       f"best first)", frozenset({"float", "int"}), lower=0.0, upper=float(k - 1), integer=True,
                       what="ranking", size=k)


#: up to this many items a ranking is checked by counting each item (K^2 compares) and the chain of
#: ``ranked_log_prob`` is unrolled; above, by a sort and a rolled scan
SMALL_K = 32


def is_permutation(y, k: int):
    """True where the row ``y`` (last axis) holds each of ``0, ..., K-1`` exactly once: each item counted
    (``K^2`` compares, no sort) for K <= ``SMALL_K``, the sorted row compared with ``range(K)`` above."""
    y = jnp.asarray(y)
    items = jnp.arange(k, dtype=y.dtype)
    if k <= SMALL_K:
        return jnp.all(jnp.sum(y[..., :, None] == items.reshape((1,) * y.ndim + (k,)), axis=-2) == 1, axis=-1)
    return jnp.all(jnp.sort(y, axis=-1) == items.reshape((1,) * (y.ndim - 1) + (k,)), axis=-1)


def _chain(o):
    """The pieces of the reverse cumulative logsumexp of the ordered scores ``o`` (last axis), by a running
    maximum: ``L_j = M_j + log1p(D_j)`` with ``M_j = max(o_j, ..., o_K)`` and ``D_j = sum_{i >= j} exp(o_i - M_j) - 1``
    (at least 0: the maximum's own term is the 1). From the back, ``M_K = o_K``, ``D_K = 0``; with
    ``d_j = o_j - M_{j+1}`` and ``t_j = exp(-|d_j|)``, where ``o_j`` leads (``d_j >= 0``) ``M_j = o_j`` and
    ``D_j = t_j (1 + D_{j+1})``, else ``M_j = M_{j+1}`` and ``D_j = t_j + D_{j+1}``. The running maximum (selects)
    comes first, then the ``exp`` of every ``|d_j|`` side by side, then only a select, a product and a sum run in
    sequence. Also ``E = prod_j (1 + D_j) - 1``, built as ``E + D_j + E D_j`` (every term at least 0: no
    cancellation). Returns ``d``, ``lead``, ``t`` and ``D`` for
    the positions ``j < K`` (last axis K - 1) and ``E``. One ``exp`` per item; nothing overflows or underflows
    to a wrong answer (a logit of 1e4 beside one of 0 loses nothing)."""
    k = o.shape[-1]
    unroll = k <= SMALL_K
    items = jnp.moveaxis(o, -1, 0)

    def running_max(top, o_j):                         # M_{j+1} in, M_j out (exact ties lead, as below)
        return jnp.where(o_j >= top, o_j, top), top
    _, tops = jax.lax.scan(running_max, items[-1], items[:-1], reverse=True, unroll=unroll)
    d = o[..., :-1] - jnp.moveaxis(tops, 0, -1)       # d_j = o_j - M_{j+1}
    lead = d >= 0
    t = jnp.exp(jnp.where(lead, -d, d))               # exp(-|d|), one branch per side: every item's at once

    def back(carry, lead_t):
        rest, excess = carry                           # D_{j+1}, prod_{i > j} (1 + D_i) - 1
        lead_j, t_j = lead_t
        rest = jnp.where(lead_j, t_j * (1.0 + rest), t_j + rest)
        return (rest, excess + rest + excess * rest), rest
    zero = jnp.zeros_like(items[-1])
    (_, excess), rest = jax.lax.scan(back, (zero, zero), (jnp.moveaxis(lead, -1, 0), jnp.moveaxis(t, -1, 0)),
                                     reverse=True, unroll=unroll)
    return d, lead, t, jnp.moveaxis(rest, 0, -1), excess


def _sum_items(x):
    """The sum over the last axis, as a chain of adds for up to ``SMALL_K`` items (XLA fuses them into the
    elementwise work around them; a reduction becomes a pass of its own)."""
    if x.shape[-1] > SMALL_K or x.shape[-1] == 0:
        return jnp.sum(x, axis=-1)
    total = x[..., 0]
    for j in range(1, x.shape[-1]):
        total = total + x[..., j]
    return total


def _value(d, rest, excess):
    """``sum_{j < K} [o_j - L_j] = sum_j min(d_j, 0) - sum_j log1p(D_j)``; the second sum is ``log1p(E)``, one
    ``log1p`` per ranking instead of one per item, where ``prod_j (1 + D_j) <= K!`` (each ``1 + D_j`` is at most
    the number of items left) cannot overflow the dtype; the tiny loss of a confident ranking keeps its relative
    precision either way."""
    k = d.shape[-1] + 1
    if math.lgamma(k + 1) < math.log(float(jnp.finfo(d.dtype).max)) - 1.0:
        return _sum_items(jnp.minimum(d, 0.0)) - jnp.log1p(excess)
    return _sum_items(jnp.minimum(d, 0.0) - jnp.log1p(rest))


def _value_and_grad(o):
    """The log probability of the ordered scores ``o`` and its derivative in ranked order, ``d/do_m = 1 - a_m S_m
    = b_m - a_m (S_m - 1)`` with ``a_m = exp(o_m - L_m)`` (the chance that item m wins among m..K; ``a_K = 1``),
    ``b_m = exp(L_{m+1} - L_m) = 1 - a_m`` (``b_K = 0``) and ``S_m = sum_{j <= m} exp(L_m - L_j) = 1 + b_{m-1} S_{m-1}``
    (``S_1 = 1``; the second form keeps a confident ranking's tiny derivative, ``e^-30`` beside 1, which
    ``1 - a_m S_m`` rounds to 0), where
    ``a_m = [1 or t_m] / (1 + D_m)`` and ``b_m = [t_m or 1] (1 + D_{m+1}) / (1 + D_m)`` (``o_m`` leads or not): one
    division per item, no new ``exp``, where autodiff would differentiate every step of the chain. Each side of
    every branch is the smooth function itself, so Hessians (autodiff of this) are right at exact ties too."""
    d, lead, t, rest, excess = _chain(o)
    inv = 1.0 / (1.0 + rest)
    one = jnp.ones_like(o[..., :1])
    a = jnp.concatenate([jnp.where(lead, 1.0, t) * inv, one], axis=-1)
    b = jnp.where(lead, t, 1.0) * (1.0 + jnp.concatenate([rest[..., 1:], jnp.zeros_like(one)], axis=-1)) * inv

    def forward(carry, ab):
        b_prev, u_prev = carry                          # b_{m-1}, S_{m-1} - 1
        a_m, b_m = ab
        u_m = b_prev * (1.0 + u_prev)                   # S_m - 1
        return (b_m, u_m), b_m - a_m * u_m              # 1 - a_m S_m, with 1 - a_m = b_m: no 1 - (1 - tiny)
    b = jnp.concatenate([b, jnp.zeros_like(one)], axis=-1)
    zero = jnp.zeros_like(one[..., 0])
    _, grad = jax.lax.scan(forward, (zero, zero), (jnp.moveaxis(a, -1, 0), jnp.moveaxis(b, -1, 0)),
                           unroll=o.shape[-1] <= SMALL_K)
    return _value(d, rest, excess), jnp.moveaxis(grad, 0, -1)


@jax.custom_jvp
def ranked_log_prob(o):
    """``sum_j [o_j - logsumexp(o_j, ..., o_K)] = sum_{j < K} [min(d_j, 0) - log1p(D_j)]``: the Plackett-Luce log
    probability of scores already in ranked order (last axis), by ``_chain``; its derivative written
    (``_value_and_grad``). A JVP, so Hessians (forward over reverse) work too."""
    d, _, _, rest, excess = _chain(o)
    return _value(d, rest, excess)


@ranked_log_prob.defjvp
def _ranked_jvp(primals, tangents):
    (o,), (do,) = primals, tangents
    value, grad = _value_and_grad(o)
    return value, jnp.sum(grad * do, axis=-1)


@jax.custom_jvp
def _permuted_log_prob(s, pi, valid):
    """``ranked_log_prob(s_pi)`` where ``valid``, else ``-inf``, for a permutation ``pi`` (last axes; K <=
    ``SMALL_K``), with its derivative in the items' own order, ``d/ds_k = sum_j [pi_j = k] g_j`` (``g`` the
    ranked-order derivative; 0 where not ``valid``): K^2 compares and selects, where autodiff of the gather
    would transpose to a scatter-add (a serial loop on a CPU)."""
    value = ranked_log_prob(jnp.take_along_axis(s, pi, axis=-1, mode="promise_in_bounds"))
    return jnp.where(valid, value, -jnp.inf)


@_permuted_log_prob.defjvp
def _permuted_jvp(primals, tangents):
    (s, pi, valid), (ds, _, _) = primals, tangents
    value, grad = _value_and_grad(jnp.take_along_axis(s, pi, axis=-1, mode="promise_in_bounds"))
    items = jnp.arange(s.shape[-1], dtype=pi.dtype)
    by_item = jnp.zeros_like(s)
    for j in range(s.shape[-1]):
        by_item = by_item + jnp.where(pi[..., j:j + 1] == items, grad[..., j:j + 1], 0.0)
    by_item = jnp.where(valid[..., None], by_item, 0.0)
    return jnp.where(valid, value, -jnp.inf), jnp.sum(by_item * ds, axis=-1)


@jax.jit
def _log_prob_of(s, pi, valid: Any = True):
    """``sum_j s_{pi_j} - logsumexp(s_{pi_j..K})`` for a permutation ``pi`` (last axes) where ``valid``, else
    ``-inf``: its derivative mapped back to the items by compares for K <= ``SMALL_K``, by the gather's
    transpose above. Jitted: called eagerly (a ``log_prob`` outside ``jit``) it runs as one compiled program,
    not op by op through the unrolled chain; inside ``jit`` it is inlined."""
    shape = jnp.broadcast_shapes(jnp.shape(s), jnp.shape(pi))
    s, pi = jnp.broadcast_to(s, shape), jnp.broadcast_to(pi, shape)
    valid = jnp.broadcast_to(valid, shape[:-1])
    if s.shape[-1] <= SMALL_K:
        return _permuted_log_prob(s, pi, valid)
    # a row that is not a ranking reads zeros: its derivative is selected away, never 0 times a NaN of its logits
    ordered = jnp.where(valid[..., None], jnp.take_along_axis(s, pi, axis=-1, mode="promise_in_bounds"), 0.0)
    return jnp.where(valid, ranked_log_prob(ordered), -jnp.inf)


def log_prob(theta: PlackettLuce, y):
    """``log Pr(pi | s) = sum_j [s_{pi_j} - logsumexp(s_{pi_j}, ..., s_{pi_K})]``; ``-inf`` where ``y`` is
    not a permutation of ``range(K)`` (NaN where it holds a NaN)."""
    s = jnp.asarray(theta.logits)
    if s.ndim == 0 or s.shape[-1] == 0:
        raise ValueError(f"PlackettLuce: logits hold the scores of K >= 1 items on their last axis; got shape {s.shape}")
    check_event_shape("PlackettLuce", y, s.shape)
    k = s.shape[-1]
    y = jnp.asarray(y)
    if not (jnp.issubdtype(y.dtype, jnp.integer) or jnp.issubdtype(y.dtype, jnp.floating)):
        raise ValueError(f"PlackettLuce: a ranking holds item numbers (an integer or floating dtype); got dtype {y.dtype}")
    valid = is_permutation(y, k)
    default = jnp.broadcast_to(jnp.arange(k, dtype=jnp.int32), y.shape)
    pi = jnp.where(valid[..., None], y.astype(jnp.int32) if jnp.issubdtype(y.dtype, jnp.floating) else y,
                   default).astype(jnp.int32)
    value = _log_prob_of(s, pi, valid)
    if jnp.issubdtype(y.dtype, jnp.floating):
        return jnp.where(jnp.any(jnp.isnan(y), axis=-1), jnp.nan, value)
    return value


def mode(theta: PlackettLuce):
    """The most probable ranking: items by logit, descending (int32; ties by index)."""
    return jnp.argsort(-theta.logits, axis=-1, stable=True).astype(jnp.int32)


def sample(key, theta: PlackettLuce):
    """One ranking per example: ``argsort(s + g)`` descending, ``g`` standard Gumbel noise (int32)."""
    s = theta.logits
    g = jax.random.gumbel(key, jnp.shape(s), jnp.result_type(s, float))
    return jnp.argsort(-(s + g), axis=-1).astype(jnp.int32)


def _all_rankings(k: int) -> np.ndarray:
    if k > ENUMERATE_MAX:
        raise NotImplementedError(
            f"PlackettLuce over {k} items: entropy and KL enumerate all K! rankings, available for "
            f"K <= {ENUMERATE_MAX}; estimate a KL with mj.kl_mc")
    return np.array(list(itertools.permutations(range(k))), np.int32)


def log_probs(theta: PlackettLuce):
    """The log probability of every ranking of ``range(K)`` (in ``itertools.permutations`` order), on a
    last axis of K! entries; K <= ``ENUMERATE_MAX``."""
    s = theta.logits
    rankings = jnp.asarray(_all_rankings(s.shape[-1]))
    expanded = jnp.broadcast_to(s[..., None, :], s.shape[:-1] + rankings.shape)
    return _log_prob_of(expanded, jnp.broadcast_to(rankings, expanded.shape))


def entropy(theta: PlackettLuce):
    """``-sum_pi Pr(pi) log Pr(pi)`` over all K! rankings (exact enumeration, K <= 8)."""
    lp = log_probs(theta)
    return -jnp.sum(jnp.exp(lp) * lp, axis=-1)


def kl(p: PlackettLuce, q: PlackettLuce):
    """``sum_pi Pr_p(pi) (log Pr_p(pi) - log Pr_q(pi))`` over all K! rankings (exact enumeration, K <= 8),
    clamped at 0."""
    lp, lq = log_probs(p), log_probs(q)
    return nonnegative(jnp.sum(jnp.exp(lp) * (lp - lq), axis=-1))


def fisher(theta: PlackettLuce):
    """The expected information in the K logits, ``F = sum_pi Pr(pi) g_pi g_pi'`` over all K! rankings (exact
    enumeration, K <= 8), with the score ``g_pi`` in closed form: for the item at position p,
    ``d log Pr / d s_{pi_p} = 1 - sum_{j <= p} exp(s_{pi_p} - L_j)`` (``L_j`` the reverse cumulative logsumexp),
    one (K!, K) array per example. A (K, K) matrix of rank K - 1 (a constant added to every logit changes nothing)."""
    s = theta.logits
    k = s.shape[-1]
    rankings = jnp.asarray(_all_rankings(k))                                   # (K!, K)
    ordered = s[rankings]
    tails = jax.lax.cumlogsumexp(ordered, axis=1, reverse=True)               # L_j
    log_p = jnp.sum(ordered - tails, axis=1)
    seen = jax.lax.cumlogsumexp(-tails, axis=1)                               # log sum_{j <= p} exp(-L_j)
    score_ordered = 1.0 - jnp.exp(ordered + seen)
    scores = jnp.zeros_like(ordered).at[jnp.arange(rankings.shape[0])[:, None], rankings].set(score_ordered)
    return jnp.einsum("n,ni,nj->ij", jnp.exp(log_p), scores, scores)


def event_shape(theta: PlackettLuce):
    return jnp.shape(theta.logits)


def batch_shape(theta):
    """The examples' axes: every axis of the logits but the last (one example's items)."""
    return jnp.shape(theta.logits)[:-1]


def to_tfp(theta: PlackettLuce):
    """TFP's twin: ``tfd.PlackettLuce(scores=exp(s - c))`` (positive scores), ``c = max(max s - 64, 0)``: the
    shift changes no probability, keeps ``exp`` finite for logits of 1e4, and is 0 for moderate logits (so
    ``mj.from_tfp`` gives the same logits back)."""
    s = theta.logits
    shift = jnp.maximum(jnp.max(s, axis=-1, keepdims=True) - 64.0, 0.0)
    scores = jnp.exp(s - jax.lax.stop_gradient(shift))
    return _twins.tfd().PlackettLuce(scores=scores)


def from_tfp(dist) -> PlackettLuce:
    """``logits = log(scores)``."""
    s = jnp.log(dist.scores)
    return PlackettLuce(_twins.full(dist)(s, s.shape[-1:]))


registry.register(PlackettLuce, registry.Ops(
    log_prob=log_prob,
    mode=mode,
    sample=sample,
    entropy=entropy,
    event_shape=event_shape,
    batch_shape=batch_shape,
    fisher=fisher,
    to_tfp=to_tfp,
    tfp_names=("PlackettLuce",),
    from_tfp=from_tfp,
    component_axes=1,  # the logits' last axis holds one example's items
    support=lambda theta: permutations(int(jnp.shape(theta.logits)[-1])),
    discrete=True,
    event_ndims=lambda theta: 1,  # a ranking is a vector target: no CDF, quantile or CRPS
    missing=("a Plackett-Luce target is a ranking (a permutation): no mean, variance, CDF or quantile; "
             f"entropy, KL and Fisher information by enumeration of the K! rankings for K <= {ENUMERATE_MAX} only"),
))
registry.register_kl(PlackettLuce, PlackettLuce, kl)
