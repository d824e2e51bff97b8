"""The recipe: the lecture's identities, reductions, transformations, validation."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads
from scipy import stats

import mle_jax as mj


def linear(p, x):
    return p["w"] @ x + p["b"]


def _data(n=64, d=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5]) + 0.3 + 0.4 * rng.normal(size=n)).astype(np.float32)
    return jnp.asarray(x), jnp.asarray(y)


def _params(d=3, scale=0.1):
    return {"w": jnp.full((d,), scale, jnp.float32), "b": jnp.float32(0.05)}


def test_normal_nll_is_scaled_sse_plus_constants():
    x, y = _data()
    sigma = 0.7
    r = mj.recipe(linear, mj.normal(sigma))
    params = r.init(_params())
    pred = np.asarray(x, np.float64) @ np.full(3, 0.1) + 0.05
    sse = np.sum((np.asarray(y, np.float64) - pred) ** 2)
    n = len(y)
    identity = sse / (2 * sigma**2) + n * math.log(sigma) + n / 2 * math.log(2 * math.pi)
    np.testing.assert_allclose(r.nll(params, x, y), identity, rtol=1e-6)
    np.testing.assert_allclose(r.nll(params, x, y), -stats.norm(pred, sigma).logpdf(y).sum(), rtol=1e-6)
    np.testing.assert_allclose(r.mean_nll(params, x, y), identity / n, rtol=1e-6)


def test_normal_minimiser_is_least_squares():
    x, y = _data()
    r = mj.recipe(linear, mj.normal(0.5))
    res = mj.fit(r, r.init(_params()), x, y, optax.lbfgs(), steps=60)
    design = np.column_stack([np.asarray(x, np.float64), np.ones(len(y))])
    coef = np.linalg.lstsq(design, np.asarray(y, np.float64), rcond=None)[0]
    np.testing.assert_allclose(res.params.model["w"], coef[:3], atol=2e-5)
    np.testing.assert_allclose(res.params.model["b"], coef[3], atol=2e-5)


@pytest.mark.deep  # 4-10 s of compiling: CI's deep phase, for README's 5-minute suite
def test_learned_sigma_converges_to_root_mean_squared_residual():
    x, y = _data(n=200)
    r = mj.recipe(linear, mj.normal("learned"))
    res = mj.fit(r, r.init(_params()), x, y, optax.lbfgs(), steps=100)
    design = np.column_stack([np.asarray(x, np.float64), np.ones(len(y))])
    coef = np.linalg.lstsq(design, np.asarray(y, np.float64), rcond=None)[0]
    rms = np.sqrt(np.mean((np.asarray(y, np.float64) - design @ coef) ** 2))
    sigma = r.predict(res.params, x[:1]).scale[0]
    np.testing.assert_allclose(sigma, rms, rtol=1e-4)


def test_bernoulli_and_categorical_nll_equal_optax_losses():
    x, y = _data()
    yb = (y > 0).astype(jnp.int32)
    rb = mj.recipe(linear, mj.bernoulli())
    params = rb.init(_params(scale=0.7))
    logits = x @ params.model["w"] + params.model["b"]
    np.testing.assert_allclose(rb.nll(params, x, yb), optax.sigmoid_binary_cross_entropy(logits, yb).sum(), rtol=1e-6)
    k = 5
    model = lambda p, xi: xi @ p["w"] + p["b"]
    pc = {"w": jax.random.normal(jax.random.PRNGKey(1), (3, k)), "b": jnp.zeros(k)}
    yc = jnp.asarray(np.random.default_rng(2).integers(0, k, size=len(y)), jnp.int32)
    rc = mj.recipe(model, mj.categorical(k))
    ref = optax.softmax_cross_entropy_with_integer_labels(x @ pc["w"] + pc["b"][None], yc).sum()
    np.testing.assert_allclose(rc.nll(rc.init(pc), x, yc), ref, rtol=1e-6)
    np.testing.assert_array_equal(rc.point(rc.init(pc), x), jnp.argmax(x @ pc["w"] + pc["b"][None], axis=1))


def test_predict_point_interval_sample():
    x, y = _data()
    r = mj.recipe(lambda p, xi: jnp.stack([linear(p, xi), p["s"]]), mj.normal("softplus"))
    params = r.init({**_params(), "s": jnp.float32(0.2)})
    theta = r.predict(params, x)
    assert isinstance(theta, mj.Normal) and theta.loc.shape == (64,)
    np.testing.assert_allclose(theta.scale, np.log1p(np.exp(0.2)) + np.finfo(np.float32).eps, rtol=1e-6)
    np.testing.assert_array_equal(r.point(params, x), theta.loc)
    lo, hi = r.interval(params, x, 0.8)
    np.testing.assert_allclose(hi - theta.loc, stats.norm.ppf(0.9) * theta.scale, rtol=1e-5)
    draws = r.sample(jax.random.PRNGKey(0), params, x)
    assert draws.shape == (64,)
    np.testing.assert_allclose(r.log_prob(params, x, y), stats.norm(theta.loc, theta.scale).logpdf(y), rtol=1e-5)


def test_eager_jit_vmap_agree_and_gradients():
    x, y = _data()
    r = mj.recipe(linear, mj.normal(0.5), validate=False)
    params = r.init(_params())
    eager = r.nll(params, x, y)
    jitted = jax.jit(r.nll)(params, x, y)
    loop = sum(float(r.nll(params, x[i:i + 1], y[i:i + 1])) for i in range(len(y)))
    np.testing.assert_allclose(jitted, eager, rtol=1e-6)
    np.testing.assert_allclose(loop, eager, rtol=1e-6)
    np.testing.assert_allclose(-r.log_prob(params, x, y).sum(), eager, rtol=1e-6)
    check_grads(lambda p: r.nll(p, x[:8], y[:8]), (params,), order=2, modes=["rev"], eps=1e-2, rtol=2e-2)


def test_nll_inside_user_jit_grad_vmap_scan_warns_once():
    x, y = _data()
    r = mj.recipe(linear, mj.normal(0.5))
    params = r.init(_params())
    with pytest.warns(UserWarning, match="cannot be checked") as record:
        g = jax.jit(jax.grad(r.nll))(params, x, y)
        batched = jax.vmap(r.nll, in_axes=(None, 0, 0))(params, x.reshape(4, 16, 3), y.reshape(4, 16))
        _, scanned = jax.lax.scan(lambda c, xy: (c, r.nll(params, *xy)), 0.0, (x.reshape(4, 16, 3), y.reshape(4, 16)))
    assert len([w for w in record if "cannot be checked" in str(w.message)]) == 1
    np.testing.assert_allclose(batched.sum(), r.nll(params, x, y), rtol=1e-6)
    np.testing.assert_allclose(scanned, batched, rtol=1e-6)
    assert np.all(np.isfinite(g.model["w"]))


def test_weights_and_mask_reduce_with_honest_denominators():
    x, y = _data()
    r = mj.recipe(linear, mj.normal(0.5))
    params = r.init(_params())
    terms = -r.log_prob(params, x, y)
    w = jnp.asarray(np.random.default_rng(3).uniform(0, 2, size=len(y)), jnp.float32)
    m = jnp.arange(len(y)) % 3 != 0
    np.testing.assert_allclose(r.nll(params, x, y, weights=w), np.sum(w * terms), rtol=1e-5)
    np.testing.assert_allclose(r.mean_nll(params, x, y, weights=w), np.sum(w * terms) / np.sum(w), rtol=1e-5)
    np.testing.assert_allclose(r.mean_nll(params, x, y, mask=m), np.mean(terms[m]), rtol=1e-5)
    np.testing.assert_allclose(r.mean_nll(params, x, y, weights=w, mask=m),
                               np.sum((w * terms)[m]) / np.sum(w[m]), rtol=1e-5)
    # a masked-out example contributes exactly 0 even when its term is infinite
    rb = mj.recipe(linear, mj.bernoulli())
    pb = rb.init({"w": jnp.zeros(3), "b": jnp.float32(jnp.inf)})
    yb = jnp.zeros(len(y), jnp.int32)
    assert not np.isfinite(rb.nll(pb, x, yb))
    assert rb.nll(pb, x, yb, mask=jnp.zeros(len(y), bool)) == 0.0


@pytest.mark.parametrize("dtype", ["float32", pytest.param("float64", marks=pytest.mark.deep)])
def test_a_zero_weight_drops_its_row_as_a_mask_does_under_jit(x64, dtype):
    """A weight of 0 on a row whose term is -inf (a count of -1, unvalidated under jit) drops the row exactly:
    value and gradient are those of the other rows (scipy's ``poisson.logpmf``, the closed-form gradient
    ``sum_i w_i (exp(eta_i) - y_i) (1, x_i)``), not ``0 * -inf = NaN``; the sum's derivative in a zero weight
    of a finite row is still that row's term."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(6, 2)).astype(dtype)
    y = np.array([1.0, -1.0, 3.0, 0.0, -1.0, 2.0], dtype)
    w = np.array([0.5, 0.0, 2.0, 0.0, 0.0, 1.0], dtype)  # row 3 is valid with weight 0, rows 1 and 4 invalid
    r = mj.recipe(mj.models.linear(2, dtype=dtype).apply, mj.poisson(), validate=False)
    params = r.init({"w": jnp.asarray([0.3, -0.2], dtype), "b": jnp.asarray(0.1, dtype)})
    eta = x @ np.array([0.3, -0.2]) + 0.1
    keep = w > 0
    nll = -np.sum(w[keep] * stats.poisson.logpmf(y[keep], np.exp(eta[keep])))
    score = (w * (np.exp(eta) - y))[keep]
    x, y = jnp.asarray(x), jnp.asarray(y)
    rtol = 1e-6 if dtype == "float32" else 1e-13
    def all_of(p, w, m):  # one program: each reduction's value and gradients, and the masked value
        out = {}
        for reduction in ("sum", "mean"):
            out[reduction] = (jax.value_and_grad(lambda p, w: r.objective(p, x, y, weights=w, reduction=reduction)[0],
                                                 argnums=(0, 1))(p, w),
                              r.objective(p, x, y, weights=w, mask=m, reduction=reduction)[0])
        return out
    out = jax.jit(all_of)(params, jnp.asarray(w), jnp.asarray(keep))
    for reduction, div in (("sum", 1.0), ("mean", w.sum())):
        (value, (g, gw)), masked = out[reduction]
        np.testing.assert_allclose(value, nll / div, rtol=rtol)
        np.testing.assert_allclose(g.model["w"], score @ np.asarray(x)[keep] / div, rtol=rtol)
        np.testing.assert_allclose(g.model["b"], score.sum() / div, rtol=rtol)
        if reduction == "sum":  # d/dw_3 = -log Pr(y_3) at w_3 = 0; the invalid rows' are 0
            np.testing.assert_allclose(gw[3], -stats.poisson.logpmf(y[3], np.exp(eta[3])), rtol=rtol)
            assert gw[1] == 0 and gw[4] == 0
        np.testing.assert_allclose(masked, value, rtol=rtol)


def test_dtype_follows_input(x64):
    x, y = _data()
    r = mj.recipe(linear, mj.normal("learned"))
    params64 = r.init({"w": jnp.zeros(3, jnp.float64), "b": jnp.float64(0.0)})
    assert params64.family["scale"].dtype == jnp.float64
    assert r.nll(params64, x.astype(jnp.float64), y.astype(jnp.float64)).dtype == jnp.float64
    params32 = r.init(_params())
    assert r.nll(params32, x, y).dtype == jnp.float32


@pytest.mark.deep  # a few seconds of compiling: CI's deep phase, for README's 5-minute suite
def test_accumulation_precision_large_n_and_bfloat16():
    n = 10_000_000
    rng = np.random.default_rng(0)
    terms = rng.uniform(0.0, 2.0, size=n)
    ref = math.fsum(terms.astype(np.float32).astype(np.float64)) / n
    np.testing.assert_allclose(mj.reduce_terms(jnp.asarray(terms, jnp.float32), reduction="mean"), ref, atol=1e-6)
    small = terms[:1_000_000]
    bf = jnp.asarray(small, jnp.bfloat16)
    ref_bf = math.fsum(np.asarray(bf, np.float64)) / len(small)
    got = mj.reduce_terms(bf, reduction="mean")
    assert abs(float(got) - ref_bf) < 1e-4 * max(1.0, abs(ref_bf)) * 10  # bf16 output rounding: 2^-8 relative
    acc = float(jnp.sum(bf, dtype=jnp.float32)) / len(small)
    assert abs(acc - ref_bf) < 1e-4


@pytest.mark.deep  # a few seconds of compiling: CI's deep phase, for README's 5-minute suite
def test_independent_outputs_nll_is_sum_of_terms():
    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.normal(size=(50, 2)), jnp.float32)
    y = jnp.asarray(rng.normal(size=(50, 2)) * np.array([10.0, 0.1]), jnp.float32)
    model = lambda p, xi: xi @ p["w"] + p["b"]
    mp = {"w": jnp.eye(2), "b": jnp.zeros(2)}
    shared = mj.recipe(model, mj.independent(mj.normal("learned"), 2))
    per_dim = mj.recipe(model, mj.independent(mj.normal("learned"), 2, shared=False))
    ps, pd = shared.init(mp), per_dim.init(mp)
    assert ps.family["scale"].shape == () and pd.family["scale"].shape == (2,)
    pred = np.asarray(x @ mp["w"])
    ref = -stats.norm(pred, 1.0).logpdf(np.asarray(y)).sum()
    np.testing.assert_allclose(shared.nll(ps, x, y), ref, rtol=1e-5)
    np.testing.assert_allclose(per_dim.nll(pd, x, y), ref, rtol=1e-5)
    res = mj.fit(per_dim, pd, x, y, optax.lbfgs(), steps=200)
    sig = per_dim.predict(res.params, x[:1]).base.scale[0]
    resid = np.asarray(y) - np.asarray(jax.vmap(model, (None, 0))(res.params.model, x))
    np.testing.assert_allclose(sig, np.sqrt(np.mean(resid**2, axis=0)), rtol=1e-4)


# ----------------------------------------------------------------- the bad inputs of docs/reliability.md

@pytest.mark.parametrize("sigma", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_fixed_sigma(sigma):
    with pytest.raises(ValueError, match="sigma"):
        mj.normal(sigma)


@pytest.mark.parametrize("where", ["x", "y"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_data(where, bad):
    x, y = _data()
    x, y = np.array(x), np.array(y)
    (x if where == "x" else y)[5] = bad
    (x if where == "x" else y)[9] = bad
    r = mj.recipe(linear, mj.normal(1.0))
    with pytest.raises(ValueError, match=rf"normal.*{where}.*index 5.*2 bad"):
        r.nll(r.init(_params()), jnp.asarray(x), jnp.asarray(y))


def test_empty_and_mismatched_data():
    r = mj.recipe(linear, mj.normal(1.0))
    params = r.init(_params())
    with pytest.raises(ValueError, match="empty"):
        r.nll(params, jnp.zeros((0, 3)), jnp.zeros((0,)))
    with pytest.raises(ValueError, match=r"x has 10 examples.*y has 9"):
        r.nll(params, jnp.zeros((10, 3)), jnp.zeros((9,)))
    with pytest.raises(ValueError, match=r"shape \(1,\).*expects shape \(\)"):
        r.nll(params, jnp.zeros((10, 3)), jnp.zeros((10, 1)))


def test_n_vs_n1_never_broadcasts_to_n_by_n():
    # a model emitting shape (1,) per example against y of shape (N,): one term per example, never N x N
    r = mj.recipe(lambda p, xi: p * xi, mj.normal(1.0))
    nll = r.nll(r.init(jnp.float32(1.0)), jnp.ones((100, 1)), jnp.ones((100,)))
    np.testing.assert_allclose(nll, 100 * 0.5 * math.log(2 * math.pi), rtol=1e-6)
    with pytest.raises(ValueError, match=r"\(1,\).*expects shape \(\)"):
        r.nll(r.init(jnp.float32(1.0)), jnp.ones((100, 1)), jnp.ones((100, 1)))


@pytest.mark.parametrize("label", [4, -1, 104])
def test_out_of_range_labels(label):
    r = mj.recipe(lambda p, xi: p, mj.categorical(4))
    y = jnp.array([0, label, 1, label], jnp.int32)
    with pytest.raises(ValueError, match=rf"label {label} at index 1 is not in \[0, 4\) \(2 bad"):
        r.nll(r.init(jnp.zeros(4)), jnp.zeros((4, 2)), y)


def test_float_class_labels_rejected():
    r = mj.recipe(lambda p, xi: p, mj.categorical(4))
    with pytest.raises(ValueError, match="integers"):
        r.nll(r.init(jnp.zeros(4)), jnp.zeros((2, 1)), jnp.array([0.0, 1.0]))


@pytest.mark.parametrize("target", [2, -1, 0.5])
def test_bad_bernoulli_targets(target):
    r = mj.recipe(lambda p, xi: p, mj.bernoulli())
    y = jnp.array([0, target, 1])
    with pytest.raises(ValueError, match="bernoulli.*index 1.*0 or 1"):
        r.nll(r.init(jnp.float32(0.0)), jnp.zeros((3, 1)), y)
    if target == 0.5:  # explicit soft labels are fine
        rs = mj.recipe(lambda p, xi: p, mj.bernoulli(soft_labels=True))
        np.testing.assert_allclose(rs.nll(rs.init(jnp.float32(0.0)), jnp.zeros((3, 1)), y), 3 * math.log(2), rtol=1e-6)


def test_validate_false_skips_value_checks():
    r = mj.recipe(lambda p, xi: p, mj.bernoulli(), validate=False)
    out = r.nll(r.init(jnp.float32(0.0)), jnp.zeros((2, 1)), jnp.array([0.0, 0.5]))
    assert np.isfinite(out)  # no ValueError: the caller opted out (0.5 is a soft label, of finite NLL)
    assert r.nll(r.init(jnp.float32(0.0)), jnp.zeros((2, 1)), jnp.array([0.0, 2.0])) == np.inf  # impossible


def test_bad_weights():
    r = mj.recipe(linear, mj.normal(1.0))
    x, y = _data()
    with pytest.raises(ValueError, match="weights.*>= 0"):
        r.nll(r.init(_params()), x, y, weights=-jnp.ones(len(y)))
    with pytest.raises(ValueError, match=r"weights must have shape \(64,\)"):
        r.nll(r.init(_params()), x, y, weights=jnp.ones(3))


def test_raw_output_of_wrong_shape():
    r = mj.recipe(lambda p, xi: jnp.stack([p, p, p]), mj.normal("softplus"))
    with pytest.raises(ValueError, match=r"raw output.*\(3,\).*\(2,\)"):
        r.nll(r.init(jnp.float32(0.0)), jnp.zeros((2, 1)), jnp.zeros(2))


def test_programs_are_namespaced_bounded_and_die_with_the_recipe():
    """nll, inference and fit keep what they compile in ``recipe.programs`` (mle_jax._cache), under
    ("recipe", ...), ("inference", ...) and ("fit", ...): never more than its limit (the oldest is
    dropped and rebuilt when needed again), and freed with the recipe."""
    import gc
    import weakref

    from mle_jax._cache import Programs
    x, y = _data(16)
    r = mj.recipe(linear, mj.normal(0.7))
    r.programs = Programs(limit=2)
    params = r.init(_params())
    reference = -np.sum(stats.norm.logpdf(np.asarray(y, np.float64), np.asarray(x, np.float64) @ np.full(3, 0.1) + 0.05,
                                          0.7))
    seen = set()
    for use in (lambda: r.nll(params, x, y), lambda: mj.inference(r, params, x, y),
                lambda: mj.fit(r, params, x, y, optax.sgd(1e-4), steps=2), lambda: r.nll(params, x, y)):
        use()
        assert 1 <= len(r.programs) <= 2
        seen |= {key[0] for key in r.programs.keys()}
    assert seen == {"recipe", "inference", "fit"} and ("recipe", "_reduce") in r.programs  # rebuilt at the end
    np.testing.assert_allclose(r.nll(params, x, y), reference, rtol=1e-5)
    alive = weakref.ref(r)
    del r, use
    gc.collect()
    assert alive() is None
