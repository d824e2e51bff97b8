"""The Plackett-Luce distribution over rankings: permutations of K items, best first.

    Pr(pi | s) = prod_{j=1}^{K} exp(s_{pi_j}) / sum_{m=j}^{K} exp(s_{pi_m})

``logits`` s has shape (K,): item k's score. The target ``pi`` is a permutation of ``range(K)`` (shape
(K,)), ``pi[0]`` the item ranked first: the ranking is built by drawing the best item with probabilities
``softmax(s)``, then the best of the rest, and so on (Luce's choice axiom). The log probability is
``sum_j s_{pi_j} - L_j`` with ``L_j = logsumexp(s_{pi_j}, ..., s_{pi_K})``, the reverse cumulative
logsumexp, built from the back one item at a time (``ranked_log_prob``: ``o_j - L_j = log sig(o_j - L_{j+1})``,
one ``exp`` and one ``log1p`` per item, its derivative written): never a log of a sum that can underflow,
exact for logits of 1e4.
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
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _support, _twins, registry
from .._checks import check_event_shape
from .registry import Param
from .special import log_sigmoid_pair, sigmoid_pair

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
    """The log probability of the ordered scores ``o`` (last axis) and, per position, ``a_j = exp(o_j - L_j)``
    (the chance that item ``j`` wins among ``j..K``) and ``b_j = 1 - a_j = exp(L_{j+1} - L_j)``, from the back:
    ``L_K = o_K``, ``d_j = o_j - L_{j+1}``, ``o_j - L_j = log sig(d_j) = min(d_j, 0) - t_j`` and
    ``L_j = max(o_j, L_{j+1}) + t_j`` with ``t_j = log1p(exp(-|d_j|))``; ``a_j = sig(d_j)``, ``b_j = sig(-d_j)``
    (``special.log_sigmoid_pair`` and ``sigmoid_pair``, which share their ``exp``): one ``exp``, one ``log1p`` and
    one division per item, each exact in both tails (a logit of 1e4 beside one of 0 loses nothing)."""
    k = o.shape[-1]
    items = jnp.moveaxis(o, -1, 0)

    def back(lse, o_j):
        d = o_j - lse
        log_a, log_b = log_sigmoid_pair(d)  # one exp between them and sigmoid_pair (XLA merges the two)
        a, b = sigmoid_pair(d)
        # L_j = o_j - log a_j = L_{j+1} - log b_j, each side where its term is the -t: no rounding of o_j - d
        return jnp.where(d >= 0, o_j - log_a, lse - log_b), (log_a, a, b)
    last = items[-1]
    _, (log_a, a, b) = jax.lax.scan(back, last, items[:-1], reverse=True, unroll=k <= SMALL_K)
    return jnp.sum(log_a, axis=0), jnp.concatenate([a, jnp.ones_like(last)[None]]), b


@jax.custom_jvp
def ranked_log_prob(o):
    """``sum_j [o_j - logsumexp(o_j, ..., o_K)]``: the Plackett-Luce log probability of scores already in
    ranked order (last axis), by ``_chain``. Its derivative is written, ``d/do_m = 1 - a_m S_m`` with
    ``S_m = sum_{j <= m} exp(L_m - L_j) = 1 + b_{m-1} S_{m-1}`` (``S_1 = 1``): a product and a sum per item
    where autodiff would differentiate every step of the chain. A JVP, so Hessians (forward over reverse)
    work too."""
    return _chain(o)[0]


@ranked_log_prob.defjvp
def _ranked_jvp(primals, tangents):
    (o,), (do,) = primals, tangents
    value, a, b = _chain(o)

    def forward(s_prev, ab):
        a_m, b_prev = ab
        s_m = 1.0 + b_prev * s_prev
        return s_m, 1.0 - a_m * s_m
    zero = jnp.zeros_like(a[0])
    _, grad = jax.lax.scan(forward, zero, (a, jnp.concatenate([zero[None], b])), unroll=o.shape[-1] <= SMALL_K)
    return value, jnp.sum(jnp.moveaxis(grad, 0, -1) * do, axis=-1)


def _log_prob_of(s, pi):
    """``sum_j s_{pi_j} - logsumexp(s_{pi_j..K})`` for a valid permutation ``pi`` (last axes)."""
    return ranked_log_prob(jnp.take_along_axis(s, pi, axis=-1))


def log_prob(theta: PlackettLuce, y):
    """``log Pr(pi | s) = sum_j [s_{pi_j} - logsumexp(s_{pi_j}, ..., s_{pi_K})]``; ``-inf`` where ``y`` is
    not a permutation of ``range(K)`` (NaN where it holds a NaN)."""
    s = theta.logits
    check_event_shape("PlackettLuce", y, jnp.shape(s))
    k = s.shape[-1]
    y = jnp.asarray(y)
    valid = is_permutation(y, k)
    default = jnp.broadcast_to(jnp.arange(k, dtype=jnp.int32), y.shape)
    pi = jnp.where(valid[..., None], y.astype(jnp.int32) if jnp.issubdtype(y.dtype, jnp.floating) else y,
                   default).astype(jnp.int32)
    value = _log_prob_of(s, pi)
    nan = jnp.any(jnp.isnan(y), axis=-1) if jnp.issubdtype(y.dtype, jnp.floating) else False
    return jnp.where(valid, value, jnp.where(nan, jnp.nan, -jnp.inf))


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
    return jnp.maximum(jnp.sum(jnp.exp(lp) * (lp - lq), axis=-1), 0.0)


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
