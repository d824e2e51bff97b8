"""The symbols of the derivations and ``Model``, the symbolic model of one family kind."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np
import sympy as sp

i = sp.Idx("i")
k = sp.Idx("k")
d = sp.Idx("d")
I = sp.Symbol("I", integer=True, positive=True)  # noqa: E741  (the lecture's number of examples)
K = sp.Symbol("K", integer=True, positive=True)
D = sp.Symbol("D", integer=True, positive=True)


def indexed(name: str, **assumptions: Any) -> Any:
    """An indexed symbol (``y[i]``), typed loosely: sympy's stubs do not declare its indexing."""
    return sp.IndexedBase(name, **assumptions)


Y, F, F1, F2 = (indexed(name, real=True) for name in ("y", "f", "f_1", "f_2"))
SIGMA = sp.Symbol("sigma", positive=True)
NU = sp.Symbol("nu", positive=True)
S = sp.Symbol("s", real=True)  # the family's raw learned scale: sigma = softplus(s)
T = sp.Symbol("t", real=True)  # a family's other raw learned parameter: nu = softplus(t), r = softplus(t)
C = indexed("c", real=True)   # ordinal cutpoints
G = indexed("g", real=True)   # ordinal raw gaps
C0 = sp.Symbol("c_0", real=True)
OBS, LEFT, RIGHT = (indexed(name, nonnegative=True) for name in ("o", "l", "u"))  # censoring indicators

LINKS = {
    "softplus": lambda u: sp.log(1 + sp.exp(u)),
    "exp": sp.exp,
    "square": sp.Abs,  # the lecture's sigma^2 = f2^2
}
LINK_TEXT = {"softplus": "log(1 + exp({}))", "exp": "exp({})", "square": "|{}| (sigma^2 = {}^2)"}


def softplus(u):
    """``log(1 + exp(u))``, the positive links' symbolic form (the library adds eps = finfo.eps)."""
    return sp.log(1 + sp.exp(u))


Draw = Callable[[np.random.Generator], tuple[Any, list, dict]]


def plain(y):
    """The default binding of one target: ``y[i]`` is a number in the loss."""
    return (), {Y[i]: float(y)}


class Model(NamedTuple):
    """The symbolic model of one family kind, in terms of its raw outputs (no Family needed).

    density: Pr(y_i | theta_i) with indexed symbols; phi: what depends on phi (the terms
    kept contain one); raw: the raw outputs of example i in the family's raw order;
    fparams: symbol -> (name in the family's params, index or None); draw: rng -> (y, raw
    values, family params) for one example; constants: symbol -> value substituted before
    evaluation (a fixed sigma, K); bind: y -> (substitutions made symbolically, in order;
    numbers passed to the evaluated loss); data: indexed data symbols besides y (indicators);
    cdf, sf: the CDF and SF of a continuous scalar family (for ``censored``), or None.
    """

    density: Any
    phi: tuple
    raw: tuple
    draw: Draw
    fparams: dict = {}
    constants: dict = {}
    bind: Callable = plain
    data: tuple = ()
    cdf: Any = None
    sf: Any = None
    where: tuple = ()
    reduces_to: str = ""


