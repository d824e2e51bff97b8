"""Properties of the scores, drawn by hypothesis, against scipy (float32 and float64).

    CRPS >= 0 and equals its definition  int (F(t) - 1{t >= y})^2 dt  (quadrature with scipy's cdf; for counts
    the exact sum over the integers);  a CRPS tends to |y - m| as the spread vanishes (the point mass);
    PIT in [0, 1] equals scipy's cdf;  a randomised PIT lies in [F(y - 1), F(y)].

Every draw is one example of fixed shape, so each function is compiled once per type and dtype and
each example costs only its reference. Parameters span the ranges docs/reliability.md promises.
"""

import math
import warnings

import jax
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import integrate, stats

import mle_jax as mj
from mle_jax import scores

SETTINGS = settings(max_examples=5, deadline=None, derandomize=True)
RTOL = {np.float32: 2e-5, np.float64: 1e-8}


def _log_uniform(lo, hi):
    return st.floats(math.log(lo), math.log(hi)).map(math.exp)


def _definition(dist, y):
    """``int_{-inf}^y F^2 + int_y^inf (1 - F)^2`` by quadrature, split at the quartiles (float64)."""
    cuts = sorted(set(dist.ppf([0.001, 0.25, 0.5, 0.75, 0.999]).tolist()) | {y})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        quad = lambda f, a, b: integrate.quad(f, a, b, epsabs=0, epsrel=1e-12, limit=200)[0]  # noqa: E731
        total = quad(lambda t: dist.cdf(t) ** 2, -np.inf, cuts[0]) if cuts[0] <= y else 0.0
        total += quad(lambda t: dist.sf(t) ** 2, cuts[-1], np.inf) if cuts[-1] >= y else 0.0
        for a, b in zip(cuts[:-1], cuts[1:]):
            f = (lambda t: dist.cdf(t) ** 2) if b <= y else (lambda t: dist.sf(t) ** 2)
            total += quad(f, a, b)
    return total


def _count_definition(dist, y):
    """``sum_k (F(k) - 1{k >= y})^2`` over the counts: cdf below y, sf from y on (scipy)."""
    k = np.arange(0, int(dist.mean() + 40 * dist.std() + y + 40))
    return float(np.sum(np.where(k < y, dist.cdf(k), dist.sf(k)) ** 2))


# name -> (parameter strategy, theta, scipy distribution, target from (scipy dist, u in (0, 1)))
CONTINUOUS = {
    "normal": (st.tuples(st.floats(-100, 100), _log_uniform(1e-3, 1e3)), mj.Normal,
               lambda loc, s: stats.norm(loc, s)),
    "laplace": (st.tuples(st.floats(-100, 100), _log_uniform(1e-3, 1e3)), mj.Laplace,
                lambda loc, s: stats.laplace(loc, s)),
    "student_t": (st.tuples(_log_uniform(0.7, 1e6), st.floats(-10, 10), _log_uniform(1e-2, 1e2)), mj.StudentT,
                  lambda nu, loc, s: stats.t(nu, loc, s)),
    "gamma": (st.tuples(_log_uniform(0.05, 1e4), _log_uniform(1e-2, 1e2)), mj.Gamma,
              lambda a, b: stats.gamma(a, scale=1 / b)),
}
COUNTS = {
    "poisson": (st.tuples(st.floats(-5, 6)), mj.Poisson, lambda z: stats.poisson(math.exp(z))),
    "negative_binomial": (st.tuples(_log_uniform(0.05, 100), st.floats(-4, 3)), mj.NegativeBinomial,
                          lambda n, z: stats.nbinom(n, 1 / (1 + math.exp(z)))),
}


def _dtype(request, bits):
    if bits == 64:
        request.getfixturevalue("x64")
    return np.float64 if bits == 64 else np.float32


def _rounded(params, dtype):
    """The parameters as the dtype under test holds them (the reference sees the same numbers)."""
    return [float(dtype(p)) for p in params]


@pytest.mark.parametrize("bits", [32, 64])
@pytest.mark.parametrize("name", list(CONTINUOUS))
@pytest.mark.deep
def test_crps_is_nonnegative_and_equals_its_definition(name, bits, request):
    dtype = _dtype(request, bits)
    strategy, make, ref = CONTINUOUS[name]

    @SETTINGS
    @given(strategy, st.floats(0.001, 0.999))
    def check(params, u):
        params = _rounded(params, dtype)
        dist = ref(*params)
        y = float(dtype(dist.ppf(u)))
        if name == "gamma" and y <= 0:
            return
        got = float(scores.crps(make(*map(dtype, params)), dtype(y)))
        assert got >= 0
        np.testing.assert_allclose(got, _definition(dist, y), rtol=RTOL[dtype],
                                   atol=1e-12 * float(dist.ppf(0.75) - dist.ppf(0.25)))
    check()


@pytest.mark.parametrize("bits", [32, 64])
@pytest.mark.parametrize("name", list(COUNTS))
@pytest.mark.deep
def test_count_crps_equals_the_sum_over_the_integers(name, bits, request):
    dtype = _dtype(request, bits)
    strategy, make, ref = COUNTS[name]

    @SETTINGS
    @given(strategy, st.floats(0.0, 0.999))
    def check(params, u):
        params = _rounded(params, dtype)
        dist = ref(*params)
        y = max(float(dist.ppf(u)), 0.0)
        got = float(scores.crps(make(*map(dtype, params)), dtype(y)))
        assert got >= 0
        np.testing.assert_allclose(got, _count_definition(dist, y), rtol=RTOL[dtype], atol=1e-30)
    check()


@pytest.mark.parametrize("bits", [32, 64])
def test_crps_of_a_vanishing_spread_is_the_absolute_error(bits, request):
    """Normal, Laplace and Student t with scale s -> 0, Gamma with a -> inf at fixed mean: CRPS -> |y - m|."""
    dtype = _dtype(request, bits)

    @SETTINGS
    @given(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3))
    def check(m, y):
        m, y = float(dtype(m)), float(dtype(y))
        tiny = dtype(1e-12)
        want = abs(y - m)
        for theta in (mj.Normal(dtype(m), tiny), mj.Laplace(dtype(m), tiny), mj.StudentT(dtype(3.0), dtype(m), tiny)):
            got = float(scores.crps(theta, dtype(y)))
            assert got >= 0
            np.testing.assert_allclose(got, want, rtol=RTOL[dtype], atol=1e-11)
    check()


@pytest.mark.parametrize("bits", [32, 64])
def test_pit_is_the_cdf_and_lies_in_the_unit_interval(bits, request):
    dtype = _dtype(request, bits)

    @SETTINGS
    @given(st.sampled_from(["normal", "laplace", "student_t", "gamma"]), st.data())
    def check(name, data):
        strategy, make, ref = CONTINUOUS[name]
        params = _rounded(data.draw(strategy), dtype)
        dist = ref(*params)
        y = float(dtype(dist.ppf(data.draw(st.floats(1e-6, 1 - 1e-6)))))
        if name == "gamma" and y <= 0:
            return
        u = float(scores.pit(make(*map(dtype, params)), dtype(y)))
        assert 0.0 <= u <= 1.0
        np.testing.assert_allclose(u, dist.cdf(y), rtol=1e-4 if dtype is np.float32 else 1e-9, atol=1e-12)
    check()


@pytest.mark.parametrize("bits", [32, 64])
@pytest.mark.parametrize("name", list(COUNTS))
@pytest.mark.deep
def test_randomised_pit_lies_between_the_cdf_steps(name, bits, request):
    dtype = _dtype(request, bits)
    strategy, make, ref = COUNTS[name]

    @SETTINGS
    @given(strategy, st.floats(0.0, 0.999), st.integers(0, 2**31 - 1))
    def check(params, q, seed):
        params = _rounded(params, dtype)
        dist = ref(*params)
        y = max(float(dist.ppf(q)), 0.0)
        u = float(scores.pit(make(*map(dtype, params)), dtype(y), key=jax.random.PRNGKey(seed)))
        slack = 1e-5 if dtype is np.float32 else 1e-10
        assert dist.cdf(y - 1) - slack <= u <= dist.cdf(y) + slack
    check()
