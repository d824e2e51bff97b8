"""Parameter domains (``distributions._domain``): a theta outside its domain is refused by name when concrete and
NaN when traced, as scipy.stats answers NaN there; NaN parameters stay NaN; the boundaries that are limits
(a zero von Mises concentration, a zero binomial count, infinite degrees of freedom) stay in."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import mle_jax as mj
from mle_jax import distributions as dist

# type -> (a valid theta from its fields, {field: a value outside the domain}, scipy's frozen law of the fields, y)
SCALAR = {
    "Normal": (lambda loc=0.5, scale=2.0: dist.Normal(loc, scale), {"scale": (-1.0, 0.0)},
               lambda loc=0.5, scale=2.0: stats.norm(loc, scale), 0.3),
    "Laplace": (lambda loc=0.5, scale=2.0: dist.Laplace(loc, scale), {"scale": (-1.0, 0.0)},
                lambda loc=0.5, scale=2.0: stats.laplace(loc, scale), 0.3),
    "LogNormal": (lambda loc=0.5, scale=2.0: dist.LogNormal(loc, scale), {"scale": (-1.0, 0.0)},
                  lambda loc=0.5, scale=2.0: stats.lognorm(scale, scale=math.exp(loc)), 0.3),
    "StudentT": (lambda df=3.0, loc=0.5, scale=2.0: dist.StudentT(df, loc, scale),
                 {"df": (-1.0, 0.0), "scale": (-2.0, 0.0)},
                 lambda df=3.0, loc=0.5, scale=2.0: stats.t(df, loc, scale), 0.3),
    "Gamma": (lambda concentration=2.5, rate=1.5: dist.Gamma(concentration, rate),
              {"concentration": (-1.0, 0.0), "rate": (-1.0, 0.0)},
              lambda concentration=2.5, rate=1.5: stats.gamma(concentration, scale=1 / rate), 0.5),
    "Beta": (lambda concentration1=2.0, concentration0=3.0: dist.Beta(concentration1, concentration0),
             {"concentration1": (-1.0, 0.0), "concentration0": (-1.0, 0.0)},
             lambda concentration1=2.0, concentration0=3.0: stats.beta(concentration1, concentration0), 0.5),
    "VonMises": (lambda loc=0.5, concentration=2.0: dist.VonMises(loc, concentration),
                 {"concentration": (-1.0, -1e-30)},
                 lambda loc=0.5, concentration=2.0: stats.vonmises(concentration, loc=loc), 0.3),
    "Exponential": (lambda rate=1.5: dist.Exponential(rate), {"rate": (-1.0, 0.0)},
                    lambda rate=1.5: stats.expon(scale=1 / rate), 0.5),
    "Weibull": (lambda concentration=1.5, scale=2.0: dist.Weibull(concentration, scale),
                {"concentration": (-1.0, 0.0), "scale": (-1.0, 0.0)},
                lambda concentration=1.5, scale=2.0: stats.weibull_min(concentration, scale=scale), 0.5),
    "AsymmetricLaplace": (lambda loc=0.5, scale=2.0, q=0.3: dist.AsymmetricLaplace(loc, scale, q),
                          {"scale": (-1.0, 0.0), "q": (0.0, 1.0, 1.5, -0.2)}, None, 0.3),
    "NegativeBinomial": (lambda total_count=2.5, logits=0.3: dist.NegativeBinomial(total_count, logits),
                         {"total_count": (-1.0, 0.0)},
                         lambda total_count=2.5, logits=0.3: stats.nbinom(total_count, 1 / (1 + math.exp(logits))),
                         2.0),
    "Binomial": (lambda total_count=5.0, logits=0.3: dist.Binomial(total_count, logits),
                 {"total_count": (-1.0, 2.5, math.inf)},
                 lambda total_count=5.0, logits=0.3: stats.binom(total_count, 1 / (1 + math.exp(-logits))), 2.0),
}

# every direct function, called with its own arguments (y, a level, a key)
CALLS = {
    "log_prob": lambda th, y: dist.log_prob(th, y), "log_cdf": lambda th, y: dist.log_cdf(th, y),
    "log_sf": lambda th, y: dist.log_sf(th, y), "log_tail": lambda th, y: dist.log_tail(th, y, True),
    "quantile": lambda th, y: dist.quantile(th, 0.3), "isf": lambda th, y: dist.isf(th, 0.3),
    "mean": lambda th, y: dist.mean(th), "mode": lambda th, y: dist.mode(th),
    "variance": lambda th, y: dist.variance(th), "sample": lambda th, y: dist.sample(jax.random.PRNGKey(0), th),
    "crps": lambda th, y: mj.crps(th, y, key=jax.random.PRNGKey(0)),
}


def _cases():
    for kind, (make, bad, _, _) in SCALAR.items():
        for field, values in bad.items():
            for value in values:
                yield pytest.param(kind, field, value, id=f"{kind}-{field}={value}")


@pytest.mark.parametrize("kind,field,value", list(_cases()))
def test_a_concrete_theta_outside_its_domain_is_refused_by_name(kind, field, value):
    """Every direct function, and the KL with it on either side, refuses it before computing: the function, the
    type, the field and the value named; an (N,) batch names the first bad example's index."""
    make, _, _, y = SCALAR[kind]
    theta = make(**{field: value})
    for who, call in CALLS.items():
        try:
            with pytest.raises(ValueError, match=rf"{who}\w*: {kind}'s {field} must be"):
                call(theta, y)
        except NotImplementedError:  # the type has no such function at all
            pass
    if dist.registry.kl_fn(make(), make()) is not None:
        with pytest.raises(ValueError, match=rf"kl: {kind}'s {field} must be"):
            dist.kl(make(), theta)
    batch = make(**{field: jnp.asarray([getattr(make(), field), value, value])})
    with pytest.raises(ValueError, match=r"at index 1 \(2 of 3 examples outside the domain"):
        dist.log_prob(batch, jnp.full(3, y))


CHEAP_TAILS = {"Normal", "Laplace", "LogNormal", "Exponential", "Weibull"}  # closed-form CDF and quantile


@pytest.mark.parametrize("kind", sorted(SCALAR))
def test_a_traced_theta_outside_its_domain_gives_nan(kind):
    """Under ``jit``, a (3,) batch, valid / outside / NaN: the log density and the mean (and, where they are closed
    forms, the CDFs and the quantile) match scipy's on the valid example and are NaN on the other two (scipy's
    answer for a parameter outside the domain), in one compiled program per type."""
    make, bad, frozen, y = SCALAR[kind]
    field, value = next(iter(bad.items()))
    good = getattr(make(), field)
    theta = make(**{field: jnp.asarray([good, value[0], math.nan], jnp.float32)})
    batch = jax.tree.map(lambda f: jnp.broadcast_to(jnp.asarray(f, jnp.float32), (3,)), theta)
    names = ("log_prob", "mean") + (("log_cdf", "log_sf", "quantile") if kind in CHEAP_TAILS else ())

    def program(theta, y, q):
        return {who: getattr(dist, who)(theta) if who == "mean" else getattr(dist, who)(
            theta, q if who == "quantile" else y) for who in names}
    got = jax.jit(program)(batch, jnp.full(3, y, jnp.float32), jnp.full(3, 0.3, jnp.float32))
    scipy_names = {"log_prob": "logpmf" if kind in ("NegativeBinomial", "Binomial") else "logpdf", "mean": "mean",
                   "log_cdf": "logcdf", "log_sf": "logsf", "quantile": "ppf"}
    for who in names:
        out = np.asarray(got[who], np.float64)
        assert np.isnan(out[1:]).all(), (who, out)
        if frozen is not None:
            law = frozen(**{field: good})
            want = law.mean() if who == "mean" else getattr(law, scipy_names[who])(0.3 if who == "quantile" else y)
            np.testing.assert_allclose(out[0], want, rtol=2e-5, atol=1e-6, err_msg=who)


@pytest.mark.deep
def test_grad_and_vmap_see_the_nan_too():
    """A gradient in the parameters and a vmap over examples answer NaN outside the domain (value and slope: a fit
    stops there as on any non-finite loss), and leave the valid examples' values and slopes as they were."""
    def f(scale):
        return dist.log_cdf(dist.Weibull(1.5, scale), 1.5)
    value = jax.vmap(f)(jnp.asarray([2.0, -1.0, 0.0]))
    assert np.isnan(np.asarray(value[1:])).all()
    np.testing.assert_allclose(value[0], stats.weibull_min(1.5, scale=2.0).logcdf(1.5), rtol=1e-5)
    slope = jax.vmap(jax.grad(f))(jnp.asarray([2.0, -1.0]))
    eps = 1e-4  # the valid slope against a central difference of scipy's log CDF
    want = stats.weibull_min(1.5, scale=2.0 + eps).logcdf(1.5) - stats.weibull_min(1.5, scale=2.0 - eps).logcdf(1.5)
    np.testing.assert_allclose(slope[0], want / (2 * eps), rtol=1e-4)
    assert np.isnan(float(slope[1]))


def test_vector_and_component_fields():
    """Dirichlet, mixture (a component's scale), multivariate Normal (a diagonal entry of scale_tril): the example
    named, NaN for that example only under a trace, the others as scipy's."""
    with pytest.raises(ValueError, match=r"log_prob: Dirichlet's concentration must be > 0; got \[1.0, -1.0\]"):
        dist.log_prob(dist.Dirichlet(jnp.asarray([1.0, -1.0])), jnp.asarray([0.3, 0.7]))
    conc = jnp.asarray([[1.5, 2.0], [1.0, -1.0]])
    got = jax.jit(dist.log_prob)(dist.Dirichlet(conc), jnp.asarray([[0.3, 0.7], [0.3, 0.7]]))
    np.testing.assert_allclose(got[0], stats.dirichlet([1.5, 2.0]).logpdf([0.3, 0.7]), rtol=1e-5)
    assert np.isnan(float(got[1]))

    mix = dist.MixtureNormal(jnp.zeros((2, 2)), jnp.zeros((2, 2)), jnp.asarray([[1.0, 2.0], [1.0, -2.0]]))
    with pytest.raises(ValueError, match=r"log_cdf: MixtureNormal's scale must be > 0; got \[1.0, -2.0\] at index 1"):
        dist.log_cdf(mix, jnp.zeros(2))
    got = jax.jit(dist.log_cdf)(mix, jnp.full(2, 0.7))
    np.testing.assert_allclose(got[0], math.log(0.5 * stats.norm.cdf(0.7) + 0.5 * stats.norm.cdf(0.35)), rtol=1e-5)
    assert np.isnan(float(got[1]))

    tril = jnp.asarray([[[1.0, 0.0], [0.3, 2.0]], [[1.0, 0.0], [0.3, -2.0]]])
    mvn = dist.MultivariateNormal(jnp.zeros((2, 2)), tril)
    with pytest.raises(ValueError, match=r"MultivariateNormal's scale_tril must be lower triangular .*with a diagonal > 0"):
        dist.entropy(mvn)
    got = jax.jit(dist.log_prob)(mvn, jnp.ones((2, 2)))
    cov = np.asarray(tril[0]) @ np.asarray(tril[0]).T
    np.testing.assert_allclose(got[0], stats.multivariate_normal(np.zeros(2), cov).logpdf([1.0, 1.0]), rtol=1e-5)
    assert np.isnan(float(got[1]))


def test_nested_thetas_are_checked_through_their_container():
    """A ``ZeroInflated``'s base and an ``Independent``'s base: refused by the base's name when concrete; NaN for the
    example (all of an ``Independent``'s event) when traced, the other example's value scipy's."""
    base = dist.NegativeBinomial(jnp.asarray([2.0, -1.0]), jnp.asarray([0.3, 0.3]))
    zi = dist.ZeroInflated(jnp.asarray([0.1, 0.2]), base)
    with pytest.raises(ValueError, match=r"log_prob: ZeroInflated\(NegativeBinomial\)'s total_count must be > 0; got -1.0 at index 1 \(1 of 2 examples"):
        dist.log_prob(zi, jnp.asarray([0.0, 1.0]))
    got = np.asarray(jax.jit(dist.log_prob)(zi, jnp.asarray([0.0, 1.0])))
    gate = 1 / (1 + math.exp(-0.1))
    want = math.log(gate + (1 - gate) * stats.nbinom(2.0, 1 / (1 + math.exp(0.3))).pmf(0))
    np.testing.assert_allclose(got[0], want, rtol=1e-5)
    assert np.isnan(got[1])
    ind = dist.Independent(dist.Normal(jnp.zeros((2, 3)), jnp.asarray([[1.0, 2.0, 1.0], [1.0, -1.0, 1.0]])))
    with pytest.raises(ValueError, match=r"Independent\(Normal\)'s scale must be > 0; got -1.0 at index \(1, 1\) \(1 of 6 entries"):
        dist.log_prob(ind, jnp.zeros((2, 3)))
    got = np.asarray(jax.jit(dist.log_prob)(ind, jnp.zeros((2, 3))))
    np.testing.assert_allclose(got[0], stats.norm(0, [1.0, 2.0, 1.0]).logpdf(0.0).sum(), rtol=1e-5)
    assert np.isnan(got[1])


def test_the_families_own_losses_are_not_checked_but_a_users_family_is():
    """A built-in family's links keep theta inside (no check in its loss); ``mj.family`` with a user's link that
    leaves the domain (an identity scale) gives NaN there, not a number from a negative scale."""
    fam = mj.family("raw_scale_laplace", theta=lambda fp, raw: dist.Laplace(raw[0], raw[1]), raw_shape=(2,))
    r = mj.recipe(lambda p, x: p, fam, validate=False)
    y, x = jnp.asarray([0.5]), jnp.zeros((1, 1))
    np.testing.assert_allclose(r.nll(r.init(jnp.asarray([0.0, 2.0])), x, y), -stats.laplace(0, 2.0).logpdf(0.5),
                               rtol=1e-6)
    assert np.isnan(float(r.nll(r.init(jnp.asarray([0.0, -2.0])), x, y)))


@pytest.mark.deep
def test_the_limits_on_the_boundary_stay_in():
    """A zero von Mises concentration (the uniform circle), a zero binomial count (the point mass at 0), infinite
    degrees of freedom (the Normal) and a zero Poisson rate: no error, scipy's values."""
    np.testing.assert_allclose(dist.log_prob(dist.VonMises(0.0, 0.0), 1.0), -math.log(2 * math.pi), rtol=1e-6)
    assert float(dist.log_prob(dist.Binomial(0.0, 0.3), 0.0)) == 0.0
    np.testing.assert_allclose(dist.log_prob(dist.StudentT(math.inf, 0.0, 1.0), -1.0), stats.norm.logpdf(-1.0),
                               rtol=1e-5)
    assert float(dist.log_prob(dist.Poisson(-math.inf), 0.0)) == 0.0


@pytest.mark.parametrize("kind", sorted(SCALAR))
def test_a_nan_parameter_gives_nan_not_an_error(kind):
    """NaN breaks no rule: it makes the example's outputs NaN (scipy's answer), eagerly."""
    make, bad, _, y = SCALAR[kind]
    theta = make(**{next(iter(bad)): math.nan})
    assert np.isnan(float(dist.log_prob(theta, y)))
    assert np.isnan(float(dist.mean(theta)))


@pytest.mark.deep
def test_a_nan_parameter_gives_a_nan_bisected_quantile():
    """The Gamma's quantile (a bisection of its tails) read 2.3e38 at a NaN concentration: NaN now, the valid
    example's value scipy's."""
    got = np.asarray(dist.quantile(dist.Gamma(jnp.asarray([2.5, math.nan]), 1.5), jnp.full(2, 0.3)))
    np.testing.assert_allclose(got[0], stats.gamma(2.5, scale=1 / 1.5).ppf(0.3), rtol=1e-5)
    assert np.isnan(got[1])


@pytest.mark.deep
def test_a_nan_poisson_rate_gives_nan_mass():
    """The Poisson's log mass at a NaN log-rate is NaN at every count (it read -inf: the infinite-rate rule
    ``z < inf`` is False at NaN), as scipy's ``poisson(nan).logpmf``."""
    got = np.asarray(jax.vmap(lambda y: dist.log_prob(dist.Poisson(jnp.float32(math.nan)), y))(
        jnp.asarray([0.0, 3.0, 40.0])))
    assert np.isnan(stats.poisson(math.nan).logpmf(3))
    assert np.isnan(got).all()
    assert np.isnan(float(jax.grad(lambda z: dist.log_prob(dist.Poisson(z), 3.0))(jnp.float32(math.nan))))


def test_a_registered_domain_applies_to_a_users_type():
    """``mj.register(T, ..., domain={"width": "positive"})``: the same refusal for a user's type; a field the type
    does not have or an unknown rule is a TypeError at registration."""
    from typing import NamedTuple

    class Box(NamedTuple):
        low: float
        width: float

    def log_prob(theta, y):
        inside = (y >= theta.low) & (y <= theta.low + theta.width)
        return jnp.where(inside, -jnp.log(theta.width), -jnp.inf)

    with pytest.raises(TypeError, match="not one of its fields"):
        mj.register(Box, log_prob=log_prob, domain={"height": "positive"})
    with pytest.raises(TypeError, match="must be one of"):
        mj.register(Box, log_prob=log_prob, domain={"width": "big"})
    mj.register(Box, log_prob=log_prob, domain={"width": "positive"})
    try:
        with pytest.raises(ValueError, match="log_prob: Box's width must be > 0; got -2.0"):
            dist.log_prob(Box(0.0, -2.0), 0.5)
        np.testing.assert_allclose(dist.log_prob(Box(0.0, 2.0), 0.5), -math.log(2.0))
        assert np.isnan(float(jax.jit(dist.log_prob)(Box(0.0, -2.0), 0.5)))
    finally:
        dist.registry._OPS.pop(Box, None)  # other tests read every registered type


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(sorted(SCALAR)), st.floats(max_value=0.0, allow_nan=False, allow_infinity=False, width=32))
def test_every_value_below_zero_is_refused(kind, value):
    """Hypothesis: any value <= 0 of a field that must be > 0 (below 0 for the von Mises concentration and the
    binomial count, whose 0 is a limit inside) is refused by ``log_cdf``, however small or large."""
    make, bad, _, y = SCALAR[kind]
    field = next(iter(bad))
    if kind in ("VonMises", "Binomial") and value == 0.0:
        return  # the uniform circle, the point mass at 0: inside
    if kind == "AsymmetricLaplace":
        field = "scale"
    with pytest.raises(ValueError, match=f"{kind}'s {field} must be"):
        dist.log_cdf(make(**{field: value}), y)
