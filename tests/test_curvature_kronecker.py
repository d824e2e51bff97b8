"""The Hessian and meat of a ``mj.models.linear`` model as weighted Gram blocks (``_curvature``'s Kronecker path).

References: ``jax.hessian`` of the summed NLL and outer products of per-example scores ``vmap(grad)``
(a multinomial with a reference class over 4 raw outputs, a Gamma with its learned shape: a family
column; weights, a mask, chunks with a rest), and statsmodels' ``MNLogit`` covariance at its own MLE.
The structure is read from the model object only: a wrapper, a frozen intercept or another model
keeps the dense path.
"""

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import mle_jax as mj
from mle_jax import _curvature as C
from mle_jax._params import partition

RNG = np.random.default_rng(31)
N, D = 23, 3
X = RNG.normal(size=(N, D))
W, M = RNG.uniform(0.5, 2, N), RNG.uniform(size=N) < 0.8


def _case(name):
    if name == "multinomial":  # K = 5 classes, class 0 the reference: 4 raw outputs, 16 coefficients
        model, family, y = mj.models.linear(D, (4,), reference=True, dtype=jnp.float64), mj.categorical(5), \
            RNG.integers(0, 5, N)
    elif name == "gamma":  # one raw output and the learned shape (a family column by HVPs)
        model, family, y = mj.models.linear(D, dtype=jnp.float64), mj.gamma("mean"), RNG.gamma(2.0, size=N)
    else:  # several raw outputs without an intercept, no reference
        model, family, y = mj.models.linear(D, (3,), intercept=False, dtype=jnp.float64), mj.categorical(3), \
            RNG.integers(0, 3, N)
    p0 = jax.tree_util.tree_map(lambda a: jnp.asarray(RNG.normal(size=a.shape) * 0.3), model.init(None))
    return mj.recipe(model.apply, family), p0, y


@pytest.mark.parametrize("name", ["multinomial", "gamma", pytest.param("no_intercept", marks=pytest.mark.deep)])
def test_kronecker_sandwich_is_jax_hessian_and_the_scores_meat(x64, name):
    r, p0, y = _case(name)
    parts = partition(r.init(p0))
    assert C._kronecker(r, parts) is not None  # the path under test is taken
    v = ravel_pytree(parts.trained)[0]
    data = C.Data(jnp.asarray(X), jnp.asarray(y), jnp.asarray(W), jnp.asarray(M))
    live = C.Data(*(a[M] for a in data))
    at = C._params_at(parts)

    def both(v, data, live):
        ref_h = jax.hessian(lambda u: r.reduce(at(u), live.x, live.y, live.w))(v)
        scores = jax.vmap(jax.grad(lambda u, x_i, y_i: r.reduce(at(u), x_i[None], y_i[None])),
                          in_axes=(None, 0, 0))(v, live.x, live.y)
        return C.sandwich(r, v, parts, data, size=10), (ref_h, scores.T @ (live.w[:, None] * scores))
    (h, b), (ref_h, ref_b) = jax.jit(both)(v, data, live)
    for got, ref in ((h, ref_h), (b, ref_b)):
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10 * float(jnp.max(jnp.abs(ref))))


def test_the_structure_comes_from_the_model_object_only():
    """``linear_form`` names the very function ``linear`` made; a ``functools.wraps`` wrapper (which copies
    attributes), another function, a frozen intercept or a batched recipe keep the dense path."""
    m = mj.models.linear(D, (4,), reference=True)
    assert mj.models.linear_form(m.apply) == mj.models.LinearForm(D, (4,), True, True)
    family = mj.categorical(5)
    assert C._kronecker(mj.recipe(m.apply, family), partition(mj.recipe(m.apply, family).init(m.init(None)))) is not None

    @functools.wraps(m.apply)
    def doubled(p, x_i):
        return 2.0 * m.apply(p, x_i)
    assert mj.models.linear_form(doubled) is None and mj.models.linear_form(len) is None
    r = mj.recipe(doubled, family)
    assert C._kronecker(r, partition(r.init(m.init(None)))) is None
    r = mj.recipe(m.apply, family)
    frozen = {"w": jnp.zeros((D, 4)), "b": jnp.zeros(4, jnp.int32)}  # an integer b is carried, not trained
    assert C._kronecker(r, partition(r.init(frozen))) is None
    batched = mj.recipe(lambda p, x: jax.vmap(m.apply, (None, 0))(p, x), family, batched=True)
    assert C._kronecker(batched, partition(batched.init(m.init(None)))) is None


def test_reference_puts_a_zero_logit_first():
    m = mj.models.linear(2, (2,), reference=True, dtype=jnp.float64)
    p = {"w": jnp.array([[1.0, 2.0], [3.0, 4.0]]), "b": jnp.array([0.5, -0.5])}
    x = np.array([1.0, -1.0])
    np.testing.assert_allclose(m.apply(p, jnp.asarray(x)), np.concatenate([[0.0], x @ np.asarray(p["w"]) + [0.5, -0.5]]))
    with pytest.raises(ValueError, match="reference"):
        mj.models.linear(2, (), reference=True)
    with pytest.raises(ValueError, match="reference"):
        mj.models.linear(2, (2, 2), reference=True)


def test_multinomial_covariance_is_statsmodels_mnlogit(x64):
    """``mj.inference`` (observed information from the Gram blocks) at statsmodels' MNLogit MLE against
    MNLogit's ``cov_params`` (its own closed-form Hessian), K = 4, 3 features."""
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(32)
    n, d, k = 400, 3, 4
    x = rng.normal(size=(n, d))
    eta = np.column_stack([np.zeros(n), x @ rng.normal(size=(d, k - 1)) * 0.5 + 0.2])
    p = np.exp(eta - eta.max(1, keepdims=True))
    y = (np.cumsum(p / p.sum(1, keepdims=True), 1) < rng.uniform(size=(n, 1))).sum(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = sm.MNLogit(y, sm.add_constant(x)).fit(method="newton", disp=0, maxiter=100, tol=1e-14)
    beta = np.asarray(fit.params)  # (1 + d, k - 1): the constant's row first
    m = mj.models.linear(d, (k - 1,), reference=True, dtype=jnp.float64)
    r = mj.recipe(m.apply, mj.categorical(k))
    params = r.init({"w": jnp.asarray(beta[1:]), "b": jnp.asarray(beta[0])})
    assert C._kronecker(r, partition(params)) is not None
    res = mj.inference(r, params, x, y)
    # mle_jax's flat order: b (k - 1), then w row-major (d, k - 1); statsmodels': outcome-major, constant first
    order = [a if j == 0 else (k - 1) + (j - 1) * (k - 1) + a for a in range(k - 1) for j in range(d + 1)]
    np.testing.assert_allclose(res.cov[np.ix_(order, order)], np.asarray(fit.cov_params()), rtol=1e-8, atol=1e-12)
    assert res.loglik == pytest.approx(fit.llf, rel=1e-12)


@pytest.mark.deep
@pytest.mark.parametrize("family,intercept", [("poisson", True), ("gamma", True), ("gamma", False)])
def test_one_output_gram_is_jax_hessian_unmasked_and_with_nan_in_masked_rows(x64, family, intercept):
    """One raw output (``_scalar_gram``: ``X'(cX)`` and the intercept's sums, the design never formed; the
    Gamma's shape row from each example's second derivatives in the same contraction): with no mask
    (``masked=False``; chunks of 10 over 23 rows, so the last chunk's repeated rows must add nothing)
    and with a mask whose masked rows hold NaN in x, against ``jax.hessian`` of the summed NLL over the
    counted rows."""
    model = mj.models.linear(D, intercept=intercept, dtype=jnp.float64)
    fam, y = (mj.poisson(), RNG.poisson(1.5, N).astype(float)) if family == "poisson" else \
        (mj.gamma("mean"), RNG.gamma(2.0, size=N))
    r = mj.recipe(model.apply, fam)
    p0 = jax.tree_util.tree_map(lambda a: jnp.asarray(RNG.normal(size=a.shape) * 0.3), model.init(None))
    parts = partition(r.init(p0))
    assert C._kronecker(r, parts) is not None  # the path under test is taken
    v, at = ravel_pytree(parts.trained)[0], C._params_at(parts)
    full = C.Data(jnp.asarray(X), jnp.asarray(y), jnp.asarray(W), jnp.ones(N, bool))
    holes = C.Data(jnp.asarray(np.where(M[:, None], X, np.nan)), jnp.asarray(y), jnp.asarray(W), jnp.asarray(M))

    def all_four(v):
        ref_full = jax.hessian(lambda u: r.reduce(at(u), full.x, full.y, full.w))(v)
        ref_live = jax.hessian(lambda u: r.reduce(at(u), jnp.asarray(X[M]), jnp.asarray(y[M]), jnp.asarray(W[M])))(v)
        return ((C.hessian(r, v, parts, full, size=10, masked=False), ref_full),
                (C.hessian(r, v, parts, holes, size=10), ref_live))
    for got, ref in jax.jit(all_four)(v):
        assert np.all(np.isfinite(got))
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10 * float(jnp.max(jnp.abs(ref))))
