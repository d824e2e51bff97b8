"""Families with structure: a full covariance, ordered categories, censored observations.

    mj.mvn_cholesky(D)        raw: D means + D(D+1)/2 Cholesky entries (diagonal through softplus)
    mj.ordinal(K)             raw: one score f; Pr(y <= k) = sig(c_k - f) with ordered, learned cutpoints c
    mj.censored(family)       y = (value, side): side 0 observed, -1 known only to be <= value, +1 >= value
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from . import links
from .checks import check_event_shape, check_finite, fail_entries
from .distributions import Categorical, MultivariateNormal, log_cdf, log_prob, log_sf
from .families import Family, _make


def mvn_cholesky(dim: int) -> Family:
    """Multivariate Normal with a full covariance from a Cholesky link.

    The model emits ``D + D(D+1)/2`` raw values: the mean, then the lower triangle of L row by
    row, its diagonal through ``softplus + eps`` (positive, so ``Sigma = L L^T`` is positive
    definite). The density uses triangular solves only. scipy: ``multivariate_normal.logpdf``.
    """
    if not isinstance(dim, (int, np.integer)) or dim < 1:
        raise ValueError(f"mvn_cholesky: dim must be a positive integer; got {dim!r}")
    d = int(dim)
    rows, cols = np.tril_indices(d)
    name = f"mvn_cholesky({d})"

    def theta(fp, raw):
        loc = jax.lax.slice_in_dim(raw, 0, d)
        entries = jax.lax.slice_in_dim(raw, d, d + len(rows))
        tril = jnp.zeros((d, d), raw.dtype).at[rows, cols].set(entries)
        diagonal = links.softplus.forward(jnp.diagonal(tril))
        return MultivariateNormal(loc, tril - jnp.diag(jnp.diagonal(tril)) + jnp.diag(diagonal))

    def check(y):
        check_finite(name, np.asarray(y), "y")

    return _make(name, (d + len(rows),), (d,), theta, check=check)  # the kernel is the theta's log_prob


def ordinal(num_classes: int) -> Family:
    """Ordered categories by cumulative logits: ``Pr(y <= k | f) = sig(c_k - f)``, k = 0..K-2.

    The model emits one score f per example; the K-1 cutpoints are the family's own
    parameters, kept ordered as ``c_0`` plus cumulative softplus gaps. theta is the resulting
    ``Categorical`` over the K classes (``log Pr(y = k) = log(sig(c_k - f) - sig(c_{k-1} - f))``,
    computed as ``log_sigmoid(c_k - f) + log(-expm1(...))``). Reference: McCullagh (1980).
    """
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise ValueError(f"ordinal: num_classes must be an integer >= 2; got {num_classes!r}")
    k = int(num_classes)
    name = f"ordinal({k})"

    def init(dtype):
        return {"first_cut": jnp.asarray(-(k - 2) / 2, dtype),
                "gaps": links.softplus.inverse(jnp.ones((k - 2,), dtype))}

    def cutpoints(fp):
        gaps = links.softplus.forward(fp["gaps"])
        return fp["first_cut"] + jnp.concatenate([jnp.zeros((1,), gaps.dtype), jnp.cumsum(gaps)])

    def theta(fp, raw):
        c = cutpoints(fp).astype(jnp.result_type(raw))
        upper = jnp.concatenate([c, jnp.full((1,), jnp.inf, c.dtype)]) - raw   # c_k - f, +inf for the last
        lower = jnp.concatenate([jnp.full((1,), -jnp.inf, c.dtype), c]) - raw  # c_{k-1} - f, -inf for the first
        # log(sig(u) - sig(l)) = log_sigmoid(u) + log(1 - exp(log_sigmoid(l) - log_sigmoid(u)))
        log_upper, log_lower = jax.nn.log_sigmoid(upper), jax.nn.log_sigmoid(lower)
        return Categorical(log_upper + jnp.log(-jnp.expm1(log_lower - log_upper)))

    def check(y):
        y = np.asarray(y)
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"{name}: ordered labels must be integers in [0, {k}); got dtype {y.dtype}")
        fail_entries(name, f"in [0, {k})", (y < 0) | (y >= k), y, "label")

    return _make(name, (), (), theta, init=init, check=check)


def censored(family: Family) -> Family:
    """Censored observations for a continuous scalar family (Normal, Laplace, Student t, Gamma, Beta).

    Each target is ``(value, side)``: side 0, observed (``log Pr(y = value)``, the density); side -1,
    left-censored, known only to be <= value (``log_cdf``); side +1, right-censored, known only to
    be >= value (``log_sf``). Survival times past the end of a study are right-censored.
    """
    name = f"censored({family.name})"
    if family.event_shape != ():
        raise ValueError(f"{name}: censoring needs a scalar family")

    def kernel(fp, raw, y):
        check_event_shape(name, y, (2,))
        value, side = y[0], y[1]
        theta = family.theta(fp, raw)
        observed = log_prob(theta, value)
        return jnp.where(side == 0, observed, jnp.where(side < 0, log_cdf(theta, value), log_sf(theta, value)))

    def check(y):
        y = np.asarray(y)
        if y.ndim != 2 or y.shape[1] != 2:
            raise ValueError(f"{name}: y must have shape (N, 2): (value, side); got {y.shape}")
        check_finite(name, y, "y")
        fail_entries(name, "-1, 0 or +1", ~np.isin(y[:, 1], (-1, 0, 1)), y[:, 1], "side")
        family.check(y[:, 0])

    return _make(name, family.raw_shape, (2,), family.theta, kernel, init=family.init, check=check)
