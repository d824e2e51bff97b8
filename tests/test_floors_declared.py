"""Which family parameters sit on the softplus + eps link's floor is read from the family's own declaration
(``Family.positive``), not from leaf names, and ``fit``, ``solver``, ``bootstrap`` and ``inference`` all say
so (mle_jax._floors). The reference for "on the floor" is numpy's float64 ``logaddexp(0, raw) <= eps`` of
the leaf's dtype; for "interior", the scipy MLE of the data (a Normal's sigma = population std)."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import mle_jax as mj
from family_fits import stopped_and_warned
from mle_jax._floors import on_floor, on_floor_traced
from mle_jax.distributions import Normal

pytestmark = pytest.mark.deep  # a second or more each (compiles): CI's deep phase, for README's 5-minute suite

LEARNED = [mj.normal(scale="learned"), mj.student_t(df="learned", scale="learned"),
           mj.student_t(df="learned", scale="softplus"), mj.laplace(scale="learned"),
           mj.asymmetric_laplace(0.3, scale="learned"), mj.gamma("mean"), mj.beta("mean"),
           mj.negative_binomial(), mj.weibull(), mj.log_normal(scale="learned"), mj.ordinal(4),
           mj.independent(mj.normal(scale="learned"), 2, shared=False), mj.censored(mj.weibull()),
           mj.zero_inflated(mj.negative_binomial())]


@pytest.mark.parametrize("family", LEARNED, ids=lambda f: f.name)
def test_each_built_in_family_declares_exactly_its_softplus_leaves(family):
    """Every learned leaf of a built-in family is declared but an ordinal's first cutpoint (a real number),
    and a declared leaf is the raw value of softplus + eps: pushing it to -60 (softplus = 8.8e-27 < eps in
    numpy) puts the family's theta parameter on the floor eps exactly."""
    fp = family.init(jnp.float32)
    assert set(fp) - set(family.positive) <= {"first_cut"} and set(family.positive) <= set(fp)
    assert not on_floor(fp, family.positive)  # the starts are interior
    for name in family.positive:
        low = {**fp, name: jnp.full_like(fp[name], -60.0)}
        found = on_floor(low, family.positive)
        assert {f.name.split("[")[0] for f in found} == {name}
        assert all(f.value == np.float32(np.finfo(np.float32).eps) for f in found)
        assert bool(on_floor_traced(low, family.positive)) and not bool(on_floor_traced(fp, family.positive))


def _own(positive):
    """A family of the user's whose sigma is ``softplus(s) + eps`` (mj.links.softplus), declared or not."""
    return mj.family("mynormal", theta=lambda fp, raw: Normal(raw, mj.links.softplus.forward(fp["s"])),
                     init={"s": jnp.asarray(0.5)}, positive=positive)


def test_a_users_family_that_declares_its_softplus_leaf_is_read_and_one_that_does_not_is_not():
    """Old code read built-in families only (by name): the user's softplus sigma at raw -60 ended "completed"."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 1)).astype(np.float32)
    y = (2 * x[:, 0] + rng.normal(size=30)).astype(np.float32)
    for positive, want in ((("s",), "boundary"), ((), "completed")):
        r = mj.recipe(lambda p, x_i: x_i @ p["w"], _own(positive))
        p = r.init({"w": jnp.array([2.0])})._replace(family={"s": jnp.asarray(-60.0)})
        assert stopped_and_warned(r, p, x, y) == (want, int(want == "boundary"))
    with pytest.raises(ValueError, match="positive names 'scale'"):
        mj.family("mynormal", theta=lambda fp, raw: Normal(raw, 1.0), init={"s": jnp.asarray(0.5)}, positive=("scale",))
    with pytest.raises(TypeError, match="positive must be a tuple"):
        _own("s")


def _normal_data(n=40):
    rng = np.random.default_rng(1)
    x = np.ones((n, 1), np.float32)
    y = (1.5 + 0.7 * rng.normal(size=n)).astype(np.float32)
    r = mj.recipe(lambda p, x_i: p["b"], mj.normal(scale="learned"))
    return r, jnp.asarray(x), jnp.asarray(y)


def test_solver_flags_a_floored_scale_on_device_and_warns_when_eager():
    """History.floored per problem under vmap (no host work), History.stopped == BOUNDARY, and a BoundaryWarning
    for an eager solve; an interior start (sigma 1) stays interior (floored False, no warning)."""
    r, x, y = _normal_data()
    solve = mj.solver(r, optax.sgd(0.0), steps=2)
    inside = r.init({"b": jnp.asarray(1.5)})
    floor = inside._replace(family={"scale": jnp.asarray(-60.0)})
    starts = jax.tree_util.tree_map(lambda a, b: jnp.stack([a, b]), inside, floor)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, history = jax.jit(jax.vmap(solve, in_axes=(0, None, None)))(starts, x, y)
        _, alone = solve(inside, x, y)
    assert np.asarray(history.floored).tolist() == [False, True]
    assert alone.stopped == mj.Stop.COMPLETED and not bool(alone.floored)
    with pytest.warns(mj.BoundaryWarning, match=r"solve: boundary.*scale = .* floor eps"):
        _, history = solve(floor, x, y)
    assert bool(history.floored) and history.stopped == mj.Stop.BOUNDARY


def test_inference_warns_at_a_floored_estimate_and_not_at_the_mle(x64):
    """At the MLE (sigma = numpy's population std) no warning; at sigma on the floor a BoundaryWarning
    (its standard errors are those of a flat link)."""
    r, x, y = _normal_data()
    sigma = float(np.std(np.asarray(y, np.float64)))
    mle = r.init({"b": jnp.asarray(float(np.mean(y)), jnp.float32)})
    mle = mle._replace(family={"scale": mj.links.softplus_inverse(jnp.asarray(sigma, jnp.float32))})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mj.inference(r, mle, x, y)
    floor = mle._replace(family={"scale": jnp.asarray(-60.0, jnp.float32)})
    with warnings.catch_warnings(record=True) as caught:  # the Hessian there is singular too (a RuntimeWarning)
        warnings.simplefilter("always")
        mj.inference(r, floor, x, y)
    said = [str(w.message) for w in caught if issubclass(w.category, mj.BoundaryWarning)]
    assert len(said) == 1 and said[0].startswith("inference: scale = ") and "meaningless" in said[0]


def test_bootstrap_warns_for_an_estimate_on_the_floor_and_counts_floored_replicates():
    r, x, y = _normal_data()
    mle = r.init({"b": jnp.asarray(float(np.mean(y)))})._replace(
        family={"scale": mj.links.softplus_inverse(jnp.asarray(float(np.std(np.asarray(y, np.float64)))))})
    key = jax.random.key(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b = mj.bootstrap(r, mle, x, y, optax.lbfgs(), 30, n=8, key=key, tol=1e-4)
    assert not np.asarray(b.history.floored).any()
    with pytest.warns(mj.BoundaryWarning, match="bootstrap: the estimate is on a link's floor"):
        b = mj.bootstrap(r, mle._replace(family={"scale": jnp.asarray(-60.0)}), x, y, optax.sgd(0.0), 2, n=8, key=key)
    assert np.asarray(b.history.floored).all()


def test_a_fixed_family_parameter_is_not_fitted_so_not_floored_in_the_solver_either():
    """A family parameter fixed as a Python float (not trained: ``fit``'s rule) at a raw value below the floor:
    ``fit`` and ``on_floor`` say nothing of it, and neither does the solver's on-device flag (it said
    ``Stop.BOUNDARY`` with a ``BoundaryWarning`` for a parameter no fit moved)."""
    rng = np.random.default_rng(3)
    x, y = jnp.asarray(rng.normal(size=(40, 1))), jnp.asarray(rng.normal(size=40))
    r = mj.recipe(lambda p, x_i: x_i @ p["w"], mj.normal(scale="learned"))
    p = r.init({"w": jnp.zeros(1)})._replace(family={"scale": -40.0})
    assert np.logaddexp(0.0, -40.0) <= np.finfo(np.float32).eps and not on_floor(p.family, ("scale",))
    assert not bool(on_floor_traced(p.family, ("scale",)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", mj.BoundaryWarning)
        _, history = mj.solver(r, optax.sgd(0.0), steps=2)(p, x, y)
        res = mj.fit(r, p, x, y, optax.sgd(0.0), steps=2, run=mj.Run(progress=False))
    assert not bool(history.floored) and history.stopped == res.stopped == "completed"
