"""mle_jax.families.classification: bernoulli, categorical and ordinal as families."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import special

import mle_jax as mj


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
                     steps=200, tol=1e-10)
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
    assert plain.loss is None and plain.loss_weight is None


def test_ordinal_and_categorical_share_the_labels_support():
    assert mj.ordinal(4).support == mj.categorical(4).support
    r = mj.recipe(lambda p, x_i: p, mj.ordinal(4))
    with pytest.raises(ValueError, match=r"ordinal\(4\): label 4 at index 2 is not in \[0, 4\)"):
        r.nll(r.init(jnp.float32(0.0)), jnp.zeros((3, 1)), jnp.array([0, 3, 4]))
