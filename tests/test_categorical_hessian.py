"""The Categorical's curvature where a class probability is near 1, against mpmath's closed form.

The Hessian of ``-log softmax(z)[y]`` in the logits is ``diag(p) - p p'`` (whatever y): its diagonal
``p_k (1 - p_k)`` is tiny where ``p_k`` is near 1 and must come from the other classes' probabilities, not from
``1 - p_k`` rounded. Newton's and ``mj.inference``'s curvature (``_curvature._split``) is this Hessian of the
family kernel, example by example. The ordinal model's Hessian taken through its ``theta`` (a Categorical on the
intervals' log-probabilities) is checked against its own closed form ``phi(u) + phi(v)``."""

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

import mle_jax as mj
from mle_jax.distributions import Categorical


def _softmax_curvature(z):
    """``diag(p) - p p'`` in 40 digits, rounded once; ``1 - p_i`` as the other classes' sum (``1 - p`` would keep
    nothing of ``e^-1400`` in 40 digits either)."""
    mp.mp.dps = 40
    e = [mp.exp(mp.mpf(float(v))) for v in z]
    total = mp.fsum(e)
    p = [v / total for v in e]
    rest = [mp.fsum(e[:i] + e[i + 1:]) / total for i in range(len(z))]
    return np.asarray([[float(p[i] * rest[i] if i == j else -p[i] * p[j]) for j in range(len(z))]
                       for i in range(len(z))])


def _logit_sets(k, far):
    """Logit vectors with one class (or two tied) far above or below the rest, at every spread in ``far``."""
    out = []
    for d in far:
        for sign in (1.0, -1.0):
            base = np.zeros(k)
            base[-1] = sign * d
            out.append(base)
            spread = sign * d * np.linspace(-1.0, 1.0, k)  # every gap from d / (k - 1) to 2 d
            out.append(spread)
            if k > 2:
                tied = np.full(k, -sign * d)
                tied[:2] = 0.0
                out.append(tied)
    return out


@pytest.mark.parametrize("dtype, far, rtol", [(jnp.float64, [1.0, 30.0, 40.0, 100.0, 350.0, 700.0], 1e-12),
                                              (jnp.float32, [1.0, 10.0, 17.0, 40.0, 80.0], 1e-5)])
@pytest.mark.parametrize("k", [2, 3, 10])
def test_categorical_hessian_where_a_class_is_near_certain(dtype, far, rtol, k):
    """Before the fix: at logits (0, 40), float64, the entry of the near-certain class was 0 for 4.2e-18; at
    (0, 30) 9.348e-14 for 9.358e-14 (``1 - p`` rounded). Every label y, the distribution's ``log_prob`` and the
    family's kernel (Newton's path)."""
    tiny = np.finfo(dtype).tiny
    family = mj.categorical(k)
    with jax.enable_x64(dtype == jnp.float64):
        hess = jax.jit(jax.vmap(jax.hessian(lambda z, y: -mj.log_prob(Categorical(z), y)), in_axes=(None, 0)))
        fam_hess = jax.jit(jax.vmap(jax.hessian(lambda z, y: -family.kernel({}, z, y)),
                                    in_axes=(None, 0)))
        labels = jnp.arange(k) if k <= 3 else jnp.asarray([0, k // 2, k - 1])
        for z in _logit_sets(k, far):
            want = _softmax_curvature(z.astype(dtype))
            for got in (hess(jnp.asarray(z, dtype), labels), fam_hess(jnp.asarray(z, dtype), labels)):
                for y, g in zip(np.asarray(labels), np.asarray(got, np.float64)):
                    np.testing.assert_allclose(g, want, rtol=rtol, atol=4 * tiny, err_msg=f"z={z} y={y}")


def _phi(x):
    """``sig(x) sig(-x)``, the curvature of ``-log sig(x)``, in 40 digits."""
    mp.mp.dps = 40
    x = mp.mpf(float(x))
    return mp.exp(-x) / (1 + mp.exp(-x)) ** 2


@pytest.mark.parametrize("dtype, far, rtol", [(jnp.float64, [-700.0, -45.0, -30.0, 0.3, 30.0, 45.0, 700.0], 1e-11),
                                              (jnp.float32, [-40.0, -17.0, -10.0, 0.3, 10.0, 17.0, 40.0], 2e-5)])
def test_ordinal_hessian_through_theta_matches_the_closed_form(dtype, far, rtol):
    """``mj.log_prob(family.theta(fp, f), y)``'s d2/df2 is ``phi(c_y - f) + phi(c_{y-1} - f)`` (the terms that
    exist). Before the fix, float64: at f = 45, y = 0, -9.0e-35 for 1.05e-20 (the first class's ``log sig``
    curvature rounded to 0, then the softmax's); y = 1, 2.86e-20 for 1.06e-19."""
    k = 4
    family = mj.ordinal(k)
    with jax.enable_x64(dtype == jnp.float64):
        fp = family.init(dtype)
        cuts = np.asarray(fp["first_cut"], np.float64) + np.asarray([0.0, 1.0, 2.0])  # gaps softplus(inverse(1))
        hess = jax.jit(jax.vmap(jax.hessian(lambda f, y: -mj.log_prob(family.theta(fp, f), y))))
        f = np.repeat(np.asarray(far, dtype), k)
        y = np.tile(np.arange(k), len(far))
        got = np.asarray(hess(jnp.asarray(f), jnp.asarray(y)), np.float64)
        for g, fi, yi in zip(got, f, y):
            want = (float(_phi(cuts[yi] - fi)) if yi < k - 1 else 0.0) + (float(_phi(cuts[yi - 1] - fi)) if yi > 0 else 0.0)
            np.testing.assert_allclose(g, want, rtol=rtol, atol=4 * np.finfo(dtype).tiny, err_msg=f"f={fi} y={yi}")
