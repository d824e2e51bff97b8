"""The PlackettLuce theta and mj.plackett_luce(K) against brute-force enumeration of the K! rankings (the
product formula in float64 NumPy) and TFP's tfd.PlackettLuce; float32 and float64."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import mle_jax as mj

K = 4
RANKINGS = np.array(list(itertools.permutations(range(K))), np.int32)  # itertools order, as log_probs
LOGITS = np.array([0.3, -1.2, 2.0, 0.5])


def _brute(logits, ranking):
    """``prod_j w_{pi_j} / sum_{m >= j} w_{pi_m}`` with ``w = exp(s)``, in float64."""
    w = np.exp(np.asarray(logits, np.float64) - np.max(logits))
    return math.prod(w[ranking[j]] / w[ranking[j:]].sum() for j in range(len(ranking)))


@jax.jit
def _everything(theta, other, rankings):
    return {"log_prob": jax.vmap(mj.log_prob, in_axes=(None, 0))(theta, rankings), "entropy": mj.entropy(theta),
            "kl": mj.kl(theta, other), "mode": mj.mode(theta),
            "log_probs": mj.distributions.plackett_luce.log_probs(theta)}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_enumeration_against_the_product_formula(dtype):
    """Over all 24 rankings of 4 items: probabilities sum to 1 and equal the product formula; entropy, KL
    and the mode from the enumeration in NumPy."""
    other_logits = np.array([-0.5, 0.0, 1.0, 0.2])
    with jax.enable_x64(dtype == "float64"):
        theta, other = mj.PlackettLuce(jnp.asarray(LOGITS, dtype)), mj.PlackettLuce(jnp.asarray(other_logits, dtype))
        out = _everything(theta, other, jnp.asarray(RANKINGS))
    s, t = np.asarray(theta.logits, np.float64), np.asarray(other.logits, np.float64)
    p = np.array([_brute(s, r) for r in RANKINGS])
    q = np.array([_brute(t, r) for r in RANKINGS])
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(p.sum(), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.exp(np.asarray(out["log_prob"], np.float64)).sum(), 1.0, rtol=tol)
    np.testing.assert_allclose(out["log_prob"], np.log(p), rtol=tol, atol=tol)
    np.testing.assert_allclose(out["log_probs"], np.log(p), rtol=tol, atol=tol)
    np.testing.assert_allclose(out["entropy"], -np.sum(p * np.log(p)), rtol=tol, atol=tol)
    np.testing.assert_allclose(out["kl"], np.sum(p * np.log(p / q)), rtol=10 * tol, atol=tol)
    np.testing.assert_array_equal(out["mode"], RANKINGS[np.argmax(p)])
    np.testing.assert_array_equal(out["mode"], np.argsort(-LOGITS))


@pytest.mark.deep  # a Hessian per ranking: seconds of compiling
def test_fisher_is_the_expected_negative_hessian():
    """The enumerated Fisher information (outer products of scores) equals ``-sum_pi Pr(pi) H_pi`` (the Hessians
    of the product formula by autodiff: the information equality), is symmetric with the constant direction
    in its null space."""
    with jax.enable_x64(True):
        s = jnp.asarray(LOGITS)

        @jax.jit
        def both(s):
            hessians = jax.vmap(lambda r: jax.hessian(lambda z: mj.log_prob(mj.PlackettLuce(z), r))(s))(
                jnp.asarray(RANKINGS))
            p = jnp.exp(jax.vmap(mj.log_prob, in_axes=(None, 0))(mj.PlackettLuce(s), jnp.asarray(RANKINGS)))
            return mj.distributions.registry.fisher(mj.PlackettLuce(s)), -jnp.einsum("n,nij->ij", p, hessians)

        ours, expected = map(np.asarray, both(s))
    np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours @ np.ones(K), 0.0, atol=1e-12)


def test_non_permutations_and_extreme_logits():
    theta = mj.PlackettLuce(jnp.asarray(LOGITS, jnp.float32))
    for bad in ([0, 0, 1, 2], [0, 1, 2, 4], [-1, 0, 1, 2], [3, 2, 1, 1]):
        assert float(mj.log_prob(theta, jnp.array(bad))) == -np.inf, bad
    assert float(mj.log_prob(theta, jnp.array([0.5, 1.0, 2.0, 3.0]))) == -np.inf
    assert np.isnan(float(mj.log_prob(theta, jnp.array([np.nan, 1.0, 2.0, 3.0]))))
    np.testing.assert_allclose(mj.log_prob(theta, jnp.array([2.0, 3.0, 0.0, 1.0])),
                               np.log(_brute(LOGITS, np.array([2, 3, 0, 1]))), rtol=1e-5)
    # logits of 1e4 apart: exact in float32 (the log of a sum of exponentials would overflow)
    big = mj.PlackettLuce(jnp.array([1e4, 0.0, -1e4, 5e3], jnp.float32))
    np.testing.assert_allclose(mj.log_prob(big, jnp.array([0, 3, 1, 2])), 0.0, atol=1e-6)
    np.testing.assert_allclose(mj.log_prob(big, jnp.array([3, 0, 1, 2])), -5e3, rtol=1e-6)
    shifted = mj.PlackettLuce(jnp.asarray(LOGITS + 100.0, jnp.float32))  # only differences matter
    np.testing.assert_allclose(mj.log_prob(shifted, jnp.array([1, 0, 3, 2])),
                               mj.log_prob(theta, jnp.array([1, 0, 3, 2])), rtol=1e-4)


def test_entropy_beyond_enumeration_is_refused_by_name():
    theta = mj.PlackettLuce(jnp.zeros(9))
    with pytest.raises(NotImplementedError, match="K <= 8"):
        mj.entropy(theta)
    with pytest.raises(NotImplementedError, match="no closed-form mean.*ranking"):
        mj.mean(theta)


def test_family_loss_and_checks():
    """mj.losses.plackett_luce is -log of the product formula; non-permutations are named errors."""
    scores = np.array([[0.3, -1.2, 2.0], [0.0, 0.5, -0.5]], np.float32)
    rankings = np.array([[2, 0, 1], [1, 0, 2]])
    got = mj.losses.plackett_luce(jnp.asarray(scores), jnp.asarray(rankings))
    want = [-math.log(_brute(s, r)) for s, r in zip(scores, rankings)]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    np.testing.assert_allclose(mj.losses.plackett_luce(jnp.asarray(scores), jnp.asarray(rankings, jnp.float32)), got)
    r = mj.recipe(lambda p, x: p + 0 * x, mj.plackett_luce(3))
    params = r.init(jnp.zeros(3))
    x = np.zeros((2, 3), np.float32)
    for bad in ([[2, 0, 0], [1, 0, 2]], [[0, 1, 3], [1, 0, 2]], [[0.5, 1, 2], [1, 0, 2]]):
        with pytest.raises(ValueError, match=r"plackett_luce\(3\).*permutation of range\(3\)"):
            r.nll(params, x, np.asarray(bad))
    with pytest.raises(ValueError, match="num_items"):
        mj.plackett_luce(1)


@pytest.mark.deep
def test_tfp_twin():
    pytest.importorskip("tensorflow_probability")
    theta = mj.PlackettLuce(jnp.asarray(LOGITS, jnp.float32))
    tfp_dist = mj.to_tfp(theta)
    np.testing.assert_allclose(jax.vmap(tfp_dist.log_prob)(jnp.asarray(RANKINGS)),
                               jax.vmap(mj.log_prob, in_axes=(None, 0))(theta, jnp.asarray(RANKINGS)), rtol=1e-5,
                               atol=1e-6)
    back = mj.from_tfp(tfp_dist)
    assert type(back) is mj.PlackettLuce
    np.testing.assert_allclose(back.logits - back.logits[0], theta.logits - theta.logits[0], rtol=1e-5, atol=1e-6)
    with pytest.raises(TypeError, match="distrax has no PlackettLuce"):
        pytest.importorskip("distrax")
        mj.to_distrax(theta)


@pytest.mark.deep
def test_sampling_frequencies_match_the_exact_probabilities():
    """40000 Gumbel-max draws of rankings of 4 items: a chi-square test against the 24 exact probabilities,
    and batched thetas draw one ranking per example."""
    theta = mj.PlackettLuce(jnp.asarray(LOGITS, jnp.float32))
    keys = jax.random.split(jax.random.PRNGKey(0), 40_000)
    draws = np.asarray(jax.jit(jax.vmap(mj.sample, in_axes=(0, None)))(keys, theta))
    assert draws.dtype == np.int32 and (np.sort(draws, axis=1) == np.arange(K)).all()
    index = {tuple(r): i for i, r in enumerate(RANKINGS)}
    counts = np.bincount([index[tuple(d)] for d in draws], minlength=len(RANKINGS))
    expected = np.array([_brute(LOGITS, r) for r in RANKINGS]) * len(draws)
    assert stats.chisquare(counts, expected).pvalue > 1e-3
    batch = mj.PlackettLuce(jnp.asarray(np.stack([LOGITS, -LOGITS]), jnp.float32))
    assert mj.sample(jax.random.PRNGKey(1), batch).shape == (2, K)
