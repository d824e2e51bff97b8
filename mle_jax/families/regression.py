"""Families for real, positive and unit-interval targets: regression.

    mj.normal(scale=0.2)               raw: mu             sigma fixed: least squares       y real
    mj.normal(scale="learned")         raw: mu             one global sigma in the family's params
    mj.normal(scale="softplus")        raw: (mu, s)        sigma = softplus(s) + eps (also "exp", "square")
    mj.laplace(scale=...)              raw: mu (and s)     the NLL is |y - mu| / b + log 2b
    mj.student_t(df=4.0, scale=...)    raw: mu (and s)     heavy tails; df fixed or "learned"
    mj.mixture_normal(K)               raw: 3K values      a mixture density network's head
    mj.gamma()                         raw: (a, b)         y > 0
    mj.gamma(parameterization="mean")  raw: log mu         the Gamma GLM (log link), one global shape
    mj.beta()                          raw: (a, b)         0 < y < 1
    mj.beta(parameterization="mean")   raw: logit mu       beta regression, one global precision phi

``scale`` is parsed by one function for every location-scale family (``_arguments.parse_scale``):
a positive float, ``"learned"``, or a positive link's name.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp

from .. import links
from ..distributions import Beta, Gamma, Laplace, MixtureNormal, Normal, StudentT
from ..distributions import gamma as _gamma
from ..distributions import laplace as _laplace
from ..distributions import mixture as _mixture
from ..distributions import student_t as _student_t
from ..distributions.normal import HALF_LOG_2PI
from . import _arguments
from ._arguments import Learned, Linked, number_in, parse_scale, positive_number, scale_option, whole_number
from ._family import Family, Spec, Split, Training, build, no_params, split, unstack
from ._location_scale import location_scale
from ._support import Support, positive, real, unit_interval


# ----------------------------------------------------------------------------- Normal

def normal(scale: float | str = "softplus", *, init_scale: float = 1.0, beta: float | None = None) -> Family:
    """Normal family: ``Pr(y | x) = N(y | mu(x), sigma(x))``.

    Args:
      scale: a positive float (sigma fixed, the model emits mu: least squares);
        ``"learned"`` (one global sigma = softplus(s) + eps, with s a family
        parameter learned jointly with phi); or a link name ``"softplus"``,
        ``"exp"``, ``"square"`` (heteroscedastic: the model emits (mu, s) and
        sigma = link(s)). ``"square"`` is the lecture's sigma^2 = f2^2; see
        ``mle_jax.links`` for its failure modes.
      init_scale: the starting sigma for ``"learned"``.
      beta: beta-NLL (Seitzer et al., 2022) for heteroscedastic scales, a training-loss
        option: the training loss of example i is ``stop_gradient(sigma_i^(2 beta)) * NLL_i``;
        beta = 0 is the NLL, beta = 1 gives the mean the MSE's gradient. ``nll``
        still reports the true NLL.

    The log density is ``-z^2/2 - log sigma - log(2 pi)/2`` with ``z = (y - mu)/sigma``
    (``scipy.stats.norm.logpdf``); the Normal NLL with fixed sigma equals
    ``SSE / (2 sigma^2) + N log sigma + (N/2) log 2 pi`` (Prince, eq. 5.12).
    """
    label = f"normal(scale={scale!r})"
    spec = parse_scale(label, scale, init_scale)
    if beta is not None and not isinstance(spec, Linked):
        raise ValueError(f"{label}: beta (beta-NLL) needs a heteroscedastic scale link")
    normal_spec = Spec("normal", options=(("scale", scale_option(spec)),))
    if isinstance(spec, Linked):
        return _normal_linked(normal_spec, spec, beta)
    if isinstance(spec, Learned):
        return _normal_learned(normal_spec, spec.init)
    return _normal_fixed(normal_spec, spec.value)


def _squared_error(fp, raw, y):
    """``(y - mu)^2``: the Normal's per-example kernel when sigma is the same for every example."""
    return jnp.square(y - raw)


def _normal_theta(fp, loc, scale):
    return Normal(loc, scale)


# sigmas whose 1 / (2 sigma^2) and (y - mu)^2 stay inside float32's range for residuals of order sigma
_SQUARED_ERROR_SIGMAS = (1e-15, 1e15)


def _normal_fixed(spec: Spec, sigma: float) -> Family:
    # least squares: log Pr = -(y - mu)^2 / (2 sigma^2) - log sigma - log(2 pi)/2
    shift = -(math.log(sigma) + HALF_LOG_2PI)
    if _SQUARED_ERROR_SIGMAS[0] <= sigma <= _SQUARED_ERROR_SIGMAS[1]:
        kernel, terms = _squared_error, (-0.5 / sigma**2, shift)
    else:  # 1 / sigma^2 would overflow (or underflow) float32: standardise first, z = (y - mu) / sigma
        def kernel(fp, raw, y):
            return jnp.square((y - raw) / sigma)
        terms = (-0.5, shift)

    def theta(fp, raw):
        return Normal(raw, jnp.asarray(sigma, jnp.result_type(raw)))

    def affine(fp):
        return terms

    return build(spec=spec, support=real, theta=theta, kernel=kernel, affine=affine)


def _normal_learned(spec: Spec, init_scale: float) -> Family:
    link = links.softplus

    def init(dtype):
        return {"scale": links.softplus_inverse(jnp.asarray(init_scale, dtype))}

    def theta(fp, raw):
        return Normal(raw, link.forward(fp["scale"]).astype(jnp.result_type(raw)))

    def affine(fp):  # log Pr = -(y - mu)^2 / (2 sigma^2) - log sigma - log(2 pi)/2, sigma from the family
        log_scale, inv_scale, _ = links.softplus_terms(fp["scale"])
        return -0.5 * jnp.square(inv_scale), -(log_scale + HALF_LOG_2PI)

    return build(spec=spec, support=real, theta=theta, kernel=_squared_error, affine=affine, init=init,
                 positive=("scale",))


def _standard_normal(fp, z):
    return -0.5 * jnp.square(z)


def _minus_half_log_2pi(fp):
    return -HALF_LOG_2PI


def _normal_linked(spec: Spec, scale: Linked, beta: float | None) -> Family:
    family = location_scale(spec, scale, theta_of=_normal_theta, standard_log_prob=_standard_normal,
                            shift=_minus_half_log_2pi)
    if beta is None:
        return family
    return location_scale(spec, scale, theta_of=_normal_theta, standard_log_prob=_standard_normal,
                          shift=_minus_half_log_2pi, training=beta_nll(family, scale.link, beta))


def beta_nll(family: Family, link: links.Link, beta: Any) -> Training:
    """The beta-NLL training loss (Seitzer et al., 2022): ``-stop_gradient(sigma^(2 beta)) log Pr``."""
    value = number_in(family.name, "beta", beta, 0.0, 1.0)
    log_forward = links.log_forward(link)

    def loss(fp, raw, y):
        weight = jnp.exp(2.0 * value * jax.lax.stop_gradient(log_forward(unstack(raw)[1])))
        return -weight * family.log_prob(fp, raw, y)

    return Training(options=(("beta", value),), term=loss)


# ----------------------------------------------------------------------------- Laplace, Student t

def _laplace_theta(fp, loc, scale):
    return Laplace(loc, scale)


def _standard_laplace(fp, z):
    return -jnp.abs(z)


def _minus_log_2(fp):
    return -_laplace.LOG_2


def laplace(scale: float | str = "softplus", *, init_scale: float = 1.0) -> Family:
    """Laplace family: ``log Pr = -|y - mu|/b - log(2b)``; with a fixed b the NLL is the absolute error.

    ``scale`` as for ``normal``. Support: y real. scipy: ``laplace.logpdf(y, mu, b)``.
    The mode and the median are mu. Reference: Laplace (1774); Koenker, *Quantile Regression*.
    """
    spec = parse_scale(f"laplace(scale={scale!r})", scale, init_scale)
    return location_scale(Spec("laplace", options=(("scale", scale_option(spec)),)), spec,
                          theta_of=_laplace_theta, standard_log_prob=_standard_laplace, shift=_minus_log_2)


def student_t(df: float | str = 4.0, scale: float | str = "softplus", *, init_scale: float = 1.0,
              init_df: float = 4.0) -> Family:
    """Student t family: heavy-tailed regression; ``df`` fixed (a float > 0, or ``inf``: the Normal, its limit) or
    ``"learned"``.

    A learned df is ``softplus(fp["df"]) + eps``, one per family, starting at ``init_df``.
    ``scale`` as for ``normal``. Support: y real. scipy: ``t.logpdf(y, df, mu, s)``.
    Reference: Lange, Little and Taylor (1989), robust statistical modeling using the t distribution.
    """
    label = f"student_t(df={df!r}, scale={scale!r})"
    start = positive_number(label, "init_df", init_df)
    if isinstance(df, str) and df != "learned":
        raise ValueError(f"{label}: df must be a positive number or 'learned' (inf: the Normal); got {df!r}")
    df_option: float | str = "learned" if isinstance(df, str) else _df_number(label, df)
    extra_init, df_of = _learned_df(start) if df_option == "learned" else (no_params, _constant(df_option))

    def theta_of(fp, loc, scale):
        if df_option == "learned":
            return StudentT(jnp.asarray(df_of(fp), jnp.result_type(loc)), loc, scale)
        with jax.ensure_compile_time_eval():  # a fixed df stays a concrete array when traced: its log_cdf compiles
            df = jnp.asarray(df_option, jnp.result_type(loc))  # only the branches that df takes (_static_df)
        return StudentT(df, loc, scale)

    def standard_log_prob(fp, z):  # the z-dependent part; its normaliser is the shift, once per reduction
        return _student_t.standard_kernel(z, df_of(fp))

    def standard_cost(fp, z):  # a learned df: -standard_log_prob, its own JVP (location_scale's standard_cost)
        return _student_t.standard_cost(z, df_of(fp))

    def shift(fp):
        return _student_t.log_normaliser(df_of(fp))

    spec = parse_scale(label, scale, init_scale)
    return location_scale(Spec("student_t", options=(("df", df_option), ("scale", scale_option(spec)))), spec,
                          theta_of=theta_of, standard_log_prob=standard_log_prob, shift=shift,
                          extra_init=extra_init, extra_positive=("df",) if df_option == "learned" else (),
                          standard_cost=standard_cost if df_option == "learned" else None)


def _df_number(label: str, df: Any) -> float:
    """A fixed df: a number > 0, ``+inf`` included (the Normal: the kernels take it whole, value and slopes, as they
    take a traced inf, which ``mj.losses.student_t(..., df=jnp.inf)`` under ``jit`` always read as the Normal)."""
    number = _arguments._number(df)
    if number is None or not number > 0:  # NaN too
        raise ValueError(f"{label}: df must be a positive number or 'learned' (inf: the Normal); got {df!r}")
    return number


def _learned_df(start: float) -> tuple[Callable[[Any], dict], Callable[[Any], Any]]:
    """A learned df: ``softplus(fp["df"]) + eps``, starting at ``start``."""
    def extra_init(dtype):
        return {"df": links.softplus_inverse(jnp.asarray(start, dtype))}

    def df_of(fp):
        return links.softplus.forward(fp["df"])
    return extra_init, df_of


def _constant(value: Any) -> Callable[[Any], Any]:
    def constant(fp):
        return value
    return constant



# ----------------------------------------------------------------------------- mixture of Normals

def mixture_normal(num_components: int) -> Family:
    """A mixture of K Normals (a mixture density network's head): the model emits 3K raw values,
    ``(logits, locs, raw scales)``, with ``scale_k = softplus(raw) + eps``.

    ``log Pr = logsumexp_k(log softmax(logits)_k + log N(y | mu_k, s_k))``; support: y real; the mode
    is found numerically (``mj.mode``). Reference: Bishop (1994), mixture density networks.
    """
    k = whole_number("mixture_normal", "num_components", num_components, 1)

    def theta(fp, raw):
        logits, loc, raw_scale = split(raw, (k, k, k))
        return MixtureNormal(logits, loc, links.softplus.forward(raw_scale))

    def kernel(fp, raw, y):
        return _mixture.log_prob(theta(fp, raw), y)

    return build(spec=Spec("mixture_normal", args=(k,)), support=real, theta=theta, raw_shape=(3 * k,),
                 kernel=kernel)


# ----------------------------------------------------------------------------- two positive parameters

def _two_positive(spec: Spec, support: Support, make_theta: Callable[[jax.Array, jax.Array], Any]) -> Family:
    """A family whose theta has two positive parameters, each ``softplus(raw) + eps``;
    the kernel is the theta's own log_prob."""
    def theta(fp, raw):
        a, b = unstack(raw)
        return make_theta(links.softplus.forward(a), links.softplus.forward(b))

    return build(spec=spec, support=support, theta=theta, raw_shape=(2,))


_PARAMETERIZATIONS = ("default", "mean")


def _parameterization(label: str, value: object) -> str:
    if not isinstance(value, str) or value not in _PARAMETERIZATIONS:
        raise ValueError(f"{label}: parameterization must be one of {_PARAMETERIZATIONS}; got {value!r}")
    return value


def gamma(parameterization: str = "default", *, init_shape: float = 1.0) -> Family:
    """Gamma family for y > 0; ``log Pr = a log b + (a - 1) log y - b y - log Gamma(a)``
    (concentration a, rate b). scipy: ``gamma.logpdf(y, a, scale=1/b)``.

    Args:
      parameterization: ``"default"``: the model emits raw (a, b), ``concentration = softplus(a) + eps``,
        ``rate = softplus(b) + eps``. ``"mean"``: the Gamma GLM with a log link; the model emits ONE
        raw value, the log-mean ``eta = log E[y]``, and the shape ``a = softplus(s) + eps`` is one global
        family parameter ``s`` (``fparams["shape"]``) learned jointly, as ``normal(scale="learned")``;
        the theta is ``Gamma(a, a / mu)`` with ``mu = exp(eta)``.
      init_shape: the starting shape a of ``"mean"`` (1: the exponential).

    With ``"mean"`` a linear model's coefficients are the MLE of statsmodels'
    ``GLM(y, X, family=sm.families.Gamma(sm.families.links.Log()))`` (the mean's score equations do not
    involve the shape). The shape is the MLE too (``log a - psi(a) = mean(y/mu - log(y/mu) - 1)``);
    statsmodels instead reports ``scale = 1/a`` estimated by Pearson's chi2 over the residual degrees
    of freedom, which is not the MLE: compare the shape with a direct likelihood maximisation.
    Reference: McCullagh and Nelder, *Generalized Linear Models*, ch. 8.
    """
    label = f"gamma(parameterization={parameterization!r})"
    if _parameterization(label, parameterization) == "default":
        return _two_positive(Spec("gamma"), positive, Gamma)
    family = _mean_form("gamma", positive, "shape", positive_number(label, "init_shape", init_shape),
                        lambda shape, raw: Gamma(shape, shape * jnp.exp(-raw)))
    return _gamma_glm_density(family)


def _gamma_glm_density(family: Family) -> Family:
    """The Gamma GLM's density ``-a expm1mx(log y - eta) - log y + (a log a - a - lgamma(a))``
    (``distributions.gamma.mean_log_prob``): the shape's terms as the affine's shift, once per reduction, not
    per example, and ``-log y`` apart (``Split``: once per full-batch fit)."""
    def shape(fp, raw):
        return links.softplus.forward(fp["shape"]).astype(jnp.result_type(raw))

    def free(fp, raw, y):
        return _gamma.mean_log_prob_free(shape(fp, raw), raw, jnp.asarray(y, jnp.result_type(raw)))

    def data(y, dtype):
        return _gamma.mean_data_term(jnp.asarray(y, dtype))

    def kernel(fp, raw, y):
        return free(fp, raw, y) + data(y, jnp.result_type(raw))

    def affine(fp):
        a = links.softplus.forward(fp["shape"])
        return jnp.ones_like(a), _gamma.mean_shift(a)

    return build(spec=family.spec, support=family.support, theta=family.theta, init=family.init, positive=family.positive,
                 kernel=kernel,
                 affine=affine, split=Split(free, data))


def beta(parameterization: str = "default", *, init_precision: float = 2.0) -> Family:
    """Beta family for 0 < y < 1; ``log Pr = (a - 1) log y + (b - 1) log(1 - y) - log B(a, b)``.
    scipy: ``beta.logpdf(y, a, b)``.

    Args:
      parameterization: ``"default"``: the model emits raw (a, b), each through softplus + eps.
        ``"mean"``: beta regression (Ferrari and Cribari-Neto, 2004); the model emits ONE raw value,
        the logit of the mean ``mu = E[y]``, and the precision ``phi = softplus(s) + eps`` is one
        global family parameter ``s`` (``fparams["precision"]``) learned jointly; the theta is
        ``Beta(mu phi, (1 - mu) phi)`` (``Var y = mu (1 - mu) / (1 + phi)``), with ``mu phi`` and
        ``(1 - mu) phi`` as ``phi sigmoid(+-eta)`` (no cancellation in ``1 - mu``).
      init_precision: the starting phi of ``"mean"`` (2: the uniform at mu = 1/2).

    With ``"mean"`` a linear model's coefficients, precision and log-likelihood are those of
    statsmodels' ``statsmodels.othermod.betareg.BetaModel(y, X)`` (logit mean link; its precision
    has a log link, ``exp(params["precision"])``: the same MLE of phi under another link).
    Reference: Ferrari and Cribari-Neto (2004), J. Applied Statistics 31, beta regression.
    """
    label = f"beta(parameterization={parameterization!r})"
    if _parameterization(label, parameterization) == "default":
        return _two_positive(Spec("beta"), unit_interval, Beta)
    return _mean_form("beta", unit_interval, "precision", positive_number(label, "init_precision", init_precision),
                      lambda phi, raw: Beta(phi * jax.nn.sigmoid(raw), phi * jax.nn.sigmoid(-raw)))


def _mean_form(kind: str, support, name: str, start: float, theta_of) -> Family:
    """A GLM form: the model emits ONE raw value (the linked mean) and ``theta_of(p, raw)`` builds the theta
    with ``p = softplus(fparams[name])``, one global positive family parameter learned with phi."""
    def init(dtype):
        return {name: links.softplus_inverse(jnp.asarray(start, dtype))}

    def theta(fp, raw):
        return theta_of(links.softplus.forward(fp[name]).astype(jnp.result_type(raw)), raw)

    return build(spec=Spec(kind, options=(("parameterization", "mean"),)), support=support, theta=theta, init=init,
                 positive=(name,))
