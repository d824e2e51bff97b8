"""Models from flax and equinox: modules as params, dropout keys, BatchNorm state.

Each library's fit is compared with the same network written as a plain pytree from the same
initial values (or, for BatchNorm, with a hand-written linen training loop).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import mle_jax as mj

STEPS = 25


def _data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2)).astype(np.float32)
    y = (np.sin(x[:, 0]) - x[:, 1] + 0.1 * rng.normal(size=n)).astype(np.float32)
    return jnp.asarray(x), jnp.asarray(y)


def _plain(p, x_i):
    """The reference network 2 -> 4 -> 1 (tanh) for one example, weights stored (out, in)."""
    return p["w1"] @ jnp.tanh(p["w0"] @ x_i + p["b0"]) + p["b1"][0]


ADAM = optax.adam(0.05)  # one optimizer object and one reference recipe: their program compiles once
PLAIN = mj.recipe(_plain, mj.normal(0.5))


def _plain_fit(start, x, y):
    return mj.fit(PLAIN, PLAIN.init(start), x, y, ADAM, steps=STEPS)


@pytest.mark.deep  # a few seconds of compiling: CI's deep phase, for README's 5-minute suite
def test_equinox_module_as_params_matches_plain_pytree():
    eqx = pytest.importorskip("equinox")
    x, y = _data()
    net = eqx.nn.MLP(2, "scalar", 4, 1, activation=jnp.tanh, key=jax.random.PRNGKey(0))
    r = mj.recipe(lambda m, x_i: m(x_i), mj.normal(0.5))
    res = mj.fit(r, r.init(net), x, y, ADAM, steps=STEPS)
    first, last = net.layers
    ref = _plain_fit({"w0": first.weight, "b0": first.bias, "w1": last.weight, "b1": last.bias}, x, y)
    got = res.params.model
    assert got.activation is jnp.tanh  # the callable leaf is carried unchanged
    for a, b in [(got.layers[0].weight, ref.params.model["w0"]), (got.layers[1].weight, ref.params.model["w1"]),
                 (got.layers[0].bias, ref.params.model["b0"]), (got.layers[1].bias, ref.params.model["b1"])]:
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(res.history, ref.history, rtol=1e-5)
    np.testing.assert_allclose(r.predict(res.params, x).loc, jax.vmap(got)(x), rtol=1e-5, atol=1e-6)


class _NnxNet:
    """Built lazily so that flax stays an optional test dependency."""

    @staticmethod
    def make(dropout: float):
        nnx = pytest.importorskip("flax.nnx")

        class Net(nnx.Module):
            def __init__(self, rngs):
                self.l0, self.l1 = nnx.Linear(2, 4, rngs=rngs), nnx.Linear(4, 1, rngs=rngs)
                self.drop = nnx.Dropout(dropout)

            def __call__(self, x, key=None):
                h = self.drop(jnp.tanh(self.l0(x)), deterministic=key is None, rngs=key)
                return self.l1(h)[..., 0]

        return Net(nnx.Rngs(0))


def test_nnx_module_matches_plain_pytree():
    x, y = _data()
    net = _NnxNet.make(0.0)
    r = mj.recipe(lambda m, x: m(x), mj.normal(0.5), batched=True)
    res = mj.fit(r, r.init(net), x, y, ADAM, steps=STEPS)
    start = {"w0": net.l0.kernel[...].T, "b0": net.l0.bias[...], "w1": net.l1.kernel[...].T,
             "b1": net.l1.bias[...]}
    ref = _plain_fit(start, x, y)
    got = res.params.model
    np.testing.assert_allclose(got.l0.kernel[...].T, ref.params.model["w0"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.l1.kernel[...].T, ref.params.model["w1"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(res.history, ref.history, rtol=1e-5)


@pytest.mark.deep  # a few seconds of compiling: CI's deep phase, for README's 5-minute suite
def test_nnx_dropout_fresh_key_every_step_reproducible():
    x, y = _data()
    net = _NnxNet.make(0.5)
    r = mj.recipe(lambda m, x, key=None: m(x, key=key), mj.normal(0.5), batched=True)
    params = r.init(net)
    frozen = optax.sgd(0.0)  # the parameters stay put: the losses differ only by the dropout masks
    a = mj.fit(r, params, x, y, frozen, steps=6, key=jax.random.key(1))
    b = mj.fit(r, params, x, y, frozen, steps=6, key=jax.random.key(1))
    c = mj.fit(r, params, x, y, frozen, steps=6, key=jax.random.key(2))
    np.testing.assert_array_equal(a.history, b.history)
    assert len(set(a.history.tolist())) == 6 and not np.array_equal(a.history, c.history)
    # step t's key is fold_in(split(key)[1], t), documented so a user's loop can reproduce the fit
    model_key = jax.random.split(jax.random.key(1))[1]
    for t in (0, 5):
        np.testing.assert_allclose(a.history[t], r.mean_nll(params, x, y, key=jax.random.fold_in(model_key, t)),
                                   rtol=1e-6)
    # key=None is deterministic evaluation: no dropout, the same value every time
    np.testing.assert_allclose(r.predict(params, x).loc, net(x), rtol=1e-6)
    with pytest.raises(ValueError, match="takes a key"):
        mj.fit(r, params, x, y, frozen, steps=2)


def test_per_example_model_gets_one_key_per_example():
    x, y = _data()
    r = mj.recipe(lambda p, x_i, key=None: p * x_i[0] + (0.0 if key is None else jax.random.normal(key)),
                  mj.normal(1.0))
    params = r.init(jnp.float32(1.0))
    key = jax.random.key(3)
    noise = jax.vmap(jax.random.normal)(jax.random.split(key, len(y)))
    expected = 0.5 * np.sum((np.asarray(y) - np.asarray(x[:, 0] + noise)) ** 2) + len(y) * 0.5 * np.log(2 * np.pi)
    np.testing.assert_allclose(r.nll(params, x, y, key=key), expected, rtol=1e-5)
    with pytest.raises(ValueError, match="no `key`"):
        mj.recipe(lambda p, x_i: p * x_i[0], mj.normal(1.0)).nll(params, x, y, key=key)


def _gaussian_mean_nll(y, out, sigma=0.5):
    return jnp.mean(0.5 * ((y - out) / sigma) ** 2 + jnp.log(sigma) + 0.5 * jnp.log(2 * jnp.pi))


def _train_by_hand(loss, params, stats):
    """STEPS of adam(0.05) on ``loss(params, stats) -> (value, new_stats)``, written without mle_jax:
    the final params and statistics, and the loss of every step."""
    opt = optax.adam(0.05)

    @jax.jit
    def step(params, stats, opt_state):
        (value, stats), grads = jax.value_and_grad(loss, has_aux=True)(params, stats)
        change, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, change), stats, opt_state, value

    opt_state, values = opt.init(params), []
    for _ in range(STEPS):
        params, stats, opt_state, value = step(params, stats, opt_state)
        values.append(value)
    return params, stats, values


def _linen_batchnorm():
    nn = pytest.importorskip("flax.linen")

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x, train):
            h = nn.BatchNorm(use_running_average=not train, momentum=0.8)(nn.Dense(4)(x))
            return nn.Dense(1)(jnp.tanh(h))[..., 0]

    return Net()


@pytest.mark.deep  # a few seconds of compiling: CI's deep phase, for README's 5-minute suite
def test_linen_batchnorm_state_matches_hand_written_loop():
    x, y = _data()
    net = _linen_batchnorm()
    variables = net.init(jax.random.PRNGKey(0), x, train=False)

    def model(params, x, state, train):
        out, updates = net.apply({"params": params, "batch_stats": state}, x, train=train, mutable=["batch_stats"])
        return out, updates["batch_stats"]

    r = mj.recipe(model, mj.normal(0.5), batched=True)
    res = mj.fit(r, r.init(variables["params"], state=variables["batch_stats"]), x, y, ADAM, steps=STEPS)

    # the same training written by hand: Gaussian NLL with sigma 0.5, batch statistics updated each step
    def loss(params, stats):
        out, updates = net.apply({"params": params, "batch_stats": stats}, x, train=True, mutable=["batch_stats"])
        return _gaussian_mean_nll(y, out), updates["batch_stats"]

    params, stats, values = _train_by_hand(loss, variables["params"], variables["batch_stats"])
    np.testing.assert_allclose(res.history, values, rtol=1e-5)
    for a, b in zip(jax.tree_util.tree_leaves(res.params.state), jax.tree_util.tree_leaves(stats)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # predictions use the running statistics (train=False), not the statistics of the batch
    expected = net.apply({"params": params, "batch_stats": stats}, x, train=False)
    np.testing.assert_allclose(r.predict(res.params, x).loc, expected, rtol=1e-4, atol=1e-5)
    batch_stats = net.apply({"params": params, "batch_stats": stats}, x, train=True, mutable=["batch_stats"])[0]
    assert np.max(np.abs(np.asarray(expected - batch_stats))) > 1e-3  # the two modes really differ here


def test_stateful_and_batched_models_are_checked():
    with pytest.raises(ValueError, match="batched=True"):
        mj.recipe(lambda p, x_i, state, train: (p, state), mj.normal(1.0))
    r = mj.recipe(lambda p, x: jnp.stack([x[:, 0], x[:, 0]], axis=1) * p, mj.normal(1.0), batched=True)
    x, y = _data()
    with pytest.raises(ValueError, match=r"\(32, 2\).*\(32,\)"):
        r.nll(r.init(jnp.float32(1.0)), x, y)
    rs = mj.recipe(lambda p, x, state, train: (x[:, 0] * p, state), mj.normal(1.0), batched=True)
    with pytest.raises(ValueError, match="state"):
        rs.init(jnp.float32(1.0))


def test_nnx_module_with_batch_stats_must_split_them_into_state():
    nnx = pytest.importorskip("flax.nnx")
    net = nnx.Sequential(nnx.Linear(2, 4, rngs=nnx.Rngs(0)), nnx.BatchNorm(4, rngs=nnx.Rngs(0)))
    r = mj.recipe(lambda m, x: m(x)[:, 0], mj.normal(1.0), batched=True)
    with pytest.raises(ValueError, match=r"BatchStat.*nnx.split"):
        r.init(net)


def test_nnx_module_storing_an_rng_stream_is_refused_with_the_key_at_call_pattern():
    """A stream kept by nnx.Dropout(rate, rngs=rngs) would be carried unchanged through fit (the same
    mask every step); it is refused, as a module and as split state, while rngs used only to
    initialise (nnx.Linear) leave nothing behind and are accepted."""
    nnx = pytest.importorskip("flax.nnx")
    r = mj.recipe(lambda m, x: m(x)[:, 0], mj.normal(1.0), batched=True)
    stored = nnx.Sequential(nnx.Linear(2, 1, rngs=nnx.Rngs(0)), nnx.Dropout(0.5, rngs=nnx.Rngs(1)))
    with pytest.raises(ValueError, match=r"RNG stream.*same dropout mask.*rngs=key"):
        r.init(stored)
    _, state = nnx.split(stored)
    with pytest.raises(ValueError, match="RNG stream"):
        r.init(state)
    # why: under jax.jit (as inside fit) the stream's update is lost, so each call draws the same mask
    draw = jax.jit(lambda m: m(jnp.ones((64, 2))))
    np.testing.assert_array_equal(np.asarray(draw(stored)), np.asarray(draw(stored)))
    plain = nnx.Sequential(nnx.Linear(2, 1, rngs=nnx.Rngs(0)), nnx.Dropout(0.5))
    assert r.init(plain).model is plain


def test_nnx_float_buffers_outside_params_are_carried_not_trained():
    """Only nnx.Param variables are trained (nnx's own rule): a float buffer in an nnx.Variable keeps
    its value through fit, and the fit equals the same model written as a plain pytree with the
    buffer as a constant; inference counts the Param leaves only."""
    nnx = pytest.importorskip("flax.nnx")

    class Net(nnx.Module):
        def __init__(self):
            self.w = nnx.Param(jnp.array([0.1, -0.2], jnp.float32))
            self.offset = nnx.Variable(jnp.array(5.0, jnp.float32))  # a fixed buffer

        def __call__(self, x):
            return x @ self.w[...] + self.offset[...]

    x, y = _data()
    y = y + 5.0
    r = mj.recipe(lambda m, x: m(x), mj.normal(1.0), batched=True)
    got = mj.fit(r, r.init(Net()), x, y, optax.adam(0.05), steps=150).params.model
    plain = mj.recipe(lambda w, x: x @ w + 5.0, mj.normal(1.0), batched=True)
    want = mj.fit(plain, plain.init(jnp.array([0.1, -0.2], jnp.float32)), x, y, optax.adam(0.05), steps=150)
    assert float(got.offset[...]) == 5.0
    np.testing.assert_allclose(got.w[...], want.params.model, rtol=1e-5, atol=1e-6)
    assert mj.inference(r, r.init(Net()), x, y).num_params == 2


@pytest.mark.deep  # 4-10 s of compiling: CI's deep phase, for README's 5-minute suite
def test_nnx_batchnorm_by_the_split_pattern_matches_hand_written_loop():
    """The pattern r.init's refusal names: Param and BatchStat split apart, the statistics as the
    recipe's state, merged back in the model. It trains as an nnx loop written by hand does (no
    mle_jax), and predictions use the running statistics."""
    nnx = pytest.importorskip("flax.nnx")

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.hidden, self.norm = nnx.Linear(2, 8, rngs=rngs), nnx.BatchNorm(8, rngs=rngs)
            self.out = nnx.Linear(8, 1, rngs=rngs)

        def __call__(self, x, train):
            return self.out(nnx.relu(self.norm(self.hidden(x), use_running_average=not train)))[:, 0]

    x, y = _data()
    graphdef, params, stats = nnx.split(Net(nnx.Rngs(0)), nnx.Param, nnx.BatchStat)

    def model(params, x, state, train):
        net = nnx.merge(graphdef, params, state)
        return net(x, train), nnx.state(net, nnx.BatchStat)

    r = mj.recipe(model, mj.normal(0.5), batched=True)
    res = mj.fit(r, r.init(params, state=stats), x, y, ADAM, steps=STEPS)

    def loss(p, s):
        net = nnx.merge(graphdef, p, s, copy=True)  # fresh variables in this trace
        return _gaussian_mean_nll(y, net(x, True)), nnx.state(net, nnx.BatchStat)

    p, s, values = _train_by_hand(loss, params, stats)
    np.testing.assert_allclose(res.history, values, rtol=1e-5)
    for a, b in zip(jax.tree_util.tree_leaves(res.params.state), jax.tree_util.tree_leaves(s)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    expected = nnx.merge(graphdef, p, s, copy=True)(x, False)
    np.testing.assert_allclose(r.predict(res.params, x).loc, expected, rtol=1e-4, atol=1e-5)
