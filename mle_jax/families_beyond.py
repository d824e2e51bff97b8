"""Families beyond the lecture: counts, robust regression, positive and unit-interval data, angles.

    mj.poisson()                         raw: log-rate                     y in {0, 1, 2, ...}
    mj.laplace(scale=...)                raw: mu (and a raw scale)         y real; the NLL is |y - mu| / b
    mj.student_t(df=4.0, scale=...)      raw: mu (and a raw scale)         y real, heavy tails; df fixed or "learned"
    mj.gamma()                           raw: (a, b) through softplus      y > 0
    mj.beta()                            raw: (a, b) through softplus      0 < y < 1
    mj.von_mises()                       raw: (mu, k), k through softplus  y an angle (any real)
    mj.negative_binomial()               raw: log-mean (dispersion learned)  overdispersed counts
    mj.mixture_normal(K)                 raw: K logits, K locs, K raw scales  multimodal y

``scale`` takes the same values as ``mj.normal``: a positive float, ``"learned"`` (one
global scale) or a link (``"softplus"``, ``"exp"``, ``"square"``) for a scale per example.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln

from . import links
from .checks import check_finite, fail_entries
from .distributions import Beta, Gamma, Laplace, Poisson, StudentT, VonMises
from .distributions import laplace as _laplace
from .distributions import student_t as _student_t
from .families import Family, _check_real, _checked, _location_scale, _make, _unstack


def laplace(scale: float | str = "softplus", *, init_scale: float = 1.0):
    """Laplace family: ``log Pr = -|y - mu|/b - log(2b)``; with a fixed b the NLL is the absolute error.

    scipy: ``laplace.logpdf(y, mu, b)``. The mode and the median are mu.
    """
    return _location_scale("laplace", scale, init_scale, lambda fp, loc, s: Laplace(loc, s),
                           lambda fp, z: -jnp.abs(z), shift=lambda fp: -_laplace.LOG_2)


def student_t(df: float | str = 4.0, scale: float | str = "softplus", *, init_scale: float = 1.0,
              init_df: float = 4.0):
    """Student t family: heavy-tailed regression; ``df`` fixed (a float > 0) or ``"learned"``.

    A learned df is ``softplus(fp["df"]) + eps``, one per family. scipy: ``t.logpdf(y, df, mu, s)``.
    """
    if isinstance(df, str):
        if df != "learned":
            raise ValueError(f"student_t: df must be a positive number or 'learned'; got {df!r}")
        label = "student_t(df='learned')"

        def extra_init(dtype):
            return {"df": links.softplus.inverse(jnp.asarray(init_df, dtype))}

        def df_of(fp):
            return links.softplus.forward(fp["df"])
    else:
        value = float(df)
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"student_t: df must be finite and > 0; got {df!r}")
        label, extra_init = f"student_t(df={value})", None

        def df_of(fp):
            return value
    return _location_scale(label, scale, init_scale,
                           lambda fp, loc, s: StudentT(jnp.asarray(df_of(fp), jnp.result_type(loc)), loc, s),
                           lambda fp, z: _student_t.standard_log_prob(z, df_of(fp)), extra_init=extra_init)


def poisson() -> Family:
    """Poisson family on the log-rate: ``log Pr = y z - exp(z) - log y!`` with z the model's raw output.

    Targets are counts (non-negative whole numbers, integer or float dtype).
    scipy: ``poisson.logpmf(y, exp(z))``.
    """
    name = "poisson()"

    def kernel(fp, raw, y):
        y = jnp.asarray(y, jnp.result_type(raw))
        return y * raw - jnp.exp(raw) - gammaln(y + 1)

    return _make(name, (), (), lambda fp, raw: Poisson(raw), _checked(name, kernel), check=_check_counts(name))


def _two_positive(name, make_theta, rule, bad):
    """A family whose theta has two positive parameters, each ``softplus(raw) + eps``."""
    link = links.softplus

    def theta(fp, raw):
        a, b = _unstack(raw)
        return make_theta(link.forward(a), link.forward(b))

    def check(y):
        y = np.asarray(y)
        check_finite(name, y, "y")
        fail_entries(name, rule, bad(y), y)

    return _make(name, (2,), (), theta, check=check)  # the kernel is the theta's own log_prob


def gamma() -> Family:
    """Gamma family for y > 0: the model emits raw (a, b), ``concentration = softplus(a) + eps``,
    ``rate = softplus(b) + eps``. scipy: ``gamma.logpdf(y, a, scale=1/b)``."""
    return _two_positive("gamma()", Gamma, "> 0", lambda y: y <= 0)


def beta() -> Family:
    """Beta family for 0 < y < 1: the model emits raw (a, b) through softplus.
    scipy: ``beta.logpdf(y, a, b)``."""
    return _two_positive("beta()", Beta, "in the open interval (0, 1)",
                         lambda y: (y <= 0) | (y >= 1))


def von_mises() -> Family:
    """von Mises family for angles: the model emits raw (mu, k); ``concentration = softplus(k) + eps``.
    Any real angle is valid (the density is periodic). scipy: ``vonmises.logpdf(y, k, mu)``."""
    name = "von_mises()"
    link = links.softplus

    def theta(fp, raw):
        loc, k = _unstack(raw)
        return VonMises(loc, link.forward(k))

    return _make(name, (2,), (), theta, check=_check_real(name))


def _check_counts(name):
    def check(y):
        y = np.asarray(y)
        if not np.issubdtype(y.dtype, np.number):
            raise ValueError(f"{name}: counts must be numbers; got dtype {y.dtype}")
        check_finite(name, y, "y")
        fail_entries(name, "a count (a whole number >= 0)", (y < 0) | (y != np.floor(y)), y)
    return check


def negative_binomial(dispersion: str = "learned", *, init_total_count: float = 10.0) -> Family:
    """Negative binomial family for overdispersed counts, parameterised by the log-mean.

    Args:
      dispersion: ``"learned"``: the model emits the log-mean m and one global
        ``total_count = softplus(fp) + eps`` is learned with phi; ``"per_example"``: the
        model emits (m, raw r) and ``r = softplus(raw r) + eps``. Then ``logits = m - log r``
        so that the mean is ``exp(m)`` and the variance ``exp(m) (1 + exp(m) / r)``.

    scipy: ``nbinom.logpmf(y, r, r / (r + exp(m)))``.
    """
    from .distributions import NegativeBinomial
    from .distributions import negative_binomial as _nb
    link = links.softplus
    if dispersion == "learned":
        name = "negative_binomial(dispersion='learned')"

        def init(dtype):
            return {"total_count": link.inverse(jnp.asarray(init_total_count, dtype))}

        def theta(fp, raw):
            r = link.forward(fp["total_count"]).astype(jnp.result_type(raw))
            return NegativeBinomial(r, raw - jnp.log(r))

        raw_shape = ()
    elif dispersion == "per_example":
        name, init, raw_shape = "negative_binomial(dispersion='per_example')", None, (2,)

        def theta(fp, raw):
            log_mean, raw_r = _unstack(raw)
            r = link.forward(raw_r)
            return NegativeBinomial(r, log_mean - jnp.log(r))
    else:
        raise ValueError(f"negative_binomial: dispersion must be 'learned' or 'per_example'; got {dispersion!r}")

    def kernel(fp, raw, y):
        return _nb.log_prob(theta(fp, raw), jnp.asarray(y, jnp.result_type(raw)))

    return _make(name, raw_shape, (), theta, _checked(name, kernel), init=init, check=_check_counts(name))


def mixture_normal(num_components: int) -> Family:
    """A mixture of K Normals (a mixture density network's head): the model emits 3K raw values,
    ``(logits, locs, raw scales)``, with ``scale_k = softplus(raw) + eps``.

    ``log Pr = logsumexp_k(log softmax(logits)_k + log N(y | mu_k, s_k))``; the mode is found
    numerically (``mj.mode``). Reference: Bishop (1994).
    """
    from .distributions import MixtureNormal
    from .distributions import mixture as _mixture
    if not isinstance(num_components, (int, np.integer)) or num_components < 1:
        raise ValueError(f"mixture_normal: num_components must be a positive integer; got {num_components!r}")
    k = int(num_components)
    name = f"mixture_normal({k})"

    def theta(fp, raw):
        logits, loc, raw_scale = (jax.lax.slice_in_dim(raw, i * k, (i + 1) * k) for i in range(3))
        return MixtureNormal(logits, loc, links.softplus.forward(raw_scale))

    def kernel(fp, raw, y):
        return _mixture.log_prob(theta(fp, raw), y)

    return _make(name, (3 * k,), (), theta, _checked(name, kernel), check=_check_real(name))
