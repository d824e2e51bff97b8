"""Kernels split into a free part and a data-only part (``families.Split``, issue 22): ``free + data`` is the
log-density, against mpmath at 40 digits on both sides of each branch edge, and the free part's derivative is
the closed form; a full-batch ``fit`` (which sums the data part once per call) reports the true NLL, weights
and mask included, against scipy."""

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import optax
import pytest
from scipy import stats

import mle_jax as mj
from mle_jax.distributions import poisson as poisson_dist

mp.mp.dps = 40
TOL = {"float32": dict(rtol=2e-6, atol=1e-5), "float64": dict(rtol=1e-12, atol=1e-11)}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_poisson_free_plus_data_is_the_log_pmf(dtype):
    """Counts 0, 1, 9 / 10 (the Stirling edge), 1e3 and 1e7, log-rates from -30 to 30 and at log y; the free
    part's d/dz is ``y - exp(z)``; off the support and at a zero rate as ``log_prob``."""
    ys = [0.0, 1.0, 9.0, 10.0, 11.0, 1e3, 1e7]
    rows = np.array([[z, y] for y in ys for z in [-30.0, -2.0, 0.0, 1.5, float(np.log(max(y, 1.0))), 30.0]])
    rows = rows.astype(dtype).astype(float)
    with jax.enable_x64(dtype == "float64"):
        def run(z, y):
            grad = jax.vmap(jax.grad(poisson_dist.log_prob_free))(z, y)
            return poisson_dist.log_prob_free(z, y) + poisson_dist.data_term(y), grad
        z, y = jnp.asarray(rows[:, 0], dtype), jnp.asarray(rows[:, 1], dtype)
        value, d_z = (np.asarray(v, float) for v in jax.jit(run)(z, y))
        edge = np.asarray(jax.jit(run)(jnp.asarray([-jnp.inf, -jnp.inf, 0.0, 0.0], dtype),
                                       jnp.asarray([0.0, 2.0, -1.0, 1.5], dtype))[0])

    def ref(z, y):
        z, y = mp.mpf(z), mp.mpf(y)
        return float(y * z - mp.exp(z) - mp.loggamma(y + 1))
    truth = np.array([ref(z, y) for z, y in rows])
    # y z and exp(z) are each as large as |y z| + exp(z): float32 keeps their sum to that scale
    scale = np.abs(rows[:, 1] * rows[:, 0]) + np.exp(rows[:, 0]) if dtype == "float32" else np.abs(truth)
    assert np.all(np.abs(value - truth) <= TOL[dtype]["atol"] + TOL[dtype]["rtol"] * np.maximum(scale, np.abs(truth)))
    size = rows[:, 1] + np.exp(rows[:, 0])  # y and exp(z) cancel at z = log y
    assert np.all(np.abs(d_z - (rows[:, 1] - np.exp(rows[:, 0]))) <= (1e-6 if dtype == "float32" else 1e-14) * size)
    np.testing.assert_array_equal(edge, [0.0, -np.inf, -np.inf, -np.inf])


@pytest.mark.parametrize("family, reduction", [  # each fit compiles for 3-5 s: one in README's suite, three in CI's deep phase
    ("poisson", "mean"), pytest.param("poisson", "sum", marks=pytest.mark.deep),
    pytest.param("gamma", "mean", marks=pytest.mark.deep), pytest.param("gamma", "sum", marks=pytest.mark.deep)])
def test_full_batch_fit_reports_the_true_nll_with_weights_and_mask(family, reduction):
    """The history of a fit that sums the data-only terms (the Poisson's ``log y!``, the Gamma's ``-log y``)
    once per call is the weighted, masked NLL by scipy at the first step's and the last step's parameters (the
    Gamma's shape learned), and the fit reaches the MLE (its score equations)."""
    rng = np.random.default_rng(3)
    n, d = 400, 3
    x = rng.normal(size=(n, d))
    mu_true = np.exp(x @ np.array([0.4, -0.3, 0.2]) + 1.0)
    if family == "poisson":
        y = rng.poisson(mu_true).astype(np.float64)
        y[:5] = [0.0, 10.0, 25.0, 9.0, 300.0]  # both sides of the Stirling edge
    else:
        y = rng.gamma(2.0, mu_true / 2.0)
    weights = rng.uniform(0.5, 2.0, size=n)
    mask = rng.uniform(size=n) > 0.2
    with jax.enable_x64(True):
        r = mj.recipe(mj.models.linear(d).apply, mj.poisson() if family == "poisson" else mj.gamma("mean"))
        start = r.init({"w": jnp.full((d,), 0.1), "b": jnp.float64(0.5)})
        res = mj.fit(r, start, jnp.asarray(x), jnp.asarray(y), optax.lbfgs(), steps=200,
                     weights=jnp.asarray(weights), mask=jnp.asarray(mask),
                     objective=mj.Objective(reduction=reduction, tol=1e-9), run=mj.Run(progress=False))

    def nll(params):
        w, b = np.asarray(params.model["w"]), float(params.model["b"])
        mu = np.exp(x @ w + b)
        if family == "poisson":
            terms = -stats.poisson.logpmf(y, mu) * weights * mask
        else:
            a = float(np.logaddexp(0.0, float(params.family["shape"]))) + np.finfo(np.float64).eps
            terms = -stats.gamma.logpdf(y, a, scale=mu / a) * weights * mask
        return terms.sum() / ((weights * mask).sum() if reduction == "mean" else 1.0)
    assert res.stopped == "converged"
    np.testing.assert_allclose(res.history[0], nll(start), rtol=1e-6)  # the history is float32; its first step's
    np.testing.assert_allclose(res.history[-1], nll(res.params), rtol=1e-6)
    # the MLE: the weighted, masked score equations X'(m w (y - mu)) = 0
    mu = np.exp(x @ np.asarray(res.params.model["w"]) + float(res.params.model["b"]))
    resid = y - mu if family == "poisson" else y / mu - 1.0  # the log link's score, per unit of the shape
    score = np.column_stack([np.ones(n), x]).T @ (weights * mask * resid)
    assert np.max(np.abs(score)) <= 1e-5 * np.sum(weights * mask * np.abs(resid))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gamma_glm_density_and_score_against_mpmath(dtype):
    """``gamma.mean_log_prob`` (free part + ``-log y`` + the shape's shift) at shapes on both sides of the
    Stirling edge (9.99 / 10) and far out (1e-3, 1e6), y / mu from 1e-6 to 1e6: the value and d/d eta, d/da
    against mpmath; the free part plus the data term plus the shift is ``Gamma(a, a e^-eta)``'s log_prob."""
    rows = np.array([[a, eta, y] for a in [1e-3, 0.5, 2.0, 9.99, 10.0, 1e6] for eta in [-2.0, 0.0, 3.0]
                     for y in [1e-6 * np.exp(eta), np.exp(eta), 1.5 * np.exp(eta), 1e6 * np.exp(eta)]])
    rows = rows.astype(dtype).astype(float)
    with jax.enable_x64(dtype == "float64"):
        from mle_jax.distributions import gamma as g

        def run(a, eta, y):
            grads = jax.vmap(jax.grad(g.mean_log_prob, argnums=(0, 1)))(a, eta, y)
            return g.mean_log_prob(a, eta, y), grads, mj.log_prob(mj.Gamma(a, a * jnp.exp(-eta)), y)
        value, (d_a, d_eta), theta_value = (jax.tree_util.tree_map(lambda v: np.asarray(v, float), out)
                                            for out in jax.jit(run)(*(jnp.asarray(rows[:, j], dtype) for j in range(3))))

    def ref(a, eta, y):
        a, eta, y = mp.mpf(a), mp.mpf(eta), mp.mpf(y)
        u = y * mp.exp(-eta)
        return (float(a * mp.log(a) - a * eta + (a - 1) * mp.log(y) - a * u - mp.loggamma(a)),
                float(mp.log(a) + 1 - eta + mp.log(y) - u - mp.digamma(a)), float(a * (u - 1)))
    truth = np.array([ref(*row) for row in rows])
    a, eta, y = rows.T
    # the value's own scale: a (u - 1 - log u) and log y; float32 keeps 1e-6 of it
    scale = np.abs(truth[:, 0]) + np.abs(np.log(y)) + 1.0
    rtol = 3e-6 if dtype == "float32" else 1e-12
    assert np.all(np.abs(value - truth[:, 0]) <= rtol * scale)
    assert np.all(np.abs(d_a - truth[:, 1]) <= rtol * (np.abs(np.log(y / np.exp(eta))) + y / np.exp(eta) + 1.0 + np.abs(truth[:, 1])))
    assert np.all(np.abs(d_eta - truth[:, 2]) <= rtol * a * (y / np.exp(eta) + 1.0))
    assert np.all(np.abs(value - theta_value) <= 10 * rtol * scale)


@pytest.mark.parametrize("dtype", ["float32", pytest.param("float64", marks=pytest.mark.deep)])
def test_binomial_free_plus_data_is_the_log_pmf(dtype):
    """The smaller count 9 / 10 of n = 19, 20 and 1e6 (the exact product below, Loader's saddle point above),
    y = 0 and y = n, logits +-30: ``log_prob_free + data_term`` against mpmath, d/dz of the free part against
    ``y sig(-z) - (n - y) sig(z)``; off the support -inf; a derivative in the counts is refused."""
    from mle_jax.distributions import binomial as b
    rows = np.array([[n, z, y] for n, ys in [(19.0, [0.0, 9.0, 10.0, 19.0]), (20.0, [9.0, 10.0, 11.0, 20.0]),
                                             (1e6, [0.0, 9.0, 10.0, 5e5, 1e6 - 10.0, 1e6])]
                     for y in ys for z in [-30.0, -2.0, 0.0, 1.5, 30.0]]).astype(dtype).astype(float)
    with jax.enable_x64(dtype == "float64"):
        def run(n, z, y):
            return (b.log_prob_free(n, z, y) + b.data_term(n, y),
                    jax.vmap(jax.grad(b.log_prob_free, argnums=1))(n, z, y))
        value, d_z = (np.asarray(v, float) for v in jax.jit(run)(*(jnp.asarray(rows[:, j], dtype) for j in range(3))))
        off = np.asarray(jax.jit(run)(*(jnp.asarray(v, dtype) for v in ([5.0, 5.0], [0.0, 0.0], [6.0, 1.5])))[0])
        with pytest.raises(ValueError, match="data"):
            jax.grad(b.log_prob_free, argnums=2)(jnp.asarray(5.0, dtype), jnp.asarray(0.0, dtype), jnp.asarray(2.0, dtype))
    n, z, y = rows.T

    def ref(n, z, y):
        n, z, y = mp.mpf(n), mp.mpf(z), mp.mpf(y)
        return float(mp.log(mp.binomial(n, y)) - y * mp.log1p(mp.exp(-z)) - (n - y) * mp.log1p(mp.exp(z)))
    truth = np.array([ref(*row) for row in rows])
    scale = np.maximum(1.0, np.minimum(y, n - y) * np.log1p(n))  # the product form's cancelling m log(n - m + 1)
    tol = dict(rtol=1e-5, atol=1e-4) if dtype == "float32" else dict(rtol=1e-10, atol=1e-9)
    assert np.all(np.abs(value - truth) <= tol["atol"] * scale + tol["rtol"] * np.abs(truth))
    closed = y / (1 + np.exp(z)) - (n - y) / (1 + np.exp(-z))
    assert np.all(np.abs(d_z - closed) <= (1e-5 if dtype == "float32" else 1e-10) * np.maximum(1, n))
    np.testing.assert_array_equal(off, [-np.inf, -np.inf])


@pytest.mark.deep  # ~1 s each (the mpmath reference)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_binomial_split_near_the_optimum_and_at_the_edges(dtype):
    """``log_prob_free + data_term`` and the free part's slope against mpmath where a fit spends its steps: at the
    counts' own logit ``log(y / (n - y))`` and within 1e-3 and 0.3 of it, for n from 20 to 2^24 (1e15 in float64),
    where the plain ``y z - n softplus(z) + log C(n, y)`` keeps ``eps n`` (0.04 at n = 1e6 in float32, 1e4 times the
    bound here); n = 0, y = 0 and y = n (any logit, +-inf included); the value also against scipy's logpmf."""
    from mle_jax.distributions import binomial as b
    eps = float(np.finfo(dtype).eps)
    big = [(20.0, 10.0), (1e4, 37.0), (1e6, 3e5), (2.0**24, 2.0**23)] + ([(1e9, 12.0), (1e15, 3e14)]
                                                                        if dtype == "float64" else [])
    rows = [[n, y, float(np.log(y / (n - y))) + dz] for n, y in big for dz in [0.0, 1e-3, -1e-3, 0.3, -0.3]]
    rows += [[n, y, z] for n in [0.0, 1.0, 7.0, 1e6] for y in {0.0, n} for z in [-40.0, -3.0, 0.0, 3.0, 40.0]]
    rows = np.array(rows).astype(dtype).astype(float)
    edge = [[0.0, 0.0, -np.inf], [0.0, 0.0, np.inf], [7.0, 0.0, -np.inf], [7.0, 7.0, np.inf], [7.0, 0.0, np.inf],
            [1e6, 3e5, np.inf], [1e6, 3e5, -np.inf]]
    with jax.enable_x64(dtype == "float64"):
        def run(n, y, z):
            return (b.log_prob_free(n, z, y) + b.data_term(n, y),
                    jax.vmap(jax.grad(b.log_prob_free, argnums=1))(n, z, y))
        value, d_z = (np.asarray(v, float) for v in jax.jit(run)(*(jnp.asarray(rows[:, j], dtype) for j in range(3))))
        at_edge = np.asarray(jax.jit(run)(*(jnp.asarray(c, dtype) for c in np.array(edge).T))[0])
    n, y, z = rows.T

    def ref(n, y, z):
        n, y, z = mp.mpf(n), mp.mpf(y), mp.mpf(z)
        log_pi, log_1mpi = -mp.log1p(mp.exp(-z)), -mp.log1p(mp.exp(z))
        value = mp.log(mp.binomial(n, y)) + (y * log_pi if y else 0) + ((n - y) * log_1mpi if n - y else 0)
        size = y * mp.exp(log_1mpi) + (n - y) * mp.exp(log_pi)  # y sig(-z) and (n - y) sig(z): the slope's terms
        return float(value), float(y * mp.exp(log_1mpi) - (n - y) * mp.exp(log_pi)), float(size)
    truth, slope, size = np.array([ref(*r) for r in rows]).T
    m = np.minimum(y, n - y)
    # the centred form's terms cancel to eps n p |d| (the deviances' own) and Loader's data term keeps eps log n
    bound = 50 * eps * (1.0 + np.abs(truth) + m * np.abs(z - np.log(np.maximum(y, 1) / np.maximum(n - y, 1)))
                        + np.log1p(n))
    assert np.all(np.abs(value - truth) <= bound), np.abs(value - truth) / bound
    assert np.all(np.abs(d_z - slope) <= 20 * eps * (np.abs(slope) + size)), np.abs(d_z - slope)
    np.testing.assert_array_equal(at_edge, [0.0, 0.0, 0.0, 0.0, -np.inf, -np.inf, -np.inf])
    moderate = (n <= 1e6) & (np.abs(z) < 30)  # scipy from p: 1/(1 + e^-40) rounds to 1
    scipy_value = stats.binom.logpmf(y, n, 1 / (1 + np.exp(-z)))  # its gammaln terms keep ~1e-9 at n = 1e6
    assert np.all(np.abs(value - scipy_value)[moderate] <= bound[moderate] + 1e-8)
