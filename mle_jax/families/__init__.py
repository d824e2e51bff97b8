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
    quantile.py         quantile regression: asymmetric_laplace
    compositions.py     shares on the simplex: dirichlet
    ranking.py          rankings (permutations): plackett_luce
    survival.py         positive magnitudes and survival times: exponential, weibull, log_normal
    combinators.py      families of families: independent, censored
    _custom.py          a user's family from a registered theta type: family (mj.family)

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
from .compositions import dirichlet
from .counts import binomial, negative_binomial, poisson, zero_inflated
from ._custom import family
from .directional import von_mises
from .multivariate import mvn_cholesky
from .quantile import asymmetric_laplace
from .ranking import plackett_luce
from .regression import beta, gamma, laplace, mixture_normal, normal, student_t
from .survival import exponential, log_normal, weibull
from ._table import FAMILIES, Entry

__all__ = [
    "Density", "Entry", "FAMILIES", "Family", "Spec", "Support", "Training", "as_raw", "build", "validate",
    "asymmetric_laplace", "bernoulli", "beta", "binomial", "categorical", "censored", "dirichlet", "exponential",
    "family", "gamma", "independent", "laplace", "log_normal", "mixture_normal", "mvn_cholesky", "negative_binomial",
    "normal", "ordinal", "plackett_luce", "poisson", "student_t", "von_mises", "weibull", "zero_inflated",
]
