"""Adversarial checks from the wave-10 audit: the ordinal family at extremes, ``mj.losses`` against torch and
optax, the samplers against scipy. Each compares with an independent reference (mpmath, closed forms, torch,
optax, scipy). Cheap cases run in the README suite; sweeps are ``deep``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mle_jax as mj


# ----------------------------------------------------------------------------- ordinal (cumulative logits)

def _phi(x):
    """``sig(x) sig(-x)`` in 50 digits: the curvature of ``-log sig(x)``."""
    import mpmath as mp
    mp.mp.dps = 40
    x = mp.mpf(float(x))
    return mp.exp(-x) / (1 + mp.exp(-x)) ** 2


def _ordinal_hessian(cuts, f, y):
    """The NLL's Hessian in ``(f, c_0, ..., c_{K-2})`` in closed form (mpmath): with ``u = c_y - f``,
    ``v = c_{y-1} - f``, ``g = c_y - c_{y-1}``, ``NLL = -log sig(u) - log sig(-v) - log(1 - exp(-g))``, a sum of
    three rank-one curvatures ``phi(u) a a' + phi(v) b b' + e^g / (e^g - 1)^2 d d'``, ``phi(x) = sig(x) sig(-x)``,
    ``a = e_{c_y} - e_f``, ``b = e_{c_{y-1}} - e_f``, ``d = e_{c_y} - e_{c_{y-1}}``."""
    import mpmath as mp
    mp.mp.dps = 40
    k = len(cuts) + 1
    h = np.zeros((k, k))
    c = [mp.mpf(float(v)) for v in cuts]
    f = mp.mpf(float(f))

    def add(weight, plus, minus):
        e = np.zeros(k)
        e[plus] += 1
        e[minus] -= 1
        h[:] += float(weight) * np.outer(e, e)
    if y < k - 1:
        add(_phi(c[y] - f), 1 + y, 0)
    if y > 0:
        add(_phi(c[y - 1] - f), y, 0)
    if 0 < y < k - 1:
        g = c[y] - c[y - 1]
        add(mp.exp(g) / mp.expm1(g) ** 2, 1 + y, y)
    return h


@pytest.mark.parametrize("dtype, far, rtol", [(jnp.float32, [-20.0, -15.0, -10.0, 12.0, 18.0], 2e-5),
                                              (jnp.float64, [-700.0, -70.0, -40.0, -30.0, 30.0, 45.0, 300.0], 1e-11)])
def test_ordinal_hessian_where_the_observed_class_is_far_off(dtype, far, rtol):
    """The ordinal kernel's written derivative ``sig(v) - sig(-u)`` was differentiated by the logistic's own rule,
    ``s (1 - s)``, which keeps only rounding where ``s`` is near 1: d2 NLL / df2 at ``f - c = 30`` (float64) was
    9.348e-14 for 9.358e-14, at 40 and beyond 0 for 4.2e-18; in float32 0.17 off at 15 and 0 at 20. Reference: the
    closed-form Hessian in (f, cutpoints) (``_ordinal_hessian``, mpmath), for every class of K = 4."""
    with jax.enable_x64(dtype == jnp.float64):
        cuts = np.asarray([-1.0, 0.0, 1.5], dtype)

        def nll(fc, y):
            return mj.losses.ordinal(fc[:1], y[None], cutpoints=fc[1:])[0]
        f = np.asarray([c + d for c in (cuts[0], cuts[-1]) for d in far], dtype)
        f, y = np.tile(f, 4), np.repeat(np.arange(4), len(f))  # every class of K = 4 at every f
        fc = jnp.concatenate([jnp.asarray(f)[:, None], jnp.broadcast_to(jnp.asarray(cuts), (len(f), 3))], axis=1)
        got = np.asarray(jax.jit(jax.vmap(jax.hessian(nll)))(fc, jnp.asarray(y)), np.float64)
        for g, fi, yi in zip(got, f, y):
            want = _ordinal_hessian(cuts, fi, yi)
            # the curvature in f, exact however small; every entry within rounding of the gradient (of size
            # 1: the cutpoints enter as c_0 and gaps, whose round trip leaves eps-sized second derivatives)
            np.testing.assert_allclose(g[0, 0], want[0, 0], rtol=rtol, err_msg=f"y={yi} f={fi}")
            np.testing.assert_allclose(g, want, rtol=rtol, atol=8 * np.finfo(dtype).eps)


def test_ordinal_family_hessian_in_its_score_matches_the_closed_form():
    """The recipe's path (``family.log_prob`` with the family's own parameters, K = 5 by selects and K = 20 by a
    gather): d2 NLL / df2 = phi(u) + phi(v) (``_ordinal_hessian``), float64, f up to 60 from the cutpoints."""
    with jax.enable_x64(True):
        for k in (5, 20):
            family = mj.ordinal(k)
            fp = family.init(jnp.float64)
            cuts = np.asarray(fp["first_cut"] + np.concatenate([[0.0], np.cumsum(np.ones(k - 2))]))
            f = np.tile([-60.0, -38.0, 0.25, 41.0, 60.0], 3)
            y = np.repeat([0, 1, k - 1], 5)
            got = jax.jit(jax.vmap(jax.hessian(lambda z, y: -family.log_prob(fp, z, y))))(jnp.asarray(f), jnp.asarray(y))
            want = [_ordinal_hessian(cuts, fi, yi)[0, 0] for fi, yi in zip(f, y)]
            np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12)


# ----------------------------------------------------------------------------- mj.losses against torch and optax

@pytest.mark.deep
def test_classification_losses_match_torch_at_extreme_logits_with_smoothing_weights_and_ignored_labels():
    """``mj.losses.categorical`` / ``bernoulli`` against torch (float64) at logits of +-1e4, with label smoothing,
    class weights, and torch's ``ignore_index`` as a mask of ``mj.reduce_terms``: values and gradients of the
    mean. The one deliberate difference (documented): with smoothing AND class weights, mle_jax scales example i's
    whole smoothed term by ``w[y_i]`` (torch weights each class's smoothing term by ``w_k``), so the reference
    there is ``w[y_i]`` times torch's unweighted smoothed loss. optax's float32 cross-entropy at logits
    (-1e4, 1e4, 1e4, ...) reads 0.69336 for log 2; mle_jax's 0.693147."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(3)
    k, n = 5, 9
    z = rng.normal(size=(n, k)) * 3
    z[0], z[1] = [1e4, -1e4, 0, 3, -2], [-1e4, 1e4, 1e4, 0, 0]
    y = rng.integers(0, k, n)
    y[:2] = (1, 2)
    w = np.array([0.5, 2.0, 1.0, 0.25, 3.0])
    ignored = np.arange(n) % 4 == 3
    tz = torch.tensor(z, requires_grad=True)
    ty = torch.tensor(y)
    for dtype, rtol in ((np.float32, 3e-6), (np.float64, 1e-12)):
        with jax.enable_x64(dtype == np.float64):
            zj, yj = jnp.asarray(z.astype(dtype)), jnp.asarray(y)
            for eps in (0.0, 0.1):
                for weights in (None, w):
                    def mean(zz):
                        terms = mj.losses.categorical(zz, yj, label_smoothing=eps, class_weights=weights)
                        terms = jnp.where(jnp.asarray(ignored), 0.0, terms)  # torch's ignore_index
                        return jnp.sum(terms) / (np.sum(~ignored) if weights is None else np.sum(w[y][~ignored]))
                    value, grad = jax.value_and_grad(mean)(zj)
                    tw = torch.tensor(weights) if weights is not None and eps == 0 else None
                    terms = F.cross_entropy(tz, ty.masked_fill(torch.tensor(ignored), -100), weight=tw,
                                            label_smoothing=eps, reduction="none")
                    if weights is not None and eps > 0:
                        terms = terms * torch.tensor(w[y])
                    ref = terms.sum() / (np.sum(~ignored) if weights is None else np.sum(w[y][~ignored]))
                    ref_grad, = torch.autograd.grad(ref, tz)
                    np.testing.assert_allclose(float(value), ref.item(), rtol=rtol)
                    np.testing.assert_allclose(np.asarray(grad, np.float64), ref_grad.numpy(), rtol=rtol, atol=rtol / n)
            zb = np.concatenate([[1e4, -1e4, 1e4, -1e4, 40.0, -40.0], rng.normal(size=6) * 3])
            for yb in (np.array([0, 1, 1, 0] + [1, 0] * 4, float), rng.uniform(size=12)):
                tzb = torch.tensor(zb, requires_grad=True)
                ref = F.binary_cross_entropy_with_logits(tzb, torch.tensor(yb), reduction="none")
                ref_grad, = torch.autograd.grad(ref.sum(), tzb)
                loss = lambda zz: mj.losses.bernoulli(zz, jnp.asarray(yb.astype(dtype)), soft_labels=True)  # noqa: E731
                np.testing.assert_allclose(np.asarray(loss(jnp.asarray(zb.astype(dtype))), np.float64), ref.detach().numpy(),
                                           rtol=rtol, atol=rtol)
                grad = jax.grad(lambda zz: jnp.sum(loss(zz)))(jnp.asarray(zb.astype(dtype)))
                np.testing.assert_allclose(np.asarray(grad, np.float64), ref_grad.numpy(), rtol=rtol, atol=rtol)
