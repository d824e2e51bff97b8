"""Where a GLM fit starts and how its family parameters are profiled: closed-form maximum likelihood.

``intercept_only(r, y)``: the MLE of the intercept-only model, ``w = 0`` and ``b`` with
``g^{-1}(b) = mean(y)``, the family's own parameters at their MLE given it. For every family here
(an exponential-dispersion family, any link) the intercept's score is ``c sum_i (y_i - mu)`` with a
constant mu, so ``mu = mean(y)`` (the binomial with trials: ``sum s_i / sum n_i``) whatever the
dispersion. A fit started there begins with the intercept (and the dispersion) right, which a fit from
zero spends its first steps on (scikit-learn's ``newton-cholesky`` and glum start there too; measured in
README's "Time to the GLM MLE"). The multinomial logit (``categorical(K)``, class 0 the reference): the
intercepts' scores are ``sum_i (1[y_i = k] - p_k)``, so ``p_k`` is the class frequency and ``b_k = log(p_k / p_0)``.
With row weights ``w_i`` (``fit``'s frequency weights) every mean here is the weighted mean.
The negative binomial's ``total_count`` has no closed form (its intercept-only MLE is the root of
``mean_i psi(y_i + r) - psi(r) = log(1 + ybar / r)``, a digamma pass over the rows per Newton step, and none
where the variance is at most the mean): it is kept as ``params`` has it.

``fit(r, params, x, y, optimizer, steps, start="intercept_only")`` uses both functions below: it starts at
``intercept_only`` and, for a learned Gamma shape or Normal sigma, fits the coefficients with it held at 1
(``HELD``, a static constant: one program) and returns it at ``family_mle``'s value.

``family_mle(r, params, x, y)``: the family parameters' MLE with the model's parameters held,
``argmax_theta sum_i log Pr(y_i | theta, eta_i)``. For the Gamma GLM (``gamma("mean")``) the score of
the coefficients is ``a sum_i (y_i / mu_i - 1) dmu_i`` (the shape a only scales it): the coefficients'
MLE does not depend on the shape, so fitting them with the shape fixed (a Python float: static in
``fit``) and then the shape's 1-D MLE given them is the joint MLE, the shape profiled out:

    log a - psi(a) = mean_i(y_i / mu_i - log(y_i / mu_i) - 1)

(McCullagh and Nelder, *Generalized Linear Models*, 2nd ed., section 8.3; Minka, "Estimating a Gamma
distribution", 2002, for the start of its Newton iteration). The Normal's learned sigma likewise:
``sigma^2 = mean_i (y_i - mu_i)^2``.

scipy / statsmodels equivalent: ``sm.GLM(y, np.ones(n), family).fit()`` (the intercept);
``scipy.stats.gamma.fit(y, floc=0)`` (the intercept-only shape and scale).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import links
from ._boundary import as_array
from ._checks import check_weights, is_concrete
from ._params import is_trained, partition
from .distributions.special import digamma_minus_log, expm1mx, log1p
from .models import linear_form
from .recipe import Params, Recipe

SUPPORTED = ("bernoulli()", "binomial()", "categorical(K)", "poisson()", "negative_binomial()", "gamma('mean')",
             "normal(scale=<float>)", "normal(scale='learned')")
_NEWTON_STEPS = 8  # log a - psi(a) = s from Minka's start: at float64 precision after 4 (tests: s in 1e-6 ... 1e3)


def _kind(r: Recipe) -> str:
    """The closed form a recipe's family takes: its kind, with the options that change it."""
    spec = r.family.spec
    if spec.kind in ("bernoulli", "binomial", "categorical", "poisson") or (
            spec.kind == "negative_binomial" and spec.option("dispersion") == "learned"):
        return spec.kind
    if spec.kind == "gamma" and spec.option("parameterization") == "mean":
        return "gamma_mean"
    if spec.kind == "normal" and spec.option("scale") == "learned":
        return "normal_learned"
    if spec.kind == "normal" and isinstance(spec.option("scale"), float):
        return "normal"
    raise ValueError(f"{r.family.name}: no closed-form intercept-only / family MLE for this family; "
                     f"supported: {', '.join(SUPPORTED)}")


def gamma_shape(s):
    """The Gamma shape a with ``log a - psi(a) = s`` (s > 0), the shape's MLE given the means (module docstring).

    Newton's method in ``log a`` from Minka's approximation ``a = (3 - s + sqrt((s - 3)^2 + 24 s)) / (12 s)``;
    ``log a - psi(a)`` is ``-digamma_minus_log(a)`` (its asymptotic series for a >= 10: no cancellation) and its
    derivative is autodiff's of that form. scipy: ``brentq(lambda a: log(a) - digamma(a) - s, ...)``."""
    s = jnp.asarray(s)
    a = (3 - s + jnp.sqrt(jnp.square(s - 3) + 24 * s)) / (12 * s)

    def gap(a):
        return -digamma_minus_log(a) - s

    def step(_, u):
        a = jnp.exp(u)
        value, slope = jax.value_and_grad(gap)(a)
        return u - value / (slope * a)  # d gap / d log a = a gap'(a) < 0

    return jnp.exp(jax.lax.fori_loop(0, _NEWTON_STEPS, step, jnp.log(a)))


def _log_ratio(y, eta):
    """``log(y / mu)`` with ``mu = e^eta``: ``log(y e^{-eta})`` (a relative error of eps in the ratio, an absolute
    one in its log), not ``log y - eta`` (``eps |log y|``: 2e-6 at y = 1e20 in float32, where ``y / mu - 1`` of a
    Gamma with shape 1e6 is 1e-3, and ``s`` is the mean of its square); the difference where the product leaves
    the normal floats."""
    q = y * jnp.exp(-eta)
    normal = jnp.isfinite(q) & (q >= jnp.finfo(q.dtype).tiny)
    return jnp.where(normal, jnp.log(jnp.where(normal, q, 1.0)), jnp.log(y) - eta)


def _total(terms, w):
    """``sum_i w_i t_i`` (``sum_i t_i`` where ``w`` is None); a row of weight 0 adds 0 whatever its term (a masked
    row's NaN or inf), as ``fit``'s objective."""
    if w is None:
        return jnp.sum(terms)
    return jnp.sum(jnp.where(w > 0, w * terms, jnp.zeros_like(terms)))


def _mean(terms, w):
    """The weighted mean ``sum_i w_i t_i / sum_i w_i``: the frequency weights of ``fit``'s objective."""
    return jnp.mean(terms) if w is None else _total(terms, w) / jnp.sum(w)


def _dispersion(kind: str, eta, y, w=None):
    """The family parameter's MLE on its natural scale given the raw outputs ``eta`` (shape (N,)) and the row
    weights ``w`` (None: 1 each): the Gamma's shape, the Normal's sigma; None for the other families."""
    if kind == "gamma_mean":
        return gamma_shape(_mean(expm1mx(_log_ratio(y, eta)), w))  # mean(y/mu - log(y/mu) - 1) > 0
    if kind == "normal_learned":
        return jnp.sqrt(_mean(jnp.square(y - eta), w))
    return None


def _mean_link(kind: str, y, w, raw_shape: tuple, reference: bool):
    """``g(mean y)``: the intercept-only MLE of the raw output (module docstring), with row weights ``w``. The
    categorical: the class frequencies ``p_k``, ``b_k = log(p_k / p_0)`` for ``k >= 1`` with a reference class 0,
    ``log p_k`` without (the softmax's MLE up to a constant)."""
    if kind == "categorical":
        k = raw_shape[0] + (1 if reference else 0)
        counts = jnp.zeros((k,), y.dtype).at[y.astype(jnp.int32)].add(jnp.ones_like(y) if w is None else w)
        log_p = jnp.log(counts)
        return log_p[1:] - log_p[0] if reference else log_p - jnp.log(jnp.sum(counts))
    if kind == "binomial":
        p = _total(y[:, 0], w) / _total(y[:, 1], w)
        return jnp.log(p) - log1p(-p)
    ybar = _mean(y, w)
    if kind == "bernoulli":
        return jnp.log(ybar) - log1p(-ybar)
    if kind in ("poisson", "negative_binomial", "gamma_mean", "gamma_log_mean"):
        return jnp.log(ybar)
    return ybar


_NAME = {"gamma_mean": "shape", "normal_learned": "scale"}
HELD = float(np.log(np.expm1(1.0)))  # softplus^{-1}(1): the raw value at which fit(start=) holds a profiled parameter


def profiled(r: Recipe) -> str | None:
    """The family parameter that ``fit(..., start="intercept_only")`` profiles out (the Gamma GLM's shape, the
    Normal's learned sigma: the coefficients' MLE does not depend on it), or None; a ValueError for a family
    without an intercept-only start."""
    return _NAME.get(_kind(r))
_MEAN_ONLY = {"gamma_mean": "gamma_log_mean", "normal_learned": "normal"}  # the same mean, no dispersion


@functools.partial(jax.jit, static_argnames=("kind", "d", "raw_shape", "reference", "dtype"))
def _intercept_only(kind: str, y, w, d: int, raw_shape: tuple, reference: bool, dtype):
    """``(w = 0, b, the family parameter's MLE given b on its natural scale and through softplus^{-1})``; ``kind``
    from ``_MEAN_ONLY`` where the user fixed the dispersion: not computed (None). ``w``: row weights or None."""
    y = y.astype(dtype)
    w = None if w is None else w.astype(dtype)
    b = _mean_link(kind, y, w, raw_shape, reference)
    value = _dispersion(kind, jnp.full(y.shape[:1], b), y, w) if raw_shape == () else None
    raw = None if value is None else links.softplus_inverse(value)
    return jnp.zeros((d, *raw_shape), dtype), b, value, raw


def given_model(r: Recipe, kind: str, params: Params, x, y, w):
    """``(value, raw)``: the family parameter's MLE given the model's parameters (``params``, its family's ignored)
    on its natural scale and through softplus^{-1}; ``w`` the rows' weights ``w_i m_i`` or None. Traceable: one
    jitted program on the recipe (``_given_model``) and the last computation of ``fit``'s compiled loop where it
    profiles a dispersion out (``_fit_step``)."""
    eta, _ = r.raw(params._replace(family={}), x)
    value = _dispersion(kind, jnp.reshape(eta, y.shape[:1]), y.astype(eta.dtype),
                        None if w is None else w.astype(eta.dtype))
    return value, links.softplus_inverse(value)


def _given_model(r: Recipe, kind: str):
    """``given_model`` for ``r``, one jitted program on the recipe."""
    return r.programs.get(("family_mle", kind), lambda: jax.jit(functools.partial(given_model, r, kind)))


def _with_dispersion(kind: str, fparams: dict, value, raw, dtype, caller: str, floor_ok: bool = False) -> dict:
    """``fparams`` with the family parameter set to ``raw`` (``value`` through softplus^{-1}), unless the user fixed
    it (a Python number, static in ``fit``: kept) or the family has none to set. ``value``: read on the host.

    An MLE at or below the link's floor ``eps`` (a sigma of 1e-8 in float32, whose eps is 1.2e-7) has no raw value
    (``softplus(raw) + eps`` cannot be it; the traced inverse is NaN): a ValueError naming the floor, or, for
    ``fit`` (``floor_ok``), the raw value ``log(expm1(value))`` that puts ``softplus(raw)`` at the MLE, on the
    floor, where ``fit`` says ``Stop.BOUNDARY`` and warns (``mle_jax._floors``)."""
    name = _NAME.get(kind)
    if name is None or value is None or not is_trained(fparams[name]):
        return fparams
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"the MLE of the family's {name} is {float(value)}, not a positive number: every y equals "
                         "its fitted mean (a Gamma's shape infinite, a Normal's sigma 0); fix it as a Python float")
    eps = links.floor(dtype)
    if value <= eps:
        if not floor_ok:
            raise ValueError(f"{caller}: the MLE of the family's {name} is {float(value):.6g}, at or below its link's "
                             f"floor eps = {eps:.3g} ({jnp.dtype(dtype).name}: {name} = softplus(raw) + eps cannot "
                             f"take it): rescale y, or give float64 parameters")
        raw = jnp.asarray(np.log(np.expm1(np.float64(value))))  # softplus(raw) = the MLE <= eps: on the floor
    return {**fparams, name: raw if raw.dtype == dtype else raw.astype(dtype)}  # no program where it is in dtype


def _checked_y(r: Recipe, y, caller: str):
    """``y`` as an array of one example's target shape per row, its values checked against the support once (the
    recipe's check memory: the same immutable jax array is not checked again, here or by ``fit``)."""
    y = as_array(caller, "y", y)  # a list, DataFrame / Series, torch tensor read once
    y = y if isinstance(y, jax.Array) else jnp.asarray(y)
    want = tuple(r.family.event_shape or ())
    if y.ndim != 1 + len(want) or tuple(y.shape[1:]) != want or y.shape[0] < 1:
        rows = f"(N, {', '.join(map(str, want))})" if want else "(N,)"
        raise ValueError(f"{r.family.name}: y must have shape {rows} with N >= 1; got {y.shape}")
    if not is_concrete(y):
        raise ValueError(f"{caller}: y must be concrete (the results are checked on the host), not traced inside jit")
    if r.memory.recall([y]) is None:
        r.family.check(y)
        r.memory.remember([y], "")
    return y


def _in_range(y, dtype, caller: str) -> None:
    """A ValueError naming ``dtype`` where a value of a wider float ``y`` leaves its range when cast (the start is
    computed in the parameters' dtype): a magnitude above ``finfo(dtype).max`` becomes inf, a nonzero one below
    half the smallest subnormal becomes 0, and either then reads as a boundary case it is not."""
    if not (jnp.issubdtype(y.dtype, jnp.floating) and jnp.finfo(y.dtype).bits > jnp.finfo(dtype).bits):
        return
    host = np.asarray(y)
    with np.errstate(over="ignore", under="ignore"):
        cast = host.astype(dtype)
    bad = (np.isfinite(host) & ~np.isfinite(cast)) | ((host != 0) & (cast == 0))
    if bad.any():
        i = np.unravel_index(int(np.argmax(bad)), bad.shape)
        info = jnp.finfo(dtype)
        raise ValueError(f"{caller}: y[{', '.join(map(str, i))}] = {host[i]:.6g} ({host.dtype}) is outside the range of "
                         f"the parameters' dtype {jnp.dtype(dtype).name} (magnitudes up to {float(info.max):.4g}, nonzero "
                         f"down to {float(info.smallest_subnormal):.4g}), in which the start is computed "
                         f"({int(bad.sum())} of {bad.size} values): rescale y, or give {host.dtype} parameters")


def _row_weights(caller: str, n: int, weights, mask):
    """The rows' weights ``w_i m_i`` (None where both are None), checked as ``fit`` checks them: shape (N,), finite,
    >= 0, a mask boolean or 0/1 (``_checks.check_weights``), and a positive sum."""
    if weights is None and mask is None:
        return None
    out = []
    for name, a in (("weights", weights), ("mask", mask)):
        if a is None:
            out.append(None)
            continue
        a = as_array(caller, name, a)
        a = a if isinstance(a, jax.Array) else jnp.asarray(a)
        if a.shape != (n,):
            raise ValueError(f"{caller}: {name} must have shape ({n},), one per row of y; got {a.shape}")
        if not is_concrete(a):
            raise ValueError(f"{caller}: {name} must be concrete, not traced inside jit")
        out.append(a)
    check_weights(caller, *out)  # fit's rule: finite, >= 0, a mask boolean or 0/1
    w = _combined(*out)
    ok = jax.device_get(jnp.sum(w) > 0)
    if not ok:
        raise ValueError(f"{caller}: weights must have a positive sum over the rows the mask keeps")
    return w


def _combined(weights, mask) -> Any:
    """The rows' weights ``w_i m_i`` of arrays of shape (N,) (None where both are None)."""
    if weights is None and mask is None:
        return None
    w = jnp.ones(mask.shape) if weights is None else jnp.asarray(weights).astype(jnp.result_type(float))
    return w if mask is None else jnp.where(jnp.asarray(mask).astype(bool), w, jnp.zeros_like(w))


def _linear(r: Recipe, kind: str, caller: str):
    """The recipe's ``models.linear`` form, checked: an intercept, one raw output (``(K - 1,)`` with a reference
    class or ``(K,)`` for ``categorical(K)``)."""
    form = linear_form(r.model)
    if kind == "categorical":
        k = r.family.spec.args[0]
        ok = form is not None and ((form.reference and form.raw_shape == (k - 1,)) or
                                   (not form.reference and form.raw_shape == (k,)))
        want = f"mj.models.linear(d, ({k - 1},), reference=True).apply or mj.models.linear(d, ({k},)).apply"
    else:
        ok = form is not None and form.raw_shape == ()
        want = "mj.models.linear(d).apply (one raw output, intercept=True)"
    if r.batched or not ok or form is None or not form.intercept:
        raise ValueError(f"{caller}: {r.name}'s model must be {want}, the very function it returns")
    return form


def intercept_only(r: Recipe, y: Any, params: Params | None = None, *, weights: Any = None,
                   mask: Any = None) -> Params:
    """The intercept-only MLE of a GLM as ``Params`` for ``r``: a start for ``fit`` (module docstring).

    ``r``: a recipe whose model is ``mj.models.linear(d)`` (one raw output, with an intercept) and whose
    family is one of ``bernoulli()``, ``binomial()``, ``poisson()``, ``negative_binomial()`` (its
    ``total_count`` kept: no closed form; a learned one stays where ``params`` has it),
    ``gamma("mean")`` (the shape at its intercept-only MLE), ``normal(scale=sigma)`` or
    ``normal(scale="learned")`` (sigma the root mean square deviation); or the multinomial logit,
    ``categorical(K)`` with ``mj.models.linear(d, (K - 1,), reference=True)`` (class 0 the reference:
    ``b_k = log(p_k / p_0)``, ``p_k`` the class frequencies) or ``mj.models.linear(d, (K,))`` (``b_k = log p_k``,
    one of the overparameterised softmax's MLEs).
    ``params`` (optional): where the dtype and the family's parameters come from (default
    ``r.init(linear's init)`` in the default float dtype); a family parameter given as a Python number
    (fixed: static in ``fit``) is kept. Returns ``w = 0``, ``b = g(mean y)``.
    ``weights``, ``mask`` (optional, shape (N,)): as ``fit``'s (frequency weights ``w_i m_i``): the weighted mean
    of y (class frequencies, ``sum w s / sum w n``) and the shape's / sigma's weighted MLE.

    A ValueError where the MLE is on the boundary (every y 0, every label the same, a class never seen: ``b``
    infinite), where a y of a wider float dtype leaves the range of ``params``' dtype (float64 y of 1e39 for
    float32 parameters: the message names the dtype and its range), or for another model or family. statsmodels:
    ``GLM(y, np.ones((n, 1)), family, freq_weights=w).fit().params``; ``MNLogit(y, np.ones((n, 1))).fit().params``.

    >>> import jax.numpy as jnp, mle_jax as mj
    >>> r = mj.recipe(mj.models.linear(2).apply, mj.poisson())
    >>> p = mj.intercept_only(r, jnp.array([1.0, 2.0, 3.0, 6.0]))
    >>> round(float(jnp.exp(p.model["b"])), 6), p.model["w"].tolist()
    (3.0, [0.0, 0.0])
    """
    return _started(r, y, params, weights, mask)[0]


def _started(r: Recipe, y: Any, params: Params | None, weights: Any, mask: Any, optimizer=None) -> tuple[Params, Any]:
    """``(intercept_only(r, y, params, weights=, mask=), optimizer.init of its trained parameters)``; with an
    ``optimizer`` and no dispersion to set (``fit``'s start: a learned one is held, a fixed one kept) both in ONE
    program on the recipe (a program runs for ~0.1 ms at the least: a tenth of a small fit's fixed cost), else
    the state None."""
    if not isinstance(r, Recipe):
        raise ValueError(f"intercept_only: r must be a recipe (mj.recipe); got {type(r).__name__}")
    kind = _kind(r)
    form = _linear(r, kind, "intercept_only")
    if params is None:
        dtype = jnp.asarray(0.0).dtype
        params = r.init({"w": jnp.zeros((form.d, *form.raw_shape), dtype), "b": jnp.zeros(form.raw_shape, dtype)})
    dtype = jnp.result_type(params.model["b"])
    y = _checked_y(r, y, "intercept_only")
    _in_range(y, dtype, "intercept_only")
    w_rows = _row_weights("intercept_only", y.shape[0], weights, mask)
    name = _NAME.get(kind)
    fixed = name is not None and not is_trained(params.family[name])  # fit's rule (a NumPy scalar is trained): kept
    static = (_MEAN_ONLY.get(kind, kind) if fixed else kind, form.d, tuple(form.raw_shape), bool(form.reference),
              jnp.dtype(dtype))
    state = None
    if optimizer is None or static[0] in _NAME:  # a dispersion to set on the host first (its floor, its errors)
        w, b, value, raw = _intercept_only(*static[:1], y, w_rows, *static[1:])
    else:
        program = r.programs.get(("fit", "start", static, r.programs.key_of(optimizer)),
                                 lambda: jax.jit(functools.partial(_start_and_init, static, optimizer.init)))
        w, b, value, raw, state = program(y, w_rows, partition(params._replace(model={})))
    # the start is read on the host to be checked, once per data set where nothing else is read (the same
    # immutable y, no weights or mask, no dispersion to set: the recipe's check memory), so that a repeated fit
    # dispatches its loop without waiting for the start's program (0.1-0.2 ms of a 4 ms fit)
    remembered = value is None and weights is None and mask is None
    if not (remembered and r.memory.started([y], static)):
        b_host, value = jax.device_get((b, value))  # one transfer: both checks
        if not np.all(np.isfinite(b_host)):
            raise ValueError(f"intercept_only: {r.family.name}'s intercept-only MLE is on the boundary (the mean of "
                             f"y is at the edge of its support or a class is never seen, g(mean y) = {b_host}): "
                             "no finite start")
        if remembered:
            r.memory.start([y], static)
    family = _with_dispersion(kind, dict(params.family), value, raw, dtype, "intercept_only")
    return params._replace(model={"w": w, "b": b}, family=family), state


def _start_and_init(static: tuple, init, y, w_rows, rest):
    """``_intercept_only`` and ``init`` of the trained parameters it starts (``rest``: the ``Parts`` of the other
    parameters, the family's, as they stay), traced into one program."""
    w, b, value, raw = _intercept_only(static[0], y, w_rows, *static[1:])
    started = rest.params()._replace(model={"w": w, "b": b})
    return w, b, value, raw, init(partition(started).trained)


def family_mle(r: Recipe, params: Params, x: Any, y: Any, *, weights: Any = None, mask: Any = None) -> Params:
    """``params`` with the family's own parameters at their MLE given the model's (module docstring).

    The Gamma GLM's shape (``gamma("mean")``: ``log a - psi(a) = mean(y/mu - log(y/mu) - 1)``) and the Normal's
    learned sigma (``sigma^2 = mean (y - mu)^2``), returned as arrays (learnable) even where ``params`` held them
    as Python numbers (fixed for a fit of the coefficients alone). With the coefficients at their MLE (which for
    these families does not depend on the dispersion), the result is the joint MLE: fit with the shape fixed,
    then this, is the shape profiled out (what ``fit(..., start="intercept_only")`` does). Families without own
    parameters: ``params`` unchanged. ``weights``, ``mask``: as ``fit``'s, the means above weighted by ``w_i m_i``.

    >>> import jax.numpy as jnp, mle_jax as mj
    >>> r = mj.recipe(mj.models.linear(1).apply, mj.normal(scale="learned"))
    >>> p = r.init({"w": jnp.ones(1), "b": jnp.zeros(())})
    >>> p = mj.family_mle(r, p, jnp.array([[0.0], [1.0]]), jnp.array([1.0, 0.0]))
    >>> round(float(mj.links.softplus.forward(p.family["scale"])), 6)
    1.0
    """
    return _family_mle(r, params, x, y, weights, mask, "family_mle")


def _family_mle(r: Recipe, params: Params, x: Any, y: Any, weights: Any, mask: Any, caller: str,
                floor_ok: bool = False, checked: bool = False, given: tuple | None = None) -> Params:
    """``family_mle``; ``floor_ok``: an MLE at or below the link's floor is set on the floor (``fit``'s profile,
    which then says ``Stop.BOUNDARY``), not a ValueError (``_with_dispersion``); ``checked``: x, y, weights and mask
    are arrays ``fit`` has checked (and ``intercept_only`` y's range), so no check is repeated here; ``given``:
    ``(value on the host, raw on the device)``, ``given_model`` at these very parameters and data, computed by
    ``fit``'s loop (nothing is run here), or None."""
    if not isinstance(r, Recipe):
        raise ValueError(f"{caller}: r must be a recipe (mj.recipe); got {type(r).__name__}")
    kind = _kind(r)
    if kind not in ("gamma_mean", "normal_learned"):
        return params
    name = "shape" if kind == "gamma_mean" else "scale"
    fparams = dict(params.family)
    if not is_trained(fparams[name]):  # fixed for the coefficients' fit (fit's rule): learnable again, in the
        # model's dtype; a host array (no transfer to the device): _with_dispersion replaces it or raises
        fparams[name] = np.asarray(fparams[name], jnp.result_type(*jax.tree_util.tree_leaves(params.model)))
    if checked:
        w_rows = None if given is not None else _combined(weights, mask)
    else:
        y = _checked_y(r, y, caller)
        _in_range(y, jnp.result_type(fparams[name]), caller)
        w_rows = _row_weights(caller, y.shape[0], weights, mask)
        r.check(x, y)  # the rows agree, x finite: once per data set (fit's memory)
    if given is not None:
        value, raw = given
    else:
        value, raw = _given_model(r, kind)(params._replace(family={}), x, y, w_rows)
        value = jax.device_get((value, raw))[0]  # one wait for both: the caller reads raw too (fit's profile, floors)
    return params._replace(family=_with_dispersion(kind, fparams, value, raw,
                                                   jnp.result_type(fparams[name]), caller, floor_ok))
