"""Links: inverses, the dtype-aware floor with an honest gradient, and the failure modes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

import mle_jax as mj
from mle_jax import links

RAWS = [-120.0, -30.0, 0.0, 30.0, 100.0]


@pytest.mark.parametrize("name", ["softplus", "exp", "square"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_learned_scale_links_finite_everywhere(name, dtype):
    with jax.enable_x64(dtype == "float64"):
        family = mj.normal(scale=name)
        # one compiled program for every raw and y (op by op: about 15 compiles a case)
        loss_and_grad = jax.jit(jax.value_and_grad(lambda r, y: -family.log_prob({}, r, y)))
        for raw in RAWS:
            r = jnp.array([0.3, raw], dtype)
            for y in [0.3, 1.7]:  # residual 0 (the collapse case) and 1.4
                y = jnp.asarray(y, dtype)
                loss, grad = loss_and_grad(r, y)
                assert loss.dtype == jnp.dtype(dtype)
                assert np.isfinite(loss) and np.all(np.isfinite(grad)), (name, raw, float(loss), grad)


@pytest.mark.parametrize("name", ["softplus", "exp", "square"])
def test_log_forward_is_log_of_forward(name):
    link = links.get(name)
    raw = jnp.linspace(-5.0, 5.0, 41)
    np.testing.assert_allclose(link.log_forward(raw), jnp.log(link.forward(raw)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(link.inverse(link.forward(raw[raw > 0.1])), raw[raw > 0.1], rtol=1e-4)


def test_floor_gradient_is_honest():
    # sigma = softplus(raw) + eps: the gradient is sigmoid(raw), not 0 as a clamp under stop_gradient gives
    raw = jnp.array([-30.0, -5.0, 0.0, 4.0])
    grad = jax.vmap(jax.grad(links.softplus.forward))(raw)
    np.testing.assert_allclose(grad, special.expit(np.asarray(raw)), rtol=1e-6)
    assert float(links.softplus.forward(jnp.float32(-200.0))) == pytest.approx(float(jnp.finfo(jnp.float32).eps))
    with jax.enable_x64(True):
        assert float(links.softplus.forward(jnp.float64(-800.0))) == float(jnp.finfo(jnp.float64).eps)


def test_square_link_failure_modes():
    family = mj.normal(scale="square")
    # at f2 = 0 the gradient with respect to f2 is exactly 0: a unit at 0 stays there
    g = jax.grad(lambda r: -family.log_prob({}, r, jnp.float32(1.0)))(jnp.array([0.0, 0.0]))
    assert g[1] == 0.0
    # with a zero residual the loss is unbounded below as f2 -> 0 (variance collapse)
    losses = [float(-family.log_prob({}, jnp.array([1.0, f2]), jnp.float32(1.0))) for f2 in [1.0, 1e-2, 1e-4, 1e-6]]
    assert all(a > b for a, b in zip(losses, losses[1:]))
    assert losses[-1] < -10


def test_sigmoid_softmax_identity_links():
    z = jnp.array([-3.0, 0.0, 2.0])
    np.testing.assert_allclose(links.sigmoid.inverse(links.sigmoid.forward(z)), z, rtol=1e-5, atol=1e-6)
    p = links.softmax.forward(z)
    np.testing.assert_allclose(p, special.softmax(np.asarray(z)), rtol=1e-6)
    np.testing.assert_allclose(links.softmax.forward(links.softmax.inverse(p)), p, rtol=1e-6)
    assert links.get("identity").forward(z) is z
    with pytest.raises(ValueError, match="unknown link"):
        links.get("cube")


@pytest.mark.parametrize("family", [mj.normal("softplus"), mj.normal("exp"), mj.normal("square"),
                                    mj.laplace("softplus"), mj.student_t(4.0, "softplus"),
                                    mj.student_t("learned", "exp")], ids=lambda f: f.name)
@pytest.mark.deep
def test_written_out_derivative_matches_autodiff(family, x64):
    # The location-scale kernel's custom JVP against autodiff of the generic log density of its theta:
    # value, gradient in raw, y and the family's own parameters, and second derivatives both ways.
    fp = family.init(jnp.float64)

    def reference(fp, raw, y):
        return mj.log_prob(family.theta(fp, raw), y)

    # every (raw, y) pair at once: one compiled program per transform instead of op-by-op dispatch
    raws = jnp.array([[0.3, -0.7], [1.0, 2.5], [-2.0, 0.05], [0.0, -30.0]], jnp.float64).repeat(2, axis=0)
    ys = jnp.array([0.1, 2.2] * 4, jnp.float64)
    each = lambda f: jax.jit(jax.vmap(f, in_axes=(None, 0, 0)))
    value, grads = each(jax.value_and_grad(family.log_prob, argnums=(0, 1, 2)))(fp, raws, ys)
    ref_value, ref_grads = each(jax.value_and_grad(reference, argnums=(0, 1, 2)))(fp, raws, ys)
    np.testing.assert_allclose(value, ref_value, rtol=1e-12)
    for got, want in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads)):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    want = each(jax.hessian(reference, argnums=1))(fp, raws, ys)
    np.testing.assert_allclose(each(jax.hessian(family.log_prob, argnums=1))(fp, raws, ys), want, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(each(jax.jacrev(jax.grad(family.log_prob, argnums=1), argnums=1))(fp, raws, ys), want,
                               rtol=1e-8, atol=1e-12)


def test_scale_terms_are_log_inverse_and_derivative():
    raw = jnp.linspace(-6.0, 6.0, 25)
    for link in (links.softplus, links.exp, links.square):
        log_scale, inv_scale, dlog = link.scale_terms(raw)
        np.testing.assert_allclose(log_scale, jnp.log(link.forward(raw)), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(inv_scale, 1.0 / link.forward(raw), rtol=1e-5)
        np.testing.assert_allclose(dlog, jax.vmap(jax.grad(lambda r: jnp.log(link.forward(r))))(raw), rtol=1e-4,
                                   atol=1e-6)
        for r in (-120.0, 100.0):  # finite where sigma under- or overflows
            assert all(np.isfinite(t) for t in link.scale_terms(jnp.float32(r)))


def test_accessors_name_the_link_without_the_function():
    assert links.scale_terms(links.exp) is links.exp.scale_terms
    assert links.log_forward(links.sigmoid) is links.sigmoid.log_forward
    with pytest.raises(ValueError, match="the sigmoid link is not a positive"):
        links.scale_terms(links.sigmoid)
    with pytest.raises(ValueError, match="the identity link has no log_forward"):
        links.log_forward(links.identity)
    np.testing.assert_allclose(links.softplus.forward(links.softplus_inverse(jnp.float32(0.3))), 0.3, rtol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.float32, "float64"])
def test_softplus_inverse_refuses_a_value_at_or_below_the_floor(dtype, x64):
    """No raw value gives ``softplus(raw) + eps <= eps``: a learned family's ``init_shape=1e-9`` in float32 was a
    silent NaN parameter (and ``init = eps`` a raw of -inf); now a ValueError naming the floor. Above it the
    inverse is exact: ``softplus(raw) + eps`` gives the value back (scipy's ``log1p(exp)`` as the reference)."""
    dtype = jnp.dtype(dtype)
    eps = float(jnp.finfo(dtype).eps)
    for bad in (1e-9 * eps, eps, -1.0, 0.0):
        with pytest.raises(ValueError, match="floor"):
            links.softplus_inverse(jnp.asarray(bad, dtype))
    with pytest.raises(ValueError, match="floor"):
        mj.gamma(parameterization="mean", init_shape=eps / 10).init(dtype)
    with pytest.raises(ValueError, match="floor"):
        mj.negative_binomial(init_total_count=eps / 10).init(dtype)
    for good in (2.0 * eps, 1e-3, 1.0, 1e6):
        raw = float(links.softplus_inverse(jnp.asarray(good, dtype)))
        back = np.logaddexp(0.0, raw) + eps
        assert back == pytest.approx(good, rel=8 * eps), (good, raw)
    # traced: no check is possible, the formula's NaN (NaN in, NaN out)
    assert np.isnan(jax.jit(links.softplus_inverse)(jnp.asarray(eps / 10, dtype)))
