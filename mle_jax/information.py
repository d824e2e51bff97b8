"""Information theory: empirical distributions, Monte Carlo KL, and the KL -> NLL identity.

The closed forms (``entropy``, ``cross_entropy``, ``kl``) live with each theta
type in ``mle_jax.distributions``. This module adds what works across types:

- ``empirical(y)``: the data set as a distribution. Integer labels give their
  class frequencies as a ``Categorical`` (unseen classes get logit ``-inf``);
  real values give the lecture's sum of Dirac deltas ``q(y) = 1/I sum_i delta(y - y_i)``.
- ``cross_entropy(empirical(y), theta) = -1/I sum_i log Pr(y_i | theta)``: the mean NLL.
- ``kl_mc(key, p, q, n)``: a Monte Carlo KL with its standard error, for any pair
  with ``log_prob`` and ``sample``.
- ``nll_decomposition``: for discrete data, ``NLL / I = H(q) + KL(q || Pr(. | theta))``.

Reference: the lecture, "Cross Entropy" and "Derivation"; Prince, section 5.7.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import distributions as dist
from .distributions import Categorical, registry


class Empirical(NamedTuple):
    """The lecture's empirical distribution ``q(y) = 1/I sum_i delta(y - y_i)`` of real data."""

    samples: jax.Array


def _empirical_mean(theta: Empirical):
    return jnp.mean(theta.samples, axis=0)


def _empirical_variance(theta: Empirical):
    return jnp.var(theta.samples, axis=0)


def _empirical_sample(key, theta: Empirical):
    """One of the data points, drawn uniformly."""
    return theta.samples[jax.random.randint(key, (), 0, theta.samples.shape[0])]


def _empirical_event_shape(theta: Empirical):
    return tuple(theta.samples.shape[1:])


registry.register(Empirical, registry.Ops(
    mean=_empirical_mean,
    variance=_empirical_variance,
    sample=_empirical_sample,
    event_shape=_empirical_event_shape,
    missing=("an empirical distribution of real values is a sum of Dirac deltas and has no density or "
             "mode; use cross_entropy(empirical(y), theta) for the mean NLL"),
))


def empirical(y, num_classes: int | None = None):
    """The empirical distribution of a data set.

    Args:
      y: integer class labels (shape (I,)) or real values (shape (I, ...)).
      num_classes: K for labels (default ``max(y) + 1``).

    Integer labels must be concrete and lie in ``[0, K)``: a ValueError names the first that does
    not (``-1`` is never counted as class 0).

    Returns:
      ``Categorical(log(counts / I))`` for labels, classes never seen at ``-inf``;
      ``Empirical(y)`` (a sum of Dirac deltas) for real values.
    """
    y = y if isinstance(y, jax.Array) else np.asarray(y)
    if y.ndim == 0 or y.shape[:1] == (0,):
        raise ValueError("empirical: y must hold at least one example along its leading axis")
    if jnp.issubdtype(y.dtype, jnp.integer):
        return Categorical(jnp.log(_class_frequencies(np.asarray(y), num_classes)))
    return Empirical(jnp.asarray(y))


def _class_frequencies(labels: np.ndarray, num_classes: int | None) -> np.ndarray:
    """``counts_k / I`` for integer labels in ``[0, K)``, counted in NumPy (int64, so a label of
    2**32 + 1 is never wrapped into range); a ValueError names the first label outside it."""
    if labels.ndim != 1:
        raise ValueError(f"empirical: labels must have shape (I,); got {labels.shape}")
    k = int(labels.max()) + 1 if num_classes is None else int(num_classes)
    outside = (labels < 0) | (labels >= k)
    if outside.any():
        raise ValueError(f"empirical: labels must lie in [0, {k}); got {labels[outside][0]}")
    return np.bincount(labels.astype(np.int64), minlength=k) / labels.shape[0]


def _empirical_cross_entropy(p: Empirical, q):
    """``-1/I sum_i log q(y_i)``: the Dirac deltas pick out the data points."""
    return -jnp.mean(jax.vmap(dist.log_prob, in_axes=(None, 0))(q, p.samples))


registry.register_cross_entropy(Empirical, object, _empirical_cross_entropy)


def kl_mc(key, p, q, num_samples: int = 10_000):
    """Monte Carlo ``KL(p || q) ~ 1/S sum_s [log p(y_s) - log q(y_s)]`` with ``y_s ~ p``.

    Where p and q are of one type with a log-domain pair (``sample_log`` / ``log_prob_log``: Gamma and
    Beta), the draws are kept as logs, so draws that underflow to 0 (Gamma(0.01): 41% in float32)
    still count at their true value instead of making ``-inf - (-inf) = NaN``.

    Returns:
      ``(estimate, standard_error)``, the standard error being ``std / sqrt(S)``.
    """
    if num_samples < 2:
        raise ValueError("kl_mc: num_samples must be >= 2 for a standard error")
    keys = jax.random.split(key, num_samples)
    registry.check_domain(p, "kl_mc")
    registry.check_domain(q, "kl_mc")
    p, q = registry.promote(p), registry.promote(q)
    p_ops = registry.entries(p)
    if type(p) is type(q) and p_ops.sample_log is not None and p_ops.log_prob_log is not None:
        draw, density = registry.function(p, "sample_log"), registry.function(p, "log_prob_log")
    else:
        draw, density = dist.sample, dist.log_prob
    ys = jax.vmap(draw, in_axes=(0, None))(keys, p)
    terms = jax.vmap(lambda y: density(p, y) - density(q, y))(ys)
    return jnp.mean(terms), jnp.std(terms, ddof=1) / jnp.sqrt(num_samples)


class Decomposition(NamedTuple):
    """``mean_nll = entropy + kl`` for discrete data under one model theta."""

    mean_nll: jax.Array
    entropy: jax.Array
    kl: jax.Array


def nll_decomposition(y, theta: Categorical) -> Decomposition:
    """``-1/I sum_i log Pr(y_i | theta) = H(q) + KL(q || Pr(. | theta))`` for labels y.

    The entropy of the data does not depend on theta, so minimising the KL
    from the empirical distribution is minimising the NLL (the lecture's
    closing derivation); its gradient with respect to theta is exactly 0.
    """
    k = theta.logits.shape[-1]
    q = empirical(y, k)
    mean_nll = -jnp.mean(jax.vmap(dist.log_prob, in_axes=(None, 0))(theta, jnp.asarray(y)))
    return Decomposition(mean_nll, dist.entropy(q), dist.kl(q, theta))
