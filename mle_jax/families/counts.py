"""Families for counts: y in {0, 1, 2, ...}.

    mj.poisson()                              raw: the log-rate z
    mj.negative_binomial()                    raw: the log-mean m; one global dispersion learned
    mj.negative_binomial("per_example")       raw: (m, raw dispersion)
    mj.binomial()                             raw: the logit z; target (successes, trials)
    mj.zero_inflated(mj.poisson())            raw: (z, gate logit); also around mj.negative_binomial(...)

Counts may come as integers or as whole floats; either way they are checked as the
computation sees them (an int64 count beyond int32, or beyond float32's whole numbers,
is an error without 64-bit mode).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from .. import links
from ..distributions import Binomial, NegativeBinomial, Poisson, ZeroInflated
from ..distributions import binomial as _binomial
from ..distributions import negative_binomial as _nb
from ._arguments import positive_number
from ..distributions import poisson as _poisson
from ._family import Family, PerExample, Spec, Split, build, unstack
from ._support import binomial_pair, nonnegative_integer


def _poisson_theta(fp, raw):
    return Poisson(raw)


def _poisson_free(fp, raw, y):
    return _poisson.log_prob_free(raw, jnp.asarray(y, jnp.result_type(raw)))


def _poisson_data(y, dtype):
    return _poisson.data_term(jnp.asarray(y, dtype))


def poisson() -> Family:
    """Poisson family on the log-rate: ``log Pr = y z - exp(z) - log y!`` with z the model's raw output.

    Support: counts (non-negative whole numbers, integer or float dtype).
    scipy: ``poisson.logpmf(y, exp(z))``. Reference: McCullagh and Nelder, *GLMs*, ch. 6.
    """
    # the kernel is the theta's log_prob: a zero rate (z = -inf) gives 0 at y = 0, large counts use Stirling
    # split: log y! (Stirling's data terms from y = 10) apart, computed once per full-batch fit
    return build(spec=Spec("poisson"), support=nonnegative_integer, theta=_poisson_theta,
                 split=Split(_poisson_free, _poisson_data))


def negative_binomial(dispersion: str = "learned", *, init_total_count: float = 10.0) -> Family:
    """Negative binomial family for overdispersed counts, parameterised by the log-mean.

    Args:
      dispersion: ``"learned"``: the model emits the log-mean m and one global
        ``total_count = softplus(fp) + eps`` is learned with phi, starting at ``init_total_count``;
        ``"per_example"``: the model emits (m, raw r) and ``r = softplus(raw r) + eps``. Then
        ``logits = m - log r`` so that the mean is ``exp(m)`` and the variance ``exp(m) (1 + exp(m) / r)``.

    Support: counts. scipy: ``nbinom.logpmf(y, r, r / (r + exp(m)))``.
    Reference: Hilbe, *Negative Binomial Regression* (2011).
    """
    label = f"negative_binomial(dispersion={dispersion!r})"
    start = positive_number(label, "init_total_count", init_total_count)
    spec = Spec("negative_binomial", options=(("dispersion", dispersion),))
    if dispersion == "learned":
        return _negative_binomial_learned(spec, start)
    if dispersion != "per_example":
        raise ValueError(f"negative_binomial: dispersion must be 'learned' or 'per_example'; got {dispersion!r}")

    def theta(fp, raw):
        log_mean, raw_r = unstack(raw)
        r = links.softplus.forward(raw_r)
        return NegativeBinomial(r, log_mean - jnp.log(r))

    return build(spec=spec, support=nonnegative_integer, theta=theta, raw_shape=(2,), kernel=_nb_kernel(theta))


def _negative_binomial_learned(spec: Spec, start: float) -> Family:
    """One global ``total_count = softplus(fp) + eps``; the model emits the log-mean."""
    def init(dtype):
        return {"total_count": links.softplus_inverse(jnp.asarray(start, dtype))}

    def theta(fp, raw):
        r = links.softplus.forward(fp["total_count"]).astype(jnp.result_type(raw))
        return NegativeBinomial(r, raw - jnp.log(r))

    return build(spec=spec, support=nonnegative_integer, theta=theta, kernel=_nb_kernel(theta), init=init,
                 positive=("total_count",))


def _nb_kernel(theta: Callable[[Any, jax.Array], NegativeBinomial]) -> PerExample:
    def kernel(fp, raw, y):
        return _nb.log_prob(theta(fp, raw), jnp.asarray(y, jnp.result_type(raw)))
    return kernel


def _binomial_theta(fp, raw):
    return Binomial(jnp.ones_like(raw), raw)


def _binomial_kernel(fp, raw, y):
    y = jnp.asarray(y, jnp.result_type(raw))
    return _binomial.log_prob(Binomial(y[1], raw), y[0])


def _binomial_free(fp, raw, y):
    y = jnp.asarray(y, jnp.result_type(raw))
    return _binomial.log_prob_free(y[1], raw, y[0])


def _binomial_data(y, dtype):
    y = jnp.asarray(y, dtype)
    return _binomial.data_term(y[1], y[0])


def binomial() -> Family:
    """Binomial family on the logit: successes out of a known number of trials per example.

    Each target is ``(successes, trials)``, shape (2,): ``log Pr = log C(n, k) + k log_sigmoid(z)
    + (n - k) log_sigmoid(-z)``, z the model's one raw output (the log-odds of one trial's success).
    ``family.theta`` (and ``r.predict``) gives one trial's ``Binomial(1, z)``: ``mj.Binomial(n, theta.logits)``
    is the distribution of n trials. Support: whole numbers with ``0 <= successes <= trials``; a
    pair off it is refused by name before anything compiles (``-inf`` where targets are not validated).
    scipy: ``binom.logpmf(k, n, sigmoid(z))``. statsmodels: ``GLM(np.column_stack([k, n - k]), X,
    family=Binomial())``. Reference: McCullagh and Nelder, *GLMs*, ch. 4.
    """
    # split: log C(n, y)'s product / Loader's terms in the counts apart, computed once per full-batch fit
    return build(spec=Spec("binomial"), support=binomial_pair, theta=_binomial_theta, event_shape=(2,),
                 kernel=_binomial_kernel, split=Split(_binomial_free, _binomial_data))


def zero_inflated(family: Family) -> Family:
    """Excess zeros: a structural zero with probability ``g = sigmoid(gate)``, else a count of ``family``
    (``mj.poisson()`` or ``mj.negative_binomial(...)``).

    The model emits the base family's raw output followed by one gate logit: raw of shape (2,) for the
    Poisson and the learned-dispersion negative binomial (``(log-mean, gate)``), (3,) for
    ``negative_binomial("per_example")``. ``log Pr(0) = logaddexp(log g, log(1 - g) + log p(0))``,
    ``log Pr(y) = log(1 - g) + log p(y)`` for y > 0; theta is ``ZeroInflated(gate, base theta)``. The base's own
    parameters (a learned dispersion) stay the family's. Support: counts. statsmodels:
    ``ZeroInflatedPoisson(y, X, exog_infl=Z, inflation="logit")``, ``ZeroInflatedNegativeBinomialP(..., p=2)``.
    Reference: Lambert, "Zero-inflated Poisson regression" (Technometrics, 1992).
    """
    if not isinstance(family, Family):
        raise TypeError(f"zero_inflated: family must be an mle_jax Family (mj.poisson() or "
                        f"mj.negative_binomial()); got {type(family).__name__}")
    if family.spec.kind not in ("poisson", "negative_binomial") or family.training.options:
        raise ValueError(f"zero_inflated: the base must be mj.poisson() or mj.negative_binomial(...); got {family.name}")
    base_size = max(1, int(family.raw_shape[0]) if family.raw_shape else 1)
    base_shape = family.raw_shape

    def theta(fp, raw):
        parts = unstack(raw)
        base_raw = parts[0] if base_shape == () else jnp.stack(parts[:base_size])
        return ZeroInflated(parts[base_size], family.theta(fp, base_raw))

    return build(spec=Spec("zero_inflated", args=(family.spec,)), support=nonnegative_integer, theta=theta,
                 raw_shape=(base_size + 1,), init=family.init, positive=family.positive)
