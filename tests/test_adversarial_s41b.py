"""Adversarial checks of session 41's Student t (a learned df taken whole) and edge sweep (asymmetric Laplace CDFs by
log1mexp, the incomplete beta's a >> b form), against mpmath.

The asymmetric Laplace's CDFs, CRPS and KL clamped ``u = (y - mu)/b`` at 0 with ``jnp.maximum(u, 0)``, whose
derivative at the tie ``u = 0`` is 1/2: at ``y = loc`` exactly (a quantile regression's tie) ``log_cdf``'s and
``log_sf``'s slopes in y were half the true ones, the CRPS's slope ``2 F - 1`` read ``q``, and the KL's Hessian in
the other's location was 0 at equal locations for ``q (1 - q) / (b_p b_r)``: each function is smooth there."""

import math

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

from mle_jax.distributions import asymmetric_laplace as al


def _mp_cdf(u, q):
    """The standard asymmetric Laplace's CDF at 40 digits: ``q e^((1 - q) u)`` below 0, ``1 - (1 - q) e^(-q u)`` above."""
    return q * mp.exp((1 - q) * u) if u < 0 else 1 - (1 - q) * mp.exp(-q * u)


@pytest.mark.parametrize("q", [1e-3, 0.3, 0.999])
def test_asymmetric_laplace_cdf_slopes_at_the_location(q):
    """At ``y = loc`` the CDF's log has slope ``f/F``, the survival's ``-f/(1 - F)`` (f continuous there, f(0) = q (1 -
    q)): mpmath's derivative of its log CDF (one-sided from above; the CDF is C^1), in float64."""
    with jax.enable_x64(True), mp.workdps(40):
        theta = al.AsymmetricLaplace(jnp.array(0.0), jnp.array(1.0), jnp.array(q))
        slope_cdf = float(jax.grad(lambda y: al.log_cdf(theta, y))(jnp.array(0.0)))
        slope_sf = float(jax.grad(lambda y: al.log_sf(theta, y))(jnp.array(0.0)))
        qm = mp.mpf(q)
        ref_cdf = float(mp.diff(lambda u: mp.log(_mp_cdf(u, qm)), 0, direction=1))
        ref_sf = float(mp.diff(lambda u: mp.log(1 - _mp_cdf(u, qm)), 0, direction=1))
    np.testing.assert_allclose([slope_cdf, slope_sf], [ref_cdf, ref_sf], rtol=1e-10)


@pytest.mark.parametrize("q", [0.1, 0.7])
def test_asymmetric_laplace_crps_slope_at_the_location(q):
    """``d CRPS / dy = 2 F(y) - 1`` (the CRPS is C^1): at ``y = loc``, ``2 q - 1`` from mpmath's CDF (it read ``q``)."""
    with jax.enable_x64(True), mp.workdps(40):
        theta = al.AsymmetricLaplace(jnp.array(0.0), jnp.array(2.0), jnp.array(q))
        slope = float(jax.grad(lambda y: al.crps(theta, y))(jnp.array(0.0)))
        ref = float(2 * _mp_cdf(mp.mpf(0), mp.mpf(q)) - 1)
    np.testing.assert_allclose(slope, ref, rtol=1e-12, atol=1e-15)


def test_asymmetric_laplace_kl_hessian_in_location_at_equal_locations():
    """``KL(p || r)``'s second derivative in ``mu_r`` is ``f_p(mu_r) / b_r`` (``d^2/dm^2 E_p[rho_tau(Y - m)] = f_p(m)``,
    whatever tau); at ``mu_r = mu_p`` it is ``f_p``'s mode ``q (1 - q) / b_p`` over ``b_r`` (it was 0: a select of 0
    where the KL's last term is 0 dropped its derivatives)."""
    q, tau, bp, br = 0.3, 0.6, 1.5, 0.8
    with jax.enable_x64(True):
        p = al.AsymmetricLaplace(jnp.array(0.0), jnp.array(bp), jnp.array(q))
        got = float(jax.hessian(lambda m: al.kl(p, al.AsymmetricLaplace(m, jnp.array(br), jnp.array(tau))))(
            jnp.array(0.0)))
    np.testing.assert_allclose(got, q * (1 - q) / (bp * br), rtol=1e-12)


def _kl_fisher_cases():
    """``(kl, p's parameters, index of the one varied in r, the Fisher information in it)``: the KL's Hessian in r's
    parameter at ``r = p`` is p's Fisher information (textbook closed forms, special functions from mpmath)."""
    from mle_jax.distributions import beta, binomial, gamma, laplace, poisson, von_mises, weibull
    a, b, k, lam, kappa, n, z, q = 2.5, 1.5, 1.7, 2.0, 3.0, 7.0, 0.4, 0.3
    sig = 1 / (1 + np.exp(-z))
    return {
        "laplace_loc": (laplace.kl, laplace.Laplace, (0.5, b), 0, 1 / b**2),
        "laplace_scale": (laplace.kl, laplace.Laplace, (0.5, b), 1, 1 / b**2),
        "gamma_rate": (gamma.kl, gamma.Gamma, (a, b), 1, a / b**2),
        "gamma_shape": (gamma.kl, gamma.Gamma, (a, b), 0, float(mp.psi(1, a))),
        "poisson_log_rate": (poisson.kl, poisson.Poisson, (0.3,), 0, float(np.exp(0.3))),
        "binomial_logits": (binomial.kl, binomial.Binomial, (n, z), 1, n * sig * (1 - sig)),
        "weibull_scale": (weibull.kl, weibull.Weibull, (k, lam), 1, (k / lam) ** 2),
        "von_mises_loc": (von_mises.kl, von_mises.VonMises, (0.2, kappa), 0,
                          float(kappa * mp.besseli(1, kappa) / mp.besseli(0, kappa))),
        "beta_a": (beta.kl, beta.Beta, (a, b), 0, float(mp.psi(1, a) - mp.psi(1, a + b))),
        "asymmetric_laplace_loc": (al.kl, al.AsymmetricLaplace, (0.5, b, q), 0, q * (1 - q) / b**2),
    }


@pytest.mark.deep
def test_kl_hessian_at_equal_parameters_is_fisher():
    """``KL(p || r)`` clamped at 0 against rounding by ``jnp.maximum(value, 0)`` had slope 1/2 at its minimum, p = r,
    so its Hessian there, the Fisher information, was half (the asymmetric Laplace's in the location 0). Ten families
    in one test (each Hessian op by op, about 0.3 s)."""
    got, want = {}, {}
    for case, (kl, cls, params, index, fisher) in sorted(_kl_fisher_cases().items()):
        with jax.enable_x64(True):
            p = cls(*(jnp.array(v) for v in params))

            def divergence(x, kl=kl, cls=cls, params=params, index=index, p=p):
                values = [jnp.array(v) for v in params]
                values[index] = x
                return kl(p, cls(*values))
            got[case] = float(jax.hessian(divergence)(jnp.array(params[index])))
        want[case] = fisher
    np.testing.assert_allclose([got[c] for c in sorted(got)], [want[c] for c in sorted(got)], rtol=1e-9,
                               err_msg=str(sorted(got)))


def test_log_ratio_hessian_where_the_square_underflows():
    """``log(a/b)``'s Hessian is ``diag(-1/a^2, 1/b^2)``: in float32 where ``a^2`` underflows its written derivative
    ``da/a`` was differentiated to ``-da a' / a^2 = 0/0`` off the diagonal (NaN for 0) and -inf for -1e38 on it."""
    from mle_jax.distributions.special import log_ratio
    x = jnp.array([[1e-19, 1.0], [1.0, 6e-20], [3e-20, 4e-20]], jnp.float32)
    got = np.asarray(jax.vmap(jax.hessian(lambda v: log_ratio(v[0], v[1])))(x), np.float64)
    big = float(np.finfo(np.float32).max)
    for row, (a32, b32) in zip(got, np.asarray(x, np.float64)):
        ref = [v if abs(v) <= big else math.copysign(math.inf, v) for v in (-1 / a32**2, 1 / b32**2)]  # float32's
        np.testing.assert_array_equal(row[[0, 1], [1, 0]], 0.0)  # own overflow above
        np.testing.assert_allclose(np.diag(row), ref, rtol=1e-6)
