"""Symbolic derivations of each loss from its density, as in the lecture (sympy: the 'derive' extra).

``derive(family)`` returns the lecture's chain for that family,

    1. the likelihood of i.i.d. examples      prod_i Pr(y_i | theta_i)
    2. its logarithm                          sum_i log Pr(y_i | theta_i)
    3. the log expanded                       log(a b) = log a + log b,  log exp x = x
    4. negated, to minimise                   -sum_i log Pr(y_i | theta_i)
    5. terms free of phi dropped              (reported: they shift the loss, not its minimiser)
    6. positive constant factors dropped      (reported; the Normal with fixed sigma -> least squares)

each step as a sympy expression, plain text and LaTeX, and ``Derivation.check()``
evaluates the final symbolic loss numerically on random data and compares it,
in value (after restoring the dropped constants) and in gradient with respect
to the model's raw outputs, with mle_jax's stable implementation.

Every built-in family is covered, dispatched on its ``Spec``'s kind through one table,
``_MODELS`` (kind -> a small function giving the symbolic density in terms of the raw
outputs, the links and the family's own parameters); what each reduces to:

    normal         fixed sigma: least squares; learned or linked sigma: the Gaussian NLL
    laplace        fixed scale: absolute error |y - f|
    student_t      (nu + 1)/2 log(1 + r^2 / (nu s^2)) + log s, the robust loss
    mixture_normal -log sum_k exp(w_k - z_k^2/2 - log s_k) + log sum_k exp(w_k): log-sum-exp
    gamma, beta    their NLL (log Gamma terms; log y, log(1 - y) dropped)
    von_mises      -kappa cos(y - mu) + log I0(kappa) (log 2 pi dropped)
    poisson        exp(f) - y f, the Poisson deviance up to constants (log y! dropped)
    negative_binomial  its NLL in the log-mean (log y! dropped)
    bernoulli      binary cross-entropy; categorical: cross-entropy
    ordinal        -log(sig(c_y - f) - sig(c_{y-1} - f)), cutpoints the family's parameters
    mvn_cholesky   the quadratic form z^T z / 2, z = L^-1 (y - mu), plus log det L
    independent    a sum over the D outputs of the inner family's loss
    censored       the inner density, log CDF or log SF by the side of each example

A family kind without an entry raises ``NotImplementedError`` naming it; a kind added
later joins by one entry in ``_MODELS``.

Reference: the lecture, Examples 1-3 and "Heteroscedastic regression"; Prince,
*Understanding Deep Learning*, sections 5.3-5.5.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

try:
    import mpmath
    import sympy as sp
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError("mle_jax.derive needs sympy: pip install 'mle_jax[derive]'") from error

from .families import Family
from .families._family import Spec

# from ._from_density import from_density  (issue 21: the "density" helper's module, re-exported here)

i = sp.Idx("i")
k = sp.Idx("k")
d = sp.Idx("d")
I = sp.Symbol("I", integer=True, positive=True)  # noqa: E741  (the lecture's number of examples)
K = sp.Symbol("K", integer=True, positive=True)
D = sp.Symbol("D", integer=True, positive=True)


def _indexed(name: str, **assumptions: Any) -> Any:
    """An indexed symbol (``y[i]``), typed loosely: sympy's stubs do not declare its indexing."""
    return sp.IndexedBase(name, **assumptions)


Y, F, F1, F2 = (_indexed(name, real=True) for name in ("y", "f", "f_1", "f_2"))
SIGMA = sp.Symbol("sigma", positive=True)
NU = sp.Symbol("nu", positive=True)
S = sp.Symbol("s", real=True)  # the family's raw learned scale: sigma = softplus(s)
T = sp.Symbol("t", real=True)  # a family's other raw learned parameter: nu = softplus(t), r = softplus(t)
C = _indexed("c", real=True)   # ordinal cutpoints
G = _indexed("g", real=True)   # ordinal raw gaps
C0 = sp.Symbol("c_0", real=True)
OBS, LEFT, RIGHT = (_indexed(name, nonnegative=True) for name in ("o", "l", "u"))  # censoring indicators

_LINKS = {
    "softplus": lambda u: sp.log(1 + sp.exp(u)),
    "exp": sp.exp,
    "square": sp.Abs,  # the lecture's sigma^2 = f2^2
}
_LINK_TEXT = {"softplus": "log(1 + exp({}))", "exp": "exp({})", "square": "|{}| (sigma^2 = {}^2)"}
_MPMATH = [{"betainc_regularized": lambda a, b, lo, hi: mpmath.betainc(a, b, lo, hi, regularized=True)}, "mpmath"]


def softplus(u):
    """``log(1 + exp(u))``, the positive links' symbolic form (the library adds eps = finfo.eps)."""
    return sp.log(1 + sp.exp(u))


class Step(NamedTuple):
    """One line of a derivation: what was done, the expression, as text and as LaTeX."""

    title: str
    expr: Any
    text: str
    latex: str


class CheckResult(NamedTuple):
    """The derived loss against mle_jax's NLL on random data (float64)."""

    value_difference: float
    gradient_difference: float
    passed: bool


class Derivation(NamedTuple):
    """The chain of steps from density to loss, with what was dropped on the way.

    ``where`` says what each symbol is: the model's raw outputs, the links, the family's own
    parameters (fixed or learned); ``reduces_to`` names the loss the family reduces to.
    """

    family: str
    steps: tuple
    loss: Any          # the final per-example summand
    constant: Any      # the per-example additive terms dropped (free of phi)
    factor: Any        # the positive factor divided out
    spec: Any         # how to evaluate it numerically
    where: tuple = ()
    reduces_to: str = ""

    def text(self) -> str:
        lines = [f"Derivation for {self.family}"]
        for n, step in enumerate(self.steps, 1):
            lines += [f"{n}. {step.title}", "   " + step.text.replace("\n", "\n   ")]
        return "\n".join(lines)

    def legend(self) -> str:
        """What the symbols are (raw outputs, links, the family's parameters) and what the loss is."""
        lines = [f"  {w}" for w in self.where]
        if self.reduces_to:
            lines.append(f"  the loss: {self.reduces_to}")
        return "\n".join(["where"] + lines)

    def latex(self) -> str:
        body = " \\\\\n".join(f"&\\text{{{s.title}}}: && {s.latex}" for s in self.steps)
        return "\\begin{aligned}\n" + body + "\n\\end{aligned}"

    def check(self, num: int = 8, seed: int = 0, rtol: float = 1e-9) -> CheckResult:
        """Compare the derived loss with the library's NLL in value and raw-output gradient."""
        return _check(self, num, seed, rtol)


Draw = Callable[[np.random.Generator], tuple[Any, list, dict]]


def _plain(y):
    """The default binding of one target: ``y[i]`` is a number in the loss."""
    return (), {Y[i]: float(y)}


class _Model(NamedTuple):
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
    bind: Callable = _plain
    data: tuple = ()
    cdf: Any = None
    sf: Any = None
    where: tuple = ()
    reduces_to: str = ""


class _Spec(NamedTuple):
    """A family and its symbolic model: what ``Derivation.check`` evaluates."""

    family: Family
    model: _Model

    def __getattr__(self, name):  # the model's fields, read through (spec.density, spec.raw, ...)
        return getattr(self.model, name)


# ----------------------------------------------------------------------------- location-scale families

def _normal_density(mu, sigma):
    return sp.exp(-(Y[i] - mu) ** 2 / (2 * sigma**2)) / sp.sqrt(2 * sp.pi * sigma**2)


def _normal_cdf(mu, sigma):
    return sp.erfc(-(Y[i] - mu) / (sp.sqrt(2) * sigma)) / 2, sp.erfc((Y[i] - mu) / (sp.sqrt(2) * sigma)) / 2


class _Scale(NamedTuple):
    loc: Any
    scale: Any
    phi: tuple
    raw: tuple
    fparams: dict
    constants: dict
    draw_raw: Callable
    draw_fp: Callable
    where: tuple


def _scale(option, name="sigma") -> _Scale:
    """The location and scale of a location-scale family from its ``scale`` option."""
    if option == "learned":
        return _Scale(F[i], softplus(S), (F[i], S), (F[i],), {S: ("scale", None)}, {},
                      lambda rng: [rng.normal()], lambda rng: {"scale": rng.normal()},
                      (f"f[i]: the model's raw output, the location", f"{name} = log(1 + exp(s)): s is the "
                       "family's own learned parameter, one for every example"))
    if isinstance(option, str):
        return _Scale(F1[i], _LINKS[option](F2[i]), (F1[i], F2[i]), (F1[i], F2[i]), {}, {},
                      lambda rng: [rng.normal(), rng.choice([-1, 1]) * rng.uniform(0.3, 2)], lambda rng: {},
                      ("f_1[i], f_2[i]: the model's raw outputs", f"the location is f_1[i], "
                       f"{name} = {_LINK_TEXT[option].format('f_2[i]', 'f_2[i]')} (the {option} link)"))
    return _Scale(F[i], SIGMA, (F[i],), (F[i],), {}, {SIGMA: float(option)}, lambda rng: [rng.normal()],
                  lambda rng: {}, ("f[i]: the model's raw output, the location", f"sigma = {option}, fixed"))


def _location_scale(spec: Spec, density, cdf=None, reduces=("", "")) -> _Model:
    sc = _scale(spec.option("scale"))
    cdfs = cdf(sc.loc, sc.scale) if cdf else (None, None)
    fixed = not isinstance(spec.option("scale"), str)
    return _Model(density(sc.loc, sc.scale), sc.phi, sc.raw,
                  lambda rng: (rng.normal(), sc.draw_raw(rng), sc.draw_fp(rng)), sc.fparams, sc.constants,
                  cdf=cdfs[0], sf=cdfs[1], where=sc.where, reduces_to=reduces[0] if fixed else reduces[1])


def _normal(spec: Spec) -> _Model:
    return _location_scale(spec, _normal_density, _normal_cdf,
                           ("least squares (y - f)^2", "the Gaussian NLL (y - mu)^2 / (2 sigma^2) + log sigma"))


def _laplace_density(mu, b):
    return sp.exp(-sp.Abs(Y[i] - mu) / b) / (2 * b)


def _laplace(spec: Spec) -> _Model:
    return _location_scale(spec, _laplace_density, None,
                           ("absolute error |y - f|", "|y - mu| / b + log b"))


def _student_t(spec: Spec) -> _Model:
    df = spec.option("df")
    sc = _scale(spec.option("scale"), "s")
    if df == "learned":
        nu, fparams, phi = softplus(T), {**sc.fparams, T: ("df", None)}, sc.phi + (T,)
        constants, df_where = sc.constants, "nu = log(1 + exp(t)): t is the family's own learned parameter"
    else:
        nu, fparams, phi = NU, sc.fparams, sc.phi
        constants, df_where = {**sc.constants, NU: float(df)}, f"nu = {df}, fixed"
    z2 = (Y[i] - sc.loc) ** 2 / (nu * sc.scale**2)
    density = (sp.gamma((nu + 1) / 2) / (sp.gamma(nu / 2) * sp.sqrt(nu * sp.pi) * sc.scale)
               * (1 + z2) ** (-(nu + 1) / 2))

    def draw(rng):
        fp = sc.draw_fp(rng)
        if df == "learned":
            fp["df"] = rng.normal()
        return 2 * rng.normal(), sc.draw_raw(rng), fp

    return _Model(density, phi, sc.raw, draw, fparams, constants, where=sc.where + (df_where,),
                  reduces_to="the robust loss (nu + 1)/2 log(1 + r^2 / (nu s^2)) + log s, r = y - mu")


# ----------------------------------------------------------------------------- positive, unit, angle

def _two_raw(rng):
    return [rng.normal(), rng.normal()]


def _gamma(spec: Spec) -> _Model:
    a, b = softplus(F1[i]), softplus(F2[i])
    density = b**a * Y[i] ** (a - 1) * sp.exp(-b * Y[i]) / sp.gamma(a)
    return _Model(density, (F1[i], F2[i]), (F1[i], F2[i]), lambda rng: (rng.gamma(2.0) + 0.05, _two_raw(rng), {}),
                  cdf=sp.lowergamma(a, b * Y[i]) / sp.gamma(a), sf=sp.uppergamma(a, b * Y[i]) / sp.gamma(a),
                  where=("f_1[i], f_2[i]: the model's raw outputs", "concentration a = log(1 + exp(f_1[i])), "
                         "rate b = log(1 + exp(f_2[i]))"),
                  reduces_to="b y - a log b - (a - 1) log y + log Gamma(a), with log y dropped")


def _beta(spec: Spec) -> _Model:
    a, b = softplus(F1[i]), softplus(F2[i])
    density = Y[i] ** (a - 1) * (1 - Y[i]) ** (b - 1) * sp.gamma(a + b) / (sp.gamma(a) * sp.gamma(b))
    return _Model(density, (F1[i], F2[i]), (F1[i], F2[i]), lambda rng: (rng.uniform(0.05, 0.95), _two_raw(rng), {}),
                  cdf=sp.betainc_regularized(a, b, 0, Y[i]), sf=sp.betainc_regularized(a, b, Y[i], 1),
                  where=("f_1[i], f_2[i]: the model's raw outputs",
                         "a = log(1 + exp(f_1[i])), b = log(1 + exp(f_2[i]))"),
                  reduces_to="log B(a, b) - (a - 1) log y - (b - 1) log(1 - y), log y and log(1 - y) dropped")


def _von_mises(spec: Spec) -> _Model:
    kappa = softplus(F2[i])
    density = sp.exp(kappa * sp.cos(Y[i] - F1[i])) / (2 * sp.pi * sp.besseli(0, kappa))
    return _Model(density, (F1[i], F2[i]), (F1[i], F2[i]), lambda rng: (3 * rng.normal(), _two_raw(rng), {}),
                  where=("f_1[i], f_2[i]: the model's raw outputs",
                         "the mean direction mu = f_1[i], the concentration kappa = log(1 + exp(f_2[i]))"),
                  reduces_to="-kappa cos(y - mu) + log I0(kappa), the normaliser log(2 pi I0(kappa)) less log 2 pi")


def _mixture_normal(spec: Spec) -> _Model:
    n = spec.args[0]
    W, M, R = (_indexed(name, real=True) for name in ("w", "m", "r"))
    s_k = softplus(R[i, k])
    density = (sp.Sum(sp.exp(W[i, k] - (Y[i] - M[i, k]) ** 2 / (2 * s_k**2)) / s_k, (k, 0, K - 1))
               / (sp.sqrt(2 * sp.pi) * sp.Sum(sp.exp(W[i, k]), (k, 0, K - 1))))
    raw = tuple(B[i, j] for B in (W, M, R) for j in range(n))
    return _Model(density, (W, M, R), raw, lambda rng: (2 * rng.normal(), list(rng.normal(size=3 * n)), {}),
                  constants={K: n},
                  where=("w[i, k], m[i, k], r[i, k]: the model's 3K raw outputs (logits, means, raw scales)",
                         "weights softmax(w[i]), scales s_k = log(1 + exp(r[i, k]))"),
                  reduces_to="log-sum-exp over components: -log sum_k exp(w_k - z_k^2/2 - log s_k) "
                             "+ log sum_k exp(w_k)")


# ----------------------------------------------------------------------------- counts

def _poisson(spec: Spec) -> _Model:
    density = sp.exp(F[i]) ** Y[i] * sp.exp(-sp.exp(F[i])) / sp.factorial(Y[i])
    return _Model(density, (F[i],), (F[i],), lambda rng: (int(rng.integers(0, 9)), [rng.normal()], {}),
                  where=("f[i]: the model's raw output, the log-rate: lambda = exp(f[i])",),
                  reduces_to="exp(f) - y f, the Poisson deviance up to constants (log y! dropped)")


def _negative_binomial(spec: Spec) -> _Model:
    if spec.option("dispersion") == "learned":
        m, r, phi, raw, fparams = F[i], softplus(T), (F[i], T), (F[i],), {T: ("total_count", None)}
        draw = lambda rng: (int(rng.integers(0, 11)), [rng.normal()], {"total_count": rng.normal()})  # noqa: E731
        where = ("f[i]: the model's raw output, the log-mean", "r = log(1 + exp(t)): t is the family's own "
                 "learned parameter (the total count)")
    else:
        m, r, phi, raw, fparams = F1[i], softplus(F2[i]), (F1[i], F2[i]), (F1[i], F2[i]), {}
        draw = lambda rng: (int(rng.integers(0, 11)), _two_raw(rng), {})  # noqa: E731
        where = ("f_1[i], f_2[i]: the model's raw outputs", "the log-mean f_1[i], r = log(1 + exp(f_2[i]))")
    mu = sp.exp(m)
    density = (sp.gamma(Y[i] + r) / (sp.gamma(r) * sp.factorial(Y[i]))
               * (mu / (mu + r)) ** Y[i] * (r / (mu + r)) ** r)
    return _Model(density, phi, raw, draw, fparams, where=where,
                  reduces_to="(y + r) log(mu + r) - y log mu - r log r - log Gamma(y + r) + log Gamma(r)")


# ----------------------------------------------------------------------------- labels

def _bernoulli(spec: Spec) -> _Model:
    lam = 1 / (1 + sp.exp(-F[i]))
    soft = bool(spec.option("soft_labels"))
    draw = ((lambda rng: (float(rng.uniform()), [3 * rng.normal()], {})) if soft
            else (lambda rng: (int(rng.integers(0, 2)), [3 * rng.normal()], {})))
    return _Model((1 - lam) ** (1 - Y[i]) * lam ** Y[i], (F[i],), (F[i],), draw,
                  where=("f[i]: the model's raw output, the logit: lambda = sig(f[i])",),
                  reduces_to="binary cross-entropy")


def _label(y):
    return ((Y[i], int(y)),), {}


def _categorical(spec: Spec) -> _Model:
    n_classes = spec.args[0]
    Fk = _indexed("f")
    density = sp.exp(Fk[i, Y[i]]) / sp.Sum(sp.exp(Fk[i, k]), (k, 0, K - 1))
    raw = tuple(Fk[i, j] for j in range(n_classes))
    return _Model(density, (Fk,), raw,
                  lambda rng: (int(rng.integers(0, n_classes)), list(2 * rng.normal(size=n_classes)), {}),
                  constants={K: n_classes}, bind=_label,
                  where=("f[i, k]: the model's K raw outputs, the logits: Pr(y = k) = softmax(f[i])_k",),
                  reduces_to="cross-entropy -f_y + log sum_k exp(f_k)")


def _ordinal(spec: Spec) -> _Model:
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

    return _Model(density, (F[i], C), (F[i],), draw, {C0: ("first_cut", None), **{G[j]: ("gaps", j)
                                                                                for j in range(n - 2)}},
                  bind=bind,
                  where=("f[i]: the model's raw output, a score", "c_k = c_0 + sum_{j<k} log(1 + exp(g_j)): "
                         "the family's K - 1 learned ordered cutpoints; c_{-1} = -oo, c_{K-1} = +oo"),
                  reduces_to="-log(sig(c_y - f) - sig(c_{y-1} - f)), a difference of sigmoids")


# ----------------------------------------------------------------------------- vectors

def _mvn_cholesky(spec: Spec) -> _Model:
    n = spec.args[0]
    M, Lr = _indexed("m", real=True), _indexed("l", real=True)
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

    return _Model(density, (M, Lr), raw,
                  lambda rng: (rng.normal(size=n), list(rng.normal(size=len(raw))), {}), bind=bind,
                  where=("m[i, a]: the mean; l[i, a, b] (a >= b): the raw Cholesky factor, row by row",
                         "L[a, b] = l[i, a, b] below the diagonal, L[a, a] = log(1 + exp(l[i, a, a])); "
                         "Sigma = L L^T, z = L^-1 (y - m)"),
                  reduces_to="the quadratic form z^T z / 2 plus the log det, sum_a log L[a, a]")


# ----------------------------------------------------------------------------- combinators

def _independent(spec: Spec) -> _Model:
    inner_spec, dim = spec.args
    inner = _model(inner_spec)
    shared = spec.option("shared", True)
    if inner.bind is not _plain or any(not (isinstance(a, sp.Indexed) and a.indices == (i,)) for a in inner.raw):
        raise NotImplementedError(f"derive: no symbolic derivation for independent({inner_spec.render()}, ...) "
                                  f"yet (an inner family with one scalar target and scalar raw outputs only)")
    swap = {Y[i]: Y[i, d], **{a: a.base[i, d] for a in inner.raw}}
    fparams = dict(inner.fparams)
    if not shared:
        for sym, (name, index) in inner.fparams.items():
            swap[sym] = _indexed(sym.name, real=True)[d]
        fparams = {_indexed(sym.name, real=True)[j]: (name, j) for sym, (name, _) in inner.fparams.items()
                   for j in range(dim)}
    density = sp.Product(inner.density.xreplace(swap), (d, 0, D - 1))
    phi = tuple(a.base for a in inner.raw) + tuple(
        s if shared else _indexed(s.name, real=True) for s in inner.phi if isinstance(s, sp.Symbol))
    raw = tuple(a.base[i, j] for j in range(dim) for a in inner.raw)

    def draw(rng):
        parts = [inner.draw(rng) for _ in range(dim)]
        fp = parts[0][2] if shared else {name: np.stack([p[2][name] for p in parts]) for name in parts[0][2]}
        return np.asarray([p[0] for p in parts], float), [v for p in parts for v in p[1]], fp

    def bind(y):
        return (), {Y[i, j]: float(y[j]) for j in range(dim)}

    return _Model(density, phi, raw, draw, fparams, {**inner.constants, D: dim}, bind,
                  where=inner.where + ("d = 0..D-1: the independent outputs, raw outputs of output d indexed "
                                       f"[i, d]; the family's parameters {'shared' if shared else 'one set per output'}",),
                  reduces_to=f"a sum over the D outputs of: {inner.reduces_to}")


def _censored(spec: Spec) -> _Model:
    inner_spec = spec.args[0]
    inner = _model(inner_spec)
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

    return _Model(density, inner.phi, inner.raw, draw, inner.fparams, inner.constants, bind, data=(OBS, LEFT, RIGHT),
                  where=inner.where + ("o[i], l[i], u[i]: 1 where example i is observed, left-censored "
                                       "(y <= value), right-censored (y >= value); 0 otherwise",),
                  reduces_to="the inner NLL where observed, -log CDF where left-censored, -log SF where "
                             "right-censored")


# ----------------------------------------------------------------------------- the table

_MODELS: dict[str, Callable[[Spec], _Model]] = {
    "bernoulli": _bernoulli,
    "beta": _beta,
    "categorical": _categorical,
    "censored": _censored,
    "gamma": _gamma,
    "independent": _independent,
    "laplace": _laplace,
    "mixture_normal": _mixture_normal,
    "mvn_cholesky": _mvn_cholesky,
    "negative_binomial": _negative_binomial,
    "normal": _normal,
    "ordinal": _ordinal,
    "poisson": _poisson,
    "student_t": _student_t,
    "von_mises": _von_mises,
}
"""Family kind -> its symbolic model. A family added later joins ``derive`` by one entry here."""


def _model(spec: Spec) -> _Model:
    if spec.kind not in _MODELS:
        raise NotImplementedError(f"derive: no symbolic derivation for {spec.render()} yet "
                                  f"(mle_jax.derive._MODELS has no entry for the kind {spec.kind!r})")
    return _MODELS[spec.kind](spec)


def _spec(family: Family) -> _Spec:
    """The symbolic model of ``family``, chosen by its ``spec`` (kind and options), never its name."""
    spec = family.spec
    if family.training.options:
        raise ValueError(
            f"derive: {family.name} trains with a loss that is not its negative log-likelihood "
            f"({', '.join(k for k, _ in family.training.options)}); derive the distribution's NLL with "
            f"derive({spec.render()}) instead")
    return _Spec(family, _model(spec))


def derive(family: Family) -> Derivation:
    """The lecture's derivation of the loss of ``family``, for every built-in family.

    Dispatches on ``family.spec.kind`` (the table ``_MODELS``; see the module docstring for
    what each family reduces to). A family whose training loss is not its NLL (beta-NLL,
    label smoothing, class weights) raises a ValueError; a kind with no symbolic model
    raises NotImplementedError naming it.

    Example:
      >>> import mle_jax as mj
      >>> from mle_jax.derive import derive
      >>> d = derive(mj.normal(0.5))
      >>> d.steps[-1].expr
      Sum((f[i] - y[i])**2, (i, 1, I))
    """
    spec = _spec(family)
    summand = _expand_log(sp.log(spec.density))
    nll_terms = [_negate(t) for t in _terms(summand, spec.phi)]
    nll_i = sp.Add(*nll_terms)
    kept = sp.Add(*[t for t in nll_terms if t.has(*spec.phi)])
    constant = sp.Add(*[t for t in nll_terms if not t.has(*spec.phi)])
    factor = _positive_factor(kept, spec)
    loss = sp.simplify(kept / factor) if factor != 1 else kept
    steps = [
        _step("likelihood of i.i.d. examples", sp.Product(spec.density, (i, 1, I))),
        _step("take the log (monotonic: same maximiser)", sp.Sum(sp.log(spec.density), (i, 1, I))),
        _step("expand: log(ab) = log a + log b, log exp x = x", sp.Sum(summand, (i, 1, I))),
        _step("negate: minimise the negative log-likelihood", sp.Sum(nll_i, (i, 1, I))),
        _step(f"drop the terms free of phi (per example: {sp.sstr(constant)})", sp.Sum(kept, (i, 1, I))),
    ]
    if factor != 1:
        steps.append(_step(f"divide by the positive constant {sp.sstr(factor)}", sp.Sum(loss, (i, 1, I))))
    return Derivation(family.name, tuple(steps), loss, constant, factor, spec, spec.where, spec.reduces_to)


def _expand_log(expr):
    """``log`` expanded (``force``), and a log of a product over outputs as a sum over them."""
    if isinstance(expr, sp.log) and isinstance(expr.args[0], sp.Product):
        product = expr.args[0]
        return sp.Sum(_expand_log(sp.log(product.function)), *product.limits)
    return sp.expand_log(expr, force=True)


_DISTRIBUTE = dict(deep=False, mul=True, multinomial=False, power_exp=False, power_base=False, log=False)


def _terms(expr, phi) -> list:
    """The additive terms of ``expr``, with a coefficient distributed over a sum that mixes terms with
    and without phi ((a - 1) log y -> a log y - log y, o (log f + log 2) -> o log f + o log 2) and sums
    over outputs split term by term; other products are kept as written ((1 - y) log(1 - lambda))."""
    out = []
    for t in sp.Add.make_args(expr):
        if isinstance(t, sp.Sum):
            out += [sp.Sum(u, *t.limits) for u in _terms(t.function, phi)]
        elif isinstance(t, sp.Mul) and any(_mixed(a, phi) for a in t.args):
            out += _terms(sp.expand(t, **_DISTRIBUTE), phi)
        else:
            out.append(t)
    return out


def _mixed(expr, phi) -> bool:
    return isinstance(expr, sp.Add) and len({bool(t.has(*phi)) for t in expr.args}) == 2


def _negate(term):
    return sp.Sum(-term.function, *term.limits) if isinstance(term, sp.Sum) else -term


def _positive_factor(expr, spec):
    """A positive constant common to every term (1/(2 sigma^2) for a fixed sigma), else 1."""
    terms = sp.Add.make_args(expr)
    if len(terms) == 1:
        coeff = sp.Mul(*[a for a in sp.Mul.make_args(terms[0]) if not a.has(*spec.phi, Y, *spec.data)])
        if coeff.is_positive and coeff != 1:
            return coeff
    return sp.Integer(1)


def _step(title, expr):
    return Step(title, expr, sp.pretty(expr, use_unicode=False), sp.latex(expr))


# ----------------------------------------------------------------------------- the numerical check

class _Compiled(NamedTuple):
    args: list     # the atoms (y entries, raw outputs, family parameters), in the order the functions take
    loss: Any
    constant: Any
    factor: float
    grads: list    # one function per raw output


def _compile(d: Derivation, structural: tuple, atoms: list) -> _Compiled:
    """The loss, the dropped constant and the loss's raw-output gradient as mpmath functions, for one
    binding of the symbolic data (a label, a censoring side); sympy differentiates once per binding."""
    spec = d.spec
    fixed = {s: sp.Float(v, 30) if isinstance(v, float) else v for s, v in spec.constants.items()}

    def prepare(e):
        return e.subs(fixed).subs(list(structural)).doit()

    symbols = [sp.Dummy(f"a{n}", real=True) for n in range(len(atoms))]
    rename = dict(zip(atoms, symbols))
    loss, constant = (prepare(e).xreplace(rename) for e in (d.loss, d.constant))
    loss_fn = sp.lambdify(symbols, loss, _MPMATH)
    grads = []
    for n, atom in enumerate(atoms):
        if atom not in spec.raw:
            continue
        grad = sp.diff(loss, symbols[n])
        if grad.has(sp.Derivative, sp.Subs, sp.Integral):  # no closed form: mpmath differentiates the loss
            grads.append(_numeric_grad(loss_fn, n))
        else:
            grads.append(sp.lambdify(symbols, grad, _MPMATH))
    factor = float(prepare(d.factor))
    return _Compiled(atoms, loss_fn, sp.lambdify(symbols, constant, _MPMATH), factor, grads)


def _numeric_grad(fn, n):
    def grad(*values):
        return mpmath.diff(lambda v: fn(*values[:n], v, *values[n + 1:]), values[n])
    return grad


def _param(fparams, name, index):
    value = np.asarray(fparams[name], np.float64)
    return float(value if index is None else value[index])


def _check(d: Derivation, num: int, seed: int, rtol: float) -> CheckResult:
    spec = d.spec
    family = spec.family
    rng = np.random.default_rng(seed)
    value_gap = grad_gap = 0.0
    compiled: dict = {}
    with jax.enable_x64(True), mpmath.workdps(30):
        library = jax.jit(jax.value_and_grad(lambda r, fp, y: -family.log_prob(fp, r, y)))  # one compile
        for _ in range(num):
            y, raw, fparams = spec.draw(rng)
            structural, numeric = spec.bind(y)
            numeric.update(zip(spec.raw, raw))
            numeric.update({sym: _param(fparams, *where) for sym, where in spec.fparams.items()})
            if structural not in compiled:
                compiled[structural] = _compile(d, structural, list(numeric))
            fns = compiled[structural]
            values = [mpmath.mpf(numeric[a]) for a in fns.args]
            derived = fns.loss(*values)
            restored = float(derived * fns.factor + fns.constant(*values))
            sym_grad = np.array([float(g(*values)) for g in fns.grads])
            raw_arg = jnp.asarray(np.asarray(raw, np.float64).reshape(family.raw_shape))
            fp = jax.tree_util.tree_map(lambda v: jnp.asarray(v, jnp.float64), fparams)
            y_arg = jnp.asarray(y, jnp.int32 if isinstance(y, int) else jnp.float64)
            value, grad = library(raw_arg, fp, y_arg)
            lib_grad = np.ravel(np.asarray(grad)) / fns.factor
            value_gap = max(value_gap, abs(restored - float(value)) / max(1.0, abs(float(value))))
            grad_gap = max(grad_gap, float(np.max(np.abs(sym_grad - lib_grad)) / max(1.0, np.max(np.abs(lib_grad)))))
    return CheckResult(value_gap, grad_gap, value_gap <= rtol and grad_gap <= rtol)


def lecture_derivations() -> list[Derivation]:
    """The lecture's derivations: Normal (fixed, learned, heteroscedastic), Bernoulli, Categorical."""
    from .families import bernoulli, categorical, normal
    return [derive(f) for f in (normal(0.5), normal("learned"), normal("softplus"), normal("square"),
                                bernoulli(), categorical(4))]


def all_families() -> list[Family]:
    """One configuration of every built-in family kind (the lecture's first), as the verify table lists them."""
    from . import families as fam
    return [fam.normal(0.5), fam.normal("learned"), fam.normal("softplus"), fam.normal("square"),
            fam.bernoulli(), fam.categorical(4),
            fam.laplace(0.5), fam.laplace("softplus"), fam.student_t(), fam.student_t("learned", "learned"),
            fam.mixture_normal(2), fam.gamma(), fam.beta(), fam.von_mises(), fam.poisson(),
            fam.negative_binomial(), fam.negative_binomial("per_example"), fam.ordinal(4), fam.mvn_cholesky(2),
            fam.independent(fam.poisson(), 3), fam.independent(fam.normal("learned"), 2, shared=False),
            fam.censored(fam.normal("softplus")), fam.censored(fam.gamma()), fam.censored(fam.beta())]


def all_derivations() -> list[Derivation]:
    """The derivation of one configuration of every built-in family (``all_families``)."""
    return [derive(f) for f in all_families()]
