"""Session 42: the Gamma KL between far pairs (one grouping had been chosen for close pairs and used for all), against
mpmath's closed form at 50 digits, its value and gradient over a grid of extreme shapes and rates in both dtypes (one
compiled program per dtype)."""

import itertools

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

from mle_jax.distributions import gamma

_SHAPES = [1e-6, 0.5, 3.0, 1e4, 1e7]
_RATES = [1e-20, 1.0, 1e20]
_CELLS = [p + q for p, q in itertools.product(itertools.product(_SHAPES, _RATES), repeat=2)] + [(1e7, 1.0, 3.0, 1e-20)]


def _mp_gamma_kl(ap, bp, aq, bq):
    """KL(Gamma(a_p, b_p) || Gamma(a_q, b_q)) at 50 digits, the closed form."""
    ap, bp, aq, bq = (mp.mpf(float(v)) for v in (ap, bp, aq, bq))
    return float((ap - aq) * mp.digamma(ap) - mp.loggamma(ap) + mp.loggamma(aq) + aq * (mp.log(bp) - mp.log(bq))
                 + ap * (bq - bp) / bp)


@pytest.mark.deep
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gamma_kl_far_pairs_against_mpmath(dtype):
    """Within the documented 1e-5 (float32) / 1e-10 (float64) relative error everywhere the KL is finite in the dtype
    (KL(Gamma(1e7, 1) || Gamma(3, 1e-20)) was 96.0 in float32 for 97.13: terms of 4.6e8 cancelled; Gamma(1e-6, 1e-20)
    to Gamma(0.5, 1e20) inf for 1e34), 0 at p = q. (The gradient was swept by hand, 2,500 cells: a compiled gradient
    costs 10 s here.)"""
    rtol = 1e-5 if dtype == np.float32 else 1e-10
    with jax.enable_x64(dtype == np.float64), mp.workdps(50):
        x = np.array(_CELLS, dtype)
        f = lambda v: gamma.kl(gamma.Gamma(v[0], v[1]), gamma.Gamma(v[2], v[3]))  # noqa: E731
        value = np.asarray(jax.jit(jax.vmap(f))(jnp.asarray(x)), np.float64)
        want = np.array([_mp_gamma_kl(*row) for row in x])
    finite = np.abs(want) < np.finfo(dtype).max / 1e3
    zero = want == 0  # p = q: 0 up to a rounding of corr(a) - corr(a) as XLA fuses it (5e-14 at a = 1e4 in float32)
    assert np.all(np.abs(value[zero]) <= 1e-6 * np.finfo(dtype).eps)
    np.testing.assert_allclose(value[finite & ~zero], want[finite & ~zero], rtol=rtol)


def _mp_resultant(k):
    """``A(k) = I1(k)/I0(k)`` and ``A'(k) = 1 - A/k - A^2`` (1/2 at k = 0)."""
    if k == 0:
        return mp.mpf(0), mp.mpf(1) / 2
    a = mp.besseli(1, k) / mp.besseli(0, k)
    return a, 1 - a / k - a**2


@pytest.mark.deep
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_von_mises_slopes_in_the_concentration_at_and_near_zero(dtype):
    """Slopes in k of the log density (``cos(y - mu) - A(k)``), the entropy (``-k A'(k)``) and the KL in either k, at
    k = 0 and 1e-30 .. 1e-6, against mpmath: JAX's ``i0e`` differentiates ``e^(-|k|)`` by ``sign(0) = 0``, and at k = 0
    the log density's slope read ``cos(y) - 1``, the entropy's 1, the KL's 1 off; the entropy's slope at k = 1e-10 was
    0 in float32 (a rounding of 1 kept)."""
    from mle_jax.distributions import von_mises as vm
    ks = [0.0, 1e-30, 1e-20, 1e-10, 1e-6, 0.5]
    y, mu_q, k_q = 2.0, 0.7, 1.3
    with jax.enable_x64(dtype == np.float64), mp.workdps(40):
        c = lambda v: jnp.asarray(v, dtype)  # noqa: E731
        funcs = (lambda k: vm.log_prob(vm.VonMises(c(0.0), k), c(y)),
                 lambda k: vm.entropy(vm.VonMises(c(0.0), k)),
                 lambda k: vm.kl(vm.VonMises(c(0.0), k), vm.VonMises(c(mu_q), c(k_q))),
                 lambda k: vm.kl(vm.VonMises(c(mu_q), c(k_q)), vm.VonMises(c(0.0), k)))
        got = jax.jit(lambda k: jnp.stack([jax.vmap(jax.grad(f))(k) for f in funcs]))(c(ks))
        a_q = _mp_resultant(mp.mpf(k_q))[0]
        want = []
        for k in (mp.mpf(float(v)) for v in np.asarray(ks, dtype)):
            a, slope = _mp_resultant(k)
            want.append([mp.cos(y) - a, -k * slope, slope * (k - k_q * mp.cos(mu_q)), a - a_q * mp.cos(mu_q)])
    np.testing.assert_allclose(np.asarray(got, np.float64).T, np.array(want, np.float64),
                               rtol=8 * float(np.finfo(dtype).eps), atol=0)


@pytest.mark.deep
def test_student_t_df_inf_is_the_normal_eager_and_traced():
    """``df = inf`` is the Normal whether given eagerly (a number or an array: it was refused, "df must be a finite
    number > 0") or traced (which always read it as the Normal): scipy's ``norm.logpdf``.
    A df at or below the link's floor is refused eagerly and is NaN traced (documented: a traced value cannot
    raise)."""
    import math

    import scipy.stats

    import mle_jax as mj
    mu, y = jnp.array([0.3, -1.0, 2.0]), jnp.array([1.7, -40.0, 1e3])
    want = -scipy.stats.norm.logpdf(np.asarray(y, np.float64), np.asarray(mu, np.float64), 1.0)
    traced = jax.jit(lambda m, df: mj.losses.student_t(m, y, df=df, scale=1.0))
    np.testing.assert_allclose(mj.losses.student_t(mu, y, df=math.inf, scale=1.0), want, rtol=1e-6)
    inf_array = jnp.full(3, jnp.inf)  # a concrete array, checked as given (inside jit: its op-by-op loss costs 3 s)
    np.testing.assert_allclose(jax.jit(lambda m: mj.losses.student_t(m, y, df=inf_array, scale=1.0))(mu), want,
                               rtol=1e-6)
    np.testing.assert_allclose(traced(mu, jnp.inf), want, rtol=1e-6)
    assert mj.student_t(df=math.inf).spec.option("df") == math.inf
    for bad in (0.0, -math.inf, math.nan):
        with pytest.raises(ValueError, match="df must be a positive number"):
            mj.student_t(df=bad)
    with pytest.raises(ValueError, match="floor"):
        mj.losses.student_t(mu, y, df=jnp.full(3, 1e-9), scale=1.0)
    assert np.all(np.isnan(traced(mu, jnp.full(3, 1e-9))))


@pytest.mark.deep
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_von_mises_log_density_slope_at_large_concentrations(dtype):
    """First and second derivative in k of the log density at its mode (``1 - A(k)`` and ``-A'(k)``) for k = 1 ..
    1e10 against mpmath: the slope written ``(i1e - i0e) / i0e`` cancelled for large k (float32: 1.5e-3 off at k =
    1e4, 12% at 1e6, the wrong sign at 1e10; the second derivative 27x too big at 1e4)."""
    from mle_jax.distributions import von_mises as vm
    ks = [1.0, 30.0, 1e3, 1e4, 1e6, 1e10]
    with jax.enable_x64(dtype == np.float64), mp.workdps(40):
        c = lambda v: jnp.asarray(v, dtype)  # noqa: E731
        f = lambda k: vm.log_prob(vm.VonMises(c(0.0), k), c(0.0))  # noqa: E731
        got = jax.jit(lambda k: jnp.stack([jax.vmap(jax.grad(f))(k), jax.vmap(jax.grad(jax.grad(f)))(k)]))(c(ks))
        want = [[float(1 - a), float(-slope)] for a, slope in (_mp_resultant(mp.mpf(k)) for k in ks)]
    got, want, eps = np.asarray(got, np.float64).T, np.array(want), float(np.finfo(dtype).eps)
    np.testing.assert_allclose(got[:, 0], want[:, 0], rtol=16 * eps)
    # the second derivative below the asymptotic series' cut: autodiff of 1 - i1e/i0e (800 float64 eps at k = 30)
    np.testing.assert_allclose(got[:, 1], want[:, 1], rtol=max(16 * eps, 2e-12))
