"""Adversarial checks of the split kernels (``families.Split``: ``Recipe.objective(..., data=)``, ``Recipe.data_term``)
and the count densities under them: a row off the support that the mask drops (targets not validated) adds nothing
to the value or the gradient, in the full kernel and in the split (free part + the data term summed once)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import mle_jax as mj


def _poisson_case():
    rng = np.random.default_rng(11)
    x = rng.normal(size=(12, 2))
    y = rng.poisson(np.exp(x @ np.array([0.4, -0.3]) + 1.0)).astype(np.float64)
    y[:2] = [12.0, 0.0]
    return mj.poisson(), x, y, 3, np.inf  # row 3 masked: y = +inf (not a count)


def _binomial_case():
    rng = np.random.default_rng(12)
    x = rng.normal(size=(12, 2))
    trials = rng.integers(0, 25, size=12).astype(np.float64)
    successes = rng.binomial(trials.astype(int), 0.4).astype(np.float64)
    y = np.column_stack([successes, trials])
    return mj.binomial(), x, y, 3, [3.0, np.inf]  # row 3 masked: infinitely many trials


@pytest.mark.parametrize("case", [_poisson_case, _binomial_case], ids=["poisson", "binomial"])
def test_a_masked_row_off_the_support_adds_nothing_to_value_or_gradient(case):
    """The masked row's target is +inf (validate=False): the NLL and its gradient, by the kernel and by the split
    (``objective(..., data=data_term(...))``), equal scipy's NLL of the other rows and the closed-form score
    ``-X'(y - mu)`` / ``-X'(k - n p)`` of the other rows, not NaN."""
    family, x, y, bad, value = case()
    with jax.enable_x64(True):
        r = mj.recipe(mj.models.linear(2, dtype=jnp.float64).apply, family, validate=False)
        params = r.init({"w": jnp.asarray([0.3, -0.2]), "b": jnp.asarray(0.5)})
        y_bad = y.copy()
        y_bad[bad] = value
        mask = np.arange(len(x)) != bad
        xs, ys, ms = jnp.asarray(x), jnp.asarray(y_bad), jnp.asarray(mask)

        def by_kernel(p):
            return r.reduce(p, xs, ys, None, ms)

        def by_split(p):
            data = r.data_term(ys, None, ms, "loss", "sum", jnp.float64)
            return r.objective(p, xs, ys, None, ms, "loss", "sum", data=data)[0]
        got = [jax.jit(jax.value_and_grad(f))(params) for f in (by_kernel, by_split)]  # one program each, not op by op
    eta = x @ np.array([0.3, -0.2]) + 0.5
    keep = mask
    if family.name.startswith("poisson"):
        nll = -stats.poisson.logpmf(y[keep], np.exp(eta[keep])).sum()
        resid = y - np.exp(eta)
    else:
        p = 1 / (1 + np.exp(-eta))
        nll = -stats.binom.logpmf(y[keep, 0], y[keep, 1], p[keep]).sum()
        resid = y[:, 0] - y[:, 1] * p
    score_w, score_b = -(x[keep].T @ resid[keep]), -resid[keep].sum()
    for value_got, grad in got:
        np.testing.assert_allclose(float(value_got), nll, rtol=1e-12)
        np.testing.assert_allclose(np.asarray(grad.model["w"]), score_w, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(float(grad.model["b"]), score_b, rtol=1e-12, atol=1e-12)


@pytest.mark.deep  # 1.5-4 s each (three families' programs compile)
@pytest.mark.parametrize("dtype, reduction", [
    ("float64", "mean"), pytest.param("float64", "sum", marks=pytest.mark.deep),
    pytest.param("float32", "mean", marks=pytest.mark.deep), pytest.param("float32", "sum", marks=pytest.mark.deep)])
def test_split_objective_is_the_weighted_masked_nll_for_every_split_family(dtype, reduction):
    """``objective(..., data=data_term(...))`` (what a full-batch fit evaluates) against scipy's log-pmf / log-pdf,
    weighted (zero weights included), masked, with integer targets (the Poisson's, the binomial's pairs, trials 0
    and successes = trials, counts past 2^24 in float64) and the Gamma GLM's shape learned; its gradient is the
    kernel's (``reduce``)."""
    rng = np.random.default_rng(7)
    n = 40
    x = rng.normal(size=(n, 2))
    eta = x @ np.array([0.3, -0.2]) + 0.5
    w = rng.uniform(0.0, 2.0, size=n)
    w[:3] = 0.0
    mask = rng.uniform(size=n) > 0.25
    big = 10**9 if dtype == "float64" else 10**6
    counts = rng.poisson(np.exp(eta))
    counts[:4] = [0, 9, 10, big]
    trials = rng.integers(0, 30, size=n)
    trials[:4] = [0, 5, 20, big]
    successes = rng.binomial(trials, 0.4)
    successes[1:4] = [5, 10, big // 3]
    shape_raw = 0.7
    cases = [(mj.poisson(), counts, lambda e: stats.poisson.logpmf(counts, np.exp(e))),
             (mj.binomial(), np.column_stack([successes, trials]),
              lambda e: stats.binom.logpmf(successes, trials, 1 / (1 + np.exp(-e)))),
             (mj.gamma("mean"), rng.gamma(2.0, np.exp(eta) / 2.0), None)]
    rtol = 1e-5 if dtype == "float32" else 1e-11
    for family, y, logpmf in cases:
        with jax.enable_x64(dtype == "float64"):
            dt = jnp.dtype(dtype)
            r = mj.recipe(mj.models.linear(2, dtype=dt).apply, family)
            params = r.init({"w": jnp.asarray([0.3, -0.2], dt), "b": jnp.asarray(0.5, dt)})
            if family.name.startswith("gamma"):
                params = params._replace(family={"shape": jnp.asarray(shape_raw, dt)})
            args = (jnp.asarray(x, dt), jnp.asarray(y), jnp.asarray(w, dt), jnp.asarray(mask))
            r.check(*args)

            def split(p):
                data = r.data_term(args[1], args[2], args[3], "loss", reduction, dt)
                return r.objective(p, *args, "loss", reduction, data=data)[0]
            value, grad = jax.value_and_grad(split)(params)
            kernel_value, kernel_grad = jax.value_and_grad(lambda p: r.reduce(p, *args, reduction=reduction))(params)
        e = np.asarray(x @ np.array([0.3, -0.2], dtype) + np.asarray(0.5, dtype), np.float64)
        if logpmf is None:
            a = float(np.logaddexp(0.0, shape_raw)) + float(jnp.finfo(dt).eps)
            terms = stats.gamma.logpdf(y, a, scale=np.exp(e) / a)
        else:
            terms = logpmf(e)
        total = -np.sum(np.where(mask, w * terms, 0.0))
        want = total / np.sum(w * mask) if reduction == "mean" else total
        scale = np.sum(np.where(mask, w * np.abs(terms), 0.0)) / (np.sum(w * mask) if reduction == "mean" else 1)
        assert abs(float(value) - want) <= rtol * scale, (family.name, float(value), want)
        for a_leaf, b_leaf in zip(jax.tree_util.tree_leaves(grad), jax.tree_util.tree_leaves(kernel_grad)):
            np.testing.assert_allclose(np.asarray(a_leaf), np.asarray(b_leaf), rtol=rtol * 10, atol=rtol * scale)


@pytest.mark.deep  # ~4 s: eager dispatch of each example
def test_ordinal_value_eager_equals_jitted_and_differentiated_bits():
    """The float64 ordinal value evaluated eagerly one example at a time (no jit, no vmap: the two-step
    ``_interval_value``), jitted over a batch, and as the primal of ``value_and_grad`` in the cutpoints and in
    the score: the same bits at scores from -1e30 to 1e30, gaps from 1e-6 to 1e3 (mpmath-checked in
    ``test_families_classification``)."""
    from mle_jax import links
    with jax.enable_x64(True):
        family = mj.ordinal(4)
        fp = {"first_cut": jnp.asarray(-0.7), "gaps": links.softplus_inverse(jnp.asarray([1e-6, 3.0, 1e3]))}
        f = jnp.asarray([-1e30, -745.0, -40.0, -3.3, -1e-300, 0.0, 0.4, 2.9, 40.0, 709.0, 1e30])
        y = jnp.asarray([0, 1, 2, 3, 0, 1, 2, 3, 3, 0, 1])
        eager = np.array([float(family.log_prob(fp, f[i], y[i])) for i in range(f.shape[0])])
        jitted = jax.jit(jax.vmap(family.log_prob, (None, 0, 0)))(fp, f, y)
        by_score = jax.vmap(jax.value_and_grad(family.log_prob, argnums=1), (None, 0, 0))(fp, f, y)[0]
        by_cuts = jax.vmap(jax.value_and_grad(family.log_prob, argnums=0), (None, 0, 0))(fp, f, y)[0]
    for other in (jitted, by_score, by_cuts):
        np.testing.assert_array_equal(np.asarray(other), eager)


@pytest.mark.deep  # ~3 s (a Newton fit compiles)
def test_newton_fits_float32_params_with_x64_enabled():
    """``mj.newton()`` on float32 parameters while jax_enable_x64 is on (optax's line search transposes the value's
    JVP at a Python 1.0, a float64 cotangent there, once refused with a TypeError): it fits, and its MLE solves the
    Poisson score equations ``X'(y - mu) = 0`` to float32 precision, as the float64 fit's does."""
    rng = np.random.default_rng(13)
    x = rng.normal(size=(60, 2))
    y = rng.poisson(np.exp(x @ np.array([0.4, -0.3]) + 1.0)).astype(np.float32)
    with jax.enable_x64(True):
        r = mj.recipe(mj.models.linear(2, dtype=jnp.float32).apply, mj.poisson())
        start = r.init({"w": jnp.zeros(2, jnp.float32), "b": jnp.asarray(0.0, jnp.float32)})
        res = mj.fit(r, start, jnp.asarray(x, jnp.float32), jnp.asarray(y), mj.newton(), steps=30,
                     objective=mj.Objective(reduction="sum"), run=mj.Run(progress=False))
    w, b = np.asarray(res.params.model["w"], np.float64), float(res.params.model["b"])
    resid = y - np.exp(x @ w + b)
    score = np.column_stack([np.ones(len(x)), x]).T @ resid
    assert np.max(np.abs(score)) <= 1e-4 * np.sum(np.abs(resid) + y)
