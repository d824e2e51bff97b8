"""Every family's fused kernel against its theta's own ``log_prob``, on and off the support.

A family's ``log_prob`` (its fast kernel times its affine) must be the theta's ``log_prob`` at
every target, including targets off the support, where both are ``-inf`` (an NLL of ``+inf``, never
a finite NLL for an impossible target). Checked where nothing validates the targets: under ``jit``
with the targets traced, through the family, ``mj.losses`` with ``validate=False`` and a recipe
built with ``validate=False``; in float32 and float64, one compiled program per family and dtype.
Which targets are off the support is stated independently here (``OFF``), from each support's rule.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mle_jax as mj

INF, NAN = np.inf, np.nan
REAL = [-3.0, 0.0, 0.4, 7.5, INF, -INF, NAN]                 # no finite value is off the real line
COUNTS = [0.0, 3.0, 2.5, -1.0, 1e-3, INF]                      # off: 2.5, -1, 1e-3
LABELS3 = [0, 2, 1, 3, -1, 7]                                  # labels(3), off: 3, -1, 7
LABELS4 = [0, 3, 1, 4, -1, 2]                                  # labels(4), off: 4, -1


def _real_off(y):
    return np.zeros(np.shape(y), bool)


# name: (family, targets, where the targets are impossible (finite ones), target dtype kind). The ends of an
# open support (y = 0 for the Gamma, 0 and 1 for the Beta) are where the density has a limit (scipy's
# logpdf gives it: +inf below a shape of 1, -inf above): there the kernel is held to the theta only.
FAMILIES = {
    "normal-fixed": (lambda: mj.normal(0.7), REAL, _real_off, "float"),
    "normal-tiny-fixed": (lambda: mj.normal(1e-20), REAL, _real_off, "float"),
    "normal-learned": (lambda: mj.normal("learned"), REAL, _real_off, "float"),
    "normal-softplus": (lambda: mj.normal("softplus"), REAL, _real_off, "float"),
    "normal-exp-beta": (lambda: mj.normal("exp", beta=0.5), REAL, _real_off, "float"),
    "laplace-fixed": (lambda: mj.laplace(2.0), REAL, _real_off, "float"),
    "laplace-learned": (lambda: mj.laplace("learned"), REAL, _real_off, "float"),
    "student_t-learned": (lambda: mj.student_t("learned", "learned"), REAL, _real_off, "float"),
    "student_t-softplus": (lambda: mj.student_t(), REAL, _real_off, "float"),
    "mixture_normal": (lambda: mj.mixture_normal(2), REAL, _real_off, "float"),
    "von_mises": (lambda: mj.von_mises(), REAL, _real_off, "float"),
    "gamma": (lambda: mj.gamma(), [0.5, 3.0, 1e-30, -1.0, -1e-30, 0.0, INF],
              lambda y: y < 0, "float"),
    "beta": (lambda: mj.beta(), [0.5, 0.01, 0.999, -0.5, 1.5, 0.0, 1.0],
             lambda y: (y < 0) | (y > 1), "float"),
    "poisson": (lambda: mj.poisson(), COUNTS, lambda y: (y < 0) | (y != np.floor(y)), "float"),
    "negative_binomial": (lambda: mj.negative_binomial(), COUNTS, lambda y: (y < 0) | (y != np.floor(y)), "float"),
    "bernoulli": (lambda: mj.bernoulli(), [0.0, 1.0, 2.0, -1.0, 1.5, 1e-8 + 1.0],
                  lambda y: (y < 0) | (y > 1), "float"),
    "bernoulli-int": (lambda: mj.bernoulli(), [0, 1, 2, -1, 5, 1], lambda y: (y < 0) | (y > 1), "int"),
    "bernoulli-soft": (lambda: mj.bernoulli(soft_labels=True), [0.0, 0.3, 1.0, -0.2, 1.2, NAN],
                       lambda y: (y < 0) | (y > 1), "float"),
    "categorical": (lambda: mj.categorical(3), LABELS3, lambda y: (y < 0) | (y >= 3), "int"),
    "categorical-float": (lambda: mj.categorical(3), [0.0, 2.0, 1.5, 3.0, -1.0, 1.0],
                          lambda y: (y < 0) | (y >= 3) | (y != np.floor(y)), "float"),
    "categorical-training": (lambda: mj.categorical(3, label_smoothing=0.1, class_weights=[1.0, 0.0, 2.0]),
                             LABELS3, lambda y: (y < 0) | (y >= 3), "int"),
    "ordinal": (lambda: mj.ordinal(4), LABELS4, lambda y: (y < 0) | (y >= 4), "int"),
    "mvn_cholesky": (lambda: mj.mvn_cholesky(2), [[0.0, 1.0], [INF, 0.0], [2.0, NAN], [-1.0, -2.0]],
                     lambda y: np.zeros(len(y), bool), "float"),
    "independent-bernoulli": (lambda: mj.independent(mj.bernoulli(), 2),
                              [[0.0, 1.0], [2.0, 1.0], [1.0, -1.0], [1.0, 1.0]],
                              lambda y: ((y < 0) | (y > 1)).any(axis=1), "float"),
    "independent-gamma-unshared": (lambda: mj.independent(mj.gamma(), 2, shared=False),
                                   [[0.5, 1.0], [-1.0, 1.0], [1.0, 0.0], [2.0, 3.0]],
                                   lambda y: (y < 0).any(axis=1), "float"),
    "independent-normal-learned": (lambda: mj.independent(mj.normal("learned"), 2, shared=False),
                                   [[0.5, 1.0], [INF, 1.0], [1.0, 0.0]], lambda y: np.zeros(len(y), bool), "float"),
}


def _raw(family, n, dtype):
    rng = np.random.default_rng(len(family.name))
    return jnp.asarray(rng.normal(size=(n,) + family.raw_shape), dtype)


def _fparams(family, dtype):
    """The family's parameters moved off their initial values (a learned scale, df, cutpoints)."""
    return jax.tree.map(lambda a: a + jnp.asarray(0.3, a.dtype), family.init(dtype))


def _target(values, kind, dtype):
    return jnp.asarray(np.asarray(values), jnp.int32 if kind == "int" else dtype)


def _everything(family):
    """One compiled program: the family's log_prob, the theta's, mj.losses and a recipe, y traced."""
    recipe = mj.recipe(lambda p, x: x, family, validate=False)

    @jax.jit
    def run(fp, raw, y):
        fused = jax.vmap(family.log_prob, in_axes=(None, 0, 0))(fp, raw, y)
        theta = jax.vmap(lambda r, t: mj.log_prob(family.theta(fp, r), t))(raw, y)
        nll = mj.losses.nll(family, raw, y, fp or None, validate=False)
        training = mj.losses.loss(family, raw, y, fp or None, validate=False)
        from_recipe = recipe.log_prob(mj.Params({}, fp), raw, y)
        return fused, theta, nll, training, from_recipe
    return run


def _check(name, dtype):
    make, values, off_rule, kind = FAMILIES[name]
    family = make()
    y = _target(values, kind, dtype)
    fp, raw = _fparams(family, dtype), _raw(family, len(values), dtype)
    fused, theta, nll, training, from_recipe = _everything(family)(fp, raw, y)
    assert fused.dtype == dtype and fused.shape == (len(values),)
    rtol = 2e-6 if dtype == jnp.float32 else 1e-13
    # the kernel is the theta's log_prob everywhere: values, -inf, +inf and NaN in the same places
    np.testing.assert_allclose(fused, theta, rtol=rtol, atol=rtol, err_msg=f"{name}: kernel vs theta")
    np.testing.assert_allclose(from_recipe, fused, rtol=rtol, atol=rtol, err_msg=f"{name}: recipe")
    np.testing.assert_allclose(nll, -fused, rtol=rtol, atol=rtol, err_msg=f"{name}: mj.losses.nll")
    off = off_rule(np.asarray(y, np.float64))  # as the computation sees them (1 + 1e-8 is 1 in float32)
    np.testing.assert_array_equal(np.asarray(fused)[off], -np.inf, err_msg=f"{name}: off the support")
    np.testing.assert_array_equal(np.asarray(training)[off], np.inf, err_msg=f"{name}: training loss")
    finite = np.isfinite(np.asarray(y, np.float64)).reshape(len(values), -1).all(axis=1)
    on = ~off & finite
    assert not np.isnan(np.asarray(fused)[on]).any() and not np.isnan(np.asarray(training)[on]).any(), name


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.deep
def test_kernel_is_the_theta_log_prob_on_and_off_the_support(name):
    _check(name, jnp.float32)


# float64 for the families whose kernel is written apart from the theta (the others' is the theta's own)
FLOAT64 = ["normal-fixed", "normal-tiny-fixed", "normal-learned", "normal-softplus", "laplace-learned",
           "student_t-learned", "student_t-softplus", "negative_binomial", "bernoulli", "bernoulli-soft",
           "categorical-training", "ordinal", "independent-bernoulli", "independent-normal-learned"]


@pytest.mark.parametrize("name", FLOAT64)
@pytest.mark.deep
def test_kernel_is_the_theta_log_prob_in_float64(name, x64):
    _check(name, jnp.float64)


CENSORED = {"gamma": mj.gamma, "normal-softplus": lambda: mj.normal("softplus")}


@pytest.mark.parametrize("inner, dtype", [("gamma", "float32"), ("normal-softplus", "float32"),
                                          ("normal-softplus", "float64")])
def test_censored_kernel_is_the_density_or_the_tail_and_inf_off_the_sides(inner, dtype):
    """side 0: log_prob; -1: log_cdf; +1: log_sf, of the inner theta; any other side (2, 0.5, -3):
    -inf, with the targets traced and not validated."""
    make = CENSORED[inner]
    with jax.enable_x64(dtype == "float64"):
        dt = jnp.dtype(dtype)
        family = mj.censored(make())
        values = jnp.asarray([0.7, 0.7, 0.7, 0.7, 0.7, 0.7, -1.0, 2.0], dt)
        sides = jnp.asarray([0.0, -1.0, 1.0, 2.0, 0.5, -3.0, -1.0, 1.0], dt)
        raw = _raw(family, len(values), dt)

        @jax.jit
        def run(raw, y):
            fused = -mj.losses.nll(family, raw, y, validate=False)
            thetas = jax.vmap(lambda r: family.theta({}, r))(raw)
            return fused, mj.log_prob(thetas, y[:, 0]), mj.log_cdf(thetas, y[:, 0]), mj.log_sf(thetas, y[:, 0])

        fused, density, cdf, sf = map(np.asarray, run(raw, jnp.stack([values, sides], axis=1)))
    side = np.asarray(sides)
    want = np.select([side == 0, side == -1, side == 1], [density, cdf, sf], -np.inf)
    rtol = 2e-6 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(fused, want, rtol=rtol, atol=rtol)
    assert np.all(np.isneginf(fused[~np.isin(side, [-1, 0, 1])]))
