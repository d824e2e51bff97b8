"""``mj.family``: a Family from a theta constructor, links and a support (bring your own likelihood).

    mj.register(Gumbel, log_prob=..., sample=..., example=Gumbel(0.0, 1.0))   # the theta type, checked
    fam = mj.family("gumbel", theta=lambda fp, raw: Gumbel(raw[0], jax.nn.softplus(raw[1])),
                    raw_shape=(2,), support="real")

The family is built by the same ``build`` as the built-ins, so it gets their checks (named ValueErrors
for off-support targets before anything is jitted, the trace-time check of one example's shapes),
reductions, ``fit``, ``predict``, ``mj.inference`` and ``mj.losses.nll``. Its fused density is
``log_prob(theta(fparams, raw), y)`` unless ``log_prob=`` gives one.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from ..distributions import registry
from ._family import Family, PerExample, Spec, build, theta_log_prob


def family(name: str, *, theta: Callable[[Any, jax.Array], Any], raw_shape: tuple[int, ...] = (),
           event_shape: tuple[int, ...] = (), support: Any = "real", init: Any = None,
           log_prob: PerExample | None = None, positive: tuple[str, ...] = ()) -> Family:
    """A ``Family`` named ``name`` whose example i has ``theta(fparams, raw_i)``, a registered theta.

    Args:
      name: shown in errors and reprs (``gumbel()``); not the name of a built-in family.
      theta: ``(fparams, raw) -> theta`` for ONE example, raw of shape ``raw_shape``; apply the links here
        (``mj.links.softplus.forward(raw[1])`` for a scale). Its theta type must be registered (``mj.register``).
      raw_shape: one example's raw model output (``()`` for one number, ``(2,)`` for two, ...).
      event_shape: one example's target (``()`` for scalar targets).
      support: the domain of y, checked on every concrete target (a ValueError naming the family, the rule
        and the first bad entry): a ``Support`` or one of ``"real"``, ``"angle"``, ``"positive"`` (y > 0),
        ``"unit_interval"`` (0 < y < 1), ``"probability"`` (0 <= y <= 1), ``"binary"``, ``"nonnegative_integer"``.
      init: the family's own parameters, trained with the model's (``params.family``): a pytree of starting
        values in raw form, or ``dtype -> pytree``; None: the family owns none (``fparams == {}``).
      log_prob: ``(fparams, raw, y) -> scalar``, a fused density of one example where it is more stable than
        ``log_prob(theta(fparams, raw), y)`` (the default).
      positive: the keys of ``init``'s dict (a dict) whose raw values the theta reads as
        ``mj.links.softplus.forward(raw) = softplus(raw) + eps``: ``fit``, ``solver``, ``bootstrap`` and
        ``inference`` then say when one ends on that link's floor (``mj.BoundaryWarning``), where its raw
        gradient vanishes. Nothing is assumed from a leaf's name (default: none is read).

    Bad arguments are a TypeError or ValueError at once; the theta is traced once (shapes only, nothing
    compiles) to check that it is registered and that the density of one example is a scalar.
    """
    from ._table import FAMILIES

    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"family: name must be an identifier such as 'gumbel'; got {name!r}")
    if name in FAMILIES:
        raise ValueError(f"family: {name!r} is a built-in family (mj.{name}); choose another name")
    if not callable(theta):
        raise TypeError(f"family({name!r}): theta must be a function (fparams, raw) -> theta; got {theta!r}")
    if log_prob is not None and not callable(log_prob):
        raise TypeError(f"family({name!r}): log_prob must be a function (fparams, raw, y) -> scalar; got {log_prob!r}")
    raw_shape, event_shape = _shape(name, "raw_shape", raw_shape), _shape(name, "event_shape", event_shape)
    kernel = log_prob if log_prob is not None else theta_log_prob(theta, checked=True)  # a user's theta: checked
    fam = build(spec=Spec(name), support=registry.as_support(support, f"family({name!r})"), theta=theta,
                raw_shape=raw_shape, event_shape=event_shape, kernel=kernel, init=_init(init),
                positive=_positive(name, positive))
    _trace(fam)
    return fam


def _shape(name: str, what: str, value: Any) -> tuple[int, ...]:
    try:
        shape = tuple(int(n) for n in value)
    except TypeError:
        raise TypeError(f"family({name!r}): {what} must be a tuple of sizes such as (2,); got {value!r}") from None
    if any(n < 1 for n in shape):
        raise ValueError(f"family({name!r}): {what} must hold positive sizes; got {value!r}")
    return shape


def _positive(name: str, positive: Any) -> tuple[str, ...]:
    if isinstance(positive, str) or not isinstance(positive, (tuple, list)) or \
            not all(isinstance(k, str) for k in positive):
        raise TypeError(f"family({name!r}): positive must be a tuple of init's keys such as ('scale',); got {positive!r}")
    return tuple(positive)


def _init(init: Any) -> Callable[[Any], Any] | None:
    if init is None or callable(init):
        return init

    def values(dtype):
        return jax.tree.map(lambda v: jnp.asarray(v, dtype), init)
    return values


def _trace(fam: Family) -> None:
    """Trace one example (shapes only): its theta is registered, its log density a scalar."""
    fp = jax.eval_shape(lambda: fam.init(jnp.float32))
    for key in fam.positive:
        leaf = fp.get(key) if isinstance(fp, dict) else None
        if leaf is None or not jnp.issubdtype(leaf.dtype, jnp.floating):
            raise ValueError(f"family({fam.name}): positive names {key!r}, which is not a floating leaf of init's dict "
                             f"(its keys: {sorted(fp) if isinstance(fp, dict) else 'init is not a dict'})")
    raw = jax.ShapeDtypeStruct(fam.raw_shape, jnp.float32)
    out = jax.eval_shape(fam.theta, fp, raw)
    registry.entries(out)
    y = jax.ShapeDtypeStruct(fam.event_shape, jnp.float32)
    density = jax.eval_shape(fam.log_prob, fp, raw, y)
    if density.shape != ():
        raise ValueError(f"family({fam.name}): the log density of one example must be a scalar; it has shape "
                         f"{density.shape} (raw_shape {fam.raw_shape}, event_shape {fam.event_shape})")
