"""Twins in TensorFlow Probability (JAX substrate) and distrax: ``to_tfp``, ``to_distrax``, ``from_tfp``.

    mj.to_tfp(theta)        an mle_jax theta -> the TFP distribution with the same log_prob
    mj.to_distrax(theta)    the same in distrax, where distrax has the family
    mj.from_tfp(dist)       a TFP distribution -> the mle_jax theta, to use with mj.log_prob, mj.kl, ...

| theta                          | TFP (``tfd``)                                | distrax                         |
| ------------------------------ | -------------------------------------------- | ------------------------------- |
| Normal(loc, scale)             | Normal(loc, scale)                           | Normal(loc, scale)              |
| Bernoulli(logits)              | Bernoulli(logits=)                           | Bernoulli(logits=)              |
| Categorical(logits)            | Categorical(logits=)                         | Categorical(logits=)            |
| Poisson(log_rate)              | Poisson(log_rate=)                           | none                            |
| Laplace(loc, scale)            | Laplace(loc, scale)                          | Laplace(loc, scale)             |
| StudentT(df, loc, scale)       | StudentT(df, loc, scale)                     | none                            |
| Gamma(concentration, rate)     | Gamma(concentration, rate)                   | Gamma(concentration, rate)      |
| Beta(concentration1, ...0)     | Beta(concentration1, concentration0)         | Beta(alpha, beta)               |
| VonMises(loc, concentration)   | VonMises(loc, concentration)                 | VonMises(loc, concentration)    |
| NegativeBinomial(r, logits)    | NegativeBinomial(r, logits=)                 | none                            |
| MixtureNormal(logits, loc, s)  | MixtureSameFamily(Categorical, Normal)       | MixtureSameFamily(...)          |
| MultivariateNormal(loc, L)     | MultivariateNormalTriL(loc, L)               | MultivariateNormalTri(loc, L)   |
| Independent(base)              | Independent(twin of base, 1)                 | Independent(twin of base, 1)    |

A theta of one example gives a distribution of batch shape (); a batched theta (``r.predict``)
one of batch shape (N,). The conventions agree with ours (the negative binomial counts
successes of probability ``sigmoid(logits)``, as TFP does). TFP and distrax are optional
extras (``pip install 'mle_jax[tfp]'``, ``'mle_jax[distrax]'``), imported only here.
"""

from __future__ import annotations

import jax.numpy as jnp

from .distributions import (
    Bernoulli, Beta, Categorical, Gamma, Independent, Laplace, MixtureNormal, MultivariateNormal, NegativeBinomial,
    Normal, Poisson, StudentT, VonMises,
)


def _quietly_import(name):
    """Import an optional extra; TFP's JAX substrate touches deprecated JAX internals while it
    imports, DeprecationWarnings a user cannot act on, so they are ignored during the import only."""
    import importlib
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return importlib.import_module(name)


def _tfd():
    try:
        tfp = _quietly_import("tensorflow_probability.substrates.jax")
    except ImportError as error:
        raise ImportError("mle_jax's TFP interop needs TensorFlow Probability's JAX substrate: "
                          "pip install 'mle_jax[tfp]'") from error
    return tfp.distributions


def _linalg():
    return _quietly_import("tensorflow_probability.substrates.jax").tf2jax.linalg


def _distrax():
    try:
        distrax = _quietly_import("distrax")
    except ImportError as error:
        raise ImportError("mle_jax's distrax interop needs distrax: pip install 'mle_jax[distrax]'") from error
    return distrax


def to_tfp(theta):
    """The TFP distribution (``tensorflow_probability.substrates.jax``) with theta's log_prob."""
    return _twin(_tfd(), "TFP", theta)


def to_distrax(theta):
    """The distrax distribution with theta's log_prob (distrax has no Poisson, Student t or
    negative binomial: use ``to_tfp``, whose distributions distrax accepts wherever it takes one)."""
    return _twin(_distrax(), "distrax", theta)


def _twin(lib, label, theta):
    """theta -> ``lib``'s distribution of the same name; TFP and distrax share these signatures."""
    def make(name, *args, **kwargs):
        if not hasattr(lib, name):
            raise TypeError(f"mj.to_{label.lower()}: {label} has no {type(theta).__name__}; use mj.to_tfp(theta)")
        return getattr(lib, name)(*args, **kwargs)

    match theta:
        case Normal(loc, scale):
            return make("Normal", loc, scale)
        case Bernoulli(logits):
            return make("Bernoulli", logits=logits)
        case Categorical(logits):
            return make("Categorical", logits=logits)
        case Poisson(log_rate):
            return make("Poisson", log_rate=log_rate)
        case Laplace(loc, scale):
            return make("Laplace", loc, scale)
        case StudentT(df, loc, scale):
            return make("StudentT", df, loc, scale)
        case Gamma(concentration, rate):
            return make("Gamma", concentration, rate)
        case Beta(concentration1, concentration0):  # distrax names them alpha and beta
            return make("Beta", concentration1, concentration0)
        case VonMises(loc, concentration):
            return make("VonMises", loc, concentration)
        case NegativeBinomial(total_count, logits):
            return make("NegativeBinomial", total_count, logits=logits)
        case MixtureNormal(logits, loc, scale):
            return make("MixtureSameFamily", make("Categorical", logits=logits), make("Normal", loc, scale))
        case MultivariateNormal(loc, scale_tril) if label == "TFP":
            return make("MultivariateNormalTriL", loc, scale_tril)
        case MultivariateNormal(loc, scale_tril):
            return make("MultivariateNormalTri", loc, scale_tril, is_lower=True)
        case Independent(base):
            return make("Independent", _twin(lib, label, base), reinterpreted_batch_ndims=1)
    raise TypeError(f"mj.to_{label.lower()}: no {label} twin for {type(theta).__name__}")


def from_tfp(dist):
    """The mle_jax theta of a TFP distribution (any of the twins of ``to_tfp``).

    Parameters are broadcast to the distribution's batch shape, so a ``Normal(loc=(N,), scale=1)``
    gives a theta with N scales. A TFP scale matrix with negative diagonal entries is turned into
    the equal covariance's Cholesky factor (columns flipped so the diagonal is positive).
    """
    tfd = _tfd()
    batch = tuple(dist.batch_shape)

    def full(value, event=()):
        return jnp.broadcast_to(jnp.asarray(value), batch + tuple(event))

    match dist:
        case tfd.Normal():
            return Normal(full(dist.loc), full(dist.scale))
        case tfd.Bernoulli():
            return Bernoulli(full(dist.logits_parameter()))
        case tfd.Categorical():
            logits = dist.logits_parameter()
            return Categorical(full(logits, logits.shape[-1:]))
        case tfd.Poisson():
            return Poisson(full(dist.log_rate_parameter()))
        case tfd.Laplace():
            return Laplace(full(dist.loc), full(dist.scale))
        case tfd.StudentT():
            return StudentT(full(dist.df), full(dist.loc), full(dist.scale))
        case tfd.Gamma():
            rate = jnp.exp(dist.log_rate) if dist.rate is None else dist.rate
            return Gamma(full(dist.concentration), full(rate))
        case tfd.Beta():
            return Beta(full(dist.concentration1), full(dist.concentration0))
        case tfd.VonMises():
            return VonMises(full(dist.loc), full(dist.concentration))
        case tfd.NegativeBinomial():
            return NegativeBinomial(full(dist.total_count), full(dist.logits_parameter()))
        case tfd.MixtureSameFamily(mixture_distribution=tfd.Categorical(), components_distribution=tfd.Normal()):
            mixture, parts = from_tfp(dist.mixture_distribution), from_tfp(dist.components_distribution)
            k = (parts.loc.shape[-1],)
            return MixtureNormal(full(mixture.logits, k), full(parts.loc, k), full(parts.scale, k))
        case tfd.MultivariateNormalLinearOperator():
            return _multivariate_normal(dist, full)
        case tfd.Independent() if _ndims(dist) == 1:
            return Independent(from_tfp(dist.distribution))
    raise TypeError(f"mj.from_tfp: no mle_jax theta for {_describe(dist)}; convertible: Normal, Bernoulli, "
                    f"Categorical, Poisson, Laplace, StudentT, Gamma, Beta, VonMises, NegativeBinomial, "
                    f"MixtureSameFamily(Categorical, Normal), MultivariateNormalTriL, Independent(..., 1)")


def _multivariate_normal(dist, full):
    linalg = _linalg()
    if not isinstance(dist.scale, (linalg.LinearOperatorLowerTriangular, linalg.LinearOperatorDiag)):
        raise TypeError(f"mj.from_tfp: {_describe(dist)} has a {type(dist.scale).__name__} scale; "
                        f"mle_jax needs a lower triangular one (MultivariateNormalTriL or ...Diag)")
    scale = dist.scale.to_dense()
    d = scale.shape[-1]
    sign = jnp.where(jnp.diagonal(scale, axis1=-2, axis2=-1) < 0, -1.0, 1.0).astype(scale.dtype)
    loc = jnp.zeros(scale.shape[:-1], scale.dtype) if dist.loc is None else dist.loc
    return MultivariateNormal(full(loc, (d,)), full(scale * sign[..., None, :], (d, d)))


def _ndims(dist):
    """An Independent's reinterpreted batch dimensions, from the static shapes (the count itself may be traced)."""
    return len(dist.distribution.batch_shape) - len(dist.batch_shape)


def _describe(dist):
    return f"{type(dist).__module__.split('.')[0]} {type(dist).__name__}"


__all__ = ["from_tfp", "to_distrax", "to_tfp"]
