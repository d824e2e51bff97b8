"""The one table of symbolic models: a family's ``Spec.kind`` -> a function ``Spec -> Model``."""

from __future__ import annotations

from typing import Callable

from ..families._family import Spec
from . import scalar, structured, survival
from .symbols import Model

MODELS: dict[str, Callable[[Spec], Model]] = {
    "asymmetric_laplace": survival.asymmetric_laplace,
    "bernoulli": scalar.bernoulli,
    "binomial": structured.binomial,
    "beta": scalar.beta,
    "categorical": scalar.categorical,
    "censored": structured.censored,
    "exponential": survival.exponential,
    "dirichlet": structured.dirichlet,
    "gamma": scalar.gamma,
    "independent": structured.independent,
    "laplace": scalar.laplace,
    "log_normal": survival.log_normal,
    "mixture_normal": structured.mixture_normal,
    "mvn_cholesky": structured.mvn_cholesky,
    "negative_binomial": scalar.negative_binomial,
    "normal": scalar.normal,
    "ordinal": structured.ordinal,
    "plackett_luce": structured.plackett_luce,
    "poisson": scalar.poisson,
    "student_t": scalar.student_t,
    "von_mises": scalar.von_mises,
    "weibull": survival.weibull,
    "zero_inflated": structured.zero_inflated,
}
"""Family kind -> its symbolic model. A family added later joins ``derive`` by one entry here."""


def model(spec: Spec) -> Model:
    """The symbolic model of a family spec; NotImplementedError naming a kind with no entry."""
    if spec.kind not in MODELS:
        raise NotImplementedError(f"derive: no symbolic derivation for {spec.render()} yet "
                                  f"(mle_jax._derivations.table.MODELS has no entry for the kind {spec.kind!r})")
    return MODELS[spec.kind](spec)


