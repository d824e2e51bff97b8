"""mle_jax.families._family: the Family type, its Spec, its fused Density and the builder."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy import stats

import mle_jax as mj
from mle_jax.families import Density, Family, Spec, Training, as_raw, build
from mle_jax.families import _support
from families_table import FAMILIES, raw_example


def test_spec_renders_the_name_and_nests():
    inner = Spec("normal", options=(("scale", "learned"),))
    outer = Spec("independent", args=(inner, 2), options=(("shared", False),))
    assert outer.render() == "independent(normal(scale='learned'), 2, shared=False)"
    assert inner.render((("beta", 0.5),)) == "normal(scale='learned', beta=0.5)"
    assert inner.option("scale") == "learned" and inner.option("missing", 3) == 3
    assert mj.independent(mj.normal("learned"), 2, shared=False).spec == outer


def test_build_defaults_to_the_theta_log_prob_and_checks_the_target_shape():
    def theta(fp, raw):
        return mj.Normal(raw, jnp.float32(2.0))

    family = build(spec=Spec("toy"), support=_support.real, theta=theta)
    assert isinstance(family, Family) and family.name == "toy()" and repr(family) == "Family(toy())"
    assert family.init(jnp.float32) == {} and family.training.term is None and family.training.weight is None
    np.testing.assert_allclose(family.log_prob({}, jnp.float32(0.5), jnp.float32(1.0)), stats.norm(0.5, 2.0).logpdf(1.0),
                               rtol=1e-6)
    with pytest.raises(ValueError, match=r"toy\(\): one example's target has shape \(1,\)"):
        family.log_prob({}, jnp.float32(0.5), jnp.ones(1))
    family.check(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"toy\(\): y nan at index 1"):
        family.check(np.array([1.0, np.nan]))


def test_density_is_scale_times_kernel_plus_shift():
    density = Density(lambda fp, raw, y: (y - raw) ** 2, lambda fp: (-0.5 / 4.0, -0.5 * np.log(2 * np.pi * 4.0)))
    np.testing.assert_allclose(density.log_prob({}, 0.5, 1.5), stats.norm(0.5, 2.0).logpdf(1.5), rtol=1e-12)
    family = mj.normal(2.0)
    scale, shift = family.affine({})
    np.testing.assert_allclose(scale * family.kernel({}, jnp.float32(0.5), jnp.float32(1.5)) + shift,
                               family.log_prob({}, jnp.float32(0.5), jnp.float32(1.5)), rtol=1e-6)
    assert family.density.kernel is family.kernel and Training() == mj.normal(2.0).training


def test_as_raw_accepts_one_value_either_way_and_names_the_family():
    assert as_raw(mj.normal(1.0), jnp.ones(1)).shape == ()
    assert as_raw(mj.categorical(3), jnp.ones(3)).shape == (3,)
    with pytest.raises(ValueError, match=r"categorical\(3\): the model's raw output .* \(2,\).*needs shape \(3,\)"):
        as_raw(mj.categorical(3), jnp.ones(2))


def test_families_are_hashable_and_compare_by_identity():
    a, b = mj.normal(1.0), mj.normal(1.0)
    assert a != b and a == a and len({a, b}) == 2 and a.spec == b.spec


GRADS = [name for name, entry in FAMILIES.items() if entry.grads]


@pytest.mark.parametrize("name", GRADS)
@pytest.mark.deep
def test_family_log_prob_equals_theta_log_prob_and_grads(name):
    entry = FAMILIES[name]
    family = entry.family
    raw = jnp.asarray(raw_example(family))
    fp = family.init(jnp.float32)
    y = jnp.asarray(entry.valid, jnp.float32)
    np.testing.assert_allclose(family.log_prob(fp, raw, y), mj.log_prob(family.theta(fp, raw), y), rtol=1e-5)
    check_grads(lambda r: family.log_prob(fp, r, y), (raw,), order=2, modes=["rev"], eps=1e-2, rtol=2e-2)
