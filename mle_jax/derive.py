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

Reference: the lecture, Examples 1-3 and "Heteroscedastic regression"; Prince,
*Understanding Deep Learning*, sections 5.3-5.5.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

try:
    import sympy as sp
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError("mle_jax.derive needs sympy: pip install 'mle_jax[derive]'") from error

from .families import Family
from ._from_density import from_density  # noqa: F401,E402  (re-exported: mle_jax.derive.from_density)

i = sp.Idx("i")
k = sp.Idx("k")
I = sp.Symbol("I", integer=True, positive=True)  # noqa: E741  (the lecture's number of examples)
K = sp.Symbol("K", integer=True, positive=True)


def _indexed(name: str, **assumptions: Any) -> Any:
    """An indexed symbol (``y[i]``), typed loosely: sympy's stubs do not declare its indexing."""
    return sp.IndexedBase(name, **assumptions)


Y, F, F1, F2 = (_indexed(name, real=True) for name in ("y", "f", "f_1", "f_2"))
SIGMA = sp.Symbol("sigma", positive=True)
S = sp.Symbol("s", real=True)  # the family's raw learned scale: sigma = softplus(s)

_LINKS = {
    "softplus": lambda u: sp.log(1 + sp.exp(u)),
    "exp": sp.exp,
    "square": sp.Abs,  # the lecture's sigma^2 = f2^2
}


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
    """The chain of steps from density to loss, with what was dropped on the way."""

    family: str
    steps: tuple
    loss: Any          # the final per-example summand
    constant: Any      # the per-example additive terms dropped (free of phi)
    factor: Any        # the positive factor divided out
    spec: Any         # how to evaluate it numerically

    def text(self) -> str:
        lines = [f"Derivation for {self.family}"]
        for n, step in enumerate(self.steps, 1):
            lines += [f"{n}. {step.title}", "   " + step.text.replace("\n", "\n   ")]
        return "\n".join(lines)

    def latex(self) -> str:
        body = " \\\\\n".join(f"&\\text{{{s.title}}}: && {s.latex}" for s in self.steps)
        return "\\begin{aligned}\n" + body + "\n\\end{aligned}"

    def check(self, num: int = 8, seed: int = 0, rtol: float = 1e-9) -> CheckResult:
        """Compare the derived loss with the library's NLL in value and raw-output gradient."""
        return _check(self, num, seed, rtol)


class _Spec(NamedTuple):
    family: Family
    density: Any      # Pr(y_i | theta_i) with indexed symbols
    phi: tuple        # what depends on phi (drop-constants step keeps terms that contain any)
    raw: tuple        # the raw outputs of example i, in the family's raw order
    fparams: dict     # family parameter symbol -> name in the family's params
    draw: Any         # rng -> (y, raw values, family params) for one example
    num_classes: int | None = None
    constants: dict = {}  # symbol -> the family's fixed value (a fixed sigma)


def _normal_density(mu, sigma):
    return sp.exp(-(Y[i] - mu) ** 2 / (2 * sigma**2)) / sp.sqrt(2 * sp.pi * sigma**2)


def _spec(family: Family) -> _Spec:
    """The symbolic model of ``family``, chosen by its ``spec`` (kind and options), never its name."""
    spec = family.spec
    if family.training.options:
        raise ValueError(
            f"derive: {family.name} trains with a loss that is not its negative log-likelihood "
            f"({', '.join(k for k, _ in family.training.options)}); derive the distribution's NLL with "
            f"derive({spec.render()}) instead")
    if spec.kind == "normal":
        return _normal_spec(family, spec.option("scale"))
    if spec.kind == "bernoulli":
        lam = 1 / (1 + sp.exp(-F[i]))
        return _Spec(family, (1 - lam) ** (1 - Y[i]) * lam ** Y[i], (F[i],), (F[i],), {},
                     lambda rng: (int(rng.integers(0, 2)), [3 * rng.normal()], {}))
    if spec.kind == "categorical":
        n_classes = family.raw_shape[0]
        Fk = _indexed("f")
        density = sp.exp(Fk[i, Y[i]]) / sp.Sum(sp.exp(Fk[i, k]), (k, 0, K - 1))
        raw = tuple(Fk[i, j] for j in range(n_classes))
        return _Spec(family, density, (Fk,), raw, {},
                     lambda rng: (int(rng.integers(0, n_classes)), list(2 * rng.normal(size=n_classes)), {}),
                     n_classes)
    raise NotImplementedError(f"derive: no symbolic derivation for {family.name} yet")


def _normal_spec(family: Family, scale) -> _Spec:
    if scale == "learned":
        return _Spec(family, _normal_density(F[i], sp.log(1 + sp.exp(S))), (F[i], S), (F[i],), {S: "scale"},
                     lambda rng: (rng.normal(), [rng.normal()], {"scale": rng.normal()}))
    if isinstance(scale, str):
        sigma = _LINKS[scale](F2[i])
        return _Spec(family, _normal_density(F1[i], sigma), (F1[i], F2[i]), (F1[i], F2[i]), {},
                     lambda rng: (rng.normal(), [rng.normal(), rng.choice([-1, 1]) * rng.uniform(0.3, 2)], {}))
    return _Spec(family, _normal_density(F[i], SIGMA), (F[i],), (F[i],), {},
                 lambda rng: (rng.normal(), [rng.normal()], {}), constants={SIGMA: float(scale)})


def derive(family: Family) -> Derivation:
    """The lecture's derivation of the loss of ``family`` (normal, bernoulli, categorical).

    Dispatches on ``family.spec``. A family whose training loss is not its NLL (beta-NLL,
    label smoothing, class weights) raises a ValueError; other kinds raise NotImplementedError.

    Example:
      >>> import mle_jax as mj
      >>> from mle_jax.derive import derive
      >>> d = derive(mj.normal(0.5))
      >>> d.steps[-1].expr
      Sum((f[i] - y[i])**2, (i, 1, I))
    """
    spec = _spec(family)
    summand = sp.expand_log(sp.log(spec.density), force=True)
    nll_i = sp.Add(*[-t for t in sp.Add.make_args(summand)])
    kept = sp.Add(*[t for t in sp.Add.make_args(nll_i) if t.has(*spec.phi)])
    constant = sp.Add(*[t for t in sp.Add.make_args(nll_i) if not t.has(*spec.phi)])
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
    return Derivation(family.name, tuple(steps), loss, constant, factor, spec)


def _positive_factor(expr, spec):
    """A positive constant common to every term (1/(2 sigma^2) for a fixed sigma), else 1."""
    terms = sp.Add.make_args(expr)
    if len(terms) == 1:
        coeff = sp.Mul(*[a for a in sp.Mul.make_args(terms[0]) if not a.has(*spec.phi, Y)])
        if coeff.is_positive and coeff != 1:
            return coeff
    return sp.Integer(1)


def _step(title, expr):
    return Step(title, expr, sp.pretty(expr, use_unicode=False), sp.latex(expr))


def _check(d: Derivation, num: int, seed: int, rtol: float) -> CheckResult:
    spec = d.spec
    rng = np.random.default_rng(seed)
    value_gap = grad_gap = 0.0
    fixed = {K: spec.num_classes} if spec.num_classes else dict(spec.constants)
    loss, constant, factor = (e.subs(fixed).doit() for e in (d.loss, d.constant, d.factor))
    with jax.enable_x64(True):
        for _ in range(num):
            y, raw, fparams = spec.draw(rng)
            subs = {Y[i]: y, **dict(zip(spec.raw, raw))}
            subs.update({sym: fparams[name] for sym, name in spec.fparams.items()})
            local = {a: b for a, b in subs.items() if a != Y[i]}
            sym_loss = loss.subs(Y[i], y)
            derived = float(sym_loss.subs(local).evalf(30))
            restored = derived * float(factor) + float(constant.subs(Y[i], y).subs(local).evalf(30))
            raw_arr = jnp.asarray(raw, jnp.float64)
            raw_arg = raw_arr[0] if spec.family.raw_shape == () else raw_arr
            fp = {name: jnp.float64(v) for name, v in fparams.items()}
            y_arg = jnp.asarray(y, jnp.int32 if isinstance(y, int) else jnp.float64)
            nll = lambda r: -spec.family.log_prob(fp, r, y_arg)
            value, grad = jax.value_and_grad(nll)(raw_arg)
            sym_grad = np.array([float(sp.diff(sym_loss, a).subs(local).evalf(30)) for a in spec.raw])
            lib_grad = np.atleast_1d(np.asarray(grad)) / float(factor)
            value_gap = max(value_gap, abs(restored - float(value)) / max(1.0, abs(float(value))))
            grad_gap = max(grad_gap, float(np.max(np.abs(sym_grad - lib_grad)) / max(1.0, np.max(np.abs(lib_grad)))))
    return CheckResult(value_gap, grad_gap, value_gap <= rtol and grad_gap <= rtol)


def all_derivations() -> list[Derivation]:
    """The lecture's derivations: Normal (fixed, learned, heteroscedastic), Bernoulli, Categorical."""
    from .families import bernoulli, categorical, normal
    return [derive(f) for f in (normal(0.5), normal("learned"), normal("softplus"), normal("square"),
                                bernoulli(), categorical(4))]


