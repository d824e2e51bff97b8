"""Families for angles: y on the circle, given as any real number (the density is periodic).

    mj.von_mises()        raw: (mu, k), concentration = softplus(k) + eps
"""

from __future__ import annotations

from .. import links
from ..distributions import VonMises
from ._family import Family, Spec, build, unstack
from ._support import angle


def _von_mises_theta(fp, raw):
    loc, k = unstack(raw)
    return VonMises(loc, links.softplus.forward(k))


def von_mises() -> Family:
    """von Mises family for angles: ``log Pr = k cos(y - mu) - log(2 pi I0(k))``; the model emits
    raw (mu, k), ``concentration = softplus(k) + eps``. Support: any real angle (radians).
    scipy: ``vonmises.logpdf(y, k, mu)``. Reference: Mardia and Jupp, *Directional Statistics*, ch. 3."""
    return build(spec=Spec("von_mises"), support=angle, theta=_von_mises_theta, raw_shape=(2,))
