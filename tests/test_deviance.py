"""``special.deviance`` (the saddle-point deviance ``k log(k/m) - k + m`` of the binomial and negative binomial) against
mpmath at 40 digits: across the ``|m - k| = k/4`` boundary of its series, at ``m = k/2``, near ``m = 0`` and far above,
for ``k`` from 0.3 to 1e25, in both dtypes; value and gradient. Its far branch was ``k (log k - log m) - (k - m)``:
at k = 1e9 the two logs are 20.7 and 21.0, and just past the boundary their difference kept 300 roundings of the
deviance (float32 2e-5 relative; float64 440 roundings at k = 1e12). The binomial's and negative binomial's log
masses at such points are checked against mpmath too."""

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

import mle_jax as mj
from mle_jax.distributions.special import deviance

mp.mp.dps = 40
DTYPES = ["float32", "float64"]
KS = [0.3, 1.0, 10.0, 37.0, 1e3, 1e6, 1e9, 1e12, 1e15, 1e25]
WS = [-1 + 1e-30, -1 + 1e-9, -0.999, -0.9, -0.5000001, -0.5, -0.4999999, -0.3, -0.2500001, -0.25, -0.2499999, -0.1,
      -1e-3, 1e-6, 0.1, 0.2499999, 0.25, 0.2500001, 0.3, 0.5, 1.0, 3.0, 100.0, 1e10]


def _points(dtype):
    rows = []
    for k in KS:
        for w in WS:
            kk = np.asarray(k, dtype)
            m = np.asarray(k * (1 + w), dtype)
            if np.isfinite(m) and m > 0:
                rows.append((kk, m))
    return np.asarray(rows, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_deviance_value_and_gradient_against_mpmath(dtype):
    pts = _points(dtype)
    eps = float(np.finfo(dtype).eps)
    log_m = np.asarray([float(mp.log(mp.mpf(float(m)))) for _, m in pts], dtype)  # the caller's log m, rounded once
    with jax.enable_x64(dtype == "float64"):
        k, m, lm = (jnp.asarray(v) for v in (pts[:, 0], pts[:, 1], log_m))

        def total(k, m):
            return jnp.sum(deviance(k, m, jnp.log(m)))
        value = jax.jit(deviance)(k, m, lm)
        grad_k, grad_m = jax.jit(jax.grad(total, argnums=(0, 1)))(k, m)
    for i, (kk, mm) in enumerate(pts.astype(float)):
        K, M = mp.mpf(kk), mp.mpf(mm)
        ref = K * mp.log(K / M) - K + M
        assert abs(float(value[i]) - ref) <= 10 * eps * ref, (dtype, kk, mm, float(value[i]), float(ref))
        ref_m = 1 - K / M
        assert abs(float(grad_m[i]) - ref_m) <= 8 * eps * abs(ref_m), (dtype, kk, mm, float(grad_m[i]))
        # d/dk = log(k/m) by autodiff through w = (m - k)/k: exact while m/k is moderate and k^2 stays in range
        if mm <= 4 * kk and kk <= 1e15:
            ref_k = mp.log(K / M)
            assert abs(float(grad_k[i]) - ref_k) <= 16 * eps * abs(ref_k) + 1e-30, (dtype, kk, mm, float(grad_k[i]))


def _binom_log_pmf(n, z, y):
    n, z, y = mp.mpf(n), mp.mpf(z), mp.mpf(y)
    p = 1 / (1 + mp.exp(-z))
    return mp.loggamma(n + 1) - mp.loggamma(y + 1) - mp.loggamma(n - y + 1) + y * mp.log(p) + (n - y) * mp.log(1 - p)


def _nb_log_pmf(r, z, y):
    r, z, y = mp.mpf(r), mp.mpf(z), mp.mpf(y)
    return (mp.loggamma(y + r) - mp.loggamma(r) - mp.loggamma(y + 1) + y * mp.log(1 / (1 + mp.exp(-z)))
            + r * mp.log(1 / (1 + mp.exp(z))))


@pytest.mark.parametrize("dtype", DTYPES)
def test_count_masses_past_the_deviance_boundary(dtype):
    """Binomial(1e9, 0) at y = n/2 (1 - 0.3) and NB(1e8, 0) at y = 1.3e8: the deviance's far branch, where the mass
    is about -dev; float32 was 2e-5 relative off (the log m of ``log n + log pi`` and the log difference)."""
    binom = np.asarray([[1e9, 0.0, 3.5e8], [1e9, 0.0, 6.3e8], [1e9, 0.0, 3.74e8], [1e6, 1.0, 5e5], [4e4, -0.5, 2.2e4],
                        [1e9, 0.0, 0.25e9], [1e12 if dtype == "float64" else 1e9, 0.0, 0.2e9]], dtype)
    nb = np.asarray([[1e8, 0.0, 1.3e8], [1e8, 0.0, 0.7e8], [1e6, 0.5, 2e5], [5e4, -1.0, 1e5]], dtype)
    with jax.enable_x64(dtype == "float64"):
        b, q = jnp.asarray(binom), jnp.asarray(nb)
        got_b, got_q = jax.jit(lambda b, q: (mj.log_prob(mj.Binomial(b[:, 0], b[:, 1]), b[:, 2]),
                                             mj.log_prob(mj.NegativeBinomial(q[:, 0], q[:, 1]), q[:, 2])))(b, q)
    ref_b = [float(_binom_log_pmf(*row)) for row in binom.astype(float)]
    ref_q = [float(_nb_log_pmf(*row)) for row in nb.astype(float)]
    # the mass is as sensitive as m = n sig(z) lets it be: a few roundings of the deviance's own condition (about 10)
    rtol = 3e-6 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(got_b, ref_b, rtol=rtol)
    np.testing.assert_allclose(got_q, ref_q, rtol=rtol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_deviance_past_the_quarter_is_within_ten_roundings(dtype):
    """Just past ``|m - k| = k/4``, where the condition in m is 9: ``log1p(w)`` (as ``log u - ((u - 1) - w)/u``),
    not ``log(1 + w)`` (whose rounding of 1 + w kept 19 roundings of the deviance), on a dense sweep against mpmath."""
    eps = float(np.finfo(dtype).eps)
    ws = np.concatenate([0.25 + np.geomspace(1e-7, 0.75, 120), -0.25 - np.geomspace(1e-7, 0.25, 120)])
    k = np.repeat(np.asarray([0.3, 37.0, 1e6, 1e15], dtype), ws.size)
    m = (k.astype(float) * (1 + np.tile(ws, 4))).astype(dtype)
    with jax.enable_x64(dtype == "float64"):
        got = np.asarray(jax.jit(deviance)(jnp.asarray(k), jnp.asarray(m), jnp.log(jnp.asarray(m))), float)
    worst = 0.0
    for g, kk, mm in zip(got, k.astype(float), m.astype(float)):
        K, M = mp.mpf(kk), mp.mpf(mm)
        ref = K * mp.log(K / M) - K + M
        worst = max(worst, float(abs(g - ref) / (eps * ref)))
    assert worst <= 10.0, worst
