"""Families for rankings: y a permutation of K items, best first.

    mj.plackett_luce(K)     raw: K item scores (the Plackett-Luce logits)
"""

from __future__ import annotations

from ..distributions import PlackettLuce
from ..distributions.plackett_luce import permutations
from ._arguments import whole_number
from ._family import Family, Spec, build


def _theta(fp, raw):
    return PlackettLuce(raw)


def plackett_luce(num_items: int) -> Family:
    """Plackett-Luce family for rankings: the model emits K raw scores s (the logits, identity link: only
    their differences matter) and

        log Pr(pi | s) = sum_j [s_{pi_j} - logsumexp(s_{pi_j}, ..., s_{pi_K})],

    ``pi`` the ranking, ``pi[0]`` the item ranked first. A linear model ``s_k = x_k . w`` is the rank-ordered
    (exploded) logit of econometrics. Support: y of shape (K,), a permutation of ``range(K)`` (integers or
    whole floats). scipy has none; TFP: ``tfd.PlackettLuce(scores=exp(s)).log_prob``.
    Reference: Plackett (1975), *The analysis of permutations*; Hunter (2004), *MM algorithms for
    generalized Bradley-Terry models*.
    """
    k = whole_number("plackett_luce", "num_items", num_items, 2)
    return build(spec=Spec("plackett_luce", args=(k,)), support=permutations(k), theta=_theta, raw_shape=(k,),
                 event_shape=(k,))
