"""Families built from another family: independent outputs, censored observations.

    mj.independent(family, D)   raw: D stacked raws; log-likelihood summed over the D outputs
    mj.censored(family)         y = (value, side): side 0 observed, -1 known only to be <= value, +1 >= value
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np

from .._reductions import affine_as
from ..distributions import Gamma, Normal, registry
from ..distributions.gamma import censored_log_prob as gamma_censored_log_prob
from ..distributions.normal import censored_log_prob
from ._arguments import whole_number
from ._family import Family, Spec, Training, build
from ._support import censored_pair


def independent(family: Family, dim: int, *, shared: bool = True) -> Family:
    """D independent outputs of one family: ``log Pr(y | x) = sum_d log Pr(y_d | theta_d(x))``.

    The model emits raw of shape ``(D,) + family.raw_shape``; the target y has
    shape ``(D,) + family.event_shape`` on the family's support. The family's own parameters
    (a learned sigma) are ``shared`` by the D outputs (the lecture's one sigma^2) or, with
    ``shared=False``, one set per output (a sigma per dimension, for outputs of
    different magnitudes). theta is ``Independent(base)`` with base fields of
    leading axis D. Reference: the lecture, "Multiple outputs" and Example 4.
    """
    _require_family("independent", family)
    dim = whole_number("independent", "dim", dim, 1)
    if not isinstance(shared, (bool, np.bool_)):
        raise ValueError(f"independent: shared must be True or False; got {shared!r}")
    if family.training.weight is not None:
        raise ValueError(f"independent: {family.name} weighs examples by class, which has no meaning "
                         f"for D outputs at once; weight the examples with fit(..., weights=...)")
    from ..distributions import Independent
    fp_axis = None if shared else 0
    raw_shape = (dim,) + family.raw_shape

    def init(dtype):
        fp = family.init(dtype)
        return fp if shared else jax.tree_util.tree_map(lambda a: jnp.stack([a] * dim), fp)

    def theta(fp, raw):
        return Independent(jax.vmap(family.theta, in_axes=(fp_axis, 0))(fp, raw.reshape(raw_shape)))

    def summed(fn):
        def total(fp, raw, y):
            return jnp.sum(jax.vmap(fn, in_axes=(fp_axis, 0, 0))(fp, raw.reshape(raw_shape), y), axis=0)
        return total

    if shared:  # one (scale, shift) for all D outputs: sum_d (a k_d + b) = a sum_d k_d + D b
        kernel = summed(family.kernel)

        def shared_affine(fp):
            scale, shift = family.affine(fp)
            return scale, dim * shift
        affine = shared_affine
    else:  # a scale per output: applied inside the sum over d
        def scaled_kernel(fp, raw, y):
            kernel = family.kernel(fp, raw, y)
            return affine_as(family.affine(fp), jnp.result_type(kernel))[0] * kernel
        kernel = summed(scaled_kernel)

        def summed_shift(fp):
            return 1.0, jnp.sum(jax.vmap(lambda f: family.affine(f)[1], axis_size=dim)(fp))
        affine = summed_shift

    training = Training(family.training.options, None if family.training.term is None else summed(family.training.term))
    spec = Spec("independent", args=(family.spec, dim), options=() if shared else (("shared", False),))
    return build(spec=spec, support=family.support, theta=theta, raw_shape=raw_shape,
                 event_shape=(dim,) + family.event_shape, kernel=kernel, affine=affine, init=init,
                 training=training, positive=family.positive)


def censored(family: Family) -> Family:
    """Censored observations for a continuous scalar family (Normal, Laplace, Student t, Gamma, Beta).

    Each target is ``(value, side)``: side 0, observed (``log Pr(y = value)``, the density); side -1,
    left-censored, known only to be <= value (``log_cdf``); side +1, right-censored, known only to
    be >= value (``log_sf``). Survival times past the end of a study are right-censored.
    The value lies on the family's support. Where targets are traced or not validated, a side
    other than -1, 0, +1 has log-likelihood -inf; a value off the support gives what the theta
    gives: its density (-inf), or its tail probability (log 0 = -inf where impossible, a Gamma
    known to be <= -1; log 1 = 0 where certain, a Gamma known to be >= -1). Reference: Klein and Moeschberger, *Survival Analysis*, ch. 3.
    """
    _require_family("censored", family)
    if family.event_shape != ():
        raise ValueError(f"censored({family.name}): censoring needs a scalar family")
    if family.training.options:
        raise ValueError(f"censored({family.name}): training-loss options ({family.training.options}) "
                         f"have no censored form; censor the family without them")

    from ._table import FAMILIES
    checked = family.spec.kind not in FAMILIES  # a user's mj.family: its links may leave theta's domain

    def censored_kernel(theta, value, side):
        if isinstance(theta, Normal):  # the same values; derivatives written (see normal.censored_log_prob)
            return censored_log_prob(theta, value, side)
        if isinstance(theta, Gamma):  # the same values; density and tails from one evaluation
            return gamma_censored_log_prob(theta, value, side)
        # a built-in's links keep theta inside its domain: no check (registry.function's checked)
        observed = registry.function(theta, "log_prob", checked=False)(theta, value)
        tail = registry.log_tail(theta, value, side > 0, checked=False)
        known = (side == -1) | (side == 0) | (side == 1)
        return jnp.where(known, jnp.where(side == 0, observed, tail), -jnp.inf)

    def kernel(fp, raw, y):
        theta = family.theta(fp, raw)
        out = censored_kernel(theta, y[0], y[1])
        return registry.poisoned(theta, out, "censored") if checked else out

    return build(spec=Spec("censored", args=(family.spec,)), support=censored_pair(family.support),
                 theta=family.theta, raw_shape=family.raw_shape, event_shape=(2,), kernel=kernel,
                 init=family.init, positive=family.positive)


def _require_family(label: str, family: object) -> None:
    if not isinstance(family, Family):
        raise TypeError(f"{label}: family must be an mle_jax Family (e.g. mj.normal()); "
                        f"got {type(family).__name__}")
