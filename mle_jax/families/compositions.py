"""Families for compositions: y on the probability simplex (K shares summing to 1).

    mj.dirichlet(K)              raw: K values, concentration = softplus(raw) + eps
    mj.dirichlet(K, link="exp")  concentration = exp(raw) + eps
"""

from __future__ import annotations

from .. import links
from ..distributions import Dirichlet
from ..distributions.dirichlet import simplex
from ._arguments import whole_number
from ._family import Family, Spec, build

_LINKS = ("softplus", "exp")


def dirichlet(num_components: int, link: str = "softplus") -> Family:
    """Dirichlet family for compositions: the model emits K raw values, one concentration each,
    ``a_k = link(raw_k)`` with ``link`` ``"softplus"`` (the default) or ``"exp"`` (both plus the floor
    ``finfo(dtype).eps``, so a_k > 0).

    ``log Pr(y | a) = sum_k (a_k - 1) log y_k - sum_k lgamma(a_k) + lgamma(sum_k a_k)``. The mean share is
    ``a_k / a_0`` and the total ``a_0`` is the precision: the model learns both.
    Support: y of shape (K,), every share in (0, 1), summing to 1 (within 1e-4, or ``4 K eps(float32)``).
    scipy: ``dirichlet.logpdf(y, a)``. Reference: Maier (2014), *DirichletReg: Dirichlet regression for
    compositional data in R*; Aitchison (1986), *The statistical analysis of compositional data*.
    """
    k = whole_number("dirichlet", "num_components", num_components, 2)
    if link not in _LINKS:
        raise ValueError(f"dirichlet: link must be one of {list(_LINKS)}; got {link!r}")
    forward = links.POSITIVE[link].forward

    def theta(fp, raw):
        return Dirichlet(forward(raw))

    options = () if link == "softplus" else (("link", link),)
    return build(spec=Spec("dirichlet", args=(k,), options=options), support=simplex(k), theta=theta,
                 raw_shape=(k,), event_shape=(k,))
