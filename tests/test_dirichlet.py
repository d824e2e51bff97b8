"""The Dirichlet theta and mj.dirichlet(K) against scipy.stats.dirichlet, the Beta (K = 2), numerical
integration and Monte Carlo; float32 and float64."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, optimize, special, stats

import mle_jax as mj

ALPHAS = [np.array([0.7, 2.5, 4.0]), np.array([1.0, 1.0, 1.0]), np.array([0.05, 0.3, 0.02]),
          np.array([150.0, 300.0, 50.0])]
TOL = {"float32": 2e-5, "float64": 1e-10}


@jax.jit
def _everything(theta, ys, other):
    return {"log_prob": jax.vmap(mj.log_prob, in_axes=(None, 0))(theta, ys), "entropy": mj.entropy(theta),
            "mean": mj.mean(theta), "variance": mj.variance(theta), "kl": mj.kl(theta, other)}


def _kl_reference(a, b):
    """The closed form in float64 from scipy.special (Penny 2001)."""
    a0, b0 = a.sum(), b.sum()
    return (special.gammaln(a0) - special.gammaln(a).sum() - special.gammaln(b0) + special.gammaln(b).sum()
            + np.sum((a - b) * (special.digamma(a) - special.digamma(a0))))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_against_scipy(dtype):
    """log_prob, entropy, mean, variance against scipy.stats.dirichlet at the rounded parameters and targets;
    KL against its closed form in float64 (scale of the terms: the large concentrations lose digits)."""
    rng = np.random.default_rng(0)
    with jax.enable_x64(dtype == "float64"):
        for a, b in zip(ALPHAS, ALPHAS[1:] + ALPHAS[:1]):
            ys = rng.dirichlet(a + 0.5, size=6)
            theta, other = mj.Dirichlet(jnp.asarray(a, dtype)), mj.Dirichlet(jnp.asarray(b, dtype))
            out = _everything(theta, jnp.asarray(ys, dtype), other)
            ar, br = np.asarray(theta.concentration, np.float64), np.asarray(other.concentration, np.float64)
            yr = np.asarray(jnp.asarray(ys, dtype), np.float64)
            frozen = stats.dirichlet(ar)
            ref = frozen.logpdf((yr / yr.sum(1, keepdims=True)).T)
            scale = 1.0 + np.abs(special.gammaln(ar)).sum() + special.gammaln(ar.sum())  # size of log B's terms
            np.testing.assert_allclose(out["log_prob"], ref, rtol=TOL[dtype], atol=TOL[dtype] * scale)
            np.testing.assert_allclose(out["entropy"], frozen.entropy(), rtol=TOL[dtype], atol=TOL[dtype] * scale)
            np.testing.assert_allclose(out["mean"], frozen.mean(), rtol=TOL[dtype])
            np.testing.assert_allclose(out["variance"], frozen.var(), rtol=TOL[dtype])
            kl_scale = scale + np.abs(special.gammaln(br)).sum() + special.gammaln(br.sum())
            np.testing.assert_allclose(out["kl"], _kl_reference(ar, br), rtol=TOL[dtype], atol=TOL[dtype] * kl_scale)


@jax.jit
def _beta_and_fisher(p, q, y):
    """K = 2 (one compiled program), and the Hessian of -log_prob in the concentrations."""
    hessian = jax.hessian(lambda c: -mj.log_prob(mj.Dirichlet(c), y))(p.concentration)
    return {"log_prob": mj.log_prob(p, y), "entropy": mj.entropy(p),
            "kl": mj.kl(p, q), "kl_pp": mj.kl(p, p), "fisher": mj.distributions.registry.fisher(p),
            "hessian": hessian}


@pytest.mark.deep  # compiling the KL's Stirling branches and polygamma takes seconds
def test_two_components_are_the_beta_and_fisher_is_the_negative_hessian():
    """K = 2: Dirichlet(a, b) at (y, 1 - y) is Beta(a, b) at y (scipy.stats.beta), its entropy the Beta's, and its KL numerical integration of the Beta densities. The expected information
    in the concentrations equals the Hessian of -log_prob (free of y), by autodiff."""
    with jax.enable_x64(True):
        out = _beta_and_fisher(mj.Dirichlet(jnp.array([2.5, 0.8])), mj.Dirichlet(jnp.array([1.2, 3.0])),
                               jnp.array([0.3, 0.7]))
    np.testing.assert_allclose(out["log_prob"], stats.beta(2.5, 0.8).logpdf(0.3), rtol=1e-12)
    np.testing.assert_allclose(out["entropy"], stats.beta(2.5, 0.8).entropy(), rtol=1e-12)
    bp, bq = stats.beta(2.5, 0.8), stats.beta(1.2, 3.0)
    numeric, _ = integrate.quad(lambda t: bp.pdf(t) * (bp.logpdf(t) - bq.logpdf(t)), 0, 1, limit=200)
    np.testing.assert_allclose(out["kl"], numeric, rtol=1e-7)
    assert float(out["kl_pp"]) == 0.0
    np.testing.assert_allclose(out["fisher"], out["hessian"], rtol=1e-12)


def test_mode_maximises_the_density_and_is_nan_below_one():
    a = np.array([2.0, 3.5, 6.0])
    found = optimize.minimize(lambda z: -stats.dirichlet(a).logpdf(special.softmax(z)), np.zeros(3), tol=1e-12).x
    np.testing.assert_allclose(mj.mode(mj.Dirichlet(jnp.asarray(a))), special.softmax(found), atol=1e-5)
    assert np.isnan(np.asarray(mj.mode(mj.Dirichlet(jnp.array([0.5, 2.0, 3.0]))))).all()


def test_support_and_boundary():
    theta = mj.Dirichlet(jnp.array([2.0, 1.0, 0.5]))
    rows = jnp.array([[0.5, 0.6, 0.1],     # sums to 1.2
                      [-0.1, 0.6, 0.5],    # a negative share
                      [0.0, 0.5, 0.5],     # a_0 = 2 > 1 at a zero share: the density's limit 0
                      [0.5, 0.5, 0.0],     # a_2 = 0.5 < 1: the limit +inf
                      [0.5, 0.0, 0.5]])    # a_1 = 1: no factor, the density at the other shares
    got = np.asarray(jax.jit(jax.vmap(mj.log_prob, in_axes=(None, 0)))(theta, rows))
    np.testing.assert_array_equal(got[:4], [-np.inf, -np.inf, -np.inf, np.inf])
    np.testing.assert_allclose(got[4], 0.5 * np.log(0.5) - (special.gammaln([2.0, 1.0, 0.5]).sum()
                                                             - special.gammaln(3.5)), rtol=1e-5)
    with pytest.raises(ValueError, match=r"event_shape|expects shape"):
        mj.log_prob(theta, jnp.array([0.5, 0.5]))


def test_family_loss_and_checks():
    """mj.losses.dirichlet: softplus (or exp) concentrations, -scipy logpdf; off-simplex targets are named errors."""
    raw = np.array([[0.3, -1.0, 2.0], [1.5, 0.2, -0.4]], np.float32)
    y = np.array([[0.2, 0.3, 0.5], [0.6, 0.1, 0.3]], np.float32)
    for link, fn in (("softplus", lambda r: np.logaddexp(0, r)), ("exp", np.exp)):
        got = mj.losses.dirichlet(jnp.asarray(raw), jnp.asarray(y), link=link)
        a = fn(raw.astype(np.float64)) + np.finfo(np.float32).eps
        want = [-stats.dirichlet(a_i).logpdf(y_i / y_i.sum()) for a_i, y_i in zip(a, y.astype(np.float64))]
        np.testing.assert_allclose(got, want, rtol=2e-5)
    r = mj.recipe(lambda p, x: p + 0 * x, mj.dirichlet(3))
    params = r.init(jnp.zeros(3))
    x = np.zeros((2, 3), np.float32)
    for bad in ([[0.2, 0.3, 0.6], [0.6, 0.1, 0.3]], [[0.0, 0.5, 0.5], [0.6, 0.1, 0.3]],
                [[1.2, -0.2, 0.0], [0.6, 0.1, 0.3]]):
        with pytest.raises(ValueError, match=r"dirichlet\(3\).*simplex"):
            r.nll(params, x, np.asarray(bad, np.float32))
    with pytest.raises(ValueError, match="link"):
        mj.dirichlet(3, link="square")
    with pytest.raises(ValueError, match="num_components"):
        mj.dirichlet(1)


@pytest.mark.deep
def test_twins():
    pytest.importorskip("tensorflow_probability")
    theta = mj.Dirichlet(jnp.array([0.7, 2.5, 4.0]))
    y = jnp.array([0.2, 0.3, 0.5])
    np.testing.assert_allclose(mj.to_tfp(theta).log_prob(y), mj.log_prob(theta, y), rtol=1e-5)
    np.testing.assert_allclose(mj.to_tfp(theta).entropy(), mj.entropy(theta), rtol=1e-5)
    back = mj.from_tfp(mj.to_tfp(theta))
    assert type(back) is mj.Dirichlet
    np.testing.assert_allclose(back.concentration, theta.concentration)
    distrax = pytest.importorskip("distrax")
    assert isinstance(mj.to_distrax(theta), distrax.Dirichlet)
    np.testing.assert_allclose(mj.to_distrax(theta).log_prob(y), mj.log_prob(theta, y), rtol=1e-5)


@pytest.mark.deep
def test_kl_against_monte_carlo_and_samples_against_moments():
    """KL against a Monte Carlo estimate from NumPy's draws and scipy's densities (4 standard errors); the
    library's draws match scipy's mean and variance; tiny concentrations give draws on the simplex."""
    rng = np.random.default_rng(1)
    a, b = np.array([0.7, 2.5, 4.0]), np.array([1.5, 1.0, 2.0])
    draws = rng.dirichlet(a, size=200_000)
    draws = draws[(draws > 0).all(axis=1)]
    terms = stats.dirichlet(a).logpdf(draws.T) - stats.dirichlet(b).logpdf(draws.T)
    se = terms.std() / np.sqrt(len(terms))
    assert abs(float(mj.kl(mj.Dirichlet(jnp.asarray(a)), mj.Dirichlet(jnp.asarray(b)))) - terms.mean()) < 4 * se
    theta = mj.Dirichlet(jnp.asarray(a, jnp.float32))
    ys = np.asarray(jax.jit(jax.vmap(mj.sample, in_axes=(0, None)))(jax.random.split(jax.random.PRNGKey(0), 40_000),
                                                                      theta), np.float64)
    frozen = stats.dirichlet(a)
    assert np.all(np.abs(ys.mean(0) - frozen.mean()) < 5 * np.sqrt(frozen.var() / len(ys)))
    np.testing.assert_allclose(ys.var(0), frozen.var(), rtol=0.03)
    tiny = mj.Dirichlet(jnp.full(3, 0.01, jnp.float32))
    logs = jax.vmap(mj.distributions.dirichlet.sample_log, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(1),
                                                                                              1000), tiny)
    assert np.isfinite(np.asarray(logs)).all()
    np.testing.assert_allclose(jax.nn.logsumexp(logs, axis=1), 0.0, atol=1e-5)
    estimate, error = mj.kl_mc(jax.random.PRNGKey(2), tiny, mj.Dirichlet(jnp.full(3, 0.02, jnp.float32)),
                               num_samples=20_000)
    assert abs(float(estimate) - _kl_reference(np.full(3, 0.01), np.full(3, 0.02))) < 4 * float(error) + 1e-4


def _minka(ys, iters=2000):
    """Minka's (2000) fixed point for the Dirichlet MLE: psi(a_k) = psi(a_0) + mean log y_k, in NumPy."""
    mean_log = np.log(ys).mean(0)
    a = np.ones(ys.shape[1])
    for _ in range(iters):
        target = special.digamma(a.sum()) + mean_log
        x = np.where(target >= -2.22, np.exp(target) + 0.5, -1 / (target - special.digamma(1.0)))
        for _ in range(5):  # Newton on psi(x) = target
            x = x - (special.digamma(x) - target) / special.polygamma(1, x)
        a = x
    return a


@pytest.mark.deep
def test_fit_recovers_minkas_mle():
    """An intercept-only mj.dirichlet fit (L-BFGS) reaches the MLE of Minka's fixed point."""
    import optax

    rng = np.random.default_rng(3)
    ys = rng.dirichlet([2.0, 5.0, 1.5], size=500)
    with jax.enable_x64(True):
        r = mj.recipe(lambda p, x: p["b"] + 0 * x[:1], mj.dirichlet(3, link="exp"))
        params = r.init({"b": jnp.zeros(3)})
        x = jnp.zeros((len(ys), 1))
        result = mj.fit(r, params, x, jnp.asarray(ys), optax.lbfgs(), steps=500,
                        objective=mj.Objective("mean", tol=1e-12))
        fitted = np.asarray(r.predict(result.params, x[:1]).concentration[0])
    np.testing.assert_allclose(fitted, _minka(ys), rtol=1e-4)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_score_and_hessian_against_scipy(dtype):
    """d/da_k log p = log y_k - psi(a_k) + psi(a_0) and the Hessian -diag(psi'(a_k)) + psi'(a_0), against
    scipy.special in float64, at concentrations on both sides of the lgamma's branch point (10) and tiny ones
    (log B's value and its psi are separate evaluations)."""
    rng = np.random.default_rng(1)
    alphas = np.array([[0.05, 0.3, 0.02, 1.0], [0.7, 2.5, 9.99, 10.0], [150.0, 300.0, 50.0, 1e3], [3.0, 11.0, 0.5, 40.0]])
    ys = np.stack([rng.dirichlet(a + 0.5) for a in alphas])
    with jax.enable_x64(dtype == "float64"):
        a, y = jnp.asarray(alphas, dtype), jnp.asarray(ys, dtype)
        one = lambda c, t: mj.log_prob(mj.Dirichlet(c), t)  # noqa: E731
        grad = jax.jit(jax.vmap(jax.grad(one)))(a, y)
        hess = jax.jit(jax.vmap(jax.hessian(one)))(a, y)
        ar, yr = np.asarray(a, np.float64), np.asarray(y, np.float64)
        a0 = ar.sum(1, keepdims=True)
        want = np.log(yr) - special.digamma(ar) + special.digamma(a0)
        tol = 2e-5 if dtype == "float32" else 1e-10
        scale = 1 + np.abs(np.log(yr)) + np.abs(special.digamma(ar)) + np.abs(special.digamma(a0))  # the terms' size
        assert np.all(np.abs(np.asarray(grad, np.float64) - want) <= tol * scale)
        want_h = special.polygamma(1, a0)[:, :, None] - np.eye(4)[None] * special.polygamma(1, ar)[:, :, None]
        scale_h = 1 + special.polygamma(1, a0)[:, :, None] + np.eye(4)[None] * special.polygamma(1, ar)[:, :, None]
        assert np.all(np.abs(np.asarray(hess, np.float64) - want_h) <= 5 * tol * scale_h)
