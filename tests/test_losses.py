"""mj.losses: per-example NLLs on raw outputs, against scipy / closed forms, the recipe, optax and
torch.nn's formulas."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import special, stats

import mle_jax as mj
from mle_jax import links

N = 6
RNG = np.random.default_rng(0)
MU, S, Y = RNG.normal(size=N), RNG.normal(size=N), RNG.normal(size=N) * 2
COUNTS = np.array([0, 1, 3, 0, 7, 2])
UNIT = RNG.uniform(0.05, 0.95, size=N)
LABELS = np.array([0, 2, 1, 3, 3, 0])
LOGITS = RNG.normal(size=(N, 4)) * 2
CUTS = np.array([-1.0, 0.2, 1.5])
WEIGHTS = np.array([1.0, 0.5, 2.0, 0.0])
SIDES = np.array([0, -1, 1, 0, 1, -1])


def eps():
    return np.finfo(jnp.result_type(float)).eps


def softplus(s):
    return np.logaddexp(0.0, s) + eps()


def expit_diff(f, y):  # ordinal: Pr(y = k) = sig(c_k - f) - sig(c_{k-1} - f)
    c = np.concatenate([[-np.inf], CUTS, [np.inf]])
    return np.log(special.expit(c[y + 1] - f) - special.expit(c[y] - f))


def mixture_ref(raw, y):
    logits, loc, s = raw[:, :2], raw[:, 2:4], raw[:, 4:]
    parts = special.log_softmax(logits, axis=1) + stats.norm.logpdf(y[:, None], loc, softplus(s))
    return special.logsumexp(parts, axis=1)


def mvn_ref(raw, y):
    out = []
    for r, yi in zip(raw, y):
        tril = np.array([[softplus(r[2]), 0.0], [r[3], softplus(r[4])]])
        out.append(stats.multivariate_normal.logpdf(yi, r[:2], tril @ tril.T))
    return np.array(out)


def censored_ref(raw, y):
    value, side = y[:, 0], y[:, 1]
    return np.where(side == 0, stats.norm.logpdf(value, raw),
                    np.where(side < 0, stats.norm.logcdf(value, raw), stats.norm.logsf(value, raw)))


def smoothed_ref(raw, y, e=0.1):
    log_p = special.log_softmax(raw, axis=1)
    return (1 - e) * log_p[np.arange(N), y] + e * log_p.mean(axis=1)


MU_S = np.stack([MU, S], axis=1)
SCALES = np.abs(S) + 0.3
# name: (mj.losses call, raw, y, log-likelihood reference in float64, family, fparams (raw form), class weights)
CASES = {
    "normal-fixed": (lambda r, y: mj.losses.normal(r, y, scale=0.7), MU, Y,
                     lambda r, y: stats.norm.logpdf(y, r, 0.7), lambda: mj.normal(0.7), None, None),
    "normal-softplus": (lambda r, y: mj.losses.normal(r, y), MU_S, Y,
                        lambda r, y: stats.norm.logpdf(y, r[:, 0], softplus(r[:, 1])),
                        lambda: mj.normal("softplus"), None, None),
    "normal-exp": (lambda r, y: mj.losses.normal(r, y, "exp"), MU_S, Y,
                   lambda r, y: stats.norm.logpdf(y, r[:, 0], np.exp(r[:, 1]) + eps()), lambda: mj.normal("exp"),
                   None, None),
    "normal-square": (lambda r, y: mj.losses.normal(r, y, "square"), MU_S, Y,
                      lambda r, y: stats.norm.logpdf(y, r[:, 0], np.sqrt(r[:, 1] ** 2 + eps() ** 2)),
                      lambda: mj.normal("square"), None, None),
    "normal-value": (lambda r, y: mj.losses.normal(r, y, scale=jnp.asarray(0.7)), MU, Y,
                     lambda r, y: stats.norm.logpdf(y, r, 0.7), lambda: mj.normal("learned"),
                     lambda: {"scale": links.softplus.inverse(jnp.asarray(0.7))}, None),
    "normal-beta-nll": (lambda r, y: mj.losses.normal(r, y, beta=0.5), MU_S, Y,
                        lambda r, y: softplus(r[:, 1]) * stats.norm.logpdf(y, r[:, 0], softplus(r[:, 1])),
                        lambda: mj.normal("softplus", beta=0.5), None, None),
    "laplace-fixed": (lambda r, y: mj.losses.laplace(r, y, 2.0), MU, Y, lambda r, y: stats.laplace.logpdf(y, r, 2.0),
                      lambda: mj.laplace(2.0), None, None),
    "laplace-softplus": (lambda r, y: mj.losses.laplace(r, y), MU_S, Y,
                         lambda r, y: stats.laplace.logpdf(y, r[:, 0], softplus(r[:, 1])), lambda: mj.laplace(), None,
                         None),
    "student_t-fixed": (lambda r, y: mj.losses.student_t(r, y, 3.0, 1.5), MU, Y,
                        lambda r, y: stats.t.logpdf(y, 3.0, r, 1.5), lambda: mj.student_t(3.0, 1.5), None, None),
    "student_t-values": (lambda r, y: mj.losses.student_t(r, y, jnp.asarray(2.5), jnp.asarray(1.5)), MU, Y,
                         lambda r, y: stats.t.logpdf(y, 2.5, r, 1.5), lambda: mj.student_t("learned", "learned"),
                         lambda: {"df": links.softplus.inverse(jnp.asarray(2.5)),
                                  "scale": links.softplus.inverse(jnp.asarray(1.5))}, None),
    "bernoulli": (lambda r, y: mj.losses.bernoulli(r, y), MU * 3, LABELS % 2,
                  lambda r, y: stats.bernoulli.logpmf(y, special.expit(r)), lambda: mj.bernoulli(), None, None),
    "bernoulli-soft": (lambda r, y: mj.losses.bernoulli(r, y, soft_labels=True), MU * 3, UNIT,
                       lambda r, y: y * np.log(special.expit(r)) + (1 - y) * np.log(special.expit(-r)),
                       lambda: mj.bernoulli(soft_labels=True), None, None),
    "categorical": (lambda r, y: mj.losses.categorical(r, y), LOGITS, LABELS,
                    lambda r, y: special.log_softmax(r, axis=1)[np.arange(N), y], lambda: mj.categorical(4), None,
                    None),
    "categorical-smoothing": (lambda r, y: mj.losses.categorical(r, y, label_smoothing=0.1), LOGITS, LABELS,
                              smoothed_ref, lambda: mj.categorical(4, label_smoothing=0.1), None, None),
    "categorical-weights": (lambda r, y: mj.losses.categorical(r, y, class_weights=WEIGHTS), LOGITS, LABELS,
                            lambda r, y: WEIGHTS[y] * special.log_softmax(r, axis=1)[np.arange(N), y],
                            lambda: mj.categorical(4, class_weights=WEIGHTS), None, WEIGHTS),
    "poisson": (lambda r, y: mj.losses.poisson(r, y), MU, COUNTS, lambda r, y: stats.poisson.logpmf(y, np.exp(r)),
                lambda: mj.poisson(), None, None),
    "gamma": (lambda r, y: mj.losses.gamma(r, y), MU_S, UNIT * 3,
              lambda r, y: stats.gamma.logpdf(y, softplus(r[:, 0]), scale=1 / softplus(r[:, 1])), lambda: mj.gamma(),
              None, None),
    "beta": (lambda r, y: mj.losses.beta(r, y), MU_S, UNIT,
             lambda r, y: stats.beta.logpdf(y, softplus(r[:, 0]), softplus(r[:, 1])), lambda: mj.beta(), None, None),
    "von_mises": (lambda r, y: mj.losses.von_mises(r, y), MU_S, Y,
                  lambda r, y: stats.vonmises.logpdf(y, softplus(r[:, 1]), r[:, 0]), lambda: mj.von_mises(), None,
                  None),
    "negative_binomial-value": (lambda r, y: mj.losses.negative_binomial(r, y, total_count=jnp.asarray(3.0)), MU,
                                COUNTS, lambda r, y: stats.nbinom.logpmf(y, 3.0, 3.0 / (3.0 + np.exp(r))),
                                lambda: mj.negative_binomial(),
                                lambda: {"total_count": links.softplus.inverse(jnp.asarray(3.0))}, None),
    "negative_binomial-per_example": (
        lambda r, y: mj.losses.negative_binomial(r, y, total_count="per_example"), MU_S, COUNTS,
        lambda r, y: stats.nbinom.logpmf(y, softplus(r[:, 1]), softplus(r[:, 1]) / (softplus(r[:, 1]) + np.exp(r[:, 0]))),
        lambda: mj.negative_binomial("per_example"), None, None),
    "mixture_normal": (lambda r, y: mj.losses.mixture_normal(r, y), RNG.normal(size=(N, 6)), Y, mixture_ref,
                       lambda: mj.mixture_normal(2), None, None),
    "mvn_cholesky": (lambda r, y: mj.losses.mvn_cholesky(r, y), RNG.normal(size=(N, 5)), RNG.normal(size=(N, 2)),
                     mvn_ref, lambda: mj.mvn_cholesky(2), None, None),
    "ordinal": (lambda r, y: mj.losses.ordinal(r, y, cutpoints=jnp.asarray(CUTS, r.dtype)), MU, LABELS, expit_diff,
                lambda: mj.ordinal(4),
                lambda: {"first_cut": jnp.asarray(CUTS[0]), "gaps": links.softplus.inverse(jnp.asarray(np.diff(CUTS)))},
                None),
    "independent": (lambda r, y: mj.losses.independent(r, y, mj.normal(0.5)), LOGITS[:, :3], LOGITS[:, 1:],
                    lambda r, y: stats.norm.logpdf(y, r, 0.5).sum(axis=1), lambda: mj.independent(mj.normal(0.5), 3),
                    None, None),
    "censored": (lambda r, y: mj.losses.censored(r, y, mj.normal(1.0)), MU, np.stack([Y, SIDES], axis=1),
                 censored_ref, lambda: mj.censored(mj.normal(1.0)), None, None),
}


def _float(a, dtype):
    a = np.asarray(a)
    return jnp.asarray(a, dtype) if np.issubdtype(a.dtype, np.floating) else jnp.asarray(a)


@pytest.mark.parametrize("name", CASES)
def test_equals_scipy_and_the_recipe(name):
    """Each call against scipy or a closed form, and against the recipe on the same raw outputs: its
    per-example log_prob, its fused (kernel and affine) mean NLL, its training loss (beta-NLL, label
    smoothing, class weights); a call given values equals the generic call given the family's raw form."""
    call, raw, y, ref, family, fparams, class_weights = CASES[name]
    family, fparams = family(), fparams and fparams()
    r = mj.recipe(lambda p, x: x, family, validate=False)
    params = mj.Params({}, family.init(jnp.float32) if fparams is None else fparams)
    trains_otherwise = family.training.term is not None or family.training.weight is not None

    @jax.jit  # one compilation for all of them
    def together(params, raw, y):
        ours = call(raw, y)
        generic = ours if fparams is None else mj.losses.loss(family, raw, y, params.family)
        theirs = r.loss(params, raw, y) if trains_otherwise else -r.log_prob(params, raw, y)
        return ours, generic, theirs, r.mean_nll(params, raw, y), mj.losses.nll(family, raw, y, params.family)

    got, generic, theirs, mean_nll, nll = together(params, _float(raw, jnp.float32), _float(y, jnp.float32))
    assert got.shape == (N,) and got.dtype == jnp.float32
    np.testing.assert_allclose(got, -ref(raw, y), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got, generic, rtol=1e-6, atol=1e-6)
    count = N if class_weights is None else np.sum(class_weights[np.asarray(y)])
    np.testing.assert_allclose(jnp.sum(got) / count if trains_otherwise else got, theirs, rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(jnp.mean(nll), mean_nll, rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["normal-value", "student_t-values", "ordinal", "mvn_cholesky"])
def test_float64_follows_the_input(name, x64):
    call, raw, y, ref, *_ = CASES[name]
    got = jax.jit(call)(jnp.asarray(raw, jnp.float64), _float(y, jnp.float64))
    assert got.dtype == jnp.float64
    np.testing.assert_allclose(got, -ref(raw, y), rtol=1e-10, atol=1e-12)


@jax.jit
def _ours_and_optax(z, labels, logit, hard, soft, mu, y):
    e = 0.1
    smooth = optax.smooth_labels(jax.nn.one_hot(labels, 4), e)
    return ((mj.losses.categorical(z, labels), optax.losses.softmax_cross_entropy_with_integer_labels(z, labels)),
            (mj.losses.categorical(z, labels, label_smoothing=e), optax.losses.softmax_cross_entropy(z, smooth)),
            (mj.losses.bernoulli(logit, hard), optax.losses.sigmoid_binary_cross_entropy(logit, hard)),
            (mj.losses.bernoulli(logit, soft, soft_labels=True), optax.losses.sigmoid_binary_cross_entropy(logit, soft)),
            (mj.losses.normal(mu, y, scale=1.0), optax.losses.squared_error(mu, y) / 2 + 0.5 * math.log(2 * math.pi)))


def test_optax_where_they_overlap():
    logit = jnp.array([-1e4, -30.0, -1.0, 0.0, 2.0, 1e4], jnp.float32)
    pairs = _ours_and_optax(jnp.asarray(LOGITS, jnp.float32), jnp.asarray(LABELS), logit, jnp.array([0, 1, 1, 0, 1, 1]),
                            jnp.asarray(UNIT, jnp.float32), jnp.asarray(MU, jnp.float32), jnp.asarray(Y, jnp.float32))
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


def _torch_formulas():
    """torch.nn's losses with reduction='none', written from their documented formulas (float64
    NumPy): GaussianNLLLoss(full=True), PoissonNLLLoss(log_input=True, full=False, which leaves out
    log y!), BCEWithLogitsLoss and CrossEntropyLoss(label_smoothing=e)."""
    var, e = np.exp(S) ** 2, 0.1
    log_p = LOGITS - special.logsumexp(LOGITS, axis=1, keepdims=True)
    logit, hard = 3 * MU, (Y > 0).astype(np.float64)
    return {
        "gaussian": 0.5 * (np.log(var) + (MU - Y) ** 2 / var) + 0.5 * math.log(2 * math.pi),
        "poisson": np.exp(MU) - COUNTS * MU,
        "bce": np.maximum(logit, 0) - logit * hard + np.log1p(np.exp(-np.abs(logit))),
        "cross_entropy": -(1 - e) * log_p[np.arange(N), LABELS] - e * log_p.mean(axis=1),
    }, (var, e, logit, hard)


def _torch_itself(var, e, logit, hard):
    """The same four from torch, where it is installed (it is not a test dependency: its Linux wheel
    brings the CUDA libraries); None otherwise."""
    try:
        import torch
    except ImportError:
        return None
    t = lambda a: torch.tensor(np.asarray(a), dtype=torch.float64)  # noqa: E731
    nn = torch.nn
    return {
        "gaussian": nn.GaussianNLLLoss(full=True, reduction="none", eps=0.0)(t(MU), t(Y), t(var)).numpy(),
        "poisson": nn.PoissonNLLLoss(log_input=True, full=False, reduction="none")(t(MU), t(COUNTS)).numpy(),
        "bce": nn.BCEWithLogitsLoss(reduction="none")(t(logit), t(hard)).numpy(),
        "cross_entropy": nn.CrossEntropyLoss(label_smoothing=e, reduction="none")(
            t(LOGITS), torch.tensor(LABELS)).numpy(),
    }


@pytest.mark.deep  # a few seconds of compiling: CI's deep phase, for README's 5-minute suite
def test_torch_losses_where_they_overlap(x64):
    """Where torch.nn has the same loss: equal to its formula (and to torch itself where installed).
    torch's PoissonNLLLoss drops log y!, and its full=True form replaces it by Stirling's
    approximation, so ours minus the exact lgamma(y + 1) is compared."""
    formulas, (var, e, logit, hard) = _torch_formulas()
    ours = {
        "gaussian": mj.losses.normal(jnp.asarray(MU), jnp.asarray(Y), scale=jnp.sqrt(jnp.asarray(var))),
        "poisson": mj.losses.poisson(jnp.asarray(MU), jnp.asarray(COUNTS)) - special.gammaln(COUNTS + 1.0),
        "bce": mj.losses.bernoulli(jnp.asarray(logit), jnp.asarray(hard, jnp.int32)),
        "cross_entropy": mj.losses.categorical(jnp.asarray(LOGITS), jnp.asarray(LABELS), label_smoothing=e),
    }
    for reference in filter(None, (formulas, _torch_itself(var, e, logit, hard))):
        for name, value in ours.items():
            np.testing.assert_allclose(np.asarray(value), reference[name], rtol=1e-12, atol=1e-12, err_msg=name)


@jax.jit
def _with_grads(z, labels, logit, hard):
    def categorical(z):
        return jnp.sum(mj.losses.categorical(z, labels))

    def bernoulli(z):
        return jnp.sum(mj.losses.bernoulli(z, hard))
    return (mj.losses.categorical(z, labels), jax.grad(categorical)(z),
            mj.losses.bernoulli(logit, hard), jax.grad(bernoulli)(logit))


def test_infinite_and_extreme_logits_are_exact():
    inf = jnp.inf
    z = jnp.array([[0.0, -inf, -inf], [1e30, -1e30, 0.0], [0.0, -inf, -inf], [1e30, -1e30, 0.0]], jnp.float32)
    logit = jnp.array([inf, -inf, inf, -inf, 1e4, -1e4], jnp.float32)
    nll, grad, bce, bce_grad = _with_grads(z, jnp.array([0, 0, 1, 1]), logit, jnp.array([1, 0, 0, 1, 1, 1]))
    np.testing.assert_array_equal(nll, [0.0, 0.0, inf, np.float32(2e30)])
    np.testing.assert_array_equal(grad[:2], np.zeros((2, 3)))  # softmax - onehot at p = onehot
    np.testing.assert_array_equal(bce, [0.0, 0.0, inf, inf, 0.0, 1e4])
    np.testing.assert_array_equal(bce_grad, [0.0, 0.0, 1.0, -1.0, 0.0, -1.0])  # sigmoid(z) - y


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_low_precision_follows_the_input(dtype):
    """Half-precision raw outputs and targets: the terms in their dtype, computed in float32 (float32's link floor)
    and rounded once: scipy's on the rounded inputs to a rounding of the dtype (computed in bfloat16 with its
    floor of 2^-7 they were up to 3 of its roundings off the floorless value)."""
    raw, y = jnp.asarray(MU_S, dtype), jnp.asarray(Y, dtype)
    got = mj.losses.normal(raw, y)
    assert got.dtype == dtype
    r64, y64 = np.asarray(raw, np.float64), np.asarray(y, np.float64)  # the rounded inputs, exactly
    floor = float(jnp.finfo(jnp.float32).eps)  # the link's floor is the computation's: float32's
    want = -stats.norm.logpdf(y64, r64[:, 0], np.logaddexp(0, r64[:, 1]) + floor)
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=float(jnp.finfo(dtype).eps))


def test_grad_under_jit_and_a_learned_scale():
    """d/ds of the mean NLL with sigma = softplus(s) vanishes at the closed form sigma^2 = mean residual^2;
    the categorical gradient is softmax - onehot; beta = 1 gives the mean the MSE's gradient."""
    mu, y, raw = jnp.asarray(MU, jnp.float32), jnp.asarray(Y, jnp.float32), jnp.asarray(MU_S, jnp.float32)
    sigma = jnp.sqrt(jnp.mean(jnp.square(y - mu)))

    def mean_nll(s):
        return jnp.mean(mj.losses.normal(mu, y, scale=jax.nn.softplus(s)))

    @jax.jit
    def grads(s, z):
        return (mean_nll(s), jax.grad(mean_nll)(s),
                jax.grad(lambda z: jnp.sum(mj.losses.categorical(z, jnp.asarray(LABELS))))(z),
                jax.grad(lambda r: jnp.sum(mj.losses.normal(r, y, beta=1.0)))(raw))

    value, grad_s, grad_z, grad_beta = grads(jnp.log(jnp.expm1(sigma)), jnp.asarray(LOGITS, jnp.float32))
    assert abs(float(grad_s)) < 1e-5
    np.testing.assert_allclose(value, 0.5 + jnp.log(sigma) + 0.5 * math.log(2 * math.pi), rtol=1e-5)
    np.testing.assert_allclose(grad_z, special.softmax(LOGITS, axis=1) - np.eye(4)[LABELS], atol=1e-6)
    np.testing.assert_allclose(grad_beta[:, 0], MU - Y, rtol=1e-5)  # sigma^2 (mu - y) / sigma^2


@jax.jit
def _per_example_values(mu, y, scales, counts):
    return (mj.losses.normal(mu, y, scale=scales),
            mj.losses.negative_binomial(mu, counts, total_count=scales))


def test_per_example_values():
    normal, nb = _per_example_values(jnp.asarray(MU, jnp.float32), jnp.asarray(Y, jnp.float32),
                                     jnp.asarray(SCALES, jnp.float32), jnp.asarray(COUNTS))
    np.testing.assert_allclose(normal, -stats.norm.logpdf(Y, MU, SCALES), rtol=1e-5)
    np.testing.assert_allclose(nb, -stats.nbinom.logpmf(COUNTS, SCALES, SCALES / (SCALES + np.exp(MU))), rtol=1e-5)


BAD = {
    "y (N, 1) for a scalar family": (lambda: mj.losses.normal(jnp.zeros(3), jnp.zeros((3, 1)), 1.0),
                                     ValueError, "raw has shape (3,) and y has shape (3, 1)"),
    "raw (N, 3) for (mu, s)": (lambda: mj.losses.normal(jnp.zeros((3, 3)), jnp.zeros(3)), ValueError,
                               "needs raw of shape (N, 2)"),
    "N disagree": (lambda: mj.losses.bernoulli(jnp.zeros(3), jnp.zeros(4, int)), ValueError, "with the same N"),
    "raw without a batch axis": (lambda: mj.losses.poisson(jnp.float32(1.0), jnp.float32(1.0)), ValueError,
                                 "raw has shape ()"),
    "integer raw": (lambda: mj.losses.poisson(jnp.zeros(3, int), jnp.zeros(3)), TypeError, "floating point"),
    "label off the support": (lambda: mj.losses.categorical(jnp.zeros((2, 3)), jnp.array([0, 3])), ValueError,
                              "label 3 at index 1 is not in [0, 3)"),
    "one-hot labels": (lambda: mj.losses.categorical(jnp.zeros((2, 3)), jnp.eye(3)[:2]), ValueError,
                       "y has shape (2, 3)"),
    "1-D logits": (lambda: mj.losses.categorical(jnp.zeros(3), jnp.array([0, 1, 2])), ValueError, "(N, K)"),
    "soft label as hard": (lambda: mj.losses.bernoulli(jnp.zeros(2), jnp.array([0.3, 1.0])), ValueError,
                           "soft_labels=True"),
    "scale 'learned' without value": (lambda: mj.losses.normal(jnp.zeros(2), jnp.zeros(2), "learned"), ValueError,
                                      "needs the value"),
    "negative scale value": (lambda: mj.losses.normal(jnp.zeros(2), jnp.zeros(2), jnp.array([1.0, -1.0])),
                             ValueError, "scale -1.0 at index 1 is not finite and >"),
    "boolean scale": (lambda: mj.losses.normal(jnp.zeros(2), jnp.zeros(2), True), TypeError,
                      "scale must be a positive number or a real array; got True"),
    "zero fixed scale": (lambda: mj.losses.normal(jnp.zeros(2), jnp.zeros(2), 0.0), ValueError, "> 0"),
    "unordered cutpoints": (lambda: mj.losses.ordinal(jnp.zeros(2), jnp.array([0, 1]), cutpoints=jnp.array([1.0, 0.0])),
                            ValueError, "cutpoint gaps"),
    "owned parameters missing": (lambda: mj.losses.nll(mj.normal("learned"), jnp.zeros(2), jnp.zeros(2)), ValueError,
                                 "owns parameters ['scale']"),
    "fparams of the wrong shape": (
        lambda: mj.losses.nll(mj.normal("learned"), jnp.zeros(2), jnp.zeros(2), {"scale": jnp.zeros(3)}), ValueError,
        "['scale'] has shape (3,); expected () (shared) or (2,)"),
    "not a family": (lambda: mj.losses.nll(mj.Normal(0.0, 1.0), jnp.zeros(2), jnp.zeros(2)), TypeError,
                     "must be an mle_jax Family"),
    "mixture width": (lambda: mj.losses.mixture_normal(jnp.zeros((2, 4)), jnp.zeros(2)), ValueError, "(N, 3K)"),
}


@pytest.mark.parametrize("name", BAD)
def test_bad_calls_raise_clearly(name):
    call, error, text = BAD[name]
    with pytest.raises(error) as info:
        call()
    assert text in str(info.value)


def test_shape_errors_also_inside_jit():
    with pytest.raises(ValueError, match=r"raw has shape \(4, 2\) and y has shape \(4, 1\)"):
        jax.jit(lambda r, y: mj.losses.normal(r, y))(jnp.zeros((4, 2)), jnp.zeros((4, 1)))


def test_one_function_per_family_of_the_table_and_nothing_else():
    """mj.losses is generated from mle_jax.families.FAMILIES: one function per family, plus nll and
    loss; no helper (cast, fail_entries, is_concrete, jnp, ...) is a public attribute."""
    from mle_jax.families import FAMILIES
    public = {name for name in vars(mj.losses) if not name.startswith("_")}
    assert public == set(mj.losses.__all__) == set(FAMILIES) | {"nll", "loss"}
    assert all(getattr(mj, name) is FAMILIES[name].make for name in FAMILIES)  # the public constructors


def test_no_import_of_the_package_root():
    import ast
    import inspect as inspect_
    from mle_jax import _losses
    for module in (mj.losses, _losses):
        for node in ast.walk(ast.parse(inspect_.getsource(module))):
            if isinstance(node, ast.Import):
                assert all(alias.name.split(".")[0] != "mle_jax" for alias in node.names), module.__name__
            if isinstance(node, ast.ImportFrom):
                assert node.level > 0 or not (node.module or "").startswith("mle_jax"), module.__name__


SIGNATURES = {  # the constructor's options, less its sizes (read from shapes) and init_* values
    "normal": "(raw, y, scale='softplus', *, beta=None, mask=None, validate=True)",
    "student_t": "(raw, y, df=4.0, scale='softplus', *, mask=None, validate=True)",
    "bernoulli": "(logits, labels, *, soft_labels=False, mask=None, validate=True)",
    "categorical": "(logits, labels, *, label_smoothing=0.0, class_weights=None, mask=None, validate=True)",
    "poisson": "(log_rate, counts, *, mask=None, validate=True)",
    "negative_binomial": "(raw, y, *, total_count, mask=None, validate=True)",
    "ordinal": "(raw, y, *, cutpoints, mask=None, validate=True)",
    "mvn_cholesky": "(raw, y, *, mask=None, validate=True)",
    "independent": "(raw, y, family, fparams=None, *, shared=True, mask=None, validate=True)",
    "censored": "(raw, y, family, fparams=None, *, mask=None, validate=True)",
}


@pytest.mark.parametrize("name", SIGNATURES)
def test_signature_and_docstring_come_from_the_constructor(name):
    import inspect as inspect_
    fn = getattr(mj.losses, name)
    plain = inspect_.Signature([p.replace(annotation=p.empty) for p in inspect_.signature(fn).parameters.values()])
    assert str(plain) == SIGNATURES[name]
    assert fn.__name__ == name and inspect_.cleandoc(getattr(mj, name).__doc__).splitlines()[0] in fn.__doc__


def test_a_value_option_given_as_learned_asks_for_the_value():
    with pytest.raises(ValueError, match=r"mj.losses.negative_binomial: total_count='learned' needs the value"):
        mj.losses.negative_binomial(jnp.zeros(2), jnp.zeros(2), total_count="learned")
    with pytest.raises(TypeError, match="positional"):
        mj.losses.negative_binomial(jnp.zeros(2), jnp.zeros(2), 3.0)  # keyword-only, as before


def test_mask_drops_rows_and_their_derivatives_whatever_their_targets():
    """``mask=``: a dropped row's term and every derivative are exactly 0 though its target is NaN or off the
    support (traced: no value check), the kept rows' terms are scipy's; without the mask the Normal's gradient at a
    NaN target is NaN (the select after the loss keeps the NaN derivative)."""
    logits = jnp.array([[0.2, -0.1, 0.4], [1.0, 0.0, -1.0], [0.3, 0.3, 0.1]])
    labels = jnp.array([2, -1, 0])   # -1: a padded row
    mu, y = jnp.array([0.5, -0.2, 1.0]), jnp.array([1.0, jnp.nan, 0.0])
    log_rate, counts = jnp.array([0.1, 0.5, -0.3]), jnp.array([1.0, jnp.nan, 2.0])
    keep = jnp.array([True, False, True])

    def total(fn, raw, y, mask, **kw):
        return jnp.sum(fn(raw, y, mask=mask, **kw))

    def plain(fn, raw, y, **kw):
        return jnp.sum(jnp.where(keep, fn(raw, y, **kw), 0.0))
    cases = [(mj.losses.categorical, logits, labels, {},
              -stats.multinomial.logpmf([[0, 0, 1], [1, 0, 0]], 1, np.asarray(jax.nn.softmax(logits[::2])))),
             (mj.losses.normal, mu, y, {"scale": 0.5}, -stats.norm.logpdf([1.0, 0.0], [0.5, 1.0], 0.5)),
             (mj.losses.poisson, log_rate, counts, {}, -stats.poisson.logpmf([1, 2], np.exp([0.1, -0.3])))]
    for fn, raw, y, kw, ref in cases:
        terms = jax.jit(lambda r, y, m, fn=fn, kw=kw: fn(r, y, mask=m, **kw))(raw, y, keep)
        np.testing.assert_allclose(terms[::2], ref, rtol=1e-6)
        assert terms[1] == 0.0
        g = jax.jit(jax.grad(lambda r, y, m, fn=fn, kw=kw: total(fn, r, y, m, **kw)))(raw, y, keep)
        assert np.all(np.isfinite(g)) and np.all(np.asarray(g)[1] == 0.0)
        bad = jax.jit(jax.grad(lambda r, y, fn=fn, kw=kw: plain(fn, r, y, **kw)))(raw, y)
        assert fn is not mj.losses.normal or not np.all(np.isfinite(bad))


def test_mask_shape_and_dtype_are_checked():
    with pytest.raises(ValueError, match=r"mask must be booleans .* of shape \(3,\)"):
        mj.losses.poisson(jnp.zeros(3), jnp.zeros(3), mask=jnp.ones(2, bool))
    with pytest.raises(ValueError, match=r"mask must be booleans"):
        mj.losses.poisson(jnp.zeros(3), jnp.zeros(3), mask=jnp.ones(3, jnp.complex64))
    with pytest.raises(ValueError, match=r"boolean \(or 0/1\)"):   # floats 0/1, as the recipe reads a mask
        mj.losses.poisson(jnp.zeros(3), jnp.zeros(3), mask=jnp.array([1.0, 0.5, 0.0]))
    np.testing.assert_array_equal(mj.losses.poisson(jnp.zeros(3), jnp.ones(3), mask=jnp.array([1.0, 0.0, 1.0])),
                                  mj.losses.poisson(jnp.zeros(3), jnp.ones(3), mask=jnp.array([True, False, True])))
