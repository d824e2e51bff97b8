"""Families: step 2 of the recipe, from a model's raw output for ONE example to theta.

A family maps the unconstrained raw output of a model to the theta of a distribution,
through one link per parameter, and may own parameters of its own (a global learned
sigma). It carries the fused log density ``log_prob(fparams, raw, y)`` written for its
links, a structured ``spec`` (what it is), the ``support`` of y (which checks concrete
targets) and, apart from the distribution, its training-loss options.

The modules are grouped by the domain of y:

    regression.py       real, positive, unit-interval y: normal, laplace, student_t,
                        mixture_normal, gamma, beta
    classification.py   labels: bernoulli, categorical, ordinal
    counts.py           counts: poisson, negative_binomial, binomial, zero_inflated
    directional.py      angles: von_mises
    multivariate.py     vectors: mvn_cholesky
    combinators.py      families of families: independent, censored

and the private pieces they share: ``_family.py`` (``Family``, ``Spec``, ``Density``,
``Training`` and the keyword-only ``build``), ``_support.py`` (the named supports and the
one ``validate``), ``_table.py`` (``FAMILIES``: every constructor by name, with how a per-example
loss builds it from a call; ``mle_jax.losses`` is generated from it), ``_arguments.py``
(constructor argument checks and the one scale-spec parser) and ``_location_scale.py`` (the
location-scale builder).
"""

from ._family import Density, Family, Spec, Training, as_raw, build
from ._support import Support, validate
from .classification import bernoulli, categorical, ordinal
from .combinators import censored, independent
from .counts import binomial, negative_binomial, poisson, zero_inflated
from .directional import von_mises
from .multivariate import mvn_cholesky
from .regression import beta, gamma, laplace, mixture_normal, normal, student_t
from ._table import FAMILIES, Entry

__all__ = [
    "Density", "Entry", "FAMILIES", "Family", "Spec", "Support", "Training", "as_raw", "build", "validate",
    "bernoulli", "beta", "binomial", "zero_inflated", "categorical", "censored", "gamma", "independent", "laplace", "mixture_normal",
    "mvn_cholesky", "negative_binomial", "normal", "ordinal", "poisson", "student_t", "von_mises",
]
