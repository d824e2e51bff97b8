"""``mj.newton``: Newton's method (Hessian by forward-over-reverse, Cholesky, optax's line search) for fit.

Against statsmodels' GLM (IRLS: the same MLE by another route) on a small logistic design and on a
badly scaled Poisson design (condition number ~1e9), a closed-form minimum where the Hessian starts
indefinite (the damping path), and jax.hessian for the Hessian itself. The larger GLMs are deep.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import mle_jax as mj
from mle_jax.newton import hessian, newton_direction, objective_hessian, takes_hessian


def _linear(p, x_i):
    return x_i @ p["w"] + p["b"]


def _design(n, d, scales, seed):
    """A design whose columns are standard normal times ``scales`` (cond(X) ~ max/min scale)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, d))
    return z, z * np.asarray(scales)


def _statsmodels(y, x, family):
    sm = pytest.importorskip("statsmodels.api")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = sm.GLM(y, sm.add_constant(x), family=family).fit(tol=1e-14, maxiter=200)
    return fit.llf, fit.params


def _fit(family, x, y, d, steps, tol):
    r = mj.recipe(_linear, family)
    params = r.init({"w": jnp.zeros(d), "b": jnp.zeros(())})
    res = mj.fit(r, params, x, y, mj.newton(), steps=steps, objective=mj.Objective(tol=tol))
    llf = -float(r.nll(res.params, x, y))
    return res, llf, np.concatenate([[float(res.params.model["b"])], np.asarray(res.params.model["w"])])


def test_newton_reaches_statsmodels_logistic_mle_in_few_steps(x64):
    sm = pytest.importorskip("statsmodels.api")
    z, x = _design(400, 3, [1.0, 1.0, 1.0], seed=0)
    y = (np.random.default_rng(1).uniform(size=400) < 1 / (1 + np.exp(-(z @ [1.0, -0.5, 0.25] + 0.3)))).astype(int)
    llf_sm, beta_sm = _statsmodels(y, x, sm.families.Binomial())
    res, llf, beta = _fit(mj.bernoulli(), x, y, 3, steps=20, tol=1e-10)
    assert res.stopped == "converged" and res.steps_run <= 8  # quadratic convergence from zero
    assert llf == pytest.approx(llf_sm, rel=1e-12)
    np.testing.assert_allclose(beta, beta_sm, rtol=1e-7, atol=1e-9)


@pytest.mark.deep  # a few seconds of compiling: CI's deep phase, for README's 5-minute suite
def test_newton_reaches_the_mle_on_a_badly_scaled_design(x64):
    """Columns on scales 1e-4 ... 1e5 (cond(X) ~ 1e9): Newton is affine invariant, so it converges as on
    the standardised design; the log-likelihood is statsmodels' to 1e-10 and each coefficient its own."""
    sm = pytest.importorskip("statsmodels.api")
    scales = np.array([1e-4, 1e-1, 1.0, 1e2, 1e5])
    z, x = _design(500, 5, scales, seed=2)
    assert np.linalg.cond(np.column_stack([np.ones(500), x])) > 1e8
    rate = np.exp(0.4 + z @ np.array([0.3, -0.2, 0.25, 0.1, -0.3]))
    y = np.random.default_rng(3).poisson(rate).astype(np.float64)
    llf_sm, beta_sm = _statsmodels(y, x, sm.families.Poisson())
    res, llf, beta = _fit(mj.poisson(), x, y, 5, steps=50, tol=1e-9)
    assert llf == pytest.approx(llf_sm, rel=1e-10)
    np.testing.assert_allclose(beta * np.r_[1.0, scales], beta_sm * np.r_[1.0, scales], rtol=1e-6, atol=1e-9)
    assert res.steps_run <= 20


def test_the_hessian_is_jax_hessian():
    rng = np.random.default_rng(4)
    x, y = jnp.asarray(rng.normal(size=(30, 3))), jnp.asarray(rng.poisson(2.0, size=30).astype(np.float32))

    def f(p):
        eta = x @ p["w"] + p["b"]
        return jnp.sum(jnp.exp(eta) - y * eta) + 0.1 * jnp.sum(p["w"] ** 4)
    p = {"w": jnp.array([0.1, -0.2, 0.3]), "b": jnp.array(0.2)}
    with jax.default_matmul_precision("highest"):  # full float32 products on GPUs too (their default: TF32)
        h, *both = jax.jit(lambda p: (jax.hessian(lambda u: f({"b": u[0], "w": u[1:]}))(jnp.concatenate([p["b"][None], p["w"]])),
                                      hessian(f, p), hessian(f, p, batch_size=2)))(p)  # all tangents at once, in batches
    np.testing.assert_allclose(both[0], h, rtol=1e-5)
    np.testing.assert_allclose(both[1], h, rtol=1e-5)


def test_an_indefinite_hessian_is_damped_into_a_descent_direction(x64):
    """f(u) = u1^4 - u1^2 + u2^2 starts at u1 = 0.1 where f'' < 0: the damped step still descends, and
    the fit ends at the minimum (1/sqrt 2, 0) (closed form), where the steps are pure Newton again."""
    h = jnp.array([[-1.0, 0.0], [0.0, 2.0]])
    d, lam = newton_direction(h, jnp.array([-0.2, 0.4]))
    assert float(jnp.vdot(d, jnp.array([-0.2, 0.4]))) < 0 and float(lam) > 0
    opt = mj.newton()
    u = jnp.array([0.1, 0.5])
    state = opt.init(u)
    f = lambda u: u[0] ** 4 - u[0] ** 2 + u[1] ** 2

    def step(carry, _):
        u, state = carry
        value, g = jax.value_and_grad(f)(u)
        step, state = opt.update(g, state, u, value=value, grad=g, value_fn=f)
        return (optax.apply_updates(u, step), state), None
    u, state = jax.lax.scan(step, (u, state), None, length=30)[0]
    np.testing.assert_allclose(u, [2 ** -0.5, 0.0], atol=1e-12)
    assert float(state.direction.damping) == 0.0


def test_update_without_value_fn_is_named():
    opt = mj.newton()
    u = jnp.zeros(2)
    with pytest.raises(ValueError, match="value"):
        opt.update(u, opt.init(u), u)
    with pytest.raises(ValueError, match="value_fn"):
        mj.scale_by_newton().update(u, mj.scale_by_newton().init(u), u)


@pytest.mark.deep  # a few seconds of compiling: CI's deep phase, for README's 5-minute suite
def test_fit_hessian_split_is_jax_hessian_of_the_objective(x64):
    """The Hessian fit hands Newton (``objective_hessian``: X'WX from the raw outputs, divided by the
    objective's normaliser) against ``jax.hessian`` of fit's own objective, for a GLM with a learned shape
    (its column by HVPs): the weighted, masked "mean" and the plain "sum". A wrong normaliser, weight or curvature fails it."""
    from jax.flatten_util import ravel_pytree

    from mle_jax._params import partition
    rng = np.random.default_rng(9)
    n, x = 17, jnp.asarray(rng.normal(size=(17, 3)))
    w, m = jnp.asarray(rng.uniform(0.5, 3.0, n)), jnp.asarray(rng.uniform(size=n) < 0.7)
    cases = [(mj.recipe(_linear, mj.gamma("mean")), {"w": jnp.array([0.3, -0.2, 0.1]), "b": jnp.array(0.1)},
              jnp.asarray(rng.gamma(2.0, size=n)))]  # several raw outputs (a categorical): the deep split test
    for r, p0, y in cases:
        parts = partition(r.init(p0))
        flat, unravel = ravel_pytree(parts.trained)
        settings = (("mean", w, m), ("sum", None, None))

        def both(parts, r=r, y=y, flat=flat, unravel=unravel):  # one program per case: the 3 settings
            def objective(u, reduction, weights, mask):
                return r.objective(parts.replace(trained=unravel(u)).params(), x, y, weights, mask, "loss", reduction)[0]
            return [(jax.hessian(objective)(flat, *s), objective_hessian(r, parts, x, y, s[1], s[2], s[0])(parts.trained))
                    for s in settings]
        for ref, h in jax.jit(both)(parts):
            np.testing.assert_allclose(h, ref, rtol=1e-10, atol=1e-12 * float(jnp.max(jnp.abs(ref))))
    assert takes_hessian(mj.newton()) and takes_hessian(mj.scale_by_newton()) and not takes_hessian(optax.lbfgs())


@pytest.mark.deep
def test_newton_with_weights_and_mask_reaches_statsmodels(x64):
    """A weighted, masked Poisson GLM (the split Hessian over u_i = m_i w_i, the "mean" normaliser) against
    statsmodels' GLM with the same frequency weights on the unmasked rows."""
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(10)
    n, d = 300, 3
    x = rng.normal(size=(n, d))
    y = rng.poisson(np.exp(0.2 + x @ np.array([0.4, -0.3, 0.2]))).astype(np.float64)
    w, m = rng.integers(1, 4, n).astype(np.float64), rng.uniform(size=n) < 0.8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sm.GLM(y[m], sm.add_constant(x[m]), family=sm.families.Poisson(), freq_weights=w[m]).fit(tol=1e-14)
    r = mj.recipe(_linear, mj.poisson())
    params = r.init({"w": jnp.zeros(d), "b": jnp.zeros(())})
    res = mj.fit(r, params, x, y, mj.newton(), steps=30, weights=w, mask=m, objective=mj.Objective(tol=1e-10))
    beta = np.concatenate([[float(res.params.model["b"])], np.asarray(res.params.model["w"])])
    assert res.stopped == "converged" and res.steps_run <= 10
    assert -float(r.nll(res.params, x, y, w, m)) == pytest.approx(ref.llf, rel=1e-12)
    np.testing.assert_allclose(beta, ref.params, rtol=1e-7, atol=1e-9)
    with pytest.raises(ValueError, match="curvature"):
        mj.newton(curvature="exact")


@pytest.mark.deep
@pytest.mark.parametrize("kind", ["logistic", "poisson", "gamma", "negative_binomial", "binomial"])
def test_newton_glms_against_statsmodels_at_scale(x64, kind):
    """20,000 x 20, columns on scales 1e-3 ... 1e4 (cond ~1e7): each GLM's MLE to statsmodels' log-likelihood,
    and (the Poisson's; for the others statsmodels' optimum bounds it already) optax's L-BFGS alone does no
    better (it stalls short of it on such designs)."""
    sm = pytest.importorskip("statsmodels.api")
    n, d = 20_000, 20
    scales = np.logspace(-3, 4, d)
    z, x = _design(n, d, scales, seed=5)
    eta = 0.2 + z @ (np.random.default_rng(6).normal(size=d) * 0.3 / np.sqrt(d))
    rng = np.random.default_rng(7)
    links = sm.families.links
    if kind == "logistic":
        y, family, fam = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(int), mj.bernoulli(), sm.families.Binomial()
    elif kind == "poisson":
        y, family, fam = rng.poisson(np.exp(eta)).astype(float), mj.poisson(), sm.families.Poisson()
    elif kind == "binomial":  # (successes, trials) against statsmodels' (successes, failures)
        trials = 1 + rng.poisson(4.0, size=n)
        k = rng.binomial(trials, 1 / (1 + np.exp(-eta)))
        y, family, fam = np.column_stack([k, trials]).astype(float), mj.binomial(), sm.families.Binomial()
    elif kind == "negative_binomial":  # fixed alpha = 1/r = 0.5: the dispersion a static float, not trained
        y = rng.negative_binomial(2.0, 2.0 / (2.0 + np.exp(eta))).astype(float)
        family, fam = mj.negative_binomial(), sm.families.NegativeBinomial(alpha=0.5)
    else:  # the Gamma GLM with its shape fixed at the truth (statsmodels' llf at scale 1/shape)
        y, family, fam = rng.gamma(2.0, np.exp(eta) / 2.0), mj.gamma("mean"), sm.families.Gamma(links.Log())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        endog = np.column_stack([y[:, 0], y[:, 1] - y[:, 0]]) if kind == "binomial" else y
        ref = sm.GLM(endog, sm.add_constant(x), family=fam).fit(tol=1e-14, maxiter=300, scale=0.5 if kind == "gamma" else None)
    r = mj.recipe(_linear, family)
    params = r.init({"w": jnp.zeros(d), "b": jnp.zeros(())})
    if kind in ("negative_binomial", "gamma"):  # a Python float is static: fixed at the truth, as statsmodels has it
        name = "total_count" if kind == "negative_binomial" else "shape"
        params = params._replace(family={name: float(mj.links.softplus_inverse(jnp.float64(2.0)))})
    res = mj.fit(r, params, x, y, mj.newton(), steps=100, objective=mj.Objective(tol=1e-10))
    llf = -float(r.nll(res.params, x, y))
    assert llf == pytest.approx(ref.llf, rel=1e-10)
    if kind != "poisson":
        return
    lbfgs = mj.fit(r, params, x, y, optax.lbfgs(), steps=100, objective=mj.Objective(tol=1e-10))
    assert -float(r.nll(lbfgs.params, x, y)) <= llf + 1e-9 * abs(llf)


@pytest.mark.deep
def test_inference_hessian_split_is_jax_hessian(x64):
    """``_curvature.hessian``'s Gauss-Newton split (one X'WX product for a GLM) against ``jax.hessian``: a
    GLM with a learned family parameter, a categorical, and a nonlinear network; weights, a mask, chunks."""
    from jax.flatten_util import ravel_pytree

    from mle_jax import _curvature as C
    from mle_jax._params import partition
    rng = np.random.default_rng(8)
    n, x = 23, jnp.asarray(rng.normal(size=(23, 3)))
    net = mj.mlp([3, 4, 2], jnp.tanh)
    cases = [(mj.recipe(_linear, mj.gamma("mean")), {"w": jnp.array([0.3, -0.2, 0.1]), "b": jnp.array(0.1)},
              rng.gamma(2.0, size=n)),
             (mj.recipe(_linear, mj.categorical(3)), {"w": jnp.asarray(rng.normal(size=(3, 3))), "b": jnp.zeros(3)},
              rng.integers(0, 3, n)),
             (mj.recipe(net.apply, mj.normal("softplus")),
              jax.tree_util.tree_map(lambda a: a.astype(jnp.float64), net.init(jax.random.PRNGKey(0))), rng.normal(size=n))]
    data_w, data_m = jnp.asarray(rng.uniform(0.5, 2, n)), jnp.asarray(rng.uniform(size=n) < 0.8)
    for r, p0, y in cases:
        parts = partition(r.init(p0))
        v = ravel_pytree(parts.trained)[0]
        data = C.Data(x, jnp.asarray(y), data_w, data_m)
        both = jax.jit(lambda v, parts, data, r=r: (jax.hessian(C._nll(r, parts))(v, data),
                                                    C.hessian(r, v, parts, data, size=10)))
        ref, h = both(v, parts, data)
        np.testing.assert_allclose(h, ref, rtol=1e-10, atol=1e-10 * float(jnp.max(jnp.abs(ref))))


@pytest.mark.deep
def test_one_output_hessian_and_meat_either_product_form(x64):
    """One raw output, no family parameter: ``_curvature``'s Hessian and HC0 meat as ``Z' Z`` with
    ``Z = sqrt(c) X`` where every weight c_i >= 0 (Poisson) and as ``(c X)' X`` where some curvature is
    negative (Student t at residuals beyond sqrt(df)), against ``jax.hessian`` and the per-example scores'
    ``J' diag(m w) J`` (``jax.jacrev`` of ``log_prob``); a lambda model (the dense Jacobian) and
    ``models.linear`` (the Gram without the design), weights, a mask, chunks whose last one overlaps."""
    from jax.flatten_util import ravel_pytree

    from mle_jax import _curvature as C
    from mle_jax._params import partition
    rng = np.random.default_rng(11)
    n = 23
    x = jnp.asarray(rng.normal(size=(n, 3)))
    p0 = {"w": jnp.array([0.3, -0.2, 0.1]), "b": jnp.array(0.1)}
    eta = np.asarray(x) @ np.asarray(p0["w"]) + 0.1
    outliers = eta + np.where(np.arange(n) % 3 == 0, 6.0, 0.3) * rng.choice([-1.0, 1.0], n)
    w, m = jnp.asarray(rng.uniform(0.5, 2, n)), jnp.asarray(np.arange(n) % 5 != 1)
    assert np.any((np.abs(outliers - eta) > np.sqrt(3.0)) & np.asarray(m))  # negative curvature in the t's NLL
    for family, y in ((mj.poisson(), rng.poisson(np.exp(eta)).astype(float)),
                      (mj.student_t(df=3.0, scale=1.0), outliers)):
        for model in (_linear, mj.models.linear(3, dtype=jnp.float64).apply):
            r = mj.recipe(model, family)
            parts = partition(r.init(p0))
            v, unravel = ravel_pytree(parts.trained)
            data = C.Data(x, jnp.asarray(y), w, m)

            def log_lik(u, parts, r=r, unravel=unravel, y=jnp.asarray(y)):  # the data concrete: the recipe checks them
                return r.log_prob(parts.replace(trained=unravel(u)).params(), x, y)

            def all_four(v, parts, data, r=r):  # the references and the three products in one program: one compile
                scores = jax.jacrev(log_lik)(v, parts)  # (n, k)
                ref_b = scores.T @ (jnp.where(data.m, data.w, 0.0)[:, None] * scores)
                ref_h = jax.hessian(C._nll(r, parts))(v, data)
                return ref_h, ref_b, C.sandwich(r, v, parts, data, size=10), C.hessian(r, v, parts, data, size=10)
            ref_h, ref_b, (h, b), alone = jax.jit(all_four)(v, parts, data)
            for got, ref in ((h, ref_h), (alone, ref_h), (b, ref_b)):
                np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10 * float(jnp.max(jnp.abs(ref))))


@pytest.mark.deep  # two compiles of the split Hessian
def test_sum_hessian_keeps_float64_weights_of_a_float32_model(x64):
    """A summed objective with float64 weights of 1e-39 and a float32 model: the Hessian Newton reads
    (``objective_hessian``) is the float64 model's to float32's precision (its entries ~1e-37, normal in float32);
    the weights cast to float32 first were 0 (subnormal, flushed) and so was the Hessian."""
    from mle_jax._params import partition
    rng = np.random.default_rng(0)
    n, d = 500, 3
    x = rng.normal(size=(n, d))
    y = rng.poisson(np.exp(0.3 * x[:, 0])).astype(np.float64)
    init, apply = mj.models.linear(d)
    r = mj.recipe(apply, mj.poisson())
    hs = []
    for dt in (np.float32, np.float64):
        p = r.init(jax.tree_util.tree_map(lambda a, dt=dt: jnp.asarray(a, dt) + 0.1, init(jax.random.PRNGKey(0))))
        parts = partition(p)
        h = objective_hessian(r, parts, jnp.asarray(x, dt), jnp.asarray(y, dt), jnp.full(n, 1e-39), None, "sum")
        hs.append(jax.jit(h)(parts.trained))
    assert hs[0].dtype == jnp.float32 and hs[1].dtype == jnp.float64
    tiny = float(jnp.finfo(jnp.float32).tiny)
    assert float(jnp.max(jnp.abs(hs[1]))) > 10 * tiny
    np.testing.assert_allclose(np.asarray(hs[0], np.float64), np.asarray(hs[1]), rtol=1e-5, atol=2 * tiny)
