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
``MODELS`` (``mle_jax._derivations.table``: kind -> a small function giving the symbolic density
in terms of the raw outputs, the links and the family's own parameters); what each reduces to:

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
    censored       the inner density, log CDF or log SF by the side of each example (Normal, Gamma,
                   Beta; Exponential, Weibull, log-normal by their closed-form survival functions)
    exponential    exp(f) y - f (f the log-rate)
    log_normal     the Normal's loss in log y (log y dropped), scale options as the Normal's
    weibull        (y / s)^k - log k + k log s - (k - 1) log y, s = exp(f); k learned, fixed or per example
    asymmetric_laplace  fixed scale: the check loss rho_q(y - f) of quantile regression
    gamma, beta (parameterization="mean")  the Gamma GLM (log link) and beta regression (logit link)
    dirichlet      sum_k log Gamma(a_k) - log Gamma(sum_k a_k) - sum_k (a_k - 1) log y_k
    plackett_luce  sum_j [logsumexp(s_{y_j}, ..., s_{y_K}) - s_{y_j}], for a concrete K
    binomial       -k log sig(f) - (n - k) log sig(-f), y = (k, n) (log C(n, k) dropped)
    zero_inflated  -log(g + (1 - g) p(0)) at y = 0, -log(1 - g) - log p(y) elsewhere; g = sig(h), p the base

A family kind without an entry raises ``NotImplementedError`` naming it; a kind added
later joins by one entry in that table.

Reference: the lecture, Examples 1-3 and "Heteroscedastic regression"; Prince,
*Understanding Deep Learning*, sections 5.3-5.5.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

try:
    import mpmath
    import sympy as sp
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError("mle_jax.derive needs sympy: pip install 'mle_jax[derive]'") from error

# the symbols and the table are re-exported: derivations are read and tested in their terms
from ._derivations.symbols import (C, C0, D, F, F1, F2, G, I, K, LEFT, NU, OBS, RIGHT, SIGMA, T, S, Y,  # noqa: F401
                                   Model, d, i, k, softplus)
from ._derivations.table import MODELS, model  # noqa: F401
from .families import Family
from ._from_density import DensityDerivation, DensityFamily, from_density  # noqa: F401  (re-exported)

_MPMATH = [{"betainc_regularized": lambda a, b, lo, hi: mpmath.betainc(a, b, lo, hi, regularized=True)}, "mpmath"]

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


class _Spec(NamedTuple):
    """A family and its symbolic model: what ``Derivation.check`` evaluates."""

    family: Family
    model: Model

    def __getattr__(self, name):  # the model's fields, read through (spec.density, spec.raw, ...)
        return getattr(self.model, name)


def _spec(family: Family) -> _Spec:
    """The symbolic model of ``family``, chosen by its ``spec`` (kind and options), never its name."""
    spec = family.spec
    if family.training.options:
        raise ValueError(
            f"derive: {family.name} trains with a loss that is not its negative log-likelihood "
            f"({', '.join(k for k, _ in family.training.options)}); derive the distribution's NLL with "
            f"derive({spec.render()}) instead")
    return _Spec(family, model(spec))


def derive(family: Family) -> Derivation:
    """The lecture's derivation of the loss of ``family``, for every built-in family.

    Dispatches on ``family.spec.kind`` (the table ``MODELS``; see the module docstring for
    what each family reduces to). A family whose training loss is not its NLL (beta-NLL,
    label smoothing, class weights) raises a ValueError; a kind with no symbolic model
    raises NotImplementedError naming it. A family made by ``from_density`` returns the derivation
    it was built (and checked) with.

    Example:
      >>> import mle_jax as mj
      >>> from mle_jax.derive import derive
      >>> d = derive(mj.normal(0.5))
      >>> d.steps[-1].expr
      Sum((f[i] - y[i])**2, (i, 1, I))
    """
    if isinstance(family, DensityFamily):
        return family.derivation
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


def _terms(expr: Any, phi: tuple) -> list[Any]:
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


def _negate(term: Any) -> Any:
    return sp.Sum(-term.function, *term.limits) if isinstance(term, sp.Sum) else -term  # type: ignore[operator]


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
            fam.binomial(), fam.zero_inflated(fam.poisson()), fam.zero_inflated(fam.negative_binomial()),
            fam.independent(fam.poisson(), 3), fam.independent(fam.normal("learned"), 2, shared=False),
            fam.censored(fam.normal("softplus")), fam.censored(fam.gamma()),
            fam.exponential(), fam.log_normal(), fam.weibull(), fam.weibull("per_example"), fam.weibull(1.5),
            fam.asymmetric_laplace(0.9), fam.asymmetric_laplace(0.3, "learned"), fam.gamma("mean"),
            fam.beta("mean"), fam.dirichlet(3), fam.plackett_luce(3), fam.censored(fam.exponential()),
            fam.censored(fam.weibull()), fam.censored(fam.log_normal("learned"))]


def all_derivations() -> list[Derivation]:
    """The derivation of one configuration of every built-in family (``all_families``)."""
    return [derive(f) for f in all_families()]
