"""fit as a training loop: progress, callbacks, checkpoints and resumption, data-parallel sharding."""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import mle_jax as mj


def _problem(n=128, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = (x @ np.array([1.0, -1.0, 0.5, 0.0]) + 0.3 * rng.normal(size=n)).astype(np.float32)
    net = mj.mlp([4, 8, 1], jax.nn.tanh)
    r = mj.recipe(net.apply, mj.normal("learned"))
    return r, r.init(net.init(jax.random.PRNGKey(0))), jnp.asarray(x), jnp.asarray(y)


def _same(a, b):
    for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


@pytest.mark.deep  # a few seconds of compiling: CI's deep phase, for README's 5-minute suite
def test_chunking_does_not_change_the_fit():
    r, p, x, y = _problem()
    opt = optax.adam(0.01)
    whole = mj.fit(r, p, x, y, opt, mj.Minibatches(16, epochs=6), key=jax.random.PRNGKey(3))
    chunked = mj.fit(r, p, x, y, opt, mj.Minibatches(16, epochs=6), key=jax.random.PRNGKey(3),
                     run=mj.Run(progress=mj.Progress(chunk_size=7)))
    _same(whole.params, chunked.params)
    np.testing.assert_array_equal(whole.history, chunked.history)


def test_callback_sees_every_chunk():
    r, p, x, y = _problem()
    seen = []
    log = mj.Progress(chunk_size=30, callback=lambda event: seen.append((event.step, len(event.history))))
    res = mj.fit(r, p, x, y, optax.adam(0.01), steps=100, run=mj.Run(progress=log))
    assert seen == [(30, 30), (60, 60), (90, 90), (100, 100)]
    assert res.history.shape == (100,)


def test_progress_bar_reports_steps(capsys):
    pytest.importorskip("tqdm")
    r, p, x, y = _problem()
    mj.fit(r, p, x, y, optax.adam(0.01), steps=200, run=mj.Run(progress=True))
    err = capsys.readouterr().err
    assert "200/200" in err and "loss=" in err
    mj.fit(r, p, x, y, optax.adam(0.01), steps=200, run=mj.Run(progress=False))
    assert capsys.readouterr().err == ""


class Killed(Exception):
    pass


@pytest.mark.deep  # a few seconds of compiling: CI's deep phase, for README's 5-minute suite
def test_killed_fit_resumes_to_the_same_parameters(tmp_path):
    pytest.importorskip("orbax.checkpoint")
    r, p, x, y = _problem()
    opt = optax.adam(0.01)
    batches, key = mj.Minibatches(16, epochs=10), jax.random.PRNGKey(4)

    def run(folder, callback=None):
        return mj.Run(progress=mj.Progress(callback=callback), checkpoints=mj.Checkpoints(tmp_path / folder, every=24))
    uninterrupted = mj.fit(r, p, x, y, opt, batches, key=key, run=run("a"))
    plain = mj.fit(r, p, x, y, opt, batches, key=key)
    _same(uninterrupted.params, plain.params)

    def kill(event):
        if event.step >= 48:
            raise Killed

    with pytest.raises(Killed):
        mj.fit(r, p, x, y, opt, batches, key=key, run=run("b", kill))
    calls = []
    resumed = mj.fit(r, p, x, y, opt, batches, key=key, run=run("b", lambda event: calls.append(event.step)))
    assert calls[0] == 52  # it started from the checkpoint at step 48 (chunks of 80 / 20 = 4 steps)
    _same(resumed.params, uninterrupted.params)
    np.testing.assert_array_equal(resumed.history, uninterrupted.history)
    assert resumed.history.shape == (80,)


SHARDED = textwrap.dedent("""
    import os
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
    import jax, jax.numpy as jnp, numpy as np, optax
    import mle_jax as mj
    from mle_jax.sharding import batch_mesh
    assert len(jax.devices()) == 8, jax.devices()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 3)).astype(np.float32)
    y = (rng.uniform(size=256) < 1 / (1 + np.exp(-x @ np.array([1.0, -2.0, 0.5])))).astype(np.int32)
    net = mj.mlp([3, 16, 1], jax.nn.tanh)
    r = mj.recipe(net.apply, mj.bernoulli())
    p = r.init(net.init(jax.random.PRNGKey(0)))
    mesh = batch_mesh()
    gaps = []
    for kw in (dict(steps=200), dict(steps=mj.Minibatches(32, epochs=4), key=jax.random.PRNGKey(1))):
        single = mj.fit(r, p, x, y, optax.adam(0.01), **kw)
        sharded = mj.fit(r, p, x, y, optax.adam(0.01), run=mj.Run(mesh=mesh), **kw)
        leaf = jax.tree_util.tree_leaves(sharded.params)[0]
        assert len(leaf.sharding.device_set) == 8, leaf.sharding
        gaps.append(max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
                        for a, b in zip(jax.tree_util.tree_leaves(single.params),
                                        jax.tree_util.tree_leaves(sharded.params))))
        gaps.append(float(np.max(np.abs(single.history - sharded.history))))
    # params with non-array leaves (a function), a carried integer array, and a model key per example
    def noisy(p, x_i, key=None):
        return p["act"](p["w"] @ x_i) * p["sign"] + (0.0 if key is None else 0.1 * jax.random.normal(key))
    re = mj.recipe(noisy, mj.bernoulli())
    start = re.init({"w": jnp.zeros(3), "act": jnp.tanh, "sign": jnp.array(1, jnp.int32)})
    single, sharded = (mj.fit(re, start, x, y, optax.adam(0.05), steps=20, key=jax.random.key(2),
                                run=mj.Run(mesh=m))
                       for m in (None, mesh))
    gaps.append(float(np.max(np.abs(single.history - sharded.history))))
    assert sharded.params.model["act"] is jnp.tanh and int(sharded.params.model["sign"]) == 1
    from mle_jax.sharding import shard_batch
    try:
        shard_batch(mesh, jnp.zeros((257, 3)))
        raise SystemExit("an uneven batch was accepted")
    except ValueError as error:
        assert "divide evenly" in str(error), error
    print("GAPS", max(gaps))
""")


@pytest.mark.deep
def test_sharded_fit_equals_single_device_fit():
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    # the timeout guards against a hang, never a slow machine (see test_derive)
    out = subprocess.run([sys.executable, "-c", SHARDED], capture_output=True, text=True, timeout=1800, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    gap = float(out.stdout.split("GAPS")[1])
    assert gap < 1e-5, gap


def test_minibatches_run_with_64_bit_mode_on(x64):
    """A minibatch fit with jax's 64-bit mode on: the epoch's shuffle keeps the carried int32 type
    (it failed with "cond branches must have equal output types"); its steps equal the same fit's
    in float32 mode to float32 precision (the same shuffles from the same key)."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 2)), rng.normal(size=64)
    r = mj.recipe(lambda p, xi: xi @ p["w"], mj.normal(scale=1.0))
    steps = mj.Minibatches(16, steps=12)
    wide = mj.fit(r, r.init({"w": np.zeros(2)}), x, y, optax.sgd(0.05), steps=steps, key=jax.random.key(3))
    with jax.enable_x64(False):
        narrow = mj.fit(r, r.init({"w": np.zeros(2, np.float32)}), x.astype(np.float32), y.astype(np.float32),
                        optax.sgd(0.05), steps=steps, key=jax.random.key(3))
    assert wide.params.model["w"].dtype == np.float64
    np.testing.assert_allclose(wide.params.model["w"], narrow.params.model["w"], rtol=1e-5, atol=1e-6)


@pytest.mark.deep  # a few seconds of compiling: CI's deep phase, for README's 5-minute suite
def test_lbfgs_reads_the_line_search_value_back_rather_than_evaluating_again():
    """An L-BFGS step of fit evaluates the loss as often as optax's own loop with ``value_and_grad_from_state``
    (the zoom line search keeps the value and gradient at the point it accepts), not once more per step, and
    lands where that loop lands. Evaluations are counted by a host callback in the (batched) model."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = rng.poisson(np.exp(x @ np.array([0.3, -0.2, 0.1]))).astype(np.float32)
    calls = []

    def model(p, x):
        jax.debug.callback(lambda: calls.append(1))
        return x @ p["w"]

    r = mj.recipe(model, mj.poisson(), batched=True)
    params = r.init({"w": jnp.zeros(3)})
    res = mj.fit(r, params, x, y, optax.lbfgs(), steps=8, run=mj.Run(progress=False))
    jax.block_until_ready(res.params)
    fit_calls = len(calls)

    def loss(p):
        return r.reduce(p, x, y, None, kind="loss", reduction="mean")

    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(loss)

    @jax.jit
    def plain(p):
        def body(_, carry):
            p, state = carry
            value, grad = value_and_grad(p, state=state)
            updates, state = opt.update(grad, state, p, value=value, grad=grad, value_fn=loss)
            return optax.apply_updates(p, updates), state
        return jax.lax.fori_loop(0, 8, body, (p, opt.init(p)))[0]

    calls.clear()
    expected = jax.block_until_ready(plain(params))
    assert fit_calls == len(calls) and len(calls) < 2 * 8, (fit_calls, len(calls))
    np.testing.assert_allclose(np.asarray(res.params.model["w"]), np.asarray(expected.model["w"]), rtol=1e-5, atol=1e-6)
