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
extras (``pip install 'mle_jax[tfp]'``, ``'mle_jax[distrax]'``), imported on first use only.

Each row is its theta type's own: the module of the type (``mle_jax/distributions/normal.py``, ...)
defines ``to_tfp``, ``to_distrax`` and ``from_tfp`` and registers them, with ``tfp_names``, in its
``Ops``; this module only dispatches through the registry (``distributions/_twins.py``). A type
without a twin raises ``TypeError`` "no TFP twin for X" ("distrax has no X; use mj.to_tfp(theta)"
where only TFP has it), and a TFP distribution that no type converts "no mle_jax theta for ...".
"""

from __future__ import annotations

from .distributions import _twins


def to_tfp(theta):
    """The TFP distribution (``tensorflow_probability.substrates.jax``) with theta's log_prob."""
    return _twins.to_tfp(theta)


def to_distrax(theta):
    """The distrax distribution with theta's log_prob (distrax has no Poisson, Student t or
    negative binomial: use ``to_tfp``, whose distributions distrax accepts wherever it takes one)."""
    return _twins.to_distrax(theta)


def from_tfp(dist):
    """The mle_jax theta of a TFP distribution (any of the twins of ``to_tfp``).

    Parameters are broadcast to the distribution's batch shape, so a ``Normal(loc=(N,), scale=1)``
    gives a theta with N scales. A TFP scale matrix with negative diagonal entries is turned into
    the equal covariance's Cholesky factor (columns flipped so the diagonal is positive).
    """
    return _twins.from_tfp(dist)


__all__ = ["from_tfp", "to_distrax", "to_tfp"]
