"""The location-scale builder: ``log Pr(y) = phi((y - mu) / s) + shift - log s``.

``phi`` is the standard log density (less its constant ``shift``); the scale ``s`` is
fixed, one learned global value, or linked per example (``_arguments.parse_scale``).
Laplace and Student t are built here for every scale spec, and the Normal for a linked
scale (its fixed and learned scales keep the squared error as the kernel).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp

from .. import links
from ._arguments import Fixed, Learned, Linked, ScaleSpec
from ._family import Family, Spec, Training, build, no_params, unstack
from ._support import Support, real

StandardLogProb = Callable[[Any, jax.Array], jax.Array]
"""``(fparams, z) -> phi(z)``, the standard log density less its constant."""


def _zero(fparams: Any) -> float:
    return 0.0



def linked_kernel(link: links.Link, standard_log_prob: StandardLogProb) -> Callable:
    """``l(raw, y) = phi(z) - log s`` with ``z = (y - mu) s^-1``, ``s = link(r)``, ``raw = (mu, r)``,
    and its derivative written out (a custom JVP) rather than left to autodiff:

        dl/dy = phi'(z) / s,   dl/dmu = -dl/dy,   dl/dr = -(z phi'(z) + 1) d log s / dr.

    Autodiff of the same expression divides by s again, differentiates softplus through a second
    exp and scatters two partial gradients into the raw vector; this form reuses ``1 / s`` and
    ``d log s / dr`` from ``link.scale_terms`` and gives one gradient row per example, which made
    the value-and-gradient about twice as fast on the CPU (experiments/benchmarks). ``phi'`` is
    autodiff of ``phi``; the rule is itself differentiable, so Hessians and jvp-of-grad work.
    """
    score = jax.grad(standard_log_prob, argnums=1)
    scale_terms = links.scale_terms(link)

    def terms(raw, y):
        loc, raw_scale = unstack(raw)
        log_scale, inv_scale, dlog_scale = scale_terms(raw_scale)
        return (y - loc) * inv_scale, log_scale, inv_scale, dlog_scale

    @jax.custom_jvp
    def fused(fp, raw, y):
        z, log_scale, _, _ = terms(raw, y)
        return standard_log_prob(fp, z) - log_scale

    @fused.defjvp
    def fused_jvp(primals, tangents):
        fp, raw, y = primals
        dfp, draw, dy = tangents
        z, log_scale, inv_scale, dlog_scale = terms(raw, y)
        if jax.tree.leaves(fp):  # the family's own parameters (a learned df): autodiff at fixed z
            value, tangent = jax.jvp(lambda fp: standard_log_prob(fp, z), (fp,), (dfp,))
        else:
            value, tangent = standard_log_prob(fp, z), 0.0
        dphi = score(fp, z)
        dl_dy = dphi * inv_scale
        grad_raw = jnp.stack([-dl_dy, -(z * dphi + 1.0) * dlog_scale])
        return value - log_scale, tangent + jnp.dot(draw, grad_raw) + dy * dl_dy

    def kernel(fp, raw, y):
        return fused(fp, raw, jnp.asarray(y, jnp.result_type(raw, y)))
    return kernel


def location_scale(spec: Spec, scale: ScaleSpec, *, theta_of: Callable[[Any, jax.Array, jax.Array], Any],
                   standard_log_prob: StandardLogProb, shift: Callable[[Any], Any] = _zero,
                   extra_init: Callable[[Any], dict] = no_params, support: Support = real,
                   training: Training = Training(), extra_positive: tuple[str, ...] = (),
                   standard_cost: StandardLogProb | None = None) -> Family:
    """A location-scale family: ``log Pr(y) = standard_log_prob(fp, (y - mu)/s) + shift(fp) - log s``.

    ``theta_of(fp, loc, scale)`` builds the theta; ``shift`` is the part of the standard log
    density that is the same for every example (the recipe adds it once per reduction);
    ``extra_init`` the family's other parameters (a learned df), ``extra_positive`` those of their keys that
    are ``softplus(raw) + eps`` (``Family.positive``). ``standard_cost`` (optional): ``-standard_log_prob``
    as its own function (a custom JVP with its derivatives' signs inside), the kernel of a fixed or learned
    scale with the affine's scale -1: the summed NLL's cotangent on each kernel is then 1, which XLA folds,
    where a family parameter of the kernel (a learned df) and the location share a cotangent of -1 that
    XLA:CPU writes out as an N-vector and reads in both reductions (0.8-0.95 of the time, issue 22).
    """
    if isinstance(scale, Linked):
        link = scale.link

        def linked_theta(fp, raw):
            loc, raw_scale = unstack(raw)
            return theta_of(fp, loc, link.forward(raw_scale))

        def linked_affine(fp):
            return 1.0, shift(fp)

        return build(spec=spec, support=support, theta=linked_theta, raw_shape=(2,),
                     kernel=linked_kernel(link, standard_log_prob), affine=linked_affine, init=extra_init,
                     training=training, positive=extra_positive)
    if standard_cost is None:
        sign, kernel_of = 1.0, standard_log_prob
    else:
        sign, kernel_of = -1.0, standard_cost
    if isinstance(scale, Learned):
        return _learned(spec, scale.init, theta_of, kernel_of, sign, shift, extra_init, support, training,
                        extra_positive + ("scale",))
    return _fixed(spec, scale, theta_of, kernel_of, sign, shift, extra_init, support, training, extra_positive)


def _learned(spec, init_scale, theta_of, kernel_of, sign, shift, extra_init, support, training, positive) -> Family:
    link = links.softplus

    def init(dtype):
        return {**extra_init(dtype), "scale": links.softplus_inverse(jnp.asarray(init_scale, dtype))}

    def kernel(fp, raw, y):
        _, inv_scale, _ = links.softplus_terms(fp["scale"])
        return kernel_of(fp, (y - raw) * inv_scale)

    def theta(fp, raw):
        return theta_of(fp, raw, link.forward(fp["scale"]).astype(jnp.result_type(raw)))

    def affine(fp):
        return sign, shift(fp) - links.softplus_log(fp["scale"])

    return build(spec=spec, support=support, theta=theta, kernel=kernel, affine=affine, init=init,
                 training=training, positive=positive)


def _fixed(spec, scale: Fixed, theta_of, kernel_of, sign, shift, extra_init, support, training, positive) -> Family:
    sigma = scale.value

    def kernel(fp, raw, y):
        return kernel_of(fp, (y - raw) / sigma)

    def theta(fp, raw):
        return theta_of(fp, raw, jnp.asarray(sigma, jnp.result_type(raw)))

    def affine(fp):
        return sign, shift(fp) - math.log(sigma)

    return build(spec=spec, support=support, theta=theta, kernel=kernel, affine=affine, init=extra_init,
                 training=training, positive=positive)
