"""params: which leaves are trained, carried or static, and the round trip through Parts."""

import jax
import jax.numpy as jnp
import numpy as np

import mle_jax as mj
from mle_jax._fit_step import StepOptions, initial_carry
from mle_jax._params import partition


def test_leaves_are_trained_carried_or_static():
    model = {"w": jnp.ones(2), "w64": np.ones(1), "count": jnp.array(3), "mask": jnp.array([True]),
             "key": jax.random.key(0), "act": jnp.tanh, "name": "net", "rate": 0.5}
    params = mj.Params(model, {"scale": jnp.float32(1.0)}, state={"mean": jnp.zeros(2)})
    parts = partition(params)
    trained = jax.tree_util.tree_leaves(parts.trained)
    assert len(trained) == 3  # w, w64 and the family's scale: the inexact arrays outside the state
    assert {np.shape(a) for a in trained} == {(2,), (1,), ()}
    assert len(parts.carried) == 4  # the integer, boolean and key arrays, and the state's float array
    back = parts.params()
    assert back.model["act"] is jnp.tanh and back.model["name"] == "net" and back.model["rate"] == 0.5
    assert back.state["mean"] is params.state["mean"]
    # the static leaves are part of the layout (what a compiled program is specialised on)
    assert partition(params).layout == parts.layout
    assert partition(params._replace(model={**model, "rate": 0.25})).layout != parts.layout


def test_plain_fit_carries_only_params_optimizer_state_and_result():
    params = mj.Params({"w": jnp.zeros(3), "b": jnp.float32(0.0)}, {})
    parts = partition(params)
    carry = initial_carry(parts, None, StepOptions(10, False, None, None, None, "mean", None))
    assert (carry.step, carry.perm, carry.watch) == (None, None, None) and int(carry.result) == 0
    assert parts.carried == [] and jax.tree_util.tree_structure(parts.trained) == jax.tree_util.tree_structure(params)
