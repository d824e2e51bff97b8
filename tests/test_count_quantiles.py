"""Quantiles of the count distributions (Poisson, NegativeBinomial): the smallest k with F(k) >= q.

References: scipy's ``poisson.ppf`` / ``nbinom.ppf`` where they are exact; in the far tails (scipy's
``isf`` is NaN below 1e-16, its ``ppf`` near 1 loses the last count at rate 9e6) the definition itself,
checked with scipy's ``logsf`` or mpmath's incomplete gamma at k and k - 1.
"""

import jax
import mpmath as mp
import numpy as np
import pytest
from scipy import stats
from scipy.special import expit

import mle_jax as mj

QS = [0, 1e-30, 1e-8, 0.01, 0.3, 0.5, 0.77, 0.999, 1 - 1e-5, 1, 1.2, np.nan]
PS = [1e-30, 1e-10, 0.3, 0.9]
POISSON_LOG_RATES = [-30.0, -3.0, 0.4, 3.0, 10.0]
NB = [(3.5, 0.3), (0.2, 2.0), (50.0, -3.0), (1e4, 1 - np.log(1e4)), (1.0, 5.0)]


@jax.jit
def _both(theta, q, p):
    return mj.distributions.quantile(theta, q), mj.distributions.isf(theta, p)


def _grid(params, values):
    """Every parameter with every probability, flattened: one compiled program per type and dtype."""
    rows = [(*ps, v) for ps in params for v in values]
    return [np.array(c) for c in zip(*rows)]


def _first_below(logsf, k, p):
    """k is the smallest count with log Pr(Y > k) <= log p."""
    return (logsf(k) <= np.log(p)) & (logsf(k - 1) > np.log(p))


def _run(make, params, dtype):
    qparams = _grid(params, QS)
    pparams = _grid(params, PS)
    n_q, n_p = len(qparams[-1]), len(pparams[-1])
    fields = [np.concatenate([a, b]).astype(dtype) for a, b in zip(qparams[:-1], pparams[:-1])]
    q = np.concatenate([qparams[-1], np.full(n_p, 0.5)]).astype(dtype)
    p = np.concatenate([np.full(n_q, 0.5), pparams[-1]]).astype(dtype)
    got_q, got_p = (np.asarray(v, np.float64) for v in _both(make(*fields), q, p))
    return [f.astype(np.float64) for f in fields], q.astype(np.float64), p.astype(np.float64), got_q, got_p, n_q


@pytest.mark.parametrize("dtype", ["float32", pytest.param("float64", marks=pytest.mark.deep)])
def test_poisson_quantile_and_isf(dtype, request):
    if dtype == "float64":
        request.getfixturevalue("x64")
    (z,), q, p, got_q, got_p, n_q = _run(mj.Poisson, [(v,) for v in POISSON_LOG_RATES + [-np.inf]], dtype)
    lam = np.exp(z)  # a zero rate: the point mass at 0 (-1 at q = 0, 0 up to q = 1 included)
    np.testing.assert_array_equal(got_q[:n_q], stats.poisson.ppf(q[:n_q], lam[:n_q]))
    ok = _first_below(lambda k: stats.poisson.logsf(k, lam[n_q:]), got_p[n_q:], p[n_q:])
    assert ok.all(), (got_p[n_q:][~ok], lam[n_q:][~ok], p[n_q:][~ok])


@pytest.mark.deep
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_negative_binomial_quantile_and_isf(dtype, request):
    if dtype == "float64":
        request.getfixturevalue("x64")
    (r, z), q, p, got_q, got_p, n_q = _run(mj.NegativeBinomial, NB, dtype)
    np.testing.assert_array_equal(got_q[:n_q], stats.nbinom.ppf(q[:n_q], r[:n_q], expit(-z[:n_q])))
    a = (r[n_q:], expit(-z[n_q:]))
    ok = _first_below(lambda k: stats.nbinom.logsf(k, *a), got_p[n_q:], p[n_q:])
    assert ok.all(), (got_p[n_q:][~ok], r[n_q:][~ok], z[n_q:][~ok])


@pytest.mark.deep
def test_poisson_extreme_tails_against_mpmath(x64):
    """Rate e^16 (9e6): q = 1 - 1e-6 (scipy's ppf is one count low there) and isf at 1e-300."""
    lam = float(np.exp(16.0))
    theta = mj.Poisson(np.full(2, 16.0))
    got_q, got_p = (np.asarray(v) for v in _both(theta, np.array([1 - 1e-6, 1e-300]), np.array([1e-300, 1e-6])))
    mp.mp.dps = 40
    lo_cdf = lambda k: mp.gammainc(k + 1, lam, mp.inf, regularized=True)  # noqa: E731  Pr(Y <= k)
    q = mp.mpf(1 - 1e-6)
    assert lo_cdf(got_q[0]) >= q > lo_cdf(got_q[0] - 1)
    assert lo_cdf(got_q[1]) >= mp.mpf(1e-300) > lo_cdf(got_q[1] - 1)
    assert 1 - lo_cdf(got_p[1]) <= mp.mpf(1e-6) < 1 - lo_cdf(got_p[1] - 1)


@pytest.mark.deep
def test_negative_binomial_quantile_edges():
    """pi = 0 (logits -inf) is the point mass at 0; pi = 1 (logits inf) puts no mass on a finite count."""
    nb = mj.NegativeBinomial(np.float32(2.0), np.array([-np.inf, np.inf, np.nan], np.float32))
    np.testing.assert_array_equal(mj.quantile(nb, np.float32(0.5)), [0, np.inf, np.nan])


@pytest.mark.deep  # the binomial's and the negative binomial's searches compiled (seconds)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ties_at_an_exact_cdf_value(dtype, request):
    """q = F(k) exactly (with p = 1/2 every CDF value is a dyadic fraction, exact in both dtypes): the quantile is k
    and ``isf(1 - F(k))`` is k, by the definitions (smallest k with F(k) >= q, Pr(Y > k) <= p), as scipy's; a q
    halfway to F(k + 1) is k + 1. The exact CDFs are sums of binomial coefficients over 2^n (``fractions``); the
    tails' roundings put F(k) an ulp below q, which answered k + 1 (Binomial(3, 1/2)'s median 2)."""
    from fractions import Fraction
    from math import comb
    if dtype == np.float64:
        request.getfixturevalue("x64")
    # F(0) ... F(K): the ties are F(0) ... F(K - 1), each with the next value to halve the way to
    binomial = {n: [sum(Fraction(comb(n, j), 2 ** n) for j in range(k + 1)) for k in range(n + 1)]
                for n in (1, 2, 3, 4, 5, 10, 12)}
    nb = {3: [sum(Fraction(comb(j + 2, j), 2 ** (3 + j)) for j in range(k + 1)) for k in range(9)]}
    for make, table in ((mj.distributions.Binomial, binomial), (mj.distributions.NegativeBinomial, nb)):
        ns, qs, want = [], [], []
        for n, cdf in table.items():
            for k, (f, nxt) in enumerate(zip(cdf[:-1], cdf[1:])):
                for q, w in ((f, k), ((f + nxt) / 2, k + 1)):
                    ns.append(n)
                    qs.append(q)
                    want.append(w)
            if make is mj.distributions.Binomial:  # scipy agrees at the ties
                np.testing.assert_array_equal(stats.binom.ppf([float(f) for f in cdf[:-1]], n, 0.5), np.arange(n))
        theta = make(np.asarray(ns, dtype), np.zeros(len(ns), dtype))
        q_at, p_at = _both(theta, np.asarray([float(q) for q in qs], dtype), np.asarray([float(1 - q) for q in qs], dtype))
        np.testing.assert_array_equal(q_at, want)
        np.testing.assert_array_equal(p_at, want)
