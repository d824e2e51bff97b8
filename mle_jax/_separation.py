"""Separated classes: where the MLE of a Bernoulli or Categorical fit does not exist.

The classes are completely separated when some parameter direction classifies every example
correctly; then scaling it up raises every fitted probability of an observed label toward 1, the
likelihood toward its supremum, and the information ``p (1 - p) x x'`` shrinks toward 0 uniformly, so
a relative test on the Hessian's eigenvalues passes while the standard errors grow with the fit's
length. They are quasi-completely separated when such a direction classifies only some examples
perfectly and leaves the others' predictions unchanged. Albert and Anderson (1984), Biometrika 71;
statsmodels warns with ``PerfectSeparationWarning`` when every fitted probability is within ~1e-5
of its label.

Here, at the fitted params (``inference``):

- complete: every counted example's observed label is the strictly most probable one (for a linear
  predictor this is separation, whatever the fitted slope);
- quasi-complete: the examples fitted with probability above ``1 - SEPARATION_TOL`` for their label
  alone identify some direction: without them the information matrix loses rank (dense covariances),
  or some ``H_jj`` comes only from them (``"diagonal"``, ``"hvp"``).
"""

from __future__ import annotations

import functools
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import distributions as dist
from ._curvature import Data, singular_tol
from .diagnostics import PerfectSeparationWarning


SEPARATION_TOL = 1e-3  # an example is fitted "perfectly" when Pr(its observed label) > 1 - SEPARATION_TOL


class Labels(NamedTuple):
    """How well a classifier's fit predicts the observed labels of the counted examples."""

    counted: np.ndarray    # (N,) m_i w_i > 0
    correct: np.ndarray    # (N,) the observed label is the strictly most probable one (every entry)
    confident: np.ndarray  # (N,) counted, and Pr(observed label) > 1 - SEPARATION_TOL (every entry)
    smallest: float        # the smallest fitted probability of an observed label

    @property
    def complete(self) -> bool:
        return bool(np.all(self.correct[self.counted]))

    @property
    def quasi(self) -> bool:
        """Whether to look for quasi-complete separation: not complete, and some example fitted confidently."""
        return not self.complete and bool(self.confident.any())

    def complete_message(self) -> str:
        return (f"inference: every example's observed label is the fitted model's most probable one (the "
                f"smallest fitted probability of an observed label is {self.smallest:.6g}): the classes are "
                f"perfectly separated, so the likelihood rises toward its supremum as the estimates grow "
                f"without bound; the MLE does not exist and these standard errors are meaningless (they "
                f"grow with the fit's length). Remove or merge the separating covariates, or fit with a "
                f"penalty (a prior)")


def label_fit(recipe, params, data: Data) -> Labels | None:
    """For predictions with class probabilities (a theta type registering ``probs``: Bernoulli,
    Categorical) of hard labels, which counted examples the fit
    predicts correctly and which with probability above ``1 - SEPARATION_TOL``; None for soft labels.

    One compiled pass over the examples (kept in ``recipe.programs``); the host receives three
    boolean N-vectors and two scalars."""
    stats = recipe.programs.get(("inference", "labels"), lambda: jax.jit(functools.partial(_label_stats, recipe)))
    hard, counted, correct, confident, smallest = stats(params, data)
    if not bool(hard):
        return None
    return Labels(np.asarray(counted), np.asarray(correct), np.asarray(confident), float(smallest))


def loglik_and_labels(recipe, params, data: Data, labels: bool) -> tuple[float, Labels | None]:
    """``(log L, label_fit(...))`` from one compiled pass over the examples (kept in ``recipe.programs``):
    ``-recipe.reduce`` at the data's weights and mask and, with ``labels``, ``label_fit``'s statistics (None
    without), the model's raw outputs shared by both (XLA computes the one predictor once), one transfer to
    the host. The data's values are checked before (``recipe.check``)."""
    program = recipe.programs.get(("inference", "loglik", labels),
                                  lambda: jax.jit(functools.partial(_loglik_stats, recipe, labels)))
    nll, stats = jax.device_get(program(params, data))
    if stats is None or not bool(stats[0]):
        return -float(nll), None
    _, counted, correct, confident, smallest = stats
    return -float(nll), Labels(np.asarray(counted), np.asarray(correct), np.asarray(confident), float(smallest))


def _loglik_stats(recipe, labels: bool, params, data: Data):
    nll = recipe.reduce(params, data.x, data.y, data.w, data.m)
    return nll, (_label_stats(recipe, params, data) if labels else None)


def _label_stats(recipe, params, data: Data):
    """``label_fit``'s reductions on the device: whether every label is a class index, and per example
    whether it is counted, predicted correctly (strictly most probable) and confidently."""
    p = dist.probs(recipe.predict(params, data.x))  # (N, ..., K)
    classes = p.shape[-1]
    labels = jnp.asarray(data.y)
    if labels.shape != p.shape[:-1]:
        return (jnp.asarray(False),) + (jnp.zeros(labels.shape[:1], bool),) * 3 + (jnp.asarray(jnp.nan),)
    hard = jnp.all((labels == jnp.floor(labels)) & (labels >= 0) & (labels < classes))
    at = jnp.clip(labels, 0, classes - 1).astype(jnp.int32)[..., None]
    observed = jnp.take_along_axis(p, at, -1)[..., 0]
    others = jnp.max(jnp.where(jnp.arange(classes).reshape((1,) * labels.ndim + (classes,)) == at, -jnp.inf, p), -1)
    n = labels.shape[0]
    counted = data.m & (data.w > 0)
    correct = (observed > others).reshape(n, -1).all(1)
    confident = counted & (observed > 1.0 - SEPARATION_TOL).reshape(n, -1).all(1)
    least = jnp.where(counted, observed.reshape(n, -1).min(1), jnp.inf).min()
    return hard, counted, correct, confident, least


def _confident(labels: Labels) -> str:
    return (f"{int(labels.confident.sum())} of {int(labels.counted.sum())} examples are fitted with probability "
            f"above 1 - {SEPARATION_TOL:g} for their observed label")


_DIVERGE = ("whose estimates grow without bound as the fit runs longer (quasi-complete separation); the MLE "
            "does not exist and their standard errors are meaningless. Remove or merge the separating "
            "covariates, or fit with a penalty")


def quasi_separation(labels: Labels, information, strong) -> str | None:
    """A sentence when the confidently fitted examples alone identify some direction of the parameters
    (without them the information matrix loses rank): quasi-complete separation. Where the information
    matrix is itself singular, the sentence only says what the labels show."""
    eig, eig_strong = np.linalg.eigvalsh(information), np.linalg.eigvalsh(strong)
    tol = singular_tol(eig)
    rank, rank_strong = int(np.sum(eig > tol)), int(np.sum(eig_strong > tol))
    if rank_strong < rank:
        return (f"{_confident(labels)}, and without them the information matrix loses rank ({rank_strong} < "
                f"{rank}): those examples alone identify some parameters, {_DIVERGE}")
    if eig[0] <= tol:
        return f"{_confident(labels)}: the classes may be (quasi-)separated, in which case the MLE does not exist"
    return None


def quasi_separation_diagonal(labels: Labels, diag, strong) -> None:
    """Without a dense matrix: warn when some parameter's curvature ``H_jj`` comes only from the
    confidently fitted examples (the other examples' ``H_jj`` is 0: a dummy column, say)."""
    alone = np.flatnonzero((diag > 0) & (np.abs(strong) <= 1e-10 * diag))
    if alone.size:
        warnings.warn(f"inference: {_confident(labels)}, and only they inform the parameters at flat indices "
                      f"{alone[:10].tolist()}, {_DIVERGE}", PerfectSeparationWarning, stacklevel=4)
