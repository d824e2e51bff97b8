"""Adversarial checks from the wave-9 audit (issue 22): each against an independent reference
(plain ``x @ w``, scipy, brute force). Cheap cases run in the README suite; sweeps are ``deep``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mle_jax as mj


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.bool_])
def test_linear_integer_and_bool_inputs_differentiate_like_the_dot(dtype):
    """models.linear's written derivative once failed on an int / bool x (a float0 tangent);
    the value and gradient must equal those of ``x @ w + b``."""
    x = jnp.asarray([2, 0, 1], dtype)
    m = mj.models.linear(3)
    p = {"w": jnp.asarray([0.3, -0.2, 0.5], jnp.float32), "b": jnp.asarray(0.1, jnp.float32)}

    def ref(p):
        return jnp.sin(x @ p["w"] + p["b"])

    def ours(p):
        return jnp.sin(m.apply(p, x))

    np.testing.assert_allclose(ours(p), ref(p), rtol=1e-6)
    got, want = jax.grad(ours)(p), jax.grad(ref)(p)
    np.testing.assert_allclose(got["w"], want["w"], rtol=1e-6)
    np.testing.assert_allclose(got["b"], want["b"], rtol=1e-6)


def _mills(t):
    """phi(t) / Phi(t) in 40 digits."""
    import mpmath as mp
    mp.mp.dps = 40
    t = mp.mpf(t)
    return float(mp.npdf(t) / mp.ncdf(t))


@pytest.mark.parametrize("dtype, rtol", [(jnp.float32, 2e-6), (jnp.float64, 1e-12)])
def test_censored_normal_gradient_in_the_far_tail(dtype, rtol):
    """The written derivative's Mills ratio once came from exp(-z^2/2 - log(2 pi)/2 - v), which keeps only
    rounding where v ~ -z^2/2 (float32 at z = -1e4: d/dmu 1490 for 5000; -1e3: 499.2 for 500.0).
    Reference: d log Phi(s z)/d mu = -s M(s z) / sigma, d/d sigma = -s M(s z) z / sigma (mpmath)."""
    with jax.enable_x64(dtype == jnp.float64):
        _far_tail_case(dtype, rtol)


def _far_tail_case(dtype, rtol):
    mu, sigma = 0.5, 2.0
    zs = np.array([-1e4, -1e3, -300.0, -25.0, -20.5, -19.5, -10.5, -9.5, -3.0, 0.0, 2.0])
    for side in (-1.0, 1.0):
        s = -1.0 if side > 0 else 1.0
        z = zs * s  # the far tail of the side taken
        y = jnp.asarray(mu + sigma * z, dtype)

        def f(m, sg, yy):
            return mj.distributions.normal.censored_log_prob(mj.Normal(m, sg), yy, jnp.asarray(side, dtype))

        gm, gs = jax.jit(jax.vmap(jax.grad(f, (0, 1)), (None, None, 0)))(jnp.asarray(mu, dtype), jnp.asarray(sigma, dtype), y)
        zz = (np.asarray(y, np.float64) - mu) / sigma  # the z the dtype holds
        m = np.array([_mills(s * v) for v in zz])
        np.testing.assert_allclose(np.asarray(gm, np.float64), -s * m / sigma, rtol=rtol)
        np.testing.assert_allclose(np.asarray(gs, np.float64), -s * m * zz / sigma, rtol=rtol, atol=rtol)


def test_linear_params_without_the_intercept_are_a_named_error():
    """Params of linear(d, intercept=False) given to linear(d) were a bare KeyError('b')."""
    r = mj.recipe(mj.models.linear(2).apply, mj.normal(1.0))
    x, y = np.ones((3, 2), np.float32), np.zeros(3, np.float32)
    with pytest.raises(ValueError, match="linear: params need 'b'"):
        r.mean_nll(r.init(mj.models.linear(2, intercept=False).init()), x, y)
    with pytest.raises(ValueError, match="linear: params need 'w'"):
        r.mean_nll(r.init({"b": jnp.zeros(())}), x, y)


_X64_CASES = {  # name: (theta, y, scipy reference, check log_cdf too)
    "student_t": lambda f, stats: (mj.StudentT(f(3.5), f(0.3), f(2.0)), f(0.5), stats.t(3.5, 0.3, 2.0), False),
    "student_t_tails": lambda f, stats: (mj.StudentT(f(3.5), f(0.3), f(2.0)), f(0.5), stats.t(3.5, 0.3, 2.0), True),
    "beta": lambda f, stats: (mj.Beta(f(10.0), f(0.5)), f(0.5), stats.beta(10.0, 0.5), False),
    "gamma": lambda f, stats: (mj.Gamma(f(10.0), f(2.0)), f(4.0), stats.gamma(10.0, scale=0.5), True),
    "exponential": lambda f, stats: (mj.Exponential(f(2.0)), f(0.5), stats.expon(scale=0.5), True),
    "poisson": lambda f, stats: (mj.Poisson(f(1.0)), f(2.0), stats.poisson(np.e), True),
}


@pytest.mark.parametrize("name", [pytest.param(n, marks=() if n == "beta" else pytest.mark.deep)
                                  for n in _X64_CASES])
def test_float32_thetas_stay_float32_under_x64(name):
    """With x64 enabled, ``safe_where(use, 1.0, h)`` cast a float32 h to float64: Student t's log_prob was a
    TypeError (lax.cond branches float32 / float64), Beta's gradient a TypeError (custom JVP dtype), and the
    log_cdf of Gamma, Exponential, Weibull, VonMises, Poisson, ZeroInflated came back float64. Each value is
    checked against scipy, so a fix cannot trade the error for a wrong number."""
    from scipy import stats
    with jax.enable_x64(True):
        theta, y, ref, tails = _X64_CASES[name](jnp.float32, stats)
        lp = mj.log_prob(theta, y)
        assert lp.dtype == jnp.float32
        want = ref.logpmf(float(y)) if hasattr(ref, "logpmf") else ref.logpdf(float(y))
        np.testing.assert_allclose(float(lp), want, rtol=2e-6)
        grads = jax.grad(lambda t: mj.log_prob(t, y))(theta)
        assert all(g.dtype == jnp.float32 for g in jax.tree.leaves(grads))
        if tails:
            lc = mj.log_cdf(theta, y)
            assert lc.dtype == jnp.float32
            np.testing.assert_allclose(float(lc), ref.logcdf(float(y)), rtol=2e-6)


@pytest.mark.parametrize("dtype, rtol", [(jnp.float32, 2e-6), (jnp.float64, 1e-12)])
def test_normal_and_log_normal_tail_gradients_in_the_far_tail(dtype, rtol):
    """JAX's log_ndtr derivative exp(log phi - log Phi) is rounding alone in the far lower tail (float32: 2981 at
    -1e4 for 1e4); Normal log_cdf and LogNormal log_sf go through mle_jax's log_ndtr. Reference: mpmath."""
    with jax.enable_x64(dtype == jnp.float64):
        zs = jnp.asarray([-1e4, -1e3, -40.0, -20.5, -19.5, -10.5, -9.5, -1.0, 3.0], dtype)
        one = jnp.asarray(1.0, dtype)
        # d/dmu log Phi((y - mu)/1) at y = 0, mu = -z: -M(z)
        # each in one compiled program (op by op: about 60 compiles a dtype)
        got_n = jax.jit(jax.vmap(jax.grad(lambda m: mj.log_cdf(mj.Normal(m, one), jnp.zeros((), dtype)))))(-zs)
        # LogNormal(mu, 1) at y = 1: log_sf = log Phi(mu), d/dmu = M(mu)
        got_ln = jax.jit(jax.vmap(jax.grad(lambda m: mj.log_sf(mj.LogNormal(m, one), one))))(zs)
        want = np.array([_mills(float(v)) for v in np.asarray(zs, np.float64)])
        np.testing.assert_allclose(np.asarray(got_n, np.float64), -want, rtol=rtol)
        np.testing.assert_allclose(np.asarray(got_ln, np.float64), want, rtol=rtol)
