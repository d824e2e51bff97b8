"""Issue 19 (trust, round 3) in the theta types: integer fields, huge labels, bounded sampling, tail
quantiles, the multivariate Normal's KL at extreme scales, batched thetas and clear refusals.

References: scipy.stats (logpdf, ppf, isf, interval), closed forms evaluated in float64 NumPy, and
the normal limit of the von Mises (KS test).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

import mle_jax as mj
from mle_jax.distributions import isf

# (theta with integer / bool / Python-float fields, y, scipy reference of log_prob at y)
INTEGER_FIELDS = [
    (mj.Normal(0, 1), 0.5, stats.norm(0, 1).logpdf(0.5)),
    (mj.Normal(np.int64(2), np.int32(3)), -1.25, stats.norm(2, 3).logpdf(-1.25)),
    (mj.Laplace(0, 1), 0.5, stats.laplace(0, 1).logpdf(0.5)),
    (mj.StudentT(4, 0, 1), 0.5, stats.t(4).logpdf(0.5)),
    (mj.Gamma(2, 1), 0.5, stats.gamma(2).logpdf(0.5)),
    (mj.Beta(2, 3), 0.25, stats.beta(2, 3).logpdf(0.25)),
    (mj.Poisson(1), 2.5, -np.inf),
    (mj.Poisson(1), 2.0, stats.poisson(math.e).logpmf(2)),
    (mj.NegativeBinomial(3, 0), 2.5, -np.inf),
    (mj.VonMises(0, 2), 0.5, stats.vonmises(2).logpdf(0.5)),
    (mj.Bernoulli(0.3), 1, math.log(special.expit(0.3))),
    (mj.Bernoulli(True), 0, math.log(special.expit(-1.0))),
    (mj.Categorical(np.array([0, 1, 2])), 1, special.log_softmax([0.0, 1, 2])[1]),
    (mj.MixtureNormal(np.array([0, 0]), np.array([0, 3]), np.array([1, 2])), 0.5,
     np.log(0.5 * stats.norm(0, 1).pdf(0.5) + 0.5 * stats.norm(3, 2).pdf(0.5))),
]


@pytest.mark.parametrize("index", range(len(INTEGER_FIELDS)))
def test_integer_fields_never_truncate_the_target(index):
    theta, y, ref = INTEGER_FIELDS[index]
    got = mj.log_prob(theta, y)
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(float(got), ref, rtol=1e-5, atol=1e-6)


def test_integer_fields_in_float64_and_every_generic_function(x64):
    theta = mj.Normal(0, 1)
    assert mj.log_prob(theta, 0.5).dtype == jnp.float64
    np.testing.assert_allclose(float(mj.log_prob(theta, 0.5)), stats.norm.logpdf(0.5), rtol=1e-14)
    np.testing.assert_allclose(float(mj.log_cdf(theta, 0.5)), stats.norm.logcdf(0.5), rtol=1e-14)
    np.testing.assert_allclose(float(mj.log_sf(theta, 0.5)), stats.norm.logsf(0.5), rtol=1e-14)
    np.testing.assert_allclose(float(mj.log_tail(mj.Gamma(2, 1), 0.5, True)), stats.gamma(2).logsf(0.5), rtol=1e-12)
    np.testing.assert_allclose(float(mj.pit(theta, 0.5)), stats.norm.cdf(0.5), rtol=1e-14)
    np.testing.assert_allclose(float(mj.quantile(mj.Laplace(1, 2), 0.3)), stats.laplace(1, 2).ppf(0.3), rtol=1e-14)
    np.testing.assert_allclose(float(mj.kl(mj.Normal(0, 1), mj.Normal(1, 2))),
                               math.log(2) + 2 / 8 - 0.5, rtol=1e-14)
    np.testing.assert_allclose(float(mj.entropy(mj.Gamma(2, 1))), stats.gamma(2).entropy(), rtol=1e-12)


def test_pit_and_sampling_of_integer_thetas():
    np.testing.assert_allclose(float(mj.pit(mj.Normal(0, 1), 0.5)), stats.norm.cdf(0.5), rtol=1e-6)
    assert mj.sample(jax.random.PRNGKey(0), mj.Normal(0, 1)).dtype == jnp.float32
    est, se = mj.kl_mc(jax.random.PRNGKey(1), mj.Normal(0, 1), mj.Normal(1, 1), 2000)
    assert abs(float(est) - 0.5) < 5 * float(se)


def test_half_precision_fields_stay_as_given():
    theta = mj.Normal(jnp.float16(0), jnp.float16(1))
    assert mj.log_prob(theta, jnp.float16(0.5)).dtype == jnp.float16
    assert mj.mean(mj.Normal(jnp.bfloat16(1), jnp.bfloat16(2))).dtype == jnp.bfloat16


@pytest.mark.parametrize("label", [np.int64(2**32 + 1), 2**32 + 1, np.int64(-2**32 + 2), np.uint64(2**63)])
def test_labels_beyond_int32_never_wrap_into_range(label):
    assert float(mj.log_prob(mj.Categorical(jnp.zeros(3)), label)) == -np.inf
    assert float(mj.log_prob(mj.Bernoulli(0.0), label)) == -np.inf


def test_counts_beyond_int32_keep_their_value():
    ref = stats.poisson(1.0).logpmf(2.0**32)  # the count 2**32 + 1 is 2**32 in float32
    np.testing.assert_allclose(float(mj.log_prob(mj.Poisson(0.0), np.int64(2**32 + 1))), ref, rtol=1e-5)


def test_empirical_refuses_labels_outside_the_classes():
    with pytest.raises(ValueError, match=r"\[0, 3\); got -1"):
        mj.empirical([0, -1, 2])
    with pytest.raises(ValueError, match=r"\[0, 2\); got 2"):
        mj.empirical(np.array([0, 2]), num_classes=2)
    got = mj.empirical([0, 1, 1, 3])
    np.testing.assert_allclose(np.exp(np.asarray(got.logits)), np.bincount([0, 1, 1, 3]) / 4, rtol=1e-6)


# ----------------------------------------------------------------------------- von Mises sampling

@jax.jit
def _von_mises_draws(keys, loc, concentration):
    return jax.vmap(lambda k: mj.sample(k, mj.VonMises(loc, concentration)))(keys)


@pytest.mark.deep
def test_von_mises_sampling_at_nan_inf_and_huge_concentrations():
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    k = jnp.array([np.nan, np.inf, 1e19, 1e30, -1.0, 2.0], jnp.float32)
    draws = np.asarray(jax.vmap(lambda kk: _von_mises_draws(keys, jnp.float32(0.5), kk))(k))
    assert np.isnan(draws[0]).all() and np.isnan(draws[4]).all()
    assert (draws[1] == np.float32(0.5)).all()
    np.testing.assert_allclose(draws[2:4], 0.5, atol=1e-6)
    assert np.isfinite(draws[5]).all()
    assert np.isnan(np.asarray(_von_mises_draws(keys, jnp.float32(np.nan), jnp.float32(2.0)))).all()


@pytest.mark.deep  # a few seconds of compiling: CI's deep phase, for README's 5-minute suite
@pytest.mark.parametrize("dtype,k", [("float32", 3e7), ("float32", 1e12), ("float64", 1e16)])
def test_von_mises_at_huge_concentration_is_its_normal_limit(dtype, k):
    """For k >= 1/eps the draw is N(mu, 1/k) (total variation O(1/k)): a KS test of sqrt(k) (y - mu)."""
    with jax.enable_x64(dtype == "float64"):
        keys = jax.random.split(jax.random.PRNGKey(2), 2000)
        draws = np.asarray(_von_mises_draws(keys, jnp.asarray(0.0, dtype), jnp.asarray(k, dtype)), np.float64)
    assert stats.kstest(draws * math.sqrt(k), stats.norm.cdf).pvalue > 1e-3


def test_no_unbounded_while_loop_in_the_package():
    """Every ``while_loop`` in mle_jax has a counter in its condition (issue 19, cause 12)."""
    import pathlib
    import re
    root = pathlib.Path(mj.__file__).parent
    for path in root.rglob("*.py"):
        text = path.read_text()
        for match in re.finditer(r"while_loop\(\s*([^,]+),", text):
            condition = match.group(1).strip()
            if not condition.startswith("lambda"):  # a named condition: read its definition
                found = re.search(rf"def {re.escape(condition)}\(.*?(?=\ndef |\Z)", text, re.S)
                assert found, (path.name, condition)
                condition = found.group(0)
            assert "<" in condition, (path.name, "a while_loop's condition compares no counter", condition)


# ----------------------------------------------------------------------------- tail quantiles

@jax.jit
def _quantiles(theta, q):  # one theta at every level: a vmap over the levels (a level has a target's shape)
    return jax.vmap(lambda p: (mj.quantile(theta, p), isf(theta, p)))(q)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["laplace", "normal"])
def test_tail_quantiles_against_scipy(name, dtype, request):
    if dtype == "float64":
        request.getfixturevalue("x64")
    tiny = [1e-300, 1e-200] if dtype == "float64" else [1.5e-38, 1e-37]
    q = np.array(tiny + [1e-30, 1e-18, 1e-17, 1e-16, 1e-10, 0.3, 0.5, 0.7, 1 - 1e-7], dtype)
    frozen = stats.laplace(0.5, 2.0) if name == "laplace" else stats.norm(0.5, 2.0)
    theta = (mj.Laplace if name == "laplace" else mj.Normal)(jnp.asarray(0.5, dtype), jnp.asarray(2.0, dtype))
    lower, upper = _quantiles(theta, jnp.asarray(q))
    rtol = 2e-6 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(np.asarray(lower, np.float64), frozen.ppf(q.astype(np.float64)), rtol=rtol)
    np.testing.assert_allclose(np.asarray(upper, np.float64), frozen.isf(q.astype(np.float64)), rtol=rtol)


@pytest.mark.parametrize("build,frozen", [(mj.Laplace, stats.laplace), (mj.Normal, stats.norm)])
def test_interval_at_coverage_near_one_is_finite(build, frozen):
    for coverage in (1 - 1e-9, 1 - 1e-12):
        lower, upper = mj.interval(build(jnp.float32(0), jnp.float32(1)), coverage)
        ref = frozen.ppf(0.5 * (1 - coverage))
        np.testing.assert_allclose([float(lower), float(upper)], [ref, -ref], rtol=1e-5)
    both = mj.interval(mj.Independent(build(jnp.zeros(2), jnp.ones(2))), 1 - 1e-9)
    np.testing.assert_allclose(np.asarray(both), [[frozen.ppf(5e-10)] * 2, [frozen.isf(5e-10)] * 2], rtol=1e-5)


# ----------------------------------------------------------------------------- multivariate Normal

def _mvn_kl_reference(mp, lp, mq, lq):
    """``(tr(Sq^-1 Sp) + dmu' Sq^-1 dmu - D + log det Sq - log det Sp) / 2`` in float64 NumPy."""
    sp, sq = lp @ lp.T, lq @ lq.T
    dm = mq - mp
    return 0.5 * (np.trace(np.linalg.solve(sq, sp)) + dm @ np.linalg.solve(sq, dm) - len(mp)
                  + np.linalg.slogdet(sq)[1] - np.linalg.slogdet(sp)[1])


@jax.jit
def _mvn_kl(p, q):
    return mj.kl(p, q)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_mvn_kl_at_extreme_scales(dtype, request):
    if dtype == "float64":
        request.getfixturevalue("x64")
    d = 3
    eye = np.eye(d)
    def kl(a, b):
        return float(_mvn_kl(mj.MultivariateNormal(jnp.zeros(d, dtype), jnp.asarray(a * eye, dtype)),
                             mj.MultivariateNormal(jnp.ones(d, dtype), jnp.asarray(b * eye, dtype))))
    # diagonal closed form: sum_d (r^2 - 1 - 2 log r)/2 + |dmu|^2 / (2 b^2), r = a / b, by logs
    def truth(a, b):
        log_r = math.log(a) - math.log(b)
        return d * 0.5 * (math.exp(2 * log_r) - 1 - 2 * log_r) + d / (2 * b * b)
    np.testing.assert_allclose(kl(1e-20, 1e20), truth(1e-20, 1e20), rtol=1e-6)
    np.testing.assert_allclose(kl(1.0, 1.0), truth(1.0, 1.0), rtol=1e-6)
    big = kl(1e20, 1e-20)  # 1.5e80 overflows float32: +inf, never NaN
    assert big == np.inf if dtype == "float32" else abs(big / truth(1e20, 1e-20) - 1) < 1e-12
    rng = np.random.default_rng(0)
    lp, lq = (np.tril(rng.normal(size=(d, d)), -1) + np.diag(rng.uniform(0.5, 2, d)) for _ in range(2))
    mp, mq = rng.normal(size=d), rng.normal(size=d)
    got = float(_mvn_kl(mj.MultivariateNormal(jnp.asarray(mp, dtype), jnp.asarray(lp, dtype)),
                        mj.MultivariateNormal(jnp.asarray(mq, dtype), jnp.asarray(lq, dtype))))
    np.testing.assert_allclose(got, _mvn_kl_reference(mp, lp, mq, lq), rtol=1e-5 if dtype == "float32" else 1e-12)


def test_batched_mvn_gives_one_kl_log_prob_and_draw_per_example():
    rng = np.random.default_rng(1)
    n, d = 4, 2
    lp = np.tril(rng.normal(size=(n, d, d)), -1) + np.eye(d) * rng.uniform(0.5, 2, (n, d))[..., None]
    lq = np.tril(rng.normal(size=(n, d, d)), -1) + np.eye(d) * rng.uniform(0.5, 2, (n, d))[..., None]
    mp, mq, y = rng.normal(size=(n, d)), rng.normal(size=(n, d)), rng.normal(size=(n, d))
    p = mj.MultivariateNormal(jnp.asarray(mp, jnp.float32), jnp.asarray(lp, jnp.float32))
    q = mj.MultivariateNormal(jnp.asarray(mq, jnp.float32), jnp.asarray(lq, jnp.float32))
    np.testing.assert_allclose(mj.kl(p, q), [_mvn_kl_reference(mp[i], lp[i], mq[i], lq[i]) for i in range(n)],
                               rtol=1e-5)
    ref = [stats.multivariate_normal(mp[i], lp[i] @ lp[i].T).logpdf(y[i]) for i in range(n)]
    np.testing.assert_allclose(mj.log_prob(p, jnp.asarray(y, jnp.float32)), ref, rtol=1e-5)
    assert mj.sample(jax.random.PRNGKey(0), p).shape == (n, d)


@pytest.mark.deep
def test_batched_mixture_sample_and_mode():
    """Example i: equal weights on N(3i, 1), N(3i + 1, 1) and a far N(30i + 20, 1); the close pair is
    unimodal with its peak at 3i + 1/2 by symmetry (the far component adds < 1e-80 there)."""
    loc = jnp.arange(15.0).reshape(5, 3) * jnp.array([[1.0, 1.0, 10.0]])
    theta = mj.MixtureNormal(jnp.zeros((5, 3)), loc, jnp.ones((5, 3)))
    assert mj.sample(jax.random.PRNGKey(0), theta).shape == (5,)
    np.testing.assert_allclose(jax.jit(mj.mode)(theta), 3 * np.arange(5) + 0.5, atol=1e-5)


def test_take_of_one_example_is_refused_and_a_batch_is_indexed_by_example():
    with pytest.raises(ValueError, match="holds one example"):
        mj.take(mj.Categorical(jnp.arange(4.0)), 2)
    with pytest.raises(ValueError, match="holds one example"):
        mj.take(mj.MixtureNormal(jnp.zeros(3), jnp.zeros(3), jnp.ones(3)), 0)
    rows = mj.take(mj.Categorical(jnp.arange(8.0).reshape(2, 4)), 1)
    np.testing.assert_array_equal(rows.logits, [4.0, 5, 6, 7])


# ----------------------------------------------------------------------------- messages

def test_independent_of_a_single_example_says_so():
    with pytest.raises(ValueError, match="output axis of length D"):
        mj.log_prob(mj.Independent(mj.Normal(0.0, 1.0)), 0.0)
    with pytest.raises(ValueError, match="output axis of length D"):
        mj.entropy(mj.Independent(mj.Normal(0.0, 1.0)))


def test_a_distrax_distribution_is_not_sent_to_from_tfp():
    fake = type("Normal", (), {"__module__": "distrax._src.distributions.normal"})()
    with pytest.raises(TypeError, match="distrax distribution") as info:
        mj.log_prob(fake, 0.0)
    assert "mj.Normal(d.loc, d.scale)" in str(info.value) and "TensorFlow Probability distributions only" \
        in str(info.value)
