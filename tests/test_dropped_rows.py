"""A masked-out or zero-weight row adds exactly nothing: to the value, the gradient, the Hessian and
``mj.inference``'s covariances, whatever its target (NaN for a missing value, +-inf, a count of -1) under jit,
where the eager checks cannot read the values.

The reference is the same quantity computed on the kept rows alone; the dropped rows' own gradient must be 0.
Before ``families._family.drop_rows`` (the "double where") the values agreed but the kernel's NaN derivative
at such a row reached every derivative through the select (``0 * NaN``).
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mle_jax as mj
from families_table import FAMILIES, raw_example


def _filled(family, n):
    """n valid targets: the support's ``inside`` value in every entry (each column's own for pairs)."""
    cols = family.support.columns or (family.support,)
    dtype = np.float32 if "float" in cols[0].dtypes else np.int32
    if family.support.columns:
        return np.tile(np.array([c.inside() for c in cols], dtype), (n, 1))
    return np.full((n,) + family.event_shape, cols[0].inside(), dtype)


@pytest.mark.deep
def test_support_holds_is_where_the_checks_accept():
    """``Support.holds`` (traced, what decides which dropped rows are replaced) is False exactly on the targets
    the table says the checks refuse (written from each support's mathematics) and on NaN / +-inf."""
    seen_supports = set()
    for name, entry in FAMILIES.items():
        support = entry.family.support
        if support.name in seen_supports:  # one entry per support (their targets differ little)
            continue
        seen_supports.add(support.name)
        dtypes = (support.columns or (support,))[0].dtypes
        for kind, targets in entry.targets.items():
            if kind not in dtypes:  # refused by its dtype alone (float labels): no value to test
                continue
            y = np.asarray(targets, np.float32 if kind == "float" else np.int32)
            seen = y.astype(np.float64)  # as the computation sees them (an int target 1.5 is 1)
            with np.errstate(invalid="ignore"):
                refused = np.asarray(entry.refuses(seen, kind))
                finite = np.isfinite(seen).reshape(len(y), -1).all(axis=1)
            np.testing.assert_array_equal(np.asarray(support.holds(jnp.asarray(y))), ~refused & finite,
                                          err_msg=f"{name} ({kind})")


def _raw_recipe(family):
    """A batched model whose params are the raw outputs themselves: the gradient is the raw gradient."""
    return mj.recipe(lambda p, x: p["raw"], family, batched=True, validate=False)


def _both(r, x, n):
    """One program: value and gradient with the bad rows masked out, and with weight 0 on them."""
    def value_and_grads(params, y, keep):
        by_mask = jax.value_and_grad(lambda p: r.nll(p, x, y, mask=keep))(params)
        by_weight = jax.value_and_grad(lambda p: r.nll(p, x, y, weights=keep.astype(jnp.float32)))(params)
        return by_mask, by_weight
    return jax.jit(value_and_grads)


def _check_family(entry, kind):
    """Every target the table says is off the support (and NaN, +-inf where the targets are floats) in a dropped
    row, and one more dropped row with a valid target: value and gradient are the kept rows'."""
    family = entry.family
    targets = np.asarray(entry.targets[kind], np.float64)
    bad = [t for t, off in zip(targets, np.asarray(entry.refuses(targets, kind))) if off]
    valid = _filled(family, 1)[0]
    if kind == "float":
        for v in (np.nan, np.inf, -np.inf):
            row = np.array(valid, np.float64)
            row.reshape(-1)[0] = v
            bad.append(row)
    dtype = np.float32 if kind == "float" else np.int32
    y = np.stack([np.asarray(valid, np.float64)] * 2 + [np.asarray(b, np.float64) for b in bad]
                 + [np.asarray(valid, np.float64)]).astype(dtype)
    n = len(y)
    raw = np.stack([raw_example(family)] * n)
    keep = np.zeros(n, bool)
    keep[[0, n - 1]] = True
    r = _raw_recipe(family)
    fp = family.init(jnp.float32)
    params = mj.Params({"raw": jnp.asarray(raw)}, fp, None)
    kept = mj.Params({"raw": jnp.asarray(raw[keep])}, fp, None)
    want, want_grad = jax.jit(jax.value_and_grad(lambda p: r.nll(p, jnp.zeros((2, 1)), jnp.asarray(y[keep]))))(kept)
    for value, grad in _both(r, jnp.zeros((n, 1)), n)(params, jnp.asarray(y), jnp.asarray(keep)):
        np.testing.assert_allclose(value, want, rtol=1e-6, err_msg=family.name)
        g = np.asarray(grad.model["raw"])
        np.testing.assert_array_equal(g[~keep], 0.0, err_msg=family.name)
        np.testing.assert_allclose(g[keep], want_grad.model["raw"], rtol=1e-5, atol=1e-7, err_msg=family.name)
        for got, ref in zip(jax.tree_util.tree_leaves(grad.family), jax.tree_util.tree_leaves(want_grad.family)):
            np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-7, err_msg=family.name)


# one configuration of each kind of kernel (the fix is one place that every family goes through)
KINDS = ["normal-learned", "student_t-learned", "beta-mean", "binomial", "categorical", "dirichlet",
         "censored-normal-softplus"]


@pytest.mark.deep
def test_dropped_bad_rows_add_nothing_to_the_gradient():
    """Each kind's every target kind (one compiled program each); all failures listed at once."""
    failed = []
    for name in KINDS:
        entry = FAMILIES[name]
        for kind in entry.targets:
            try:
                _check_family(entry, kind)
            except AssertionError as err:
                failed.append(f"{name} ({kind}): {str(err).splitlines()[:4]}")
    assert not failed, "\n".join(failed)


@pytest.mark.deep
def test_masked_nan_target_under_jit_hessian_is_the_kept_rows():
    """The report's case: a linear model, a learned Normal scale, a NaN target masked out (or of weight 0) in a
    jitted step. The gradient and ``jax.hessian`` are those of the three kept rows."""
    init, apply = mj.models.linear(1)
    r = mj.recipe(apply, mj.normal("learned"), validate=False)
    p = r.init(init(jax.random.PRNGKey(0)))
    x = jnp.array([[0.5], [1.0], [2.0], [-1.0]])
    y = jnp.array([1.0, 2.0, jnp.nan, 1.5])
    keep = jnp.array([True, True, False, True])

    def all_of(p, y, keep):
        def by_mask(p):
            return r.nll(p, x, y, mask=keep)

        def by_weight(p):
            return r.mean_nll(p, x, y, weights=jnp.where(keep, 2.0, 0.0))
        return [(jax.value_and_grad(f)(p), jax.hessian(f)(p)) for f in (by_mask, by_weight)]
    got = jax.jit(all_of)(p, y, keep)

    def summed(p):
        return r.nll(p, x[keep], y[keep])

    def mean(p):
        return r.mean_nll(p, x[keep], y[keep])
    refs = jax.jit(lambda p: [(jax.value_and_grad(f)(p), jax.hessian(f)(p)) for f in (summed, mean)])(p)
    for ((value, grad), hess), ((want, want_grad), want_hess) in zip(got, refs):
        np.testing.assert_allclose(value, want, rtol=1e-6)
        for a, b in zip(jax.tree_util.tree_leaves(grad), jax.tree_util.tree_leaves(want_grad)):
            np.testing.assert_allclose(a, b, rtol=1e-5)
        for a, b in zip(jax.tree_util.tree_leaves(hess), jax.tree_util.tree_leaves(want_hess)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


@pytest.mark.deep
def test_inference_drops_bad_rows_of_weight_zero_and_masked(x64):
    """``mj.inference`` with a NaN and an inf target (and a count of -1, 2.5 for the Poisson) on rows of weight 0
    or masked out (an unvalidated recipe): the covariance and log-likelihood of the kept rows alone. A zero
    weight drops its row exactly as the mask does (the curvature's selects took only the mask before). The robust
    covariance needs both the Hessian and the per-example scores (the meat)."""
    rng = np.random.default_rng(3)
    n = 24
    x = rng.normal(size=(n, 2))
    w = rng.uniform(0.5, 2.0, n)
    w[[3, 8]] = 0.0
    m = np.ones(n, bool)
    m[[5, 8]] = False
    keep = (w > 0) & m
    init, apply = mj.models.linear(2)
    normal_y = x @ np.array([0.5, -0.3]) + rng.normal(size=n)
    counts = rng.poisson(np.exp(0.3 * x[:, 0])).astype(np.float64)
    for family, y, bad in ((mj.normal("learned"), normal_y, (np.nan, np.inf, -np.inf)),
                           (mj.poisson(), counts, (-1.0, np.nan, 2.5))):
        r = mj.recipe(apply, family, validate=False)
        p = r.init(jax.tree_util.tree_map(lambda a: jnp.full_like(a, 0.1, jnp.float64), init(jax.random.PRNGKey(0))))
        y_bad = y.copy()
        y_bad[[3, 5, 8]] = bad
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = mj.inference(r, p, x, y_bad, "robust", weights=w, mask=m)
            want = mj.inference(r, p, x[keep], y[keep], "robust", weights=w[keep])
        np.testing.assert_allclose(got.loglik, want.loglik, rtol=1e-12)
        np.testing.assert_allclose(got.variance, want.variance, rtol=1e-9)
