"""Named warnings for fits whose numbers cannot be trusted, and the test for perfect separation.

    max_i -log Pr(y_i | theta_i) < log 2   (every example's label has fitted probability > 1/2)

A family whose ``y`` is discrete (Bernoulli, categorical, ordinal, counts) has a log-likelihood
``<= 0`` with supremum 0. When a fitted model gives every example's own label a probability
above 1/2 (a strict majority, so the label is the most probable one), the data are *separated*
by the model: for a linear predictor (logistic, multinomial, ordinal regression), and any model
whose logits can be scaled up, ``c * phi`` with ``c -> inf`` raises every probability towards 1,
so the likelihood has no maximum and the parameters diverge (Albert and Anderson, 1984, for the
logistic case). Conversely, data that no linear predictor separates leave some example at a
probability <= 1/2 for every ``phi`` (its NLL >= log 2), so they never pass this test.
statsmodels' ``Logit.fit`` reports the same condition (``PerfectSeparationWarning``) when the
fitted probabilities equal the labels.

A family's own positive parameter (a learned sigma, df, shape, ...) is ``softplus(raw) + eps``;
where ``softplus(raw) <= eps`` it sits on the link's floor, the raw gradient there is the natural one
times ``sigmoid(raw)`` (0 to working precision), and a small gradient says nothing about a maximum:
``fit`` says so (``BOUNDARY``, ``BoundaryWarning``; ``mle_jax._floors``).

``fit`` (and ``inference``) warn with these classes; filter them by class:
``warnings.simplefilter("ignore", mj.PerfectSeparationWarning)``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["BoundaryWarning", "PerfectSeparationWarning", "ValidationWarning", "BOUNDARY", "SEPARATION",
           "bounded_likelihood", "separated"]

SEPARATION = "perfect separation: the maximum-likelihood estimate does not exist (parameters diverge)"
BOUNDARY = ("boundary: a parameter of the family is on its link's floor, where its raw gradient vanishes, so the "
            "gradient test cannot tell whether this is a maximum (it is not the checked MLE)")
LOG_HALF = -math.log(2.0)


class PerfectSeparationWarning(RuntimeWarning):
    """The classes are (quasi-)perfectly separated by the fitted model: the likelihood keeps rising
    as some parameters grow without bound, so the maximum-likelihood estimate does not exist and
    standard errors are meaningless (statsmodels' ``PerfectSeparationWarning``). ``fit`` warns when
    every example's discrete label has fitted probability above 1/2; ``inference`` also detects
    quasi-complete separation (``mle_jax._separation``)."""


class BoundaryWarning(RuntimeWarning):
    """A fitted family parameter is on its link's floor (``softplus(raw) <= eps``): its raw gradient
    vanishes there, so neither a small gradient nor the last step means the MLE was reached. ``fit``
    warns, names the parameter, its value and the floor, and reports ``stopped == "boundary"`` in
    place of "completed" or "converged" (``mle_jax._floors``)."""


class ValidationWarning(UserWarning):
    """Validation data were given but chose nothing: every validation NLL was NaN or inf, or the
    fit stopped before the first evaluation."""


def bounded_likelihood(family) -> bool:
    """Whether the family's log-likelihood is ``<= 0`` with supremum 0: its ``y`` is discrete
    (whole numbers or a finite set of values, in every column of a structured target), and
    ``fit`` minimises the NLL itself (no label smoothing, whose optimum exists)."""
    support = family.support
    columns = support.columns or (support,)
    discrete = all(c.integer or c.values is not None for c in columns)
    return discrete and family.training.term is None


def separated(log_probs, weights=None, mask=None) -> tuple[bool, float]:
    """``(every counted example has log Pr(y_i) > log(1/2), the smallest fitted probability)``.

    Counted: the examples with ``mask`` True and ``weight > 0`` (all when None); none counted is
    ``(False, nan)``.
    """
    log_probs = np.asarray(log_probs, np.float64)
    counted = np.ones(log_probs.shape, bool)
    if weights is not None:
        counted &= np.asarray(weights) > 0
    if mask is not None:
        counted &= np.asarray(mask, bool)
    if not counted.any():
        return False, math.nan
    worst = float(np.min(log_probs[counted]))
    return bool(worst > LOG_HALF), math.exp(worst)
