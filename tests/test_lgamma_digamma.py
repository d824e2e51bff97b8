"""``special.lgamma_digamma`` (two logs per element: Stirling's series from 10, Lanczos's rational form below)
against scipy.special's gammaln / digamma, and the Dirichlet's ``log B`` built on it (its derivative
written) against scipy and against autodiff of scipy-equal formulas; float32 and float64, from 1e-30 to
1e30 and across the branch edge at 10."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special as sc

import mle_jax as mj
from mle_jax.distributions import dirichlet
from mle_jax.distributions.special import STIRLING_MIN, lgamma_digamma, lgamma_digamma_lanczos, trigamma

X = np.concatenate([np.geomspace(1e-30, 1e-3, 12), np.linspace(1e-3, 30, 601), np.geomspace(30, 1e30, 25),
                    np.nextafter(STIRLING_MIN, [0.0, 100.0]), [1.0, 2.0, STIRLING_MIN]])
# error bound, in units of eps of the larger of |f| and 1 (docs: more accurate than jax's own gammaln/digamma)
ULPS = {"float32": 24, "float64": 16}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_lgamma_digamma_against_scipy(dtype):
    with jax.enable_x64(dtype == "float64"):
        x = np.asarray(X, dtype)
        lg, psi = jax.jit(lgamma_digamma)(jnp.asarray(x))
    xx = x.astype(np.float64)  # the reference at the very argument the function saw
    eps = np.finfo(dtype).eps
    for got, want in ((lg, sc.gammaln(xx)), (psi, sc.digamma(xx))):
        err = np.abs(np.asarray(got, np.float64) - want) / np.maximum(np.abs(want), 1.0)
        assert err.max() <= ULPS[dtype] * eps, (dtype, xx[np.argmax(err)], err.max() / eps)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_trigamma_and_second_derivatives_against_scipy(dtype):
    """``trigamma`` against scipy's polygamma(1, x) (inf where 1/x^2 overflows), and the second derivative of
    each lgamma pair, and of the Gamma and Beta densities in a shape, equal to it: autodiff of Lanczos's rational form
    read 0.0078 for -0.105 at a = 9.99 in float32 (the Gamma's curvature in a, so its standard errors)."""
    eps = np.finfo(dtype).eps
    with jax.enable_x64(dtype == "float64"):
        x = np.asarray(X, dtype)
        tri = np.asarray(jax.jit(trigamma)(jnp.asarray(x)), np.float64)
        small = jnp.asarray(x[(x > 1e-3) & (x <= STIRLING_MIN)])
        second = jax.jit(lambda small, wide: {
            "lanczos": jax.vmap(jax.grad(lambda v: lgamma_digamma_lanczos(v)[1]))(small),
            "pair": jax.vmap(jax.grad(jax.grad(lambda v: lgamma_digamma(v)[0])))(wide),
            "gamma": -jax.vmap(jax.grad(jax.grad(lambda a: mj.log_prob(mj.Gamma(a, 2.0), 1.3))))(small),
            "beta": -jax.vmap(jax.grad(jax.grad(lambda a: mj.log_prob(mj.Beta(a, 2.0), 0.3))))(small)})(
            small, jnp.asarray(x[x > 1e-3]))
    want = sc.polygamma(1, x.astype(np.float64))
    finite = want < np.finfo(dtype).max
    np.testing.assert_allclose(tri[finite], want[finite], rtol=8 * eps)
    assert np.all(np.isinf(tri[~finite]))
    beta = second.pop("beta")  # d2/da2 log Beta(a, 2) density = -(psi'(a) - psi'(a + 2)); main read NaN at 9.7
    for name, got in second.items():
        at = np.asarray(small if name != "pair" else x[x > 1e-3], np.float64)
        np.testing.assert_allclose(got, sc.polygamma(1, at), rtol=64 * eps, err_msg=name)
    at = np.asarray(small, np.float64)
    want_beta = sc.polygamma(1, at) - sc.polygamma(1, at + 2.0)
    err = np.abs(np.asarray(beta, np.float64) - want_beta)  # a difference: error relative to its terms
    assert np.all(err <= 64 * eps * sc.polygamma(1, at)), (at[np.argmax(err)], err.max())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dirichlet_log_beta_its_score_and_curvature(dtype):
    """log B(a) against scipy (tolerance: the round-off of its own lgamma terms), its gradient against
    psi(a_k) - psi(a_0) and its Hessian against polygamma(1, a_k) delta_kl - polygamma(1, a_0)."""
    rows = np.array([[0.5, 1.0, 2.0, 3.5], [1e-3, 0.2, 9.99, 10.01], [12.0, 40.0, 1e3, 2.5], [1e-6, 1e-6, 1e-6, 1e-6],
                     [1e5, 2e5, 3e5, 1.0]])
    with jax.enable_x64(dtype == "float64"):
        a = jnp.asarray(rows, dtype)
        value, grad, hess = jax.jit(lambda a: (dirichlet.log_beta(a), jax.vmap(jax.grad(dirichlet.log_beta))(a),
                                               jax.vmap(jax.hessian(dirichlet.log_beta))(a)))(a)
    aa = np.asarray(a, np.float64)
    a0 = aa.sum(axis=1)
    eps = np.finfo(dtype).eps
    terms = np.abs(sc.gammaln(aa)).sum(axis=1) + np.abs(sc.gammaln(a0))  # the size of what is added
    want = sc.gammaln(aa).sum(axis=1) - sc.gammaln(a0)
    assert np.all(np.abs(np.asarray(value, np.float64) - want) <= 40 * eps * np.maximum(terms, 1.0)), (value, want)
    score = sc.digamma(aa) - sc.digamma(a0)[:, None]
    scale = np.abs(sc.digamma(aa)) + np.abs(sc.digamma(a0))[:, None] + 1.0
    assert np.all(np.abs(np.asarray(grad, np.float64) - score) <= 40 * eps * scale)
    curvature = np.stack([np.diag(sc.polygamma(1, r)) - sc.polygamma(1, s) for r, s in zip(aa, a0)])
    np.testing.assert_allclose(hess, curvature, rtol=2e-3 if dtype == "float32" else 1e-9,
                               atol=1e-3 if dtype == "float32" else 1e-9)


@pytest.mark.deep
def test_dirichlet_family_at_scale_matches_scipy():
    """The recipe's summed Dirichlet NLL at N = 1e5 (float64) against scipy.stats.dirichlet row by row (on a
    subsample) and its gradient in the raw outputs against a hand-written jnp formula with gammaln."""
    from scipy import stats
    n, k = 100_000, 4
    rng = np.random.default_rng(3)
    with jax.enable_x64(True):
        x = rng.normal(1.0, 0.5, size=(n, k))
        y = rng.dirichlet(np.full(k, 2.0), size=n)
        y = y / y.sum(axis=1, keepdims=True)
        r = mj.recipe(lambda b, x_i: x_i + b, mj.dirichlet(k))
        b = jnp.asarray(rng.normal(size=k) * 0.1)
        value, grad = jax.jit(jax.value_and_grad(lambda b: r.nll(mj.Params(b, {}), x, y)))(b)

        def ref(b):
            a = jax.nn.softplus(x + b[None, :])
            gl = jax.scipy.special.gammaln
            return -jnp.sum(jnp.sum((a - 1) * jnp.log(y), -1) - jnp.sum(gl(a), -1) + gl(jnp.sum(a, -1)))
        want_value, want_grad = jax.value_and_grad(ref)(b)
        a = np.asarray(jax.nn.softplus(x + np.asarray(b)[None, :]))
        sub = slice(0, 50)
        mine = jax.vmap(lambda a_i, y_i: mj.log_prob(mj.Dirichlet(a_i), y_i))(jnp.asarray(a[sub]), jnp.asarray(y[sub]))
    np.testing.assert_allclose(value, want_value, rtol=1e-12)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-9)
    per_row = [stats.dirichlet(a_i).logpdf(y_i) for a_i, y_i in zip(a[sub], y[sub])]
    np.testing.assert_allclose(mine, per_row, rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", pytest.param("float64", marks=pytest.mark.deep)])
def test_curvature_at_the_branch_edge_and_at_ties(dtype):
    """The Hessians of the Beta density in (a, b) and of the negative binomial's in r against trigamma
    closed forms, at a shape of exactly 10 (Stirling's edge) and at a == b: a max/min there has derivative
    1/2, which had made these 9-93% wrong (Beta(10, 10), NB r = 10 at y = 10)."""
    tri = functools.partial(sc.polygamma, 1)
    beta_at = np.array([(2.0, 2.0), (10.0, 2.0), (10.0, 10.0), (12.0, 12.0), (10.0, 30.0)])
    nb_at = np.array([(10.0, 10.0), (10.0, 12.0), (10.0, 3.0), (2.0, 10.0)])
    with jax.enable_x64(dtype == "float64"):
        beta_h, nb_h = jax.jit(lambda ab, ry: (
            jax.vmap(jax.hessian(lambda v: mj.log_prob(mj.Beta(v[0], v[1]), 0.3)))(ab),
            jax.vmap(lambda v: jax.grad(jax.grad(lambda r: mj.log_prob(mj.NegativeBinomial(r, 0.2), v[1])))(v[0]))(ry)))(
            jnp.asarray(beta_at, dtype), jnp.asarray(nb_at, dtype))
    a, b = beta_at.T
    s = tri(a + b)
    want_beta = np.stack([np.stack([s - tri(a), s], -1), np.stack([s, s - tri(b)], -1)], -2)
    tol = 64 * np.finfo(dtype).eps
    np.testing.assert_allclose(beta_h, want_beta, rtol=tol, atol=tol * np.abs(want_beta).max())
    r, y = nb_at.T
    np.testing.assert_allclose(nb_h, tri(r + y) - tri(r), rtol=tol * 8)
