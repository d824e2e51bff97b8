"""The machinery of ``mj.losses``: the generic per-example term, and one function per family
generated from the family table (``mle_jax.families._table.FAMILIES``).

``family_loss(name)`` reads the constructor's signature and gives ``(raw, y, *its options,
validate=True)``: the sizes read from shapes and the init values left out, the options that take
values (``scale=sigma``) widened to arrays, a combinator's ``family`` followed by its ``fparams``;
its docstring is the table's note and the constructor's own. A call builds the family and returns
``loss(family, raw, y, fparams)``, so every family's function is the same few lines.
"""

from __future__ import annotations

import inspect
import textwrap
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from ._boundary import as_array
from ._cache import is_concrete
from ._checks import check_weights, one_array
from .families import Family
from .families._family import drop_rows, is_half
from .families._table import FAMILIES, Entry, Size, Value, computes_in, is_number


# ----------------------------------------------------------------------------- the generic term

def nll(family: Family, raw, y, fparams=None, *, mask=None, validate: bool = True) -> jax.Array:
    """``-log Pr(y_i | family.theta(fparams, raw_i))`` for every example i: shape (N,).

    Args:
      family: any mle_jax family, e.g. ``mj.normal("softplus")``, ``mj.ordinal(5)``.
      raw: the model's raw outputs, shape ``(N, *family.raw_shape)``.
      y: the targets, shape ``(N, *family.event_shape)``.
      fparams: the family's own parameters in its raw form (``params.family`` of a recipe);
        required when the family owns any. A leaf with an extra leading axis of size N gives
        each example its own value.
      mask: optional, shape (N,): where False the row's term is exactly 0 and so is every derivative, also
        where its target is NaN or off the support (a padded or missing row): the target is made harmless before
        the kernel (``families._family.drop_rows``, as the recipe's ``mask``); a masked row's raw outputs must be
        finite. Concrete targets are checked on every row, as the recipe checks them.
      validate: check the target values with the family's rules when they are concrete
        (unchecked, an impossible target gives ``+inf``).

    Equals ``-recipe.log_prob(params, x, y)`` on the model's raw outputs. Example:

      >>> import jax.numpy as jnp, mle_jax as mj
      >>> mj.losses.nll(mj.bernoulli(), jnp.array([0.0, 2.0]), jnp.array([1, 0]))  # log 2, softplus(2)
      Array([0.6931472, 2.126928 ], dtype=float32)
    """
    raw, y, fp, axes, mask = _prepared(family, raw, y, fparams, validate, mask)
    return _as_raw_dtype(_masked(-jax.vmap(family.log_prob, in_axes=(axes, 0, 0))(fp, raw, y), mask), raw)


def loss(family: Family, raw, y, fparams=None, *, mask=None, validate: bool = True) -> jax.Array:
    """The per-example training loss of ``family``: shape (N,).

    ``nll`` unless the family trains on something else: beta-NLL (``mj.normal(..., beta=)``),
    label smoothing, and class weights, where example i's term is multiplied by ``w[y_i]`` (as
    torch's ``CrossEntropyLoss(weight=w, reduction="none")`` without label smoothing; with it, torch
    weights each class's smoothing term by its own ``w_k``, and this is ``w[y_i]`` times torch's
    unweighted smoothed loss); the recipe's weighted mean is then ``sum(loss) / sum(w[y])``.
    Arguments as for ``nll``.
    """
    raw, y, fp, axes, mask = _prepared(family, raw, y, fparams, validate, mask)
    term, weight = family.training.term, family.training.weight
    if term is None:
        terms = -jax.vmap(family.log_prob, in_axes=(axes, 0, 0))(fp, raw, y)
    else:
        terms = jax.vmap(term, in_axes=(axes, 0, 0))(fp, raw, y)
    if weight is not None:
        terms = terms * jax.vmap(weight)(y).astype(terms.dtype)
    return _as_raw_dtype(_masked(terms, mask), raw)


def _masked(terms, mask):
    """The terms, exactly 0 where ``mask`` is False (a select: ``0 * inf`` would be NaN)."""
    return terms if mask is None else jnp.where(mask, terms, jnp.zeros_like(terms))


def _as_raw_dtype(terms, raw):
    """The terms in the raw outputs' dtype where that is bfloat16 / float16: the kernels compute in float32 at
    least (``families._family.at_least_float32``) and the output follows the input (rounded once)."""
    return terms.astype(raw.dtype) if is_half(raw.dtype) else terms


def _prepared(family, raw, y, fparams, validate, mask=None):
    """Check the shapes (and concrete target values); return raw, y, fparams, their vmap axes and the mask (a
    dropped row's target made harmless: ``drop_rows``)."""
    if not isinstance(family, Family):
        raise TypeError(f"mj.losses: family must be an mle_jax Family (e.g. mj.normal()); got {type(family).__name__}")
    name = f"mj.losses.{family.name}"
    one_array(name, "y", y)
    raw, y = jnp.asarray(as_array(name, "raw", raw)), as_array(name, "y", y)  # frames, tensors: read once
    if not jnp.issubdtype(raw.dtype, jnp.floating):
        raise TypeError(f"mj.losses.{family.name}: raw outputs must be floating point; got dtype {raw.dtype}")
    want_raw, want_y = family.raw_shape, family.event_shape
    n = raw.shape[0] if raw.ndim else None
    one_value = len(want_raw) <= 1 and int(np.prod(want_raw)) == 1
    shape = raw.shape[1:] if not (one_value and raw.shape[1:] in ((), (1,))) else want_raw
    if n is None or shape != want_raw or np.shape(y) != (n,) + want_y:
        raise ValueError(
            f"mj.losses.{family.name}: raw has shape {raw.shape} and y has shape {np.shape(y)}; this family "
            f"needs raw of shape {_batched(want_raw)} and y of shape {_batched(want_y)}, with the same N "
            f"(mle_jax never broadcasts targets against predictions)")
    raw = raw.reshape((n,) + want_raw)
    if validate and is_concrete(y):
        family.check(_numpy(y), raw.dtype)  # counts stay whole in the raw outputs' dtype too
    fp, axes = _family_params(family, fparams, raw.dtype, n)
    y = jnp.asarray(y)
    if mask is not None:
        one_array(name, "mask", mask)
        mask = jnp.asarray(as_array(name, "mask", mask))
        if mask.shape != (n,) or jnp.issubdtype(mask.dtype, jnp.complexfloating):
            raise ValueError(f"{name}: mask must be booleans (or 0/1) of shape ({n},), one per example; "
                             f"got {mask.dtype} of shape {mask.shape}")
        if validate and is_concrete(mask):  # 0 or 1, as the recipe checks a mask (a 2 was read as True)
            check_weights(name, None, mask)
        y, mask = drop_rows(family, y, None, mask.astype(bool))
    return raw, y, fp, axes, mask


def _family_params(family, fparams, dtype, n):
    """The family's parameters and their vmap axes: None for a shared leaf, 0 for one per example."""
    template = family.init(dtype)
    if fparams is None:
        if jax.tree.leaves(template):
            raise ValueError(
                f"mj.losses.{family.name}: this family owns parameters {_keys(template)}; pass them as "
                f"fparams (params.family of a recipe), or their values to the family's mj.losses function")
        return template, None
    if jax.tree.structure(fparams) != jax.tree.structure(template):
        raise ValueError(f"mj.losses.{family.name}: fparams must have the structure of family.init(dtype), "
                         f"{jax.tree.structure(template)}; got {jax.tree.structure(fparams)}")

    def axis(path, leaf, like):
        shape, base = np.shape(leaf), np.shape(like)
        if shape == base:
            return None
        if shape == (n,) + base:
            return 0
        raise ValueError(f"mj.losses.{family.name}: the family parameter {jax.tree_util.keystr(path)} has shape "
                         f"{shape}; expected {base} (shared) or {(n,) + base} (one per example)")
    return fparams, jax.tree_util.tree_map_with_path(axis, fparams, template)


def _numpy(y):
    """y as NumPy for the family's value check; bfloat16 / float16 exactly as float32, which NumPy's
    own dtype tests recognise as a real number."""
    y = np.asarray(y)
    return y.astype(np.float32) if jnp.issubdtype(y.dtype, jnp.floating) and y.dtype.itemsize < 4 else y


def _batched(shape):
    """``(2,)`` -> ``"(N, 2)"``: the shape of a batch of examples of one example's ``shape``."""
    return "(N,)" if not shape else "(" + ", ".join(["N"] + [str(d) for d in shape]) + ")"


def _keys(tree):
    return sorted(tree) if isinstance(tree, dict) else jax.tree.structure(tree)


# ----------------------------------------------------------------------------- one function per family

def family_loss(name: str) -> Callable[..., jax.Array]:
    """``mj.losses.<name>(raw, y, ...)``: the per-example loss of the table's family ``name``."""
    entry = FAMILIES[name]
    signature = _signature(entry)

    def call(*args: Any, **kwargs: Any) -> jax.Array:
        given = signature.bind(*args, **kwargs)
        given.apply_defaults()
        options = dict(given.arguments)
        raw, y = options.pop(entry.inputs[0]), options.pop(entry.inputs[1])
        validate, fparams, mask = options.pop("validate"), options.pop("fparams", None), options.pop("mask")
        for size in entry.sizes:
            options[size.param] = _size(name, size, given.arguments[size.source])
        owned: dict = {}
        raw = as_array(f"mj.losses.{name}", entry.inputs[0], raw)  # read once: its dtype is the values'
        for value in entry.values:
            options.update(_option(name, value, options.pop(value.keyword), owned, computes_in(raw)))
        return loss(entry.make(**options), raw, y, owned or fparams, mask=mask, validate=validate)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = _docstring(name, entry)
    call.__signature__ = signature  # type: ignore[attr-defined]
    return call


def _size(name: str, size: Size, source: Any) -> int:
    """The constructor argument ``size.param`` read from the shape of its source."""
    shape = tuple(np.shape(source))
    value = size.read(shape)
    if value is None:
        raise ValueError(f"mj.losses.{name}: {size.source} must have shape {size.rule}; got {shape}")
    return value


def _option(name: str, value: Value, given: Any, owned: dict, dtype: Any) -> dict:
    """The constructor option for what was given (a setting, a fixed number, or ``"learned"``);
    a value's raw-form parameters go to ``owned``, in ``dtype``, the one the kernel computes in
    (``families._table.computes_in``), so that the kernel and the affine read the same value."""
    if isinstance(given, str) and value.option is not None:
        if given == "learned":
            raise ValueError(
                f"mj.losses.{name}: {value.keyword}='learned' needs the value: pass {value.keyword}= as an "
                f"array (e.g. jax.nn.softplus(params['s'])), or use mj.losses.nll(family, raw, y, params.family)")
        return {value.option: given}
    if value.fixed and is_number(given):
        return {value.option: float(given)} if value.option else {}
    owned.update(value.to_params(name, given, dtype))
    return {value.option: "learned"} if value.option else {}


def _signature(entry: Entry) -> inspect.Signature:
    """``(raw, y, *options, validate=True)`` from the constructor's own signature (see the module)."""
    P = inspect.Parameter
    values = {v.option or v.keyword: v for v in entry.values}
    sized = {s.param for s in entry.sizes}
    out = [P(entry.inputs[0], P.POSITIONAL_OR_KEYWORD), P(entry.inputs[1], P.POSITIONAL_OR_KEYWORD)]
    for p in inspect.signature(entry.make).parameters.values():
        if p.name in sized or p.name.startswith("init_"):
            continue
        value = values.pop(p.name, None)
        out.append(p if value is None else _value_parameter(value, p))
        if p.name == "family":
            out.append(P("fparams", p.kind, default=None))
    out += [_value_parameter(v, None) for v in values.values()]
    out.append(P("mask", P.KEYWORD_ONLY, default=None))
    out.append(P("validate", P.KEYWORD_ONLY, default=True, annotation="bool"))
    return inspect.Signature(sorted(out, key=lambda p: p.kind), return_annotation="jax.Array")


def _value_parameter(value: Value, option: inspect.Parameter | None) -> inspect.Parameter:
    P = inspect.Parameter
    if option is None or option.annotation is P.empty:
        return P(value.keyword, P.KEYWORD_ONLY, annotation="jax.Array")
    widened = f"{option.annotation} | " + ("jax.Array" if value.fixed else "float | jax.Array")
    if value.required:
        return P(value.keyword, P.KEYWORD_ONLY, annotation=widened)
    return P(value.keyword, option.kind, default=option.default, annotation=widened)


def _docstring(name: str, entry: Entry) -> str:
    """The loss's docstring: what it computes, the table's note, its options, the constructor's own."""
    raw, y = entry.inputs
    lines = [f"``-log Pr({y}_i | theta_i)`` of ``mj.{name}`` for every example i, shape (N,): {raw} of "
             f"shape ``(N, *raw_shape)``, {y} of shape ``(N, *event_shape)`` (or the family's training "
             f"loss where it has one: ``mj.losses.loss``).", ""]
    if entry.note:
        lines += [entry.note, ""]
    lines += [f"``{s.param}`` is read from ``{s.source}``, of shape {s.rule}." for s in entry.sizes]
    lines += [f"``{v.keyword}``: " + ("a number is fixed; " if v.fixed else "")
              + "an array (traced or not, of shape () or (N,)) is a value, entering as a learned parameter"
              for v in entry.values]
    lines += ["``mask``: optional (N,) booleans; a row where False has term 0 and derivative 0, whatever its "
              "target (``mj.losses.nll``).",
              "``validate``: check concrete targets with the family's rules (unchecked: an impossible "
              "target has NLL +inf).", "", f"The family, ``mj.{name}``:", ""]
    return "\n".join(lines) + "\n" + textwrap.indent(inspect.cleandoc(entry.make.__doc__ or ""), "    ") + "\n"
