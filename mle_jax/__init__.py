"""mle_jax: loss functions from the maximum-likelihood recipe, in functional JAX.

The lecture's four steps (Prince, *Understanding Deep Learning*, ch. 5):

1. choose ``Pr(y | theta)`` over the domain of y   -> theta types: ``Normal``, ``Bernoulli``, ``Categorical``
2. the model ``f[x, phi]`` predicts theta          -> families: ``normal``, ``bernoulli``, ``categorical``
3. minimise ``-sum_i log Pr(y_i | f[x_i, phi])``   -> ``recipe(model, family)``, ``fit``
4. infer the full distribution or its peak        -> ``recipe.predict``, ``recipe.point``
"""

from . import links, models
from .distributions import (
    Bernoulli, Beta, Binomial, Categorical, ZeroInflated, Gamma, Independent, Laplace, MixtureNormal, MultivariateNormal, NegativeBinomial,
    Normal, Poisson, StudentT, VonMises, log_sf, log_tail, cross_entropy, entropy, event_shape, interval, kl,
    log_cdf, log_prob, mean, mode, prob, probs, quantile, register, sample, variance,
)
from .families import (
    Family, bernoulli, beta, binomial, categorical, zero_inflated, censored, gamma, independent, laplace, mixture_normal, mvn_cholesky,
    negative_binomial, normal, ordinal, poisson, student_t, von_mises,
)
from .fit import FitResult as FitResult
from .fit import fit as fit
from .diagnostics import PerfectSeparationWarning, ValidationWarning
from ._fit_options import Checkpoints as Checkpoints
from ._fit_options import FitEvent as FitEvent
from ._fit_options import Minibatches as Minibatches
from ._fit_options import Objective as Objective
from ._fit_options import Progress as Progress
from ._fit_options import Run as Run
from ._fit_options import Stop as Stop
from ._fit_options import Validation as Validation
from .inference import InferenceResult, inference, lr_test
from .scores import Calibration, brier, calibration, coverage, crps, evaluate, pit
from .information import Decomposition, Empirical, empirical, kl_mc, nll_decomposition
from .models import mlp
from .recipe import Params, Recipe, recipe, reduce_terms
from . import losses
from ._batch import take
from .interop import from_tfp, to_distrax, to_tfp

__version__ = "0.1.0"

__all__ = [
    "Beta", "Gamma", "Laplace", "MixtureNormal", "NegativeBinomial", "Poisson", "StudentT", "VonMises", "beta",
    "gamma", "laplace", "mixture_normal", "negative_binomial", "poisson", "student_t", "von_mises",
    "MultivariateNormal", "censored", "log_sf", "log_tail", "mvn_cholesky", "ordinal",
    "Bernoulli", "Categorical", "Decomposition", "Empirical", "Family", "FitResult", "Independent", "Normal", "Params", "Recipe",
    "bernoulli", "categorical", "cross_entropy", "empirical", "entropy", "event_shape", "fit",
    "independent", "interval", "kl", "kl_mc", "links", "log_cdf", "log_prob", "mean", "mlp", "mode",
    "models", "nll_decomposition", "normal", "prob", "probs",
    "quantile", "recipe", "reduce_terms", "sample", "variance",
    "Checkpoints", "FitEvent", "Minibatches", "Objective", "Progress", "Run", "Stop", "Validation",
    "PerfectSeparationWarning", "ValidationWarning",
    "losses", "take", "from_tfp", "to_distrax", "to_tfp",
    "Calibration", "InferenceResult", "brier", "calibration", "coverage", "crps", "evaluate", "inference", "lr_test",
    "pit", "register",
    "Binomial", "binomial", "ZeroInflated", "zero_inflated",
]
