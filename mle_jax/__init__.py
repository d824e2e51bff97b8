"""mle_jax: loss functions from the maximum-likelihood recipe, in functional JAX.

The lecture's four steps (Prince, *Understanding Deep Learning*, ch. 5):

1. choose ``Pr(y | theta)`` over the domain of y   -> theta types: ``Normal``, ``Bernoulli``, ``Categorical``
2. the model ``f[x, phi]`` predicts theta          -> families: ``normal``, ``bernoulli``, ``categorical``
3. minimise ``-sum_i log Pr(y_i | f[x_i, phi])``   -> ``recipe(model, family)``, ``fit``
4. infer the full distribution or its peak        -> ``recipe.predict``, ``recipe.point``
"""

from . import links, losses, models
# step 1: theta types and the pure functions of theta (one module each in distributions/)
from .distributions import (
    AsymmetricLaplace, Bernoulli, Beta, Binomial, Categorical, Dirichlet, Exponential, Gamma, Independent, Laplace,
    LogNormal, MixtureNormal, MultivariateNormal, NegativeBinomial, Normal, PlackettLuce, Poisson, StudentT, VonMises,
    Weibull, ZeroInflated,
    cross_entropy, entropy, event_shape, interval, kl, log_cdf, log_prob, log_sf, log_tail, mean, mode, prob, probs,
    quantile, register, sample, variance,
)
from .distributions.registry import check_registration
# step 2: families (raw model output -> theta), grouped by the domain of y
from .families import (
    Family, asymmetric_laplace, bernoulli, beta, binomial, categorical, censored, dirichlet, exponential, family, gamma,
    independent, laplace, log_normal, mixture_normal, mvn_cholesky, negative_binomial, normal, ordinal, plackett_luce,
    poisson, student_t, von_mises, weibull, zero_inflated,
)
# step 3: the recipe and the fit
from .recipe import Params, Recipe, recipe, reduce_terms
from .models import mlp
from ._batch import take
from .fit import FitResult as FitResult
from .fit import fit as fit
from ._fit_options import Checkpoints as Checkpoints
from ._fit_options import FitEvent as FitEvent
from ._fit_options import Minibatches as Minibatches
from ._fit_options import Objective as Objective
from ._fit_options import Progress as Progress
from ._fit_options import Run as Run
from ._fit_options import Stop as Stop
from ._fit_options import Validation as Validation
from .solver import History as History
from .solver import solver as solver
from .bootstrap import BootstrapResult as BootstrapResult
from .bootstrap import bootstrap as bootstrap
from .diagnostics import BoundaryWarning, PerfectSeparationWarning, ValidationWarning
from .newton import newton, scale_by_newton
from .glm_start import family_mle, intercept_only
# step 4 and after: inference, scores, information theory, other libraries
from .inference import InferenceResult, inference, lr_test
from .streams import Batches, batches
from .scores import Calibration, brier, calibration, coverage, crps, evaluate, pit
from .information import Decomposition, Empirical, empirical, kl_mc, nll_decomposition
from .interop import from_tfp, to_distrax, to_tfp
# data in: formulas (formulaic, the formula extra)
from .formula import Design as Design
from .formula import formula as formula

__version__ = "0.1.0"

__all__ = [
    # theta types and their functions
    "AsymmetricLaplace", "Bernoulli", "Beta", "Binomial", "Categorical", "Dirichlet", "Exponential", "Gamma",
    "Independent", "Laplace", "LogNormal", "MixtureNormal", "MultivariateNormal", "NegativeBinomial", "Normal",
    "PlackettLuce", "Poisson", "StudentT", "VonMises", "Weibull", "ZeroInflated",
    "check_registration", "cross_entropy", "entropy", "event_shape", "interval", "kl", "log_cdf", "log_prob", "log_sf",
    "log_tail", "mean", "mode", "prob", "probs", "quantile", "register", "sample", "variance",
    # families
    "Family", "asymmetric_laplace", "bernoulli", "beta", "binomial", "categorical", "censored", "dirichlet",
    "exponential", "family", "gamma", "independent", "laplace", "log_normal", "mixture_normal", "mvn_cholesky",
    "negative_binomial", "normal", "ordinal", "plackett_luce", "poisson", "student_t", "von_mises", "weibull",
    "zero_inflated",
    # the recipe and the fit
    "Params", "Recipe", "recipe", "reduce_terms", "mlp", "take", "FitResult", "fit",
    "Checkpoints", "FitEvent", "Minibatches", "Objective", "Progress", "Run", "Stop", "Validation",
    "BoundaryWarning", "PerfectSeparationWarning", "ValidationWarning", "newton", "scale_by_newton",
    "family_mle", "intercept_only",  # a GLM's start and its profiled dispersion (mle_jax.glm_start)
    "Batches", "batches",  # streams of batches for fit and inference (mle_jax.streams)
    # simulation studies: a pure fit
    "History", "solver", "BootstrapResult", "bootstrap",
    # after the fit
    "InferenceResult", "inference", "lr_test",
    "Calibration", "brier", "calibration", "coverage", "crps", "evaluate", "pit",
    "Decomposition", "Empirical", "empirical", "kl_mc", "nll_decomposition",
    "from_tfp", "to_distrax", "to_tfp",
    "links", "losses", "models",
    "Design", "formula",
]
