"""Each theta type's closed-form Fisher information (``registry.fisher``) against a brute-force reference:
``-E[grad^2 log_prob]`` by exact enumeration over the outcomes (discrete types) or by scipy quadrature
against scipy's density (continuous types; ``E[s s']`` for the Laplace, whose log density has no second
derivative in loc at y = loc), with the Hessian by autodiff of ``mj.log_prob``."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree
from scipy import integrate, special, stats

import mle_jax as mj
from mle_jax.distributions import registry


@functools.lru_cache
def _compiled(kind, outer):
    """``(flat theta, y) -> -grad^2_theta log_prob`` (or ``s s'``), compiled once per theta type."""
    def log_lik(u, unravel, y):
        return mj.log_prob(unravel(u), y)

    def minus_hessian(u, unravel, y):
        if outer:
            return jnp.outer(*(2 * [jax.grad(log_lik)(u, unravel, y)]))
        return -jax.hessian(log_lik)(u, unravel, y)
    return jax.jit(minus_hessian, static_argnums=1)


def _derivative(theta, outer):
    """``y -> -grad^2_theta log_prob(theta, y)`` (or ``s s'`` with ``outer``) over ravel_pytree(theta)."""
    flat, unravel = ravel_pytree(theta)
    fn = _compiled(type(theta), outer)
    return lambda y: fn(flat, _Static(unravel, jax.tree.structure(theta), jnp.shape(flat)), y)


class _Static:
    """``unravel`` as a static argument, equal for thetas of one structure (one compile per type)."""

    def __init__(self, unravel, structure, shape):
        self.unravel, self.key = unravel, (structure, shape)

    def __call__(self, u):
        return self.unravel(u)

    def __eq__(self, other):
        return isinstance(other, _Static) and self.key == other.key

    def __hash__(self):
        return hash(self.key)


def _enumerated(theta, outcomes, pmf):
    """``sum_y pmf(y) (-H(y))`` over every outcome (exact)."""
    minus_h = jax.vmap(_derivative(theta, False))(jnp.asarray(outcomes))
    return np.tensordot(np.asarray(pmf), np.asarray(minus_h), axes=1)


def _quadrature(theta, frozen, lower, upper, outer=False, points=None):
    """``int pdf(y) (-H(y)) dy`` (or ``E[s s']``) by scipy's adaptive quadrature."""
    term = _derivative(theta, outer)
    value, error = integrate.quad_vec(lambda y: frozen.pdf(y) * np.asarray(term(jnp.float64(y))), lower, upper,
                                      epsabs=1e-13, epsrel=1e-10, points=points)
    return value


def _sigmoid(z):
    return special.expit(z)


CASES = {  # name: (theta, reference as a function of the theta)
    "Bernoulli": (lambda: mj.Bernoulli(0.7), lambda t: _enumerated(
        t, [0.0, 1.0], stats.bernoulli(_sigmoid(0.7)).pmf([0, 1]))),
    "Bernoulli far": (lambda: mj.Bernoulli(-9.0), lambda t: _enumerated(
        t, [0.0, 1.0], stats.bernoulli(_sigmoid(-9.0)).pmf([0, 1]))),
    "Categorical": (lambda: mj.Categorical(jnp.array([0.3, -1.0, 2.0])), lambda t: _enumerated(
        t, [0, 1, 2], special.softmax([0.3, -1.0, 2.0]))),
    "Poisson": (lambda: mj.Poisson(math.log(3.5)), lambda t: _enumerated(
        t, np.arange(60.0), stats.poisson(3.5).pmf(np.arange(60)))),
    "Normal": (lambda: mj.Normal(0.3, 1.7), lambda t: _quadrature(t, stats.norm(0.3, 1.7), -np.inf, np.inf)),
    "Laplace": (lambda: mj.Laplace(0.3, 1.7), lambda t: _quadrature(
        t, stats.laplace(0.3, 1.7), -60.0, 60.0, outer=True, points=[0.3])),
    "StudentT": (lambda: mj.StudentT(4.5, 0.3, 1.7), lambda t: _quadrature(
        t, stats.t(4.5, 0.3, 1.7), -np.inf, np.inf)),
    "StudentT heavy": (lambda: mj.StudentT(1.2, -0.4, 0.6), lambda t: _quadrature(
        t, stats.t(1.2, -0.4, 0.6), -np.inf, np.inf)),
    "StudentT large df (series)": (lambda: mj.StudentT(45.0, 0.3, 1.7), lambda t: _quadrature(
        t, stats.t(45.0, 0.3, 1.7), -np.inf, np.inf)),
    "Gamma": (lambda: mj.Gamma(2.5, 1.5), lambda t: _quadrature(t, stats.gamma(2.5, scale=1 / 1.5), 0.0, np.inf)),
    "Beta": (lambda: mj.Beta(2.5, 1.7), lambda t: _quadrature(t, stats.beta(2.5, 1.7), 0.0, 1.0)),
    "VonMises": (lambda: mj.VonMises(0.3, 2.0), lambda t: _quadrature(
        t, stats.vonmises(2.0, loc=0.3), 0.3 - np.pi, 0.3 + np.pi)),
    "VonMises small": (lambda: mj.VonMises(0.3, 0.05), lambda t: _quadrature(
        t, stats.vonmises(0.05, loc=0.3), 0.3 - np.pi, 0.3 + np.pi)),
    "VonMises large (series)": (lambda: mj.VonMises(0.3, 80.0), lambda t: _quadrature(
        t, stats.vonmises(80.0, loc=0.3), 0.3 - np.pi, 0.3 + np.pi, points=[0.3])),
}


_DEEP_CASES = {"Beta", "StudentT", "StudentT heavy", "StudentT large df (series)"}  # the slowest quadratures: CI's deep phase


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.deep) if n in _DEEP_CASES else n for n in CASES])
def test_fisher_equals_the_expected_negative_hessian(name, x64):
    make, reference = CASES[name]
    theta = make()
    ours = np.asarray(registry.fisher(theta))
    expected = reference(registry.promote(theta))
    d = ravel_pytree(registry.promote(theta))[0].size
    assert ours.shape == (d, d)
    np.testing.assert_allclose(ours, expected, rtol=1e-8, atol=1e-12 * np.abs(expected).max())


def _joint(theta, outcomes, pmf):
    """``-E[H]`` over a finite set of joint outcomes (rows of ``outcomes``)."""
    return _enumerated(theta, outcomes, pmf)


@pytest.mark.deep
def test_independent_categorical_by_enumerating_the_joint_outcomes(x64):
    logits = jnp.array([[0.3, -1.0, 2.0], [1.0, 0.0, -0.5]])
    theta = mj.Independent(mj.Categorical(logits))
    p = special.softmax(np.asarray(logits), axis=-1)
    pairs = np.array([(a, b) for a in range(3) for b in range(3)])
    expected = _joint(theta, pairs, p[0, pairs[:, 0]] * p[1, pairs[:, 1]])
    np.testing.assert_allclose(registry.fisher(theta), expected, rtol=1e-10, atol=1e-14)


def test_independent_normal_with_a_shared_scale_by_gauss_hermite(x64):
    """The Hessian is a polynomial of degree 2 in y times powers of 1/sigma: a product Gauss-Hermite rule
    of 5 nodes a side is exact; the shared scale gathers both outputs' information."""
    loc, scale = np.array([0.3, -2.0]), 1.7
    theta = mj.Independent(mj.Normal(jnp.asarray(loc), jnp.float64(scale)))
    nodes, weights = np.polynomial.hermite_e.hermegauss(5)
    weights = weights / weights.sum()
    grid = np.array([(a, b) for a in nodes for b in nodes])
    pmf = np.array([wa * wb for wa in weights for wb in weights])
    expected = _joint(theta, loc + scale * grid, pmf)
    ours = registry.fisher(theta)
    assert ours.shape == (3, 3)
    np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(ours, np.diag([1, 1, 4]) / scale ** 2, rtol=1e-12)  # 2/s^2 from each output


def test_student_t_at_infinite_df_is_the_normal_and_the_series_meets_the_direct_form(x64):
    np.testing.assert_allclose(registry.fisher(mj.StudentT(jnp.inf, 0.3, 1.7))[1:, 1:],
                               registry.fisher(mj.Normal(0.3, 1.7)), rtol=1e-15)
    assert float(registry.fisher(mj.StudentT(jnp.inf, 0.3, 1.7))[0, 0]) == 0.0
    for dtype, switch in ((jnp.float64, 30.0), (jnp.float32, 10.0)):  # both sides of each dtype's switch
        below, above = (registry.fisher(mj.StudentT(jnp.asarray(nu, dtype), 0.0, 1.0))[0, 0]
                        for nu in (np.nextafter(switch, 0.0), switch))
        assert abs(float(below) / float(above) - 1) < (1e-11 if dtype == jnp.float64 else 2e-4)


def test_integer_fields_are_promoted():
    np.testing.assert_allclose(registry.fisher(mj.Normal(0, 2)), [[0.25, 0.0], [0.0, 0.5]], rtol=1e-6)


def test_missing_information_names_the_type_and_the_other_covariances():
    mixture = mj.MixtureNormal(jnp.zeros(2), jnp.zeros(2), jnp.ones(2))
    for theta, name in ((mixture, "MixtureNormal"), (mj.Independent(mj.MixtureNormal(
            jnp.zeros((2, 2)), jnp.zeros((2, 2)), jnp.ones((2, 2)))), r"Independent\(MixtureNormal\)"),
            (mj.NegativeBinomial(3.0, 0.5), "NegativeBinomial")):
        assert not registry.has_fisher(theta)
        with pytest.raises(NotImplementedError,
                           match=f"no closed-form expected information for {name}; use cov='observed' or cov='robust'"):
            registry.fisher(theta)
    assert registry.has_fisher(mj.Independent(mj.Normal(jnp.zeros(2), jnp.ones(2))))


def test_a_batch_is_refused():
    with pytest.raises(ValueError, match=r"one example's Normal; got a batch of shape \(3,\)"):
        registry.fisher(mj.Normal(jnp.zeros(3), jnp.ones(3)))
