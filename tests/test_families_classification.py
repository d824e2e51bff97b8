"""mle_jax.families.classification: bernoulli, categorical and ordinal as families."""

import functools
import math

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import optax
import pytest
from hypothesis import given, settings, strategies as st
from scipy import special

import mle_jax as mj
from mle_jax import links


@pytest.mark.deep
def test_ordinal_probabilities_and_fit_against_statsmodels():
    from statsmodels.miscmodels.ordinal_model import OrderedModel
    family = mj.ordinal(4)
    fp = family.init(jnp.float32)
    theta = family.theta(fp, jnp.float32(0.4))
    cuts = np.asarray(fp["first_cut"]) + np.concatenate([[0.0], np.cumsum(np.log1p(np.exp(np.asarray(fp["gaps"]))))])
    cdf = np.concatenate([[0.0], special.expit(cuts - 0.4), [1.0]])
    np.testing.assert_allclose(mj.probs(theta), np.diff(cdf), rtol=1e-5)
    # a proportional-odds regression, against statsmodels' OrderedModel (logit)
    rng = np.random.default_rng(6)
    x = rng.normal(size=2000)
    latent = 1.3 * x + rng.logistic(size=2000)
    y = np.digitize(latent, [-1.0, 0.5, 2.0]).astype(np.int32)
    ref = OrderedModel(y, x[:, None], distr="logit").fit(method="bfgs", disp=0, maxiter=2000)
    with jax.enable_x64(True):
        r = mj.recipe(lambda p, x_i: p * x_i[0], family)
        res = mj.fit(r, r.init(jnp.float64(0.0)), jnp.asarray(x[:, None]), jnp.asarray(y), optax.lbfgs(),
                     steps=200, objective=mj.Objective(tol=1e-10))
        loglik = -float(r.nll(res.params, jnp.asarray(x[:, None]), jnp.asarray(y)))
    assert abs(loglik - ref.llf) <= 1e-6 * abs(ref.llf)
    np.testing.assert_allclose(float(res.params.model), ref.params[0], rtol=1e-4)


def test_label_smoothing_and_class_weights_in_one_reduction():
    logits = jnp.array([0.2, 0.1, -0.3])
    r = mj.recipe(lambda p, x_i: p, mj.categorical(3, label_smoothing=0.1, class_weights=[1.0, 2.0, 0.5]))
    params = r.init(logits)
    x, y = jnp.zeros((4, 1)), jnp.array([0, 1, 2, 1])
    w, m = jnp.array([1.0, 0.5, 2.0, 1.0]), jnp.array([True, True, True, False])
    log_p = np.log(special.softmax(np.asarray(logits, np.float64)))
    per = [-(0.9 * log_p[k] + 0.1 * log_p.mean()) for k in np.asarray(y)]
    cw = np.array([1.0, 2.0, 0.5])[np.asarray(y)]
    used = np.asarray(w) * cw * np.asarray(m)
    np.testing.assert_allclose(r.loss(params, x, y, weights=w, mask=m), np.sum(used * per) / np.sum(used), rtol=1e-6)
    np.testing.assert_allclose(r.loss(params, x, y, reduction="sum", weights=w, mask=m), np.sum(used * per), rtol=1e-6)
    # the NLL is untouched by training-loss options
    np.testing.assert_allclose(r.nll(params, x, y), -np.sum(log_p[np.asarray(y)]), rtol=1e-6)
    with pytest.raises(ValueError, match="class_weights"):
        mj.categorical(3, class_weights=[1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match="label_smoothing"):
        mj.categorical(3, label_smoothing=1.0)
    with pytest.raises(ValueError, match="independent"):
        mj.independent(mj.categorical(3, class_weights=[1, 1, 1]), 2)


def test_training_options_are_apart_from_the_distribution():
    plain, smoothed = mj.categorical(3), mj.categorical(3, label_smoothing=0.1, class_weights=[1, 2, 0.5])
    assert smoothed.spec == plain.spec
    assert dict(smoothed.training.options) == {"label_smoothing": 0.1, "class_weights": (1.0, 2.0, 0.5)}
    assert smoothed.name == "categorical(3, label_smoothing=0.1, class_weights=(1.0, 2.0, 0.5))"
    assert plain.training.term is None and plain.training.weight is None


def test_ordinal_and_categorical_share_the_labels_support():
    assert mj.ordinal(4).support == mj.categorical(4).support
    r = mj.recipe(lambda p, x_i: p, mj.ordinal(4))
    with pytest.raises(ValueError, match=r"ordinal\(4\): label 4 at index 2 is not in \[0, 4\)"):
        r.nll(r.init(jnp.float32(0.0)), jnp.zeros((3, 1)), jnp.array([0, 3, 4]))


def _ordinal_mpmath(cuts, f, label):
    """``log Pr(y = k)`` and its derivative in f at 50 digits, from the exact
    ``sig(u) - sig(l) = (e^-l - e^-u) / ((1 + e^-u)(1 + e^-l))`` (no 1 - 1 at f = -100)."""
    mp.mp.dps = 50
    c = [mp.mpf(float(v)) for v in cuts]

    def log_p(f):
        if label == 0:
            return -mp.log1p(mp.exp(f - c[0]))
        if label == len(c):
            return -mp.log1p(mp.exp(c[-1] - f))
        u, l = c[label] - f, c[label - 1] - f
        return mp.log(mp.exp(-l) - mp.exp(-u)) - mp.log1p(mp.exp(-u)) - mp.log1p(mp.exp(-l))
    f = mp.mpf(float(f))
    return float(log_p(f)), float(mp.diff(log_p, f))


@functools.cache
def _ordinal_program(k):
    """log Pr(y = j | f) for every score and label, its gradient in f and in the cutpoint parameters:
    one compiled program per K and dtype."""
    family = mj.ordinal(k)

    def one(fp, f, y):
        return family.log_prob(fp, f, y)
    value_and_grad = jax.value_and_grad(one, argnums=(0, 1))
    return jax.jit(jax.vmap(jax.vmap(value_and_grad, (None, None, 0)), (None, 0, None)))


def _check_ordinal(first, gaps, scores, dtype):
    """Ordinal log-probabilities and their gradients in f against mpmath (every gradient finite)."""
    k = len(gaps) + 2
    fp = {"first_cut": jnp.asarray(first, dtype), "gaps": links.softplus_inverse(jnp.asarray(gaps, dtype))}
    f = jnp.asarray(scores, dtype)
    (value, (grad_fp, grad_f)) = _ordinal_program(k)(fp, f, jnp.arange(k))
    step = np.log1p(np.exp(np.asarray(fp["gaps"], np.float64))) + float(jnp.finfo(dtype).eps)  # as rounded
    cuts = float(fp["first_cut"]) + np.concatenate([[0.0], np.cumsum(step)])
    want = np.array([[_ordinal_mpmath(cuts, fi, j) for j in range(k)] for fi in np.asarray(f, np.float64)])
    rtol, atol = (1e-5, 1e-5) if dtype == jnp.float32 else (1e-10, 1e-10)
    np.testing.assert_allclose(value, want[..., 0], rtol=rtol, atol=atol)
    np.testing.assert_allclose(grad_f, want[..., 1], rtol=rtol, atol=atol)
    assert all(np.isfinite(g).all() for g in jax.tree.leaves(grad_fp))
    np.testing.assert_allclose(special.logsumexp(np.asarray(value, np.float64), axis=1), 0.0, atol=10 * atol)


SCORES = [-1e4, -800.0, -100.0, -30.0, -1.0, 0.0, 0.4, 3.0, 100.0, 800.0, 1e4]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_ordinal_is_finite_with_finite_gradients_at_any_score(dtype):
    """log Pr(y = k) = log(sig(c_k - f) - sig(c_{k-1} - f)) against mpmath at scores where the
    sigmoids round to 1 - 1 (f = -100 in float32, -800 in float64: it was -inf with a NaN gradient),
    with gaps from 1e-6 to 50."""
    with jax.enable_x64(dtype == "float64"):
        _check_ordinal(-1.0, [1e-6, 1.0, 50.0], SCORES, jnp.dtype(dtype))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_ordinal_evaluated_alone_is_the_differentiated_value_bit_for_bit(dtype):
    """The kernel evaluated without differentiation takes its own two-step form (``_interval_value``: the selects,
    then a select-free sum) and the value and gradient the one-loop form of its JVP: both give the same bits at
    every score of ``SCORES`` (mpmath-checked above), at +-inf and NaN, and -inf off the labels (-1, K, 1.5, NaN)."""
    with jax.enable_x64(dtype == "float64"):
        k, dt = 5, jnp.dtype(dtype)
        family = mj.ordinal(k)
        fp = {"first_cut": jnp.asarray(-1.0, dt), "gaps": links.softplus_inverse(jnp.asarray([1e-6, 1.0, 50.0], dt))}
        f = jnp.asarray(SCORES + [np.inf, -np.inf, np.nan], dt)
        labels = jnp.asarray([-1.0, 0.0, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, np.nan], dt)
        grid = (jnp.repeat(f, labels.shape[0]), jnp.tile(labels, f.shape[0]))
        alone = jax.jit(jax.vmap(family.log_prob, (None, 0, 0)))(fp, *grid)
        with_grad = jax.jit(jax.vmap(jax.value_and_grad(family.log_prob, argnums=1), (None, 0, 0)))(fp, *grid)[0]
        np.testing.assert_array_equal(np.asarray(alone), np.asarray(with_grad))
        on = np.isin(np.asarray(grid[1]), np.arange(k)) & np.isfinite(np.asarray(grid[0]))
        assert np.all(np.isneginf(np.asarray(alone)[~np.isin(np.asarray(grid[1]), np.arange(k))]))
        step = np.log1p(np.exp(np.asarray(fp["gaps"], np.float64))) + float(jnp.finfo(dt).eps)  # as rounded
        cuts = float(fp["first_cut"]) + np.concatenate([[0.0], np.cumsum(step)])
        want = [_ordinal_mpmath(cuts, fi, int(yi))[0] for fi, yi in zip(np.asarray(grid[0], np.float64)[on],
                                                                      np.asarray(grid[1])[on])]
        rtol = 1e-5 if dt == jnp.float32 else 1e-10
        np.testing.assert_allclose(np.asarray(alone)[on], want, rtol=rtol, atol=rtol)


@settings(max_examples=4, deadline=None, derandomize=True)
@given(dtype=st.sampled_from(["float32", "float64"]), first=st.floats(-50, 50),
       gaps=st.lists(st.floats(math.log(1e-4), math.log(1e2)).map(math.exp), min_size=3, max_size=3),
       scores=st.lists(st.one_of(st.floats(-1e3, 1e3), st.floats(-30, 30)), min_size=len(SCORES),
                       max_size=len(SCORES)))
def test_ordinal_against_mpmath_for_drawn_cutpoints(dtype, first, gaps, scores):
    """As above for drawn first cutpoints, gaps (1e-4 to 100) and scores; the program compiled above."""
    with jax.enable_x64(dtype == "float64"):
        _check_ordinal(first, gaps, scores, jnp.dtype(dtype))
