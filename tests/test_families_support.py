"""Every family's fused kernel against its theta's own ``log_prob``, on and off the support.

A family's ``log_prob`` (its fast kernel times its affine) must be the theta's ``log_prob`` at
every target, including targets off the support, where both are ``-inf`` (an NLL of ``+inf``, never
a finite NLL for an impossible target). Checked where nothing validates the targets: under ``jit``
with the targets traced, through the family, ``mj.losses`` with ``validate=False`` and a recipe
built with ``validate=False``; in float32 and float64, one compiled program per family and dtype.
The families, their targets and which of them are off the support (stated independently of the
library's ``Support``) are tests/families_table.py's. The raw outputs are drawn (hypothesis) besides
the fixed ones: every draw has the same shapes, so each family and dtype is compiled once.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

import mle_jax as mj
from families_table import FAMILIES as TABLE, DEEP_ONLY

FAMILIES = {name: entry for name, entry in TABLE.items() if not entry.censored}
CENSORED = {name: entry for name, entry in TABLE.items() if entry.censored}
TABLE_THETA = {entry.family: entry.theta for entry in TABLE.values()}
SETTINGS = settings(max_examples=3, deadline=None, derandomize=True)


def _raw(family, n, dtype):
    rng = np.random.default_rng(len(family.name))
    return jnp.asarray(rng.normal(size=(n,) + family.raw_shape), dtype)


def _fparams(family, dtype):
    """The family's parameters moved off their initial values (a learned scale, df, cutpoints)."""
    return jax.tree.map(lambda a: a + jnp.asarray(0.3, a.dtype), family.init(dtype))


def _target(values, kind, dtype):
    return jnp.asarray(np.asarray(values), jnp.int32 if kind == "int" else dtype)


def _theta_log_prob(family, fp, raw, y):
    """The theta's log_prob at one example's target; binomial: family.theta is one trial's, y = (k, n). Its trials
    are data here, so an off-support n (2.5, -1) is -inf as for any off-support target: the theta's own formula,
    without the direct functions' parameter-domain check (which makes a Binomial of 2.5 trials NaN)."""
    theta = family.theta(fp, raw)
    if family.spec.kind == "binomial":
        trials = mj.Binomial(y[1], theta.logits)
        return mj.distributions.registry.function(trials, "log_prob", checked=False)(trials, y[0])
    return mj.log_prob(theta, y)


@functools.cache
def _everything(family):
    """One compiled program: the family's log_prob, the theta's, mj.losses and a recipe, y traced."""
    recipe = mj.recipe(lambda p, x: x, family, validate=False)

    @jax.jit
    def run(fp, raw, y):
        theta_type = type(family.theta(fp, raw[0]))  # known when traced: the table states it
        assert theta_type is TABLE_THETA[family], (family.name, theta_type)
        fused = jax.vmap(family.log_prob, in_axes=(None, 0, 0))(fp, raw, y)
        theta = jax.vmap(lambda r, t: _theta_log_prob(family, fp, r, t))(raw, y)
        nll = mj.losses.nll(family, raw, y, fp or None, validate=False)
        training = mj.losses.loss(family, raw, y, fp or None, validate=False)
        from_recipe = recipe.log_prob(mj.Params({}, fp), raw, y)
        return fused, theta, nll, training, from_recipe
    return run


def _drawn(family, n, dtype, draw):
    """Raw outputs and family parameters drawn by hypothesis, or the fixed ones where ``draw`` is None."""
    if draw is None:
        return _fparams(family, dtype), _raw(family, n, dtype)
    size = n * int(np.prod(family.raw_shape, dtype=int))
    raw = np.asarray(draw(st.lists(st.floats(-4, 4), min_size=size, max_size=size)), np.float64)
    shift = draw(st.floats(-1, 1))
    fp = jax.tree.map(lambda a: a + jnp.asarray(shift, a.dtype), family.init(dtype))
    return fp, jnp.asarray(raw.reshape((n,) + family.raw_shape), dtype)


def _check(name, kind, dtype, draw=None):
    entry = FAMILIES[name]
    family, values, off_rule = entry.family, entry.targets[kind], entry.off
    y = _target(values, kind, dtype)
    fp, raw = _drawn(family, len(values), dtype, draw)
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


KINDS = [(name, kind) for name, entry in FAMILIES.items() for kind in entry.targets]


@pytest.mark.parametrize("name, kind", KINDS, ids=[f"{n}-{k}" for n, k in KINDS])
@SETTINGS
@given(data=st.data())
@example(data=None)
@pytest.mark.deep
def test_kernel_is_the_theta_log_prob_on_and_off_the_support(name, kind, data):
    _check(name, kind, jnp.float32, data and data.draw)


# float64 for the families whose kernel is written apart from the theta (the others' is the theta's own)
FLOAT64 = [(name, next(iter(entry.targets))) for name, entry in FAMILIES.items() if entry.float64]


@pytest.mark.parametrize("name, kind", FLOAT64, ids=[f"{n}-{k}" for n, k in FLOAT64])
@SETTINGS
@given(data=st.data())
@example(data=None)
@pytest.mark.deep
def test_kernel_is_the_theta_log_prob_in_float64(name, kind, data):
    with jax.enable_x64(True):
        _check(name, kind, jnp.float64, data and data.draw)


CENSORED_DTYPES = [pytest.param(name, dtype, marks=[pytest.mark.deep] if name in DEEP_ONLY else [])
                   for name, entry in CENSORED.items() for dtype in ["float32"] + ["float64"] * entry.float64]


@pytest.mark.parametrize("name, dtype", CENSORED_DTYPES)
def test_censored_kernel_is_the_density_or_the_tail_and_inf_off_the_sides(name, dtype):
    """side 0: log_prob; -1: log_cdf; +1: log_sf, of the inner theta; any other side (2, 0.5, -3):
    -inf, with the targets traced and not validated."""
    entry = CENSORED[name]
    family = entry.family
    with jax.enable_x64(dtype == "float64"):
        dt = jnp.dtype(dtype)
        y = jnp.asarray(entry.targets["float"], dt)
        fp, raw = family.init(dt), _raw(family, len(y), dt)

        @jax.jit
        def run(fp, raw, y):
            assert type(family.theta(fp, raw[0])) is entry.theta, family.name  # known when traced
            fused = -mj.losses.nll(family, raw, y, fp or None, validate=False)
            thetas = jax.vmap(lambda r: family.theta(fp, r))(raw)
            return fused, mj.log_prob(thetas, y[:, 0]), mj.log_cdf(thetas, y[:, 0]), mj.log_sf(thetas, y[:, 0])

        fused, density, cdf, sf = map(np.asarray, run(fp, raw, y))
    side = np.asarray(y, np.float64)[:, 1]
    want = np.select([side == 0, side == -1, side == 1], [density, cdf, sf], -np.inf)
    rtol = 2e-6 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(fused, want, rtol=rtol, atol=rtol)
    off = entry.off(np.asarray(y, np.float64))
    assert off.sum() == 3 and np.all(np.isneginf(fused[off]))
