"""Symbolic models of the structured families: the mixture of Normals, ordinal, the MVN by its
Cholesky factor, and the combinators ``independent`` (a sum over outputs) and ``censored``."""

from __future__ import annotations

import numpy as np
import sympy as sp

from ..families._family import Spec
from .symbols import C, C0, D, F, G, K, LEFT, OBS, RIGHT, Y, Model, indexed, d, i, k, plain, softplus


def mixture_normal(spec: Spec) -> Model:
    n = spec.args[0]
    W, M, R = (indexed(name, real=True) for name in ("w", "m", "r"))
    s_k = softplus(R[i, k])
    density = (sp.Sum(sp.exp(W[i, k] - (Y[i] - M[i, k]) ** 2 / (2 * s_k**2)) / s_k, (k, 0, K - 1))
               / (sp.sqrt(2 * sp.pi) * sp.Sum(sp.exp(W[i, k]), (k, 0, K - 1))))
    raw = tuple(B[i, j] for B in (W, M, R) for j in range(n))
    return Model(density, (W, M, R), raw, lambda rng: (2 * rng.normal(), list(rng.normal(size=3 * n)), {}),
                 constants={K: n},
                 where=("w[i, k], m[i, k], r[i, k]: the model's 3K raw outputs (logits, means, raw scales)",
                        "weights softmax(w[i]), scales s_k = log(1 + exp(r[i, k]))"),
                 reduces_to="log-sum-exp over components: -log sum_k exp(w_k - z_k^2/2 - log s_k) "
                            "+ log sum_k exp(w_k)")


def ordinal(spec: Spec) -> Model:
    n = spec.args[0]
    density = 1 / (1 + sp.exp(F[i] - C[Y[i]])) - 1 / (1 + sp.exp(F[i] - C[Y[i] - 1]))
    cuts = [C0 + sum((softplus(G[j]) for j in range(m)), sp.Integer(0)) for m in range(n - 1)]

    def bind(y):
        y = int(y)
        ends = ((C[y], cuts[y] if y < n - 1 else sp.oo), (C[y - 1], cuts[y - 1] if y > 0 else -sp.oo))
        return ((Y[i], y),) + ends, {}

    def draw(rng):
        return int(rng.integers(0, n)), [2 * rng.normal()], {"first_cut": rng.normal() - 1,
                                                             "gaps": rng.normal(size=n - 2)}

    return Model(density, (F[i], C), (F[i],), draw, {C0: ("first_cut", None), **{G[j]: ("gaps", j)
                                                                               for j in range(n - 2)}},
                 bind=bind,
                 where=("f[i]: the model's raw output, a score", "c_k = c_0 + sum_{j<k} log(1 + exp(g_j)): "
                        "the family's K - 1 learned ordered cutpoints; c_{-1} = -oo, c_{K-1} = +oo"),
                 reduces_to="-log(sig(c_y - f) - sig(c_{y-1} - f)), a difference of sigmoids")


# ----------------------------------------------------------------------------- vectors

def mvn_cholesky(spec: Spec) -> Model:
    n = spec.args[0]
    M, Lr = indexed("m", real=True), indexed("l", real=True)
    rows, cols = np.tril_indices(n)
    L = sp.zeros(n, n)
    for a, b in zip(rows, cols):
        L[a, b] = softplus(Lr[i, a, b]) if a == b else Lr[i, a, b]
    z = L.lower_triangular_solve(sp.Matrix([Y[i, a] - M[i, a] for a in range(n)]))
    density = (sp.exp(-sum((zj**2 for zj in z), sp.Integer(0)) / 2)
               / ((2 * sp.pi) ** sp.Rational(n, 2) * sp.Mul(*[L[a, a] for a in range(n)])))
    raw = tuple(M[i, a] for a in range(n)) + tuple(Lr[i, a, b] for a, b in zip(rows, cols))

    def bind(y):
        return (), {Y[i, a]: float(y[a]) for a in range(n)}

    return Model(density, (M, Lr), raw,
                 lambda rng: (rng.normal(size=n), list(rng.normal(size=len(raw))), {}), bind=bind,
                 where=("m[i, a]: the mean; l[i, a, b] (a >= b): the raw Cholesky factor, row by row",
                        "L[a, b] = l[i, a, b] below the diagonal, L[a, a] = log(1 + exp(l[i, a, a])); "
                        "Sigma = L L^T, z = L^-1 (y - m)"),
                 reduces_to="the quadratic form z^T z / 2 plus the log det, sum_a log L[a, a]")


# ----------------------------------------------------------------------------- combinators

def independent(spec: Spec) -> Model:
    inner_spec, dim = spec.args
    from .table import model
    inner = model(inner_spec)
    shared = spec.option("shared", True)
    if inner.bind is not plain or any(not (isinstance(a, sp.Indexed) and a.indices == (i,)) for a in inner.raw):
        raise NotImplementedError(f"derive: no symbolic derivation for independent({inner_spec.render()}, ...) "
                                  f"yet (an inner family with one scalar target and scalar raw outputs only)")
    swap = {Y[i]: Y[i, d], **{a: a.base[i, d] for a in inner.raw}}
    fparams = dict(inner.fparams)
    if not shared:
        for sym, (name, index) in inner.fparams.items():
            swap[sym] = indexed(sym.name, real=True)[d]
        fparams = {indexed(sym.name, real=True)[j]: (name, j) for sym, (name, _) in inner.fparams.items()
                   for j in range(dim)}
    density = sp.Product(inner.density.xreplace(swap), (d, 0, D - 1))
    phi = tuple(a.base for a in inner.raw) + tuple(
        s if shared else indexed(s.name, real=True) for s in inner.phi if isinstance(s, sp.Symbol))
    raw = tuple(a.base[i, j] for j in range(dim) for a in inner.raw)

    def draw(rng):
        parts = [inner.draw(rng) for _ in range(dim)]
        fp = parts[0][2] if shared else {name: np.stack([p[2][name] for p in parts]) for name in parts[0][2]}
        return np.asarray([p[0] for p in parts], float), [v for p in parts for v in p[1]], fp

    def bind(y):
        return (), {Y[i, j]: float(y[j]) for j in range(dim)}

    return Model(density, phi, raw, draw, fparams, {**inner.constants, D: dim}, bind,
                 where=inner.where + ("d = 0..D-1: the independent outputs, raw outputs of output d indexed [i, d]; "
                                      f"the family's parameters {'shared' if shared else 'one set per output'}",),
                 reduces_to=f"a sum over the D outputs of: {inner.reduces_to}")


def censored(spec: Spec) -> Model:
    inner_spec = spec.args[0]
    from .table import model
    inner = model(inner_spec)
    if inner.cdf is None:
        raise NotImplementedError(f"derive: no symbolic derivation for censored({inner_spec.render()}) yet "
                                  f"(no symbolic CDF for {inner_spec.kind})")
    density = inner.density ** OBS[i] * inner.cdf ** LEFT[i] * inner.sf ** RIGHT[i]

    def bind(y):
        side = int(y[1])
        return ((OBS[i], int(side == 0)), (LEFT[i], int(side == -1)), (RIGHT[i], int(side == 1))), {Y[i]: float(y[0])}

    def draw(rng):
        value, raw, fp = inner.draw(rng)
        return np.asarray([value, rng.integers(-1, 2)], float), raw, fp

    return Model(density, inner.phi, inner.raw, draw, inner.fparams, inner.constants, bind, data=(OBS, LEFT, RIGHT),
                 where=inner.where + ("o[i], l[i], u[i]: 1 where example i is observed, left-censored "
                                      "(y <= value), right-censored (y >= value); 0 otherwise",),
                 reduces_to="the inner NLL where observed, -log CDF where left-censored, -log SF where "
                            "right-censored")




# ----------------------------------------------------------------------------- compositions and rankings

def dirichlet(spec: Spec) -> Model:
    n = spec.args[0]
    link = spec.option("link", "softplus")
    A = indexed("a", real=True)
    alpha = [softplus(A[i, j]) if link == "softplus" else sp.exp(A[i, j]) for j in range(n)]
    density = (sp.gamma(sp.Add(*alpha)) / sp.Mul(*[sp.gamma(a) for a in alpha])
               * sp.Mul(*[Y[i, j] ** (alpha[j] - 1) for j in range(n)]))
    raw = tuple(A[i, j] for j in range(n))

    def bind(y):
        return (), {Y[i, j]: float(y[j]) for j in range(n)}

    return Model(density, (A,), raw, lambda rng: (rng.dirichlet(np.ones(n)), list(rng.normal(size=n)), {}),
                 bind=bind,
                 where=("a[i, k]: the model's K raw outputs", f"the concentrations alpha_k = "
                        f"{'log(1 + exp(a[i, k]))' if link == 'softplus' else 'exp(a[i, k])'}"),
                 reduces_to="log Gamma of each alpha_k less log Gamma(sum_k alpha_k) - sum_k (alpha_k - 1) log y_k, "
                            "log y_k dropped")


def plackett_luce(spec: Spec) -> Model:
    n = spec.args[0]
    Sc = indexed("s", real=True)
    picked = [Sc[i, Y[i, j]] for j in range(n)]
    density = sp.Mul(*[sp.exp(picked[j]) / sp.Add(*[sp.exp(p) for p in picked[j:]]) for j in range(n)])

    def bind(y):
        return tuple((Y[i, j], int(y[j])) for j in range(n)), {}

    return Model(density, (Sc,), tuple(Sc[i, j] for j in range(n)),
                 lambda rng: (rng.permutation(n).astype(float), list(2 * rng.normal(size=n)), {}), bind=bind,
                 where=("s[i, k]: the model's K raw scores", "y[i, j]: the item ranked j-th (j = 0 first)"),
                 reduces_to="sum_j [logsumexp(s_{y_j}, ..., s_{y_K}) - s_{y_j}], the exploded logit")


def binomial(spec: Spec) -> Model:
    """k successes in n trials of probability lambda = sig(f): ``C(n, k) lambda^k (1 - lambda)^(n - k)``."""
    lam = 1 / (1 + sp.exp(-F[i]))
    successes, trials = Y[i, 0], Y[i, 1]
    density = sp.binomial(trials, successes) * lam ** successes * (1 - lam) ** (trials - successes)

    def bind(y):
        return (), {successes: int(y[0]), trials: int(y[1])}

    def draw(rng):
        n = int(rng.integers(1, 12))
        return np.asarray([rng.integers(0, n + 1), n], float), [3 * rng.normal()], {}

    return Model(density, (F[i],), (F[i],), draw, bind=bind,
                 where=("f[i]: the model's raw output, the log-odds of one trial: lambda = sig(f[i])",
                        "y[i, 0], y[i, 1]: the successes k and the trials n of example i"),
                 reduces_to="the binary cross-entropy of each trial, summed: -k log sig(f) - (n - k) log sig(-f) "
                            "(log C(n, k) dropped)")


ZERO = indexed("z", nonnegative=True)  # 1 where the count is 0
GATE = indexed("h", real=True)         # the gate logit: a structural zero with probability sig(h)


def zero_inflated(spec: Spec) -> Model:
    """A structural zero with probability g = sig(h), else the base count:
    ``(g + (1 - g) p(0))^z ((1 - g) p(y))^(1 - z)`` with ``z = 1{y = 0}``."""
    from .table import model
    inner = model(spec.args[0])
    g = 1 / (1 + sp.exp(-GATE[i]))
    density = (g + (1 - g) * inner.density.subs(Y[i], 0)) ** ZERO[i] * ((1 - g) * inner.density) ** (1 - ZERO[i])

    def bind(y):
        return ((ZERO[i], int(int(y) == 0)),), {Y[i]: int(y)}

    def draw(rng):
        y, raw, fp = inner.draw(rng)
        return (0 if rng.uniform() < 0.4 else y), [*raw, rng.normal()], fp

    return Model(density, inner.phi + (GATE[i],), inner.raw + (GATE[i],), draw, inner.fparams, inner.constants, bind,
                 data=(ZERO,),
                 where=inner.where + ("h[i]: the gate logit, the model's last raw output: g = sig(h[i])",
                                      "z[i]: 1 where y[i] = 0, else 0"),
                 reduces_to="-log(g + (1 - g) p(0)) at a zero, -log(1 - g) - log p(y) elsewhere, "
                            f"p the base: {inner.reduces_to}")
