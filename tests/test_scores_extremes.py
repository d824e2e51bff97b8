"""CRPS closed forms at extreme parameters, float32 and float64, against independent references.

References: the published closed forms (Jordan, Krueger and Lerch 2019; Wei and Held 2014) evaluated
in mpmath at 40 digits (an exact evaluation of the formula, not of our rearrangement of it); the
definition ``int (F(t) - 1{t >= y})^2 dt`` by scipy quadrature (Student t below nu = 1, Gamma at
shape 1e8); for the negative binomial at n = 1e6 the definition as the exact sum
``sum_k (F(k) - 1{k >= y})^2`` with scipy's cdf. Each family is one compiled call over its whole table.
"""

import math
import warnings

import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest
from scipy import integrate, stats

import mle_jax as mj
from mle_jax import scores

mp.mp.dps = 40
HALF = mp.mpf(1) / 2


def mp_normal(y, m, s):
    z = (mp.mpf(y) - m) / s
    return s * (z * (2 * mp.ncdf(z) - 1) + 2 * mp.npdf(z) - 1 / mp.sqrt(mp.pi))


def mp_laplace(y, m, s):
    a = abs(mp.mpf(y) - m)
    return a + s * mp.exp(-a / s) - 3 * mp.mpf(s) / 4


def mp_student_t(y, nu, m, s):
    """The formula for nu > 1; at nu = 1 its limit (the pole cancels: evaluated at 1 + 1e-25)."""
    nu, z = mp.mpf(nu), (mp.mpf(y) - m) / s
    nu = nu + mp.mpf(10) ** -25 if nu == 1 else nu
    tail = mp.betainc(nu / 2, HALF, 0, nu / (nu + z * z), regularized=True) / 2
    cdf = tail if z < 0 else 1 - tail
    pdf = mp.gamma((nu + 1) / 2) / (mp.gamma(nu / 2) * mp.sqrt(nu * mp.pi)) * (1 + z * z / nu) ** (-(nu + 1) / 2)
    const = 2 * mp.sqrt(nu) * mp.beta(HALF, nu - HALF) / ((nu - 1) * mp.beta(HALF, nu / 2) ** 2)
    return s * (z * (2 * cdf - 1) + 2 * pdf * (nu + z * z) / (nu - 1) - const)


def mp_gamma(y, a, b):
    """The formula in mpmath; above shape 1e6 (where mpmath's incomplete gamma does not converge) the
    definition by quadrature."""
    if a > 1e6:
        return quad_crps(stats.gamma(a, scale=1 / b), y, far=(a / b * (1 - 1e-3), a / b * (1 + 1e-3)))
    y, a, b = mp.mpf(y), mp.mpf(a), mp.mpf(b)
    cdf = lambda k: mp.gammainc(k, 0, b * y, regularized=True)  # noqa: E731
    return y * (2 * cdf(a) - 1) - a / b * (2 * cdf(a + 1) - 1) - 1 / (b * mp.beta(HALF, a))


def mp_poisson(y, log_rate):
    if log_rate == -math.inf:
        return mp.mpf(y)  # the point mass at 0
    y, lam = mp.mpf(y), mp.exp(mp.mpf(log_rate))
    cdf = mp.gammainc(y + 1, lam, mp.inf, regularized=True)
    pmf = mp.exp(y * mp.log(lam) - lam - mp.loggamma(y + 1))
    bessel = mp.exp(-2 * lam) * (mp.besseli(0, 2 * lam) + mp.besseli(1, 2 * lam))
    return (y - lam) * (2 * cdf - 1) + 2 * lam * pmf - lam * bessel


def quad_crps(dist, y, far=()):
    """The definition by quadrature, split at y and at the quantiles (float64); the heavy tails of a t with
    nu < 1 converge slowly (quad warns), so the result is checked against mpmath's formula in one case below."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        return _quad_crps(dist, y, far)


def _quad_crps(dist, y, far):
    """``far``: extra cut points in the tails (light tails only: a t's ppf(1e-9) is -1e15)."""
    cuts = sorted(set(dist.ppf([0.01, 0.25, 0.5, 0.75, 0.99]).tolist()) | set(far) | {y})
    below = [c for c in cuts if c <= y]
    above = [c for c in cuts if c >= y]
    total = integrate.quad(lambda t: dist.cdf(t) ** 2, -np.inf, below[0], epsabs=1e-13, limit=500)[0]
    total += integrate.quad(lambda t: dist.sf(t) ** 2, above[-1], np.inf, epsabs=1e-13, limit=500)[0]
    for a, b in zip(below[:-1], below[1:]):
        total += integrate.quad(lambda t: dist.cdf(t) ** 2, a, b, epsabs=0, epsrel=1e-13, limit=200)[0]
    for a, b in zip(above[:-1], above[1:]):
        total += integrate.quad(lambda t: dist.sf(t) ** 2, a, b, epsabs=0, epsrel=1e-13, limit=200)[0]
    return total


def mp_negative_binomial(y, n, logits):
    """Wei and Held's formula in mpmath for n <= 1e4; above, the definition as the sum over the counts
    ``sum_k (F(k) - 1{k >= y})^2`` with scipy's nbinom cdf below y and sf from y on (mpmath's 2F1 and
    incomplete beta do not converge at n = 1e6)."""
    if n > 1e4:
        d = stats.nbinom(n, 1 / (1 + math.exp(logits)))
        lo, hi = max(0, int(d.mean() - 40 * d.std())), int(d.mean() + 40 * d.std())
        k = np.arange(lo, hi + 1)  # outside, F is 0 or 1 to double precision: each k adds 0 or 1
        return float(np.sum(np.where(k < y, d.cdf(k), d.sf(k)) ** 2) + max(0, lo - y) + max(0, y - hi - 1))
    y, n = mp.mpf(y), mp.mpf(n)
    p = 1 / (1 + mp.exp(mp.mpf(logits)))  # the success probability sig(-logits)
    q = 1 - p
    cdf = lambda r, k: mp.betainc(r, k + 1, 0, p, regularized=True) if k >= 0 else mp.mpf(0)  # noqa: E731
    hyp = mp.hyp2f1(n + 1, HALF, 2, -4 * q / p ** 2)
    return y * (2 * cdf(n, y) - 1) - n * q / p ** 2 * (p * (2 * cdf(n + 1, y - 1) - 1) + hyp)


# (theta type, reference(y, *params), [(y, *params, in_float32)])
TABLE = {
    "normal": (mj.Normal, mp_normal, [
        (0.3, 0.0, 1.0, True), (1e4, 0.0, 1.0, True), (0.0, 0.0, 1e-30, True), (1e-30, 0.0, 1e-30, True),
        (5.0, 0.0, 1e30, True), (1e30, 1e30, 1e20, True), (-40.0, 0.0, 1.0, True)]),
    "laplace": (mj.Laplace, mp_laplace, [
        (0.3, 0.0, 1.0, True), (1e4, 0.0, 1.0, True), (0.0, 0.0, 1e-30, True), (5.0, 0.0, 1e30, True),
        (-100.0, 0.0, 1.0, True)]),
    "student_t": (mj.StudentT, mp_student_t, [
        (0.0, 1e8, 0.0, 1.0, True), (0.3, 1e6, 0.0, 1.0, True), (0.3, 1e30, 0.0, 1.0, True),
        (0.5, 1.0, 0.0, 1.0, True), (0.5, 1.0001, 0.0, 1.0, True), (0.5, 1.01, 0.0, 1.0, True),
        (0.5, 1.03, 0.0, 1.0, True), (3.0, 0.8, 0.0, 1.0, True), (0.5, 0.6, 0.0, 1.0, True),
        (0.5, 0.98, 0.0, 1.0, True), (-20.0, 1.0, 0.0, 1.0, True), (2.0, 1.3, 0.0, 1.0, True),
        (1e3, 2.0, 0.0, 1.0, True), (-1e6, 3.0, 0.0, 1.0, True),
        (0.3, 30.0, 0.0, 1e-20, True), (0.3, 12.0, 0.0, 1.0, True), (5.0, 9.5, 0.0, 1.0, True),
        (-2e30, 1.5, 0.0, 1.0, True)]),
    "gamma": (mj.Gamma, mp_gamma, [
        (1e8, 1e5, 1e-3, True), (0.7, 2.5, 1.3, True), (1e-3, 1e-3, 1.0, True), (50.0, 1e-3, 1.0, True),
        (1e3, 1e-2, 1e-5, True), (3.0, 12.0, 4.0, True), (1e-20, 1e-3, 1.0, False), (1.0, 1e8, 1e8, False),
        (1.001, 1e8, 1e8, False)]),
    "poisson": (mj.Poisson, mp_poisson, [
        (0.0, -2.0, True), (1.0, -2.0, True), (0.0, 0.0, True), (3.0, -50.0, True), (0.0, math.log(1e-3), True),
        (1e6, math.log(1e6), True), (0.0, math.log(1e6), True), (5.0, math.log(40.0), True),
        (0.0, -math.inf, True), (2.0, -math.inf, True), (0.0, -50.0, False), (1002000.0, math.log(1e6), False),
        (1e8, math.log(1e8), False)]),
    "negative_binomial": (mj.NegativeBinomial, mp_negative_binomial, [
        (0.0, 0.5, -20.0, True), (3.0, 0.5, 0.3, True), (0.0, 1e-3, 0.0, True), (100.0, 1e-3, 5.0, True),
        (20.0, 1e4, -5.0, True), (1000.0, 50.0, 3.0, True), (2e6, 1e6, 0.0, True), (1e6, 1e6, 0.0, False)]),
}
# float32: the closed forms themselves are good to about 1e-6 here; the rows marked False need the
# Gamma and Beta cdfs / NB mass of float32 at shapes >= 1e6 (docs/reliability.md) or underflow.
RTOL = {32: 1e-5, 64: 1e-9}


def _x64(request, bits):
    if bits == 64:
        request.getfixturevalue("x64")
    return np.float64 if bits == 64 else np.float32


@pytest.mark.parametrize("bits", [32, 64])
@pytest.mark.parametrize("name", list(TABLE))
@pytest.mark.deep
def test_crps_at_extreme_parameters(name, bits, request):
    dtype = _x64(request, bits)
    make, reference, rows = TABLE[name]
    rows = [row[:-1] for row in rows if row[-1] or bits == 64]
    columns = [jnp.asarray(np.array(col, np.float64).astype(dtype)) for col in zip(*rows)]
    got = np.asarray(scores.crps(make(*columns[1:]), columns[0]), np.float64)
    want = np.array([float(reference(*row)) for row in rows])
    assert np.all(got >= 0), f"a negative CRPS: {got[got < 0]}"
    np.testing.assert_allclose(got, want, rtol=RTOL[bits], atol=1e-40)


@pytest.mark.deep
def test_the_student_t_formula_holds_below_one_degree_of_freedom():
    """The references of the table at nu <= 1: the integral converges for nu > 1/2 (the tail (1 - F)^2 ~
    t^(-2 nu)) and the formula's pole at nu = 1 cancels. mpmath's formula against quadrature of the
    definition with scipy's t cdf (no JAX here); the table above checks crps against the formula."""
    for nu, y in [(0.6, 0.5), (0.8, 3.0), (1.0, 0.5), (1.0, -20.0), (1.3, 2.0)]:
        np.testing.assert_allclose(float(mp_student_t(y, nu, 0, 1)), quad_crps(stats.t(nu), y), rtol=1e-8)
    assert np.isinf(scores.crps(mj.StudentT(0.5, 0.0, 1.0), 0.3))


@pytest.mark.parametrize("bits", [32, 64])
def test_mixture_with_infinite_logits(bits, request):
    """A +inf logit puts all the weight on its component(s); a -inf logit none."""
    dtype = _x64(request, bits)
    logits = jnp.asarray(np.array([[np.inf, 0.0, 0.0], [np.inf, np.inf, 0.0], [-np.inf, 0.0, 1.0]], dtype))
    loc = jnp.asarray(np.array([[0.0, 5.0, -3.0]] * 3, dtype))
    scale = jnp.asarray(np.array([[1.0, 2.0, 0.5]] * 3, dtype))
    y = jnp.asarray(np.array([0.3, 1.0, -1.0], dtype))
    got = scores.crps(mj.MixtureNormal(logits, loc, scale), y)
    w = [[1, 0, 0], [0.5, 0.5, 0], [0, 1 / (1 + math.e), math.e / (1 + math.e)]]

    def mp_mix(v, weights):
        a = lambda m, s: m * (2 * mp.ncdf(m / s) - 1) + 2 * s * mp.npdf(m / s)  # noqa: E731  E|N(m, s^2)|
        mu, sd = [0.0, 5.0, -3.0], [1.0, 2.0, 0.5]
        first = sum(wi * a(v - m, s) for wi, m, s in zip(weights, mu, sd))
        pair = sum(wi * wj * a(mi - mj, mp.sqrt(si ** 2 + sj ** 2))
                   for wi, mi, si in zip(weights, mu, sd) for wj, mj, sj in zip(weights, mu, sd))
        return float(first - pair / 2)
    np.testing.assert_allclose(got, [mp_mix(v, wi) for v, wi in zip([0.3, 1.0, -1.0], w)], rtol=RTOL[bits] * 10)


def test_bfloat16_thetas_are_scored_in_float32():
    """pit / crps of a bfloat16 theta: computed in float32 (jax's log_ndtr refuses bfloat16), returned in bfloat16."""
    theta = mj.Normal(jnp.zeros(3, jnp.bfloat16), jnp.ones(3, jnp.bfloat16))
    y = jnp.array([0.0, 1.0, -1.0], jnp.bfloat16)
    u = scores.pit(theta, y)
    assert u.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(u, np.float32), stats.norm.cdf([0.0, 1.0, -1.0]), rtol=1e-2)
    c = scores.crps(theta, y)
    assert c.dtype == jnp.bfloat16
    want = [float(mp_normal(v, 0, 1)) for v in [0.0, 1.0, -1.0]]
    np.testing.assert_allclose(np.asarray(c, np.float32), want, rtol=1e-2)
