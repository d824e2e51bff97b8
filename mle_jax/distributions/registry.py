"""Dispatch from a theta type to its pure functions.

Each distribution module defines a NamedTuple theta type and registers an
`Ops` table of pure functions for it; the generic functions of
`mle_jax.distributions` (``log_prob(theta, y)``, ``mode(theta)``, ...) and of
`mle_jax.scores` (``crps``, ``pit``, ...) look the table up by ``type(theta)``.
KL divergences and cross-entropies are registered per ordered pair of types.
A user's type joins the same registry (``mj.register(MyTheta, log_prob=..., example=MyTheta(...), **optional)``)
and gets exactly what a built-in with the same entries gets; given an ``example``, what it registers is checked
first (``_check_registration``: normalisation, sample against log_prob, moments, mode, CDF and quantile).

Every entry of `Ops` is optional (``mj.register``'s keyword form requires ``log_prob``; an internal
table such as the Empirical's leaves it out). A missing entry has ONE fallback, the same for
built-ins and user types:

    log_tail     where(upper, log_sf, log_cdf)              isf          quantile(theta, 1 - p)
    quantile, isf  with a log_cdf or log_sf: bisection of the tails to the float (``_invert``: exact in both
                 tails, q = 1e-30 and isf(1e-30); counts: the smallest k with F(k) >= q), stored in the table
    batch_shape  the fields' broadcast shape, less their ``component_axes`` trailing axes
    event_ndims  0 (scalar targets)                          support      the real line (``_support.real``)
    distance     |a - b| (sample CRPS, MAE, RMSE)             discrete / unordered / binary   False
    crps         scores.crps needs ``key=`` and returns the sample estimate with its standard error
                 (``scores.crps_sample``, from ``sample``); without ``sample`` either, a TypeError
    log_cdf      scores.pit / evaluate's pit_ks: a TypeError "not available for X: it has no log_cdf"
    quantile     (no tail either) scores.coverage / evaluate's coverage: the same TypeError naming quantile; interval(theta, key=k):
                 the empirical quantiles of num_samples draws (``sample``), a TypeError naming key= without one
    probs        scores.brier / calibration: the same TypeError naming probs
    fisher       inference(cov="expected"): a NotImplementedError "no closed-form expected information
                 for X; use cov='observed' or cov='robust'", raised before anything compiles
                 (``has_fisher``); a type made of thetas (Independent) has it where each part has it
    to_tfp / to_distrax / from_tfp   mle_jax.interop: a TypeError "no TFP twin for X" (or "distrax has
                 no X; use mj.to_tfp(theta)"); ``from_tfp`` finds the type whose ``tfp_names`` holds the
                 TFP class's name (or a base class's), else "no mle_jax theta for tensorflow_probability Y"
    any other    calling the generic function (``mj.entropy``, ``mj.mean``, ...) is a
                 ``NotImplementedError`` naming the type, the function and the type's ``missing`` note

Scores leave out what they cannot compute (``evaluate`` reports no ``coverage`` without a quantile).
A distribution object of another library (TensorFlow Probability, distrax) gets a ``TypeError``
naming the converter.

Every function looked up here (``function``, ``kl``, ``cross_entropy``) receives its thetas through
``promote``: integer and boolean fields (``Normal(0, 1)``, ``Poisson(1)``) become JAX's default float
dtype once, at the dispatch, so no per-type function ever casts a target to an integer dtype
(``log_prob(Normal(0, 1), 0.5)`` is -1.044, not the density at 0). Floating fields keep their dtype
(float16 and bfloat16 stay as given); Python floats become arrays (weakly typed, as JAX makes them).
``broadcast`` is the scores' form of the same promotion: every field in one dtype and of the batch shape.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, TypeAlias

import jax
import jax.numpy as jnp
import numpy as np

from .._cache import is_concrete
from . import _domain, _support

#: A theta field: a jax.Array, a NumPy array or a Python number (array-likes are accepted as given).
Param: TypeAlias = Any


class Ops(NamedTuple):
    """The pure functions of one theta type (``None`` where none exists).

    ``sample_log`` / ``log_prob_log`` are the log-domain pair used by ``kl_mc`` where draws
    underflow (Gamma and Beta at tiny concentrations): a draw's logs, and the log density at it.
    ``log_tail(theta, y, upper)`` is ``log_sf`` where ``upper`` and ``log_cdf`` elsewhere from one
    evaluation (one incomplete-function loop, not two); without it both are evaluated and selected.
    ``isf(theta, p)`` is the upper quantile ``F^{-1}(1 - p)`` (scipy's ``isf``), for p so small that
    ``1 - p`` rounds to 1; without it ``quantile(theta, 1 - p)`` is used.
    ``batch_shape(theta)`` is the shape of the examples a theta holds (its fields' leading axes, before
    any axis that belongs to one example, such as a Categorical's classes); without it, the
    broadcast shape of the fields (every field of one example is a scalar).
    ``missing`` is a sentence added to the error for every function left ``None``.
    """

    log_prob: Callable[[Any, Any], Any] | None = None
    mode: Callable[[Any], Any] | None = None
    mean: Callable[[Any], Any] | None = None
    sample: Callable[[Any, Any], Any] | None = None
    entropy: Callable[[Any], Any] | None = None
    quantile: Callable[[Any, Any], Any] | None = None
    isf: Callable[[Any, Any], Any] | None = None
    log_cdf: Callable[[Any, Any], Any] | None = None
    log_sf: Callable[[Any, Any], Any] | None = None
    log_tail: Callable[[Any, Any, Any], Any] | None = None
    event_shape: Callable[[Any], tuple[int, ...]] | None = None
    variance: Callable[[Any], Any] | None = None
    probs: Callable[[Any], Any] | None = None
    batch_shape: Callable[[Any], tuple[int, ...]] | None = None
    sample_log: Callable[[Any, Any], Any] | None = None
    log_prob_log: Callable[[Any, Any], Any] | None = None
    # inference: the expected Fisher information of ONE example in theta, a (d, d) matrix over
    # jax.flatten_util.ravel_pytree(theta) order (fallback: a "not available" error naming cov="observed")
    fisher: Callable[[Any], Any] | None = None
    # library twins (mle_jax.interop): theta -> the TFP (JAX substrate) / distrax distribution with the same
    # log_prob; tfp_names: the TFP class names this type converts from, and from_tfp(tfp_dist) -> theta
    to_tfp: Callable[[Any], Any] | None = None
    to_distrax: Callable[[Any], Any] | None = None
    tfp_names: tuple[str, ...] = ()
    from_tfp: Callable[[Any], Any] | None = None
    # scores (mle_jax.scores) and target checks
    # crps(theta, y): the closed-form CRPS, elementwise over a batch (fallback: the sampled estimate, key=)
    crps: Callable[[Any, Any], Any] | None = None
    # support(theta) -> the Support of one target (distributions._support; fallback: real)
    support: Callable[[Any], Any] | None = None
    # discrete: integer targets, so F jumps and the PIT is randomised (needs key=)
    discrete: bool = False
    # unordered: the targets are classes without an order: no CRPS, no PIT (brier / calibration instead)
    unordered: bool = False
    # binary: two classes reported through Pr(y = 1): brier (p - y)^2, calibration on Pr(y = 1), soft labels;
    # otherwise a classification theta (one with probs) is scored top-label over probs(theta)
    binary: bool = False
    # distance(a, b) >= 0 between two targets (sample CRPS, MAE, RMSE; fallback |a - b|; angles: |angle(a - b)|)
    distance: Callable[[Any, Any], Any] | None = None
    # component_axes: trailing axes of EVERY field that belong to one example (a Categorical's classes)
    component_axes: int = 0
    # event_ndims(theta): the number of axes of one example's target (fallback 0; > 0: vector targets, no CRPS)
    event_ndims: Callable[[Any], int] | None = None
    # domain: where each field must lie, ``{"scale": "positive", ...}`` (``_domain``'s rules; stored as
    # ``((field, Rule), ...)``): every dispatched function refuses a concrete theta outside it (a ValueError) and
    # answers NaN for a traced one; fields not named are unconstrained (logits, locations); NaN breaks no rule
    domain: Any = ()
    # compiled: the functions called on concrete arguments run as one jitted program, not op by op (None: a
    # built-in type's do, a user's type's run as given, since they may read values; False for a type whose functions
    # read concrete fields: the Student t's fixed df picks its branches and a float64 normaliser)
    compiled: bool | None = None
    missing: str = ""


_OPS: dict[type, Ops] = {}
_KL: dict[tuple[type, type], Callable[[Any, Any], Any]] = {}
_CE: dict[tuple[type, type], Callable[[Any, Any], Any]] = {}

_FOREIGN = {"tensorflow_probability": "convert it with mj.from_tfp(dist)",
            "distrax": ("build the matching mle_jax theta from its parameters (e.g. mj.Normal(d.loc, d.scale)); "
                        "mj.from_tfp converts TensorFlow Probability distributions only"),
            "numpyro": "build the matching mle_jax theta (e.g. mj.Normal(loc, scale))",
            "torch": "build the matching mle_jax theta (e.g. mj.Normal(loc, scale))"}


def register(kind: type, ops: Ops | None = None, /, *, example: Any = None, check: bool | None = None,
             **fields: Any) -> None:
    """Register the theta type ``kind``: ``register(T, log_prob=..., mode=..., **optional)`` (the public
    ``mj.register``) or ``register(T, Ops(...))``; keywords given with an ``Ops`` replace its entries.

    Every generic function then dispatches on ``T`` as on a built-in; an entry left out has the fallback
    of the module docstring. ``log_prob(theta, y)`` is one example's log density (log mass), ``-inf`` off the
    support; ``sample(key, theta)`` one draw; ``support=lambda theta: "positive"`` (a name of
    ``distributions._support``'s table or a ``Support``) the domain of y; ``domain={"scale": "positive"}`` where the
    fields must lie (``_domain``'s rules: ``real``, ``vector``, ``positive``, ``nonnegative``, ``open_unit``,
    ``whole``, ``positive_diagonal``): every function then refuses a concrete theta outside it (a ValueError) and
    answers NaN for a traced one, and a NaN in a named field gives NaN.

    ``example=T(...)``: one theta at which what is given is CHECKED before it is registered (``check``
    defaults to on when an example is given; ``check=True`` without one is a TypeError): the density
    integrates / sums to 1 over the support, ``sample`` agrees with ``log_prob`` (a Kolmogorov distance at
    a one-in-a-million false-alarm rate), and ``mean`` / ``variance`` / ``mode`` / ``entropy`` / ``log_cdf`` /
    ``log_sf`` / ``quantile`` agree with their numeric values (``_check_registration``: what and to what
    tolerance). A failed check is a ValueError naming the entry and the numbers, and nothing is registered.
    The checks are errors, not warnings: a density that does not normalise makes every loss, score and
    standard error built on it wrong. Built-ins register without an example (nothing runs at import).

    A TypeError for a ``kind`` that is not a class, an unknown entry name, a missing ``log_prob``
    (keyword form) or an entry that is not callable. Registering a type again replaces its table."""
    if not isinstance(kind, type):
        raise TypeError(f"register: the theta type must be a class (a NamedTuple); got {kind!r}")
    unknown = sorted(set(fields) - set(Ops._fields))
    if unknown:
        raise TypeError(f"register: unknown entries {unknown} for {kind.__name__}; known: {list(Ops._fields)}")
    if isinstance(fields.get("support"), (str, _support.Support)):
        fields["support"] = _constant_support(as_support(fields["support"], kind.__name__))
    table = (Ops() if ops is None else ops)._replace(**fields)
    if not isinstance(table.domain, tuple):
        table = table._replace(domain=_domain.as_domain(kind, table.domain))
    if ops is None and table.log_prob is None:  # an Ops table may leave it out (an Empirical has no density)
        raise TypeError(f"register: {kind.__name__} needs log_prob (every other entry is optional)")
    if table.compiled not in (None, True, False):
        raise TypeError(f"register: {kind.__name__}'s compiled must be True, False or None; got {table.compiled!r}")
    for name, value in zip(Ops._fields, table):
        if name == "compiled":
            continue
        if Ops._field_defaults[name] is None and value is not None and not callable(value):  # a function entry
            raise TypeError(f"register: {kind.__name__}'s {name} must be a function; got {value!r}")
    if check and example is None:
        raise TypeError(f"register({kind.__name__}): check=True needs example=, one {kind.__name__} to check at")
    if example is not None and check is not False:
        from ._check_registration import check as run_checks
        previous = _OPS.get(kind)
        _OPS[kind] = table  # the checks dispatch through the registry (promote, support)
        try:
            run_checks(kind, table, example)
        except BaseException:
            _OPS.pop(kind) if previous is None else _OPS.__setitem__(kind, previous)
            raise
    _OPS[kind] = _with_fallbacks(table)


def _with_fallbacks(table: Ops) -> Ops:
    """``table`` with the fallbacks that are entries of their own: ``quantile`` and ``isf`` by bisection of the
    tails (``_invert.fallbacks``) where it has a ``log_cdf`` / ``log_sf`` and no quantile. A fallback kept from
    an earlier table (``entries(x)._replace(log_cdf=...)``) is rebuilt from the new tails."""
    from . import _invert
    own = {name: None for name in ("quantile", "isf") if getattr(getattr(table, name), "fallback", False)}
    table = table._replace(**own)
    return table._replace(**_invert.fallbacks(table))


def check_registration(example: Any) -> None:
    """Run ``register``'s checks on the table registered for ``type(example)`` at ``example`` (a built-in's
    too); a ValueError naming the entry and the numbers where one fails."""
    from ._check_registration import check as run_checks
    run_checks(type(example), entries(example), example)


_NAMED = ("real", "angle", "positive", "unit_interval", "probability", "binary", "nonnegative_integer")


def as_support(value: Any, who: str = "support") -> _support.Support:
    """A ``Support`` from itself or its name: ``"real"``, ``"angle"``, ``"positive"`` (y > 0), ``"unit_interval"``
    (0 < y < 1), ``"probability"`` (0 <= y <= 1), ``"binary"`` ({0, 1}), ``"nonnegative_integer"`` (counts); other
    domains as objects (``_support.labels(K)``, or ``_support.Support(name, rule, lower=..., upper=...)``)."""
    if isinstance(value, _support.Support):
        return value
    if isinstance(value, str) and value in _NAMED:
        return getattr(_support, value)
    raise ValueError(f"{who}: support must be a Support or one of {list(_NAMED)}; got {value!r}")


def _constant_support(support: _support.Support) -> Callable[[Any], _support.Support]:
    def own(theta):
        return support
    return own


def register_kl(p_kind: type, q_kind: type, fn: Callable[[Any, Any], Any]) -> None:
    _KL[(p_kind, q_kind)] = fn


def register_cross_entropy(p_kind: type, q_kind: type, fn: Callable[[Any, Any], Any]) -> None:
    _CE[(p_kind, q_kind)] = fn


def _unknown(theta: Any) -> TypeError:
    kind = type(theta)
    library = kind.__module__.split(".")[0]
    if library in _FOREIGN:
        return TypeError(
            f"{kind.__name__} is a {library} distribution, not an mle_jax theta; {_FOREIGN[library]}")
    return TypeError(f"{kind.__name__} is not a theta type of mle_jax; known: {sorted(t.__name__ for t in _OPS)}")


def _float_field(x):
    """One theta field as an array: integer and boolean values in JAX's default float dtype."""
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.integer) or x.dtype == jnp.bool_:
        return x.astype(jnp.result_type(float))
    return x


def promote(theta: Any) -> Any:
    """``theta`` with every integer or boolean field in JAX's default float dtype (float32, or float64
    under ``jax_enable_x64``) and every field an array; floating fields keep their dtype.

    Applied once by every dispatch of this module, so per-type functions may take their working
    dtype from the theta's fields. A TypeError for anything that is not a registered theta.
    """
    entries(theta)
    return jax.tree.map(_float_field, theta)


def target(y: Any) -> Any:
    """``y`` as given, except NumPy or Python integers that JAX's integer dtype (int32 unless
    ``jax_enable_x64``) cannot hold: those become float64 NumPy values, so that a label of
    ``2**32 + 1`` stays out of every support instead of wrapping to 1 (``jnp.asarray`` would wrap it)."""
    if isinstance(y, (jax.Array, float)) or y is None:
        return y
    values = np.asarray(y)
    if values.dtype == object:
        return values.astype(np.float64)
    if values.dtype.kind not in "iu" or values.size == 0:
        return y
    limits = jnp.iinfo(jax.dtypes.canonicalize_dtype(values.dtype))
    if values.min() < limits.min or values.max() > limits.max:
        return values.astype(np.float64)
    return y


def _promoting(fn: Callable, who: str | None, name: str) -> Callable:
    """``fn`` with every registered theta among its arguments passed through ``promote`` and, unless ``who`` is None,
    checked against its type's ``domain`` (``_domain``): a ValueError naming ``who`` for a concrete theta outside it,
    NaN outputs for the examples of a traced one that are. A numerical function (``name`` in ``_NUMERIC``) called on
    large concrete arguments (``COMPILE_MIN_SIZE``) whose types allow it (``_compiles``) runs as one compiled program
    (``_compiled``)."""
    def call(*args):
        args = tuple(promote(a) if type(a) in _OPS else a for a in args)
        ok = None if who is None else _inside(args, who)
        out = (_compiled(fn) if name in _NUMERIC and is_concrete(args) and _large(args) and _compiles(fn, args)
               else fn)(*args)
        return out if ok is None else _domain.poison(out, ok)
    call.__name__ = getattr(fn, "__name__", "op")
    call.__doc__ = fn.__doc__
    return call


_COMPILED: dict[Callable, Callable] = {}
# the functions whose values are arrays (not event_shape's tuple, support's Support, to_tfp's object)
_NUMERIC = frozenset({"log_prob", "mode", "mean", "sample", "entropy", "quantile", "isf", "log_cdf", "log_sf",
                      "log_tail", "variance", "probs", "sample_log", "log_prob_log", "fisher", "crps", "kl",
                      "cross_entropy"})


def _compiled(fn: Callable) -> Callable:
    """``jax.jit(fn)``, one per function. Op by op, a Gamma's ``log_tail`` of 1,000 examples took 7 s on its first
    call and 0.7 s on every later one, and its N-sized intermediates lived together (4.3 GB at N = 1e6); compiled,
    1.3 s, then 1 ms, and 0.3 GB."""
    if fn not in _COMPILED:
        _COMPILED[fn] = jax.jit(fn)
    return _COMPILED[fn]


# a call whose largest argument holds at least this many numbers runs compiled: op by op, its N-sized intermediates
# live together and every op is a dispatch (a Gamma log_tail at N = 1e6: 4.4 GB, 6.8 s a call; compiled 0.5 GB, 1.3
# s); a smaller one runs op by op, where each op's program is compiled once for all calls of its shape and a new
# shape costs no whole compile (a test suite's hundreds of small grids: 200 s more of CPU compiled)
COMPILE_MIN_SIZE = 4096


def _large(args: tuple) -> bool:
    return max((int(np.size(leaf)) for leaf in jax.tree.leaves(args)), default=0) >= COMPILE_MIN_SIZE


def _ours(thing: Any) -> bool:
    return (getattr(thing, "__module__", None) or "").startswith("mle_jax.")


def _compiles(fn: Callable, args: tuple) -> bool:
    """Whether ``fn`` may run compiled on ``args``: every theta among them, and every theta among their fields (a
    ``ZeroInflated``'s base), is of a type whose functions run compiled (``Ops.compiled``; None: a built-in type's),
    and ``fn`` is mle_jax's or every type opted in (``compiled=True``): a user's function, type or KL among them, or a
    Student t, and the call runs as given."""
    def allowed(theta) -> tuple[bool, bool]:  # (may compile, opted in)
        own = _OPS[type(theta)].compiled
        parts = [allowed(part) for part in _parts(theta)]
        may = (_ours(type(theta)) if own is None else own) and all(p[0] for p in parts)
        return may, own is True and all(p[1] for p in parts)
    found = [allowed(a) for a in args if type(a) in _OPS]
    return (bool(found) and all(may for may, _ in found)
            and (_ours(fn) or all(opted for _, opted in found)))


def check_domain(theta: Any, who: str) -> Any:
    """Raise a ValueError naming ``who`` where a concrete ``theta`` lies outside its type's ``domain``; else the mask
    ``poisoned`` takes: None where every example is inside, else where they are (a traced theta's examples outside,
    a concrete one's NaN fields). For callers that check before they compile or dispatch (the scores, the eager
    direct functions), which then call the unchecked functions and poison with this mask: one check, not two."""
    return _inside((promote(theta),), who)


def poisoned(theta: Any, out: Any, who: str, ok: Any = False) -> Any:
    """``out``, computed from ``theta`` without the check (``checked=False``), made NaN for the examples outside
    ``theta``'s domain as a checked function's would be (a ValueError naming ``who`` for a concrete theta outside);
    ``ok``: the mask ``check_domain`` returned, where the caller checked first (``False``: check now)."""
    ok = check_domain(theta, who) if ok is False else ok
    return out if ok is None else _domain.poison(out, ok)


def _inside(args: tuple, who: str) -> Any:
    """None when every theta among ``args``, and every theta among their fields (a ``ZeroInflated``'s base), lies in
    its domain with no NaN in a named field (a concrete one outside it raises); else where their examples do (one
    boolean array over their batches, or a scalar where they differ)."""
    ok = None
    for theta in args:
        if type(theta) not in _OPS:
            continue
        for flags in _domain_flags(theta, who):
            if ok is None:
                ok = flags
                continue
            try:
                ok = ok & flags
            except (ValueError, TypeError):  # batches that do not broadcast (a KL of (N,) against (M,))
                ok = jnp.all(ok) & jnp.all(flags)
    return ok


def _domain_flags(theta: Any, who: str, owner: str | None = None, counted: str = "examples") -> list:
    """The flags of ``theta``'s own domain and of its parts', each over ``theta``'s examples (a part's extra trailing
    axes, an ``Independent``'s event, reduced); none where every example is inside (``_inside``)."""
    table = _OPS[type(theta)]
    out = []
    if table.domain:
        if is_concrete(theta):
            flags = _domain.check(who, theta, table.domain, table.component_axes, owner, counted)
        else:
            flags = _domain.inside(theta, table.domain, table.component_axes)
        if flags is not None:
            out.append(flags)
    parts = _parts(theta)
    ndim = len(batch_shape(theta)) if parts else 0
    for part in parts:
        part = promote(part)
        counted = "entries" if len(batch_shape(part)) > ndim else "examples"  # an Independent's components
        for flags in _domain_flags(part, who, type(theta).__name__, counted):
            out.append(flags.all(axis=tuple(range(ndim, flags.ndim))) if flags.ndim > ndim else flags)
    return out


def check_target(theta: Any, y: Any, who: str, *, levels: bool = False) -> None:
    """Raise unless ``y`` fits ``theta``: the ONE shape rule of the direct functions (``log_cdf``, ``log_sf``,
    ``log_tail``, ``quantile``, ``isf``). A batch of thetas (``batch_shape`` not ``()``) takes exactly the targets
    its ``log_prob`` takes (``target_shape``; any other shape is put to that ``log_prob`` by ``jax.eval_shape``,
    shapes only, nothing computed, for a registered type whose ``log_prob`` reads another), so an
    (N,) theta never broadcasts against (N, 1) or (M,) targets. One distribution (``batch_shape`` ``()``) takes
    any number of points, targets whose trailing axes are its event shape (scipy's ``logcdf`` over a grid:
    nothing to misalign). ``levels``: ``y`` is a level q, which may also be one scalar shared by every example
    (and of any shape for one distribution). A ValueError naming ``who``; nothing is checked for a type without
    a ``log_prob`` or whose ``log_prob`` cannot be traced abstractly."""
    own = entries(theta).log_prob
    if own is None or (levels and np.ndim(y) == 0):
        return
    try:
        want = target_shape(theta)  # a batch's targets, or one distribution's event shape
        one = batch_shape(theta) == ()
    except Exception:  # fields that disagree: log_prob's own message below
        want, one = None, False
    shape = tuple(np.shape(y))
    if want is not None and (shape == want or (one and (levels or shape[len(shape) - len(want):] == want))):
        return  # the shape log_prob takes, read without tracing it
    try:
        jax.eval_shape(own, promote(theta), y)
    except ValueError as error:
        raise ValueError(f"{who}: {error}") from None
    except Exception:  # a user's log_prob that reads values: its own call reports what it reports
        return


def check_upper(theta: Any, y: Any, upper: Any, who: str) -> None:
    """Raise unless ``log_tail``'s ``upper`` is one scalar for every point or has the shape of ``y`` less its
    event axes (one flag per point: never broadcast against them)."""
    points = tuple(np.shape(y)[:np.ndim(y) - event_ndims(theta)])
    if np.ndim(upper) != 0 and tuple(np.shape(upper)) != points:
        raise ValueError(f"{who}: upper has shape {tuple(np.shape(upper))} but the targets are {points} points; "
                         f"give one flag per point or one for all (mle_jax never broadcasts one against the other)")


def entries(theta: Any) -> Ops:
    """The `Ops` table of ``type(theta)``; a TypeError for anything that is not a theta."""
    try:
        return _OPS[type(theta)]
    except KeyError:
        raise _unknown(theta) from None


def function(theta: Any, name: str, *, checked: bool = True) -> Callable:
    """The function ``name`` of ``theta``'s type; NotImplementedError where it has none. ``checked=False`` leaves out
    the domain check (``_promoting``): for the families, whose links keep every parameter inside its domain and whose
    per-example loss would pay the check's selects (15-20% of the log-normal's value and gradient)."""
    table = entries(theta)
    fn = getattr(table, name)
    if fn is None:
        note = f"; {table.missing}" if table.missing else ""
        raise NotImplementedError(f"{type(theta).__name__} has no closed-form {name}{note}")
    return _promoting(fn, name if checked else None, name)


def log_tail(theta: Any, y: Any, upper: Any, *, checked: bool = True):
    """``log_sf`` where ``upper`` and ``log_cdf`` elsewhere: the type's own ``log_tail`` (one evaluation) where it has
    one, else both and a select. ``checked`` as for ``function``."""
    if entries(theta).log_tail is not None:
        return function(theta, "log_tail", checked=checked)(theta, y, upper)
    return jnp.where(upper, function(theta, "log_sf", checked=checked)(theta, y),
                     function(theta, "log_cdf", checked=checked)(theta, y))


def require(theta: Any, name: str, purpose: str) -> Callable:
    """The entry ``name`` of ``theta``'s type, promoting; a TypeError "``purpose``: not available for X:
    it has no ``name``" where the type registered none (the scores' one message for a missing entry)."""
    table = entries(theta)
    if getattr(table, name) is None:
        note = f"; {table.missing}" if table.missing else ""
        kind = type(theta).__name__
        raise TypeError(f"{purpose}: not available for {kind}: it has no {name} (register one with "
                        f"mj.register({kind}, {name}=...)){note}")
    return function(theta, name)


def batch_shape(theta: Any) -> tuple[int, ...]:
    """The leading axes of ``theta`` that index examples: ``()`` for one example, ``(N,)`` for the
    theta ``r.predict`` returns: the type's own ``batch_shape``, else the broadcast shape of its fields
    less their ``component_axes`` trailing axes."""
    table = entries(theta)
    if table.batch_shape is not None:
        return tuple(table.batch_shape(theta))
    k = table.component_axes
    shapes = [np.shape(leaf)[:np.ndim(leaf) - k] for leaf in jax.tree.leaves(theta)]
    try:
        return tuple(jnp.broadcast_shapes(*shapes))
    except ValueError:
        raise ValueError(f"the fields of {type(theta).__name__} disagree on the number of examples: "
                         f"shapes {shapes}") from None


def support(theta: Any) -> _support.Support:
    """The `Support` of one example's target under ``theta`` (for the scores' target checks); the
    real line unless the type registered its own."""
    own = entries(theta).support
    return _support.real if own is None else own(theta)


def event_ndims(theta: Any) -> int:
    """The number of axes of one example's target: 0 (scalar targets) unless the type says otherwise."""
    own = entries(theta).event_ndims
    return 0 if own is None else int(own(theta))


def target_shape(theta: Any) -> tuple[int, ...]:
    """The shape ``y`` must have under ``theta``: ``batch_shape`` times one example's event shape (the last
    ``event_ndims`` axes of ``event_shape(theta)``)."""
    batch, n = batch_shape(theta), event_ndims(theta)
    if n == 0:
        return batch
    return batch + tuple(function(theta, "event_shape")(theta))[-n:]


def broadcast(theta: Any, dtype: Any) -> Any:
    """``promote(theta)`` with every field an array of ``dtype`` and, for scalar targets, of shape ``batch_shape``
    plus the field's ``component_axes`` trailing axes (vector-target thetas are cast only): one example per
    batch index, the form in which the scores flatten and vmap a theta."""
    theta = promote(theta)
    batch, k = batch_shape(theta), entries(theta).component_axes

    def field(f):
        f = jnp.asarray(f, dtype)
        return jnp.broadcast_to(f, batch + np.shape(f)[np.ndim(f) - k:])
    if event_ndims(theta):
        return jax.tree.map(lambda f: jnp.asarray(f, dtype), theta)
    return jax.tree.map(field, theta)


def isf(theta: Any, p: Any, *, checked: bool = True):
    """The upper quantile ``F^{-1}(1 - p)``: the type's own ``isf`` where it has one, else
    ``quantile(theta, 1 - p)``. ``checked`` as for ``function``."""
    if entries(theta).isf is not None:
        return function(theta, "isf", checked=checked)(theta, p)
    return function(theta, "quantile", checked=checked)(theta, 1 - jnp.asarray(p))


def fisher(theta: Any):
    """The expected Fisher information ``F(theta) = -E_y[grad^2_theta log Pr(y | theta)]`` of ONE example,
    a (d, d) matrix over ``jax.flatten_util.ravel_pytree(theta)`` order, from the type's closed form;
    NotImplementedError naming cov="observed" and cov="robust" where it has none."""
    own = entries(theta).fisher
    if own is None or not has_fisher(theta):
        raise no_fisher(theta)
    if batch_shape(theta):
        raise ValueError(f"fisher takes one example's {type(theta).__name__}; got a batch of shape "
                         f"{batch_shape(theta)} (vmap over the examples)")
    return _promoting(own, "fisher", "fisher")(theta)


def has_fisher(theta: Any) -> bool:
    """Whether ``fisher(theta)`` has a closed form: the type registers one, and so does every theta among
    its fields (an ``Independent``'s base). Reads types only: ``theta`` may hold ``jax.ShapeDtypeStruct``."""
    return entries(theta).fisher is not None and all(has_fisher(part) for part in _parts(theta))


def _parts(theta: Any) -> list:
    """The thetas among ``theta``'s fields (an ``Independent``'s base), at any depth of its pytree."""
    leaves = jax.tree.leaves(theta, is_leaf=lambda x: x is not theta and type(x) in _OPS)
    return [leaf for leaf in leaves if type(leaf) in _OPS]


def no_fisher(theta: Any, where: str = "") -> NotImplementedError:
    """The one error for a theta without a closed-form Fisher information (``where``: the caller's name)."""
    return NotImplementedError(f"{where + ': ' if where else ''}no closed-form expected information for "
                               f"{_name(theta)}; use cov='observed' or cov='robust'")


def _name(theta: Any) -> str:
    """``Independent(MixtureNormal)`` for nested thetas; the type's name otherwise."""
    inner = [_name(part) for part in _parts(theta)] if type(theta) in _OPS else []
    return type(theta).__name__ + (f"({', '.join(inner)})" if inner else "")


def kl_fn(p: Any, q: Any) -> Callable[[Any, Any], Any] | None:
    entries(p)
    entries(q)
    return _KL.get((type(p), type(q)))


def ce_fn(p: Any, q: Any) -> Callable[[Any, Any], Any] | None:
    """The cross-entropy of the pair; ``(type(p), object)`` registers one for any q."""
    entries(p)
    entries(q)
    return _CE.get((type(p), type(q))) or _CE.get((type(p), object))


def kl(p: Any, q: Any):
    """``KL(p || q)`` from the registered closed form; NotImplementedError naming ``kl_mc`` otherwise."""
    fn = kl_fn(p, q)
    if fn is None:
        raise NotImplementedError(
            f"no closed-form KL({type(p).__name__} || {type(q).__name__}); use mle_jax.kl_mc")
    return _promoting(fn, "kl", "kl")(p, q)


def cross_entropy(p: Any, q: Any):
    """``CE(p, q)`` from the registered closed form, else ``H(p) + KL(p || q)``."""
    fn = ce_fn(p, q)
    if fn is not None:
        return _promoting(fn, "cross_entropy", "cross_entropy")(p, q)
    check_domain(p, "cross_entropy")
    check_domain(q, "cross_entropy")
    return function(p, "entropy")(p) + kl(p, q)
