"""``from_density(expr, y, links, support=...)``: a sympy density in, a checked Family out.

The lecture's recipe for a new loss, done by the machine:

    1. the density Pr(y | theta) and the links theta_j = g_j(f_j) of the model's raw outputs f_j
    2. the likelihood of i.i.d. examples      prod_i Pr(y_i | theta_i)
    3. its logarithm, expanded                log(ab) = log a + log b, log exp x = x
    4. negated                                -sum_i log Pr(y_i | theta_i)
    5. terms free of theta dropped            (reported: they shift the loss, not its minimiser)
    6. numerically unsafe forms rewritten     log(1 + e^a) -> softplus(a), log(e^a + e^b) -> logaddexp(a, b),
                                              log(e^a + e^b + ...) -> logsumexp, log(1 - e^-x) -> log1mexp(x),
                                              log(1 + x) -> log1p(x), e^x - 1 -> expm1(x),
                                              log(n!) and log Gamma(x) -> loggamma
    7. the links substituted                  the loss in the raw outputs (log theta fused with the link:
                                              log softplus, log sigmoid, ... as the built-in families do)

A remaining ``exp`` of an unbounded argument is reported in ``Derivation.notes`` as an
overflow risk (the Gumbel's ``exp(-(y - mu)/beta)``: the log density is -inf where it overflows).

The JAX log density is generated from the stable form (sympy ``lambdify`` on a ``jax.numpy``
namespace) and checked before the Family is returned, in float64, at ``draws`` random raw outputs:
the density integrates to 1 over the support (``scipy.integrate.quad``; a discrete one sums to 1
up to a tail bound), and the generated log density and its autodiff gradient in theta equal the
original expression's log and sympy's symbolic derivative (evaluated with 30 digits). A failure is
a ValueError naming what failed.

Reference: the lecture, "Constructing loss functions"; Prince, *Understanding Deep Learning*,
section 5.2; Blanchard, Higham and Higham (2021), *Accurately computing the log-sum-exp and
softmax functions*; Maechler (2012), *Accurately computing log(1 - exp(-|a|))*.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import sympy as _sympy
from sympy.codegen import cfunctions as _cfunctions

from . import links as _links
from .distributions import _support
from .distributions import registry
from .distributions import special as _special
from .families._family import Family, Spec, build, unstack

__all__ = ["DensityDerivation", "DensityFamily", "from_density"]

# sympy's stubs type expressions as Basic (no arithmetic, no indexing): read sympy loosely, as derive.py does
sp: Any = _sympy
expm1: Any = _cfunctions.expm1
log1p: Any = _cfunctions.log1p


# ---------------------------------------------------------------- the stable forms, as sympy functions
class softplus(sp.Function):  # noqa: N801  (printed as the name users know)
    """``log(1 + exp(x))``, computed without overflow."""
    nargs = 1


class logaddexp(sp.Function):  # noqa: N801
    """``log(exp(a) + exp(b))``, computed without overflow."""
    nargs = 2


class logsumexp(sp.Function):  # noqa: N801
    """``log(sum_k exp(a_k))``, computed without overflow."""


class log1mexp(sp.Function):  # noqa: N801
    """``log(1 - exp(-x))`` for x > 0 (Maechler's two-branch form)."""
    nargs = 1


def _jax_log1mexp(x):
    """``log(1 - exp(-x))`` for x > 0: ``special.log1mexp`` (Maechler 2012) at ``-x``."""
    return _special.log1mexp(-x)


def _jax_logsumexp(*args):
    return jax.scipy.special.logsumexp(jnp.stack(jnp.broadcast_arrays(*args)), axis=0)


_NAMESPACE = {
    "softplus": jax.nn.softplus, "logaddexp": jnp.logaddexp, "logsumexp": _jax_logsumexp,
    "log1mexp": _jax_log1mexp, "log1p": _special.log1p, "expm1": jnp.expm1, "log": jnp.log, "exp": jnp.exp,
    "sqrt": jnp.sqrt, "loggamma": jax.scipy.special.gammaln, "lgamma": jax.scipy.special.gammaln,
    "gamma": jax.scipy.special.gamma, "digamma": jax.scipy.special.digamma, "erf": jax.scipy.special.erf,
    "erfc": jax.scipy.special.erfc, "cos": jnp.cos, "sin": jnp.sin, "tanh": jnp.tanh, "Abs": jnp.abs,
    "abs": jnp.abs, "pi": math.pi, "E": math.e,
}

_SUPPORTS = {s.name: s for s in (_support.real, _support.angle, _support.positive, _support.unit_interval,
                                 _support.probability, _support.binary, _support.nonnegative_integer)}


# ---------------------------------------------------------------- the results
class Step(NamedTuple):
    """One line of a derivation: what was done, the expression, as text and as LaTeX."""

    title: str
    expr: Any
    text: str
    latex: str


class CheckResult(NamedTuple):
    """The checks of a derived density (float64): ``value_difference`` is the largest |integral - 1|
    (or |sum - 1|), ``gradient_difference`` the largest relative gap between the generated code
    (value and autodiff gradient) and sympy (value and symbolic derivative)."""

    value_difference: float
    gradient_difference: float
    passed: bool


class DensityDerivation(NamedTuple):
    """The chain from a user's density to its loss (the shape of ``derive``'s ``Derivation``), plus
    ``notes`` (overflow risks), ``log_density`` (the stable sympy log density in theta) and ``checks``."""

    family: str
    steps: tuple
    loss: Any          # the per-example NLL in theta, terms free of theta dropped, stable forms
    constant: Any      # the per-example additive terms dropped (free of theta)
    factor: Any        # always 1 (no factor is divided out of a user's density)
    spec: Any          # the _Generated code and its inputs
    notes: tuple       # warnings: exp() of an unbounded argument
    log_density: Any   # the full stable log density in theta (what the JAX code evaluates)
    checks: CheckResult

    def text(self) -> str:
        lines = [f"Derivation for {self.family}"]
        for n, step in enumerate(self.steps, 1):
            lines += [f"{n}. {step.title}", "   " + step.text.replace("\n", "\n   ")]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)

    def latex(self) -> str:
        body = " \\\\\n".join(f"&\\text{{{s.title}}}: && {s.latex}" for s in self.steps)
        return "\\begin{aligned}\n" + body + "\n\\end{aligned}"

    def check(self, num: int = 3, seed: int = 0, rtol: float = 1e-6) -> CheckResult:
        """Run the normalisation and gradient checks again at ``num`` other random raw outputs."""
        return _verify(self.spec, num, seed, rtol, raise_on_failure=False)


@dataclasses.dataclass(frozen=True, eq=False)
class DensityFamily(Family):
    """A Family made by ``from_density``: a ``Family`` with its ``derivation`` and ``theta_type`` attached.

    ``log_density(theta, y)`` is the generated log density at a theta of ``theta_type`` (what
    ``mj.log_prob(theta, y)`` gives once the type is registered: ``from_density(..., register=True)``).
    """

    derivation: Any = None
    theta_type: Any = None
    log_density: Any = None


def _numpy_namespace() -> dict:
    """The same functions in numpy / scipy.special, for the normalisation check's many scalar calls."""
    from scipy import special

    def log1mexp_np(x):
        with np.errstate(divide="ignore"):
            return np.where(x < math.log(2.0), np.log(-np.expm1(-x)), np.log1p(-np.exp(-x)))

    return {"softplus": lambda x: np.logaddexp(0.0, x), "logaddexp": np.logaddexp,
            "logsumexp": lambda *a: special.logsumexp(np.stack(np.broadcast_arrays(*a)), axis=0),
            "log1mexp": log1mexp_np, "loggamma": special.gammaln, "lgamma": special.gammaln,
            "gamma": special.gamma, "digamma": special.digamma, "erf": special.erf, "erfc": special.erfc}


class _Generated(NamedTuple):
    name: str
    expr: Any            # the user's density
    y: Any
    params: tuple        # the parameter symbols, in the raw order
    links: tuple         # one Link per parameter
    support: Any         # the Support
    inputs: tuple        # (symbol, kind, parameter index): kind "value", "log" or "log1m"
    fn: Any              # the generated jnp function (y, *inputs)
    expr_fused: Any      # the stable log density with the fused inputs (what fn evaluates)


# ---------------------------------------------------------------- the public function
def from_density(expr: Any, y: Any, links: dict, *, support: Any = "real", name: str = "density",
                 draws: int = 3, seed: int = 0, rtol: float = 1e-6, register: bool = False) -> DensityFamily:
    """A Family from a sympy density ``expr`` in the target symbol ``y``, derived and checked.

    Args:
      expr: the density (or probability mass) Pr(y | theta) as a sympy expression in ``y`` and the
        parameter symbols, normalised over the support.
      y: the target symbol.
      links: ``{parameter symbol: link}``, one per parameter, in the order of the model's raw outputs;
        a link is a name of ``mle_jax.links`` (``"identity"``, ``"softplus"``, ``"exp"``, ``"sigmoid"``,
        ``"square"``) or a ``Link``. One parameter: raw shape ``()``; k > 1: raw shape ``(k,)``.
      support: a named support (``"real"``, ``"positive"``, ``"unit_interval"``, ``"probability"``,
        ``"nonnegative_integer"``, ``"binary"``, ``"angle"`` on (-pi, pi)) or a ``Support``.
      name: the family's name (``from_density('gumbel', mu='identity', beta='softplus')``).
      draws, seed, rtol: the checks: ``draws`` random raw outputs (uniform in (-1, 1)), the
        tolerance on |integral - 1| and on the relative gradient gap.
      register: also register the theta type with the registry (``mle_jax.distributions.registry``)
        so that the generic ``mj.log_prob(theta, y)`` and the scores that need only ``log_prob``
        accept it; it stays registered for the session. Without it, ``fam.log_density(theta, y)``.

    Returns a ``DensityFamily`` (a ``Family``: ``mj.recipe(model, fam)``, ``mj.fit``, ``mj.losses.nll``)
    whose ``derivation`` holds the steps, the loss, the notes and the checks' result. Its theta
    (``fam.theta_type``) is a NamedTuple named after ``name`` with the parameters as fields.

    Raises ValueError for a symbol without a link, an unknown link or support, a density that does not
    integrate / sum to 1, or generated code that disagrees with sympy.

    scipy equivalent: the density ``scipy.stats`` would give, e.g. ``gumbel_r.logpdf(y, mu, beta)``.

    Example:
      >>> import sympy as sp
      >>> from mle_jax.derive import from_density
      >>> y, mu = sp.Symbol("y", real=True), sp.Symbol("mu", real=True)
      >>> beta = sp.Symbol("beta", positive=True)
      >>> z = (y - mu) / beta
      >>> fam = from_density(sp.exp(-z - sp.exp(-z)) / beta, y, {mu: "identity", beta: "softplus"},
      ...                    name="gumbel")
      >>> fam.name
      "from_density('gumbel', mu='identity', beta='softplus')"
    """
    label = f"from_density({name!r})"
    expr, params, link_objs, sup = _arguments(label, expr, y, links, support)
    log_expanded = sp.expand_log(sp.log(expr), force=True)
    rewrites: list[str] = []
    stable = _rewrite(log_expanded, rewrites)
    fused, inputs = _fuse(stable, params, link_objs)
    fn = sp.lambdify((y,) + tuple(s for s, _, _ in inputs), fused, modules=[_NAMESPACE, "jax"])
    gen = _Generated(name, expr, y, params, link_objs, sup, inputs, fn, fused)
    checks = _verify(gen, draws, seed, rtol, raise_on_failure=True)
    derivation = _derivation(gen, log_expanded, stable, rewrites, checks)
    return _family(gen, derivation, register)


def _arguments(label, expr, y, links, support):
    expr = sp.sympify(expr)
    if not isinstance(y, sp.Symbol):
        raise ValueError(f"{label}: y must be a sympy Symbol; got {y!r}")
    if not isinstance(links, dict) or not links:
        raise ValueError(f"{label}: links must be a non-empty dict {{parameter symbol: link}}; got {links!r}")
    params = tuple(links)
    for p in params:
        if not isinstance(p, sp.Symbol) or p == y:
            raise ValueError(f"{label}: each key of links must be a parameter Symbol other than y; got {p!r}")
    free = expr.free_symbols - {y} - set(params)
    if free:
        raise ValueError(f"{label}: the density has symbols without a link: {sorted(map(str, free))}; "
                         f"give each parameter a link (or substitute a number for a fixed one)")
    if y not in expr.free_symbols:
        raise ValueError(f"{label}: the density does not depend on y = {y}")
    link_objs = tuple(_links.get(links[p]) for p in params)
    if isinstance(support, str):
        if support not in _SUPPORTS:
            raise ValueError(f"{label}: unknown support {support!r}; known: {sorted(_SUPPORTS)} (or a Support)")
        support = _SUPPORTS[support]
    if not isinstance(support, _support.Support) or support.columns:
        raise ValueError(f"{label}: support must be a support name or a scalar Support; got {support!r}")
    return expr, params, link_objs, support


# ---------------------------------------------------------------- step 6: the stable forms
def _exp_term(term):
    """``c exp(a)`` with c a positive number -> ``a + log c``; a positive number c -> ``log c``; else None."""
    exponent, coeff = sp.Integer(0), sp.Integer(1)
    for factor in sp.Mul.make_args(term):
        if isinstance(factor, sp.exp):
            exponent += factor.args[0]
        elif factor.is_number and factor.is_positive:
            coeff *= factor
        else:
            return None
    return exponent + sp.log(coeff)


def _stable_log(arg, notes):
    """A stable form of ``log(arg)`` (``arg`` already rewritten), noting the rewrite."""
    if isinstance(arg, sp.Mul) and len(arg.args) == 2 and arg.args[0] == -1 and isinstance(arg.args[1], expm1):
        x = -arg.args[1].args[0]
        if notes and notes[-1] == "exp(x) - 1 -> expm1(x)":
            notes.pop()  # the inner 1 - exp(-x) -> -expm1(-x) was a step towards this
        notes.append("log(1 - exp(-x)) -> log1mexp(x)")
        return log1mexp(x)
    if isinstance(arg, sp.Add):
        terms = sp.Add.make_args(arg)
        exps = [_exp_term(t) for t in terms]
        if all(e is not None for e in exps) and any(t.has(sp.exp) for t in terms):
            if len(terms) == 2 and 0 in exps:
                a = exps[1] if exps[0] == 0 else exps[0]
                notes.append("log(1 + exp(a)) -> softplus(a)")
                return softplus(a)
            if len(terms) == 2:
                notes.append("log(exp(a) + exp(b)) -> logaddexp(a, b)")
                return logaddexp(*exps)
            notes.append("log(sum_k exp(a_k)) -> logsumexp(a_1, ..., a_K)")
            return logsumexp(*exps)
        if 1 in terms:
            notes.append("log(1 + x) -> log1p(x)")
            return log1p(arg - 1)
    if isinstance(arg, sp.factorial):
        notes.append("log(n!) -> loggamma(n + 1)")
        return sp.loggamma(arg.args[0] + 1)
    if isinstance(arg, sp.gamma):
        notes.append("log(Gamma(x)) -> loggamma(x)")
        return sp.loggamma(arg.args[0])
    return sp.log(arg)


def _stable_add(expr, notes):
    """``exp(x) - 1 -> expm1(x)`` and ``1 - exp(x) -> -expm1(x)`` inside a sum."""
    terms = list(sp.Add.make_args(expr))
    for t in terms:
        for sign in (1, -1):  # exp(x) - 1, or 1 - exp(x)
            inner = sign * t
            if isinstance(inner, sp.exp) and -sign in terms:
                rest = list(terms)
                rest.remove(t)
                rest.remove(-sign)
                notes.append("exp(x) - 1 -> expm1(x)")
                return sp.Add(*rest, sign * expm1(inner.args[0]))
    return expr


def _rewrite(expr, notes):
    """Rewrite unsafe forms bottom-up."""
    if expr.is_Atom:
        return expr
    args = [_rewrite(a, notes) for a in expr.args]
    if isinstance(expr, sp.log):
        return _stable_log(args[0], notes)
    rebuilt = expr.func(*args)
    if isinstance(rebuilt, sp.Add):
        return _stable_add(rebuilt, notes)
    return rebuilt


def _overflow_notes(stable, y, params):
    notes = []
    for e in sorted(stable.atoms(sp.exp), key=sp.default_sort_key):
        arg = e.args[0]
        if arg.has(y, *params) and not arg.is_nonpositive:
            notes.append(f"overflow risk: exp({sp.sstr(arg)}) is unbounded; past 88 in float32 (709 in "
                         f"float64) it overflows and the log density becomes -inf or inf there")
    return notes


# ---------------------------------------------------------------- step 7: the links, fused
def _fuse(stable, params, link_objs):
    """Replace ``log p`` (and ``log(1 - p)`` for the sigmoid link) by inputs the link computes stably."""
    replace, inputs = {}, []
    for j, (p, link) in enumerate(zip(params, link_objs)):
        if link.log_forward is not None:
            lp = sp.Dummy(f"log_{p.name}")
            replace[sp.log(p)] = lp
            inputs.append((lp, "log", j))
        if link.name == "sigmoid":
            lq = sp.Dummy(f"log1m_{p.name}")
            replace[log1p(-p)] = lq
            replace[sp.log(1 - p)] = lq
            inputs.append((lq, "log1m", j))
    fused = stable.xreplace(replace)
    used = [(s, kind, j) for s, kind, j in inputs if fused.has(s)]
    values = [(p, "value", j) for j, p in enumerate(params) if fused.has(p)]
    return fused, tuple(values + used)


def _theta_inputs(gen: _Generated, values):
    out = []
    for _, kind, j in gen.inputs:
        v = values[j]
        out.append(v if kind == "value" else jnp.log(v) if kind == "log" else _special.log1p(-v))
    return out


def _raw_inputs(gen: _Generated, raws):
    out = []
    for _, kind, j in gen.inputs:
        link, r = gen.links[j], raws[j]
        if kind == "value":
            out.append(link.forward(r))
        elif kind == "log":
            out.append(_links.log_forward(link)(r))
        else:
            out.append(jax.nn.log_sigmoid(-r))
    return out


def _symbolic_link(link, f):
    forms = {"identity": f, "softplus": softplus(f), "exp": sp.exp(f), "sigmoid": 1 / (1 + sp.exp(-f)),
             "square": sp.Abs(f)}
    return forms.get(link.name, sp.Function(link.name)(f))


def _symbolic_log_link(link, f):
    forms = {"softplus": sp.log(softplus(f)), "exp": f, "sigmoid": -softplus(-f), "square": sp.log(sp.Abs(f))}
    return forms.get(link.name, sp.log(_symbolic_link(link, f)))


# ---------------------------------------------------------------- the Family
def _family(gen: _Generated, derivation: DensityDerivation, register: bool) -> DensityFamily:
    fields = [(_identifier(p.name, j), Any) for j, p in enumerate(gen.params)]
    type_name = _identifier(gen.name.title().replace("_", ""), 0) or "Density"
    theta_type = NamedTuple(type_name, fields)  # type: ignore[misc]
    theta_type.__doc__ = f"The theta of from_density({gen.name!r}): {', '.join(f for f, _ in fields)}."
    sup = gen.support

    def log_prob(theta, y):
        values = tuple(theta)
        dtype = jnp.result_type(*values)
        return gen.fn(jnp.asarray(y, dtype), *_theta_inputs(gen, values))

    if register:
        registry.register(theta_type, registry.Ops(
            log_prob=log_prob, support=lambda theta: sup, discrete=sup.integer,
            missing="a from_density theta has only log_prob"))
    k = len(gen.params)

    def raws_of(raw):
        return unstack(raw) if k > 1 else (jnp.reshape(raw, ()),)

    def theta(fp, raw):
        return theta_type(*[link.forward(r) for link, r in zip(gen.links, raws_of(raw))])

    def kernel(fp, raw, y):
        raws = raws_of(raw)
        return gen.fn(jnp.asarray(y, jnp.result_type(raw)), *_raw_inputs(gen, raws))

    options = tuple((p.name, link.name) for p, link in zip(gen.params, gen.links))
    spec = Spec("from_density", args=(gen.name,), options=options)
    base = build(spec=spec, support=sup, theta=theta, raw_shape=(k,) if k > 1 else (), kernel=kernel)
    return DensityFamily(**{f.name: getattr(base, f.name) for f in dataclasses.fields(Family)},
                         derivation=derivation, theta_type=theta_type, log_density=log_prob)


def _identifier(text: str, j: int) -> str:
    out = "".join(c if c.isalnum() or c == "_" else "_" for c in text)
    return out if out and not out[0].isdigit() else f"p{j}_{out}"


# ---------------------------------------------------------------- the derivation
def _derivation(gen, log_expanded, stable, rewrites, checks) -> DensityDerivation:
    i, I = sp.Idx("i"), sp.Symbol("I", integer=True, positive=True)  # noqa: E741
    y, params = gen.y, gen.params
    view = {y: sp.IndexedBase(y.name)[i], **{p: sp.IndexedBase(p.name)[i] for p in params}}
    raws = [sp.IndexedBase(f"f_{j + 1}")[i] for j in range(len(params))]

    def per(e):
        return e.xreplace(view)

    nll = sp.Add(*[-t for t in sp.Add.make_args(stable)])
    kept = sp.Add(*[t for t in sp.Add.make_args(nll) if t.has(*params)])
    constant = sp.Add(*[t for t in sp.Add.make_args(nll) if not t.has(*params)])
    negated = sp.Add(*[-t for t in sp.Add.make_args(log_expanded)])
    unsafe_nll = sp.Add(*[t for t in sp.Add.make_args(negated) if t.has(*params)])
    links_eq = sp.Tuple(*[sp.Eq(per(p), _symbolic_link(link, f)) for p, link, f in zip(params, gen.links, raws)])
    in_raw = kept
    for p, link, f in zip(params, gen.links, raws):
        in_raw = in_raw.xreplace({sp.log(p): _symbolic_log_link(link, f)})
        if link.name == "sigmoid":
            in_raw = in_raw.xreplace({log1p(-p): -softplus(f)})
        in_raw = in_raw.xreplace({p: _symbolic_link(link, f)})
    in_raw = in_raw.xreplace({y: view[y]})
    steps = [
        _step(f"the density on the support {gen.support.name}", gen.expr),
        _step("the links from the model's raw outputs", links_eq),
        _step("likelihood of i.i.d. examples", sp.Product(per(gen.expr), (i, 1, I))),
        _step("take the log (monotonic: same maximiser)", sp.Sum(sp.log(per(gen.expr)), (i, 1, I))),
        _step("expand: log(ab) = log a + log b, log exp x = x", sp.Sum(per(log_expanded), (i, 1, I))),
        _step("negate: minimise the negative log-likelihood", sp.Sum(per(negated), (i, 1, I))),
        _step(f"drop the terms free of theta (per example: {sp.sstr(per(constant))})",
              sp.Sum(per(unsafe_nll), (i, 1, I))),
    ]
    unique = list(dict.fromkeys(rewrites))
    if unique:
        steps.append(_step(f"stable forms: {'; '.join(unique)}", sp.Sum(per(kept), (i, 1, I))))
    steps.append(_step("substitute the links: the loss in the raw outputs f", sp.Sum(in_raw, (i, 1, I))))
    notes = tuple(_overflow_notes(stable, y, params))
    return DensityDerivation(f"from_density({gen.name!r})", tuple(steps), kept, constant, sp.Integer(1), gen,
                             notes, stable, checks)


def _step(title, expr):
    return Step(title, expr, sp.pretty(expr, use_unicode=False), sp.latex(expr))


# ---------------------------------------------------------------- the checks
def _draw_targets(sup, rng, n=3):
    if sup.values is not None:
        return list(sup.values)
    if sup.integer:
        return [float(v) for v in rng.integers(0, 8, n) + max(sup.lower, 0.0)]
    lo, hi = _interval(sup)
    if math.isfinite(lo) and math.isfinite(hi):
        return list(lo + (hi - lo) * rng.uniform(0.05, 0.95, n))
    if math.isfinite(lo):
        return list(lo + np.exp(rng.normal(0.0, 0.7, n)))
    return list(rng.normal(0.0, 1.5, n))


def _interval(sup):
    if sup.name == "angle":
        return -math.pi, math.pi
    return sup.lower, sup.upper


def _verify(gen: _Generated, draws: int, seed: int, rtol: float, raise_on_failure: bool) -> CheckResult:
    rng = np.random.default_rng(seed)
    label = f"from_density({gen.name!r})"
    original = sp.log(gen.expr)
    derivatives = [sp.diff(original, p) for p in gen.params]
    mass_gap = grad_gap = 0.0
    try:
        np_fn = sp.lambdify((gen.y,) + tuple(s for s, _, _ in gen.inputs), gen.expr_fused,
                            modules=[_numpy_namespace(), "scipy", "numpy"])
    except ImportError as error:  # pragma: no cover - exercised only without the extra
        raise ImportError(f"{label}: the normalisation check needs scipy: pip install 'mle_jax[derive]'") from error
    with jax.enable_x64(True):
        logpdf = jax.jit(lambda yv, th: gen.fn(yv, *_theta_inputs(gen, th)))
        grad = jax.jit(jax.grad(lambda th, yv: gen.fn(yv, *_theta_inputs(gen, th))))
        for _ in range(draws):
            raws = rng.uniform(-1.0, 1.0, len(gen.params))
            theta = tuple(jnp.float64(link.forward(jnp.float64(r))) for link, r in zip(gen.links, raws))
            at = ", ".join(f"{p}={float(v):.6g}" for p, v in zip(gen.params, theta))
            args = [float(v) for v in _theta_inputs(gen, theta)]
            with np.errstate(all="ignore"):  # exp(-z) overflows far in the tail: the density is 0 there
                total, what = _mass(gen, lambda v, a=args: np_fn(v, *a), label)
            gap = abs(total - 1.0)
            mass_gap = max(mass_gap, gap)
            if raise_on_failure and not gap <= rtol:
                raise ValueError(f"{label}: the density does not {what} to 1 over the support "
                                 f"{gen.support.name}: the {'integral' if what == 'integrate' else 'sum'} is "
                                 f"{total:.8g} at {at}; check the normalising constant")
            subs = {p: sp.Float(float(v), 30) for p, v in zip(gen.params, theta)}
            for yv in _draw_targets(gen.support, rng):
                point = {**subs, gen.y: sp.Float(yv, 30)}
                ref_value = float(original.subs(point).evalf(30))
                ref_grad = np.array([float(d.subs(point).evalf(30)) for d in derivatives])
                value = float(logpdf(jnp.float64(yv), theta))
                auto = np.array([float(g) for g in grad(theta, jnp.float64(yv))])
                scale = max(1.0, abs(ref_value), float(np.max(np.abs(ref_grad))))
                gap = max(abs(value - ref_value), float(np.max(np.abs(auto - ref_grad)))) / scale
                grad_gap = max(grad_gap, gap)
                if raise_on_failure and not gap <= 1e-8:
                    raise ValueError(f"{label}: the generated log density or its autodiff gradient differs from "
                                     f"sympy's (log {ref_value:.10g} vs {value:.10g}, gradient {ref_grad} vs "
                                     f"{auto}) at y={yv:.6g}, {at}")
    return CheckResult(mass_gap, grad_gap, mass_gap <= rtol and grad_gap <= 1e-8)


def _mass(gen, logpdf, label) -> tuple[float, str]:
    """The total mass of ``exp(logpdf)`` over the support (``logpdf`` vectorised numpy, float64)."""
    from scipy import integrate
    sup = gen.support
    if sup.values is not None:
        return float(np.sum(np.exp(logpdf(np.asarray(sup.values, np.float64))))), "sum"
    if sup.integer:
        return _series(gen, logpdf, label), "sum"
    lo, hi = _interval(sup)

    def f(v):
        return math.exp(float(logpdf(v)))

    peak = _peak(logpdf, lo, hi)
    parts = [(lo, peak), (peak, hi)] if lo < peak < hi else [(lo, hi)]
    return sum(integrate.quad(f, a, b, limit=200, epsabs=1e-12, epsrel=1e-10)[0] for a, b in parts), "integrate"


def _peak(logpdf, lo, hi) -> float:
    """The grid point of highest density, so that quad splits an infinite range where the mass is."""
    if math.isfinite(lo) and math.isfinite(hi):
        grid = np.linspace(lo, hi, 513)[1:-1]
    else:
        base = np.sinh(np.linspace(-12.0, 12.0, 1025))
        grid = base[base > 0] + lo if math.isfinite(lo) else (hi - base[base > 0] if math.isfinite(hi) else base)
    with np.errstate(all="ignore"):
        values = np.asarray(logpdf(grid), np.float64) * np.ones_like(grid)
    values = np.where(np.isfinite(values), values, -np.inf)
    return float(grid[int(np.argmax(values))])


def _series(gen, logpdf, label, chunk: int = 4096, max_terms: int = 1 << 20) -> float:
    """The sum of the mass function from the support's lower end until the terms are below 1e-17 of the sum."""
    start = int(max(gen.support.lower, 0.0))
    upper = gen.support.upper
    total_log, k = -np.inf, start
    while k < start + max_terms:
        ks = np.arange(k, k + chunk, dtype=np.float64)
        if math.isfinite(upper):
            ks = ks[ks < upper] if gen.support.open_upper else ks[ks <= upper]
            if ks.size == 0:
                return float(np.exp(total_log))
        with np.errstate(all="ignore"):
            terms = np.asarray(logpdf(ks), np.float64) * np.ones_like(ks)
        top = float(np.max(terms))
        if not math.isfinite(top):
            return float(np.exp(total_log))
        total_log = np.logaddexp(total_log, top + math.log(float(np.sum(np.exp(terms - top)))))
        if terms[-1] < total_log + math.log(1e-17) and terms[-1] <= terms[0]:
            return float(np.exp(total_log))
        k += chunk
    raise ValueError(f"{label}: the mass function's sum has not converged after {max_terms} terms")
