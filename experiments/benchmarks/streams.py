"""fit on a stream of batches read from a memmap, per step, against the ways to do it by hand.

Contenders, each K optimizer steps over the same K batches of B rows of an on-disk ``np.memmap``:

- ``stream``: ``mj.fit(r, params, mj.batches(x, y, B), None, adam, steps=K)`` (prefetched, one program);
- ``stream_unchecked``: the same with ``recipe(..., validate=False)`` (no value check of each batch);
- ``jit_loop`` (the anchor): a hand-written ``jax.jit`` step (value_and_grad, optax update) in a Python
  loop over the same batches, each read and passed as NumPy (no prefetch);
- ``fit_per_batch``: ``fit(r, params, x_b, y_b, adam, steps=1, run=Run(opt_state=...))`` per batch,
  the only way before streams (issue 24: 15-20 ms a call);
- ``in_memory``: ``fit(..., steps=Minibatches(B, steps=K))`` on the whole data already in memory
  (the floor: no reading, no transfer).

Ratios are medians over the anchor's median (below 1.0 the stream is faster), interleaved rep by rep.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from .timing import paired_ratio, round_robin


def run(reps: int = 5, quick: bool = False) -> dict:
    import jax
    import optax

    import mle_jax as mj

    n, d, b, k = (20_000, 32, 500, 40) if quick else (200_000, 32, 2_000, 100)
    rng = np.random.default_rng(0)
    path = Path(tempfile.mkdtemp()) / "x.f32"
    x = np.memmap(path, np.float32, "w+", shape=(n, d))
    x[:] = rng.normal(size=(n, d)).astype(np.float32)
    x.flush()
    y = (x[:, :3] @ np.array([1.0, -2.0, 0.5], np.float32) + 0.5 * rng.normal(size=n)).astype(np.float32)
    net = mj.mlp([d, 64, 2], jax.nn.tanh, squeeze=False)
    r = mj.recipe(net.apply, mj.normal("softplus"))
    params = r.init(net.init(jax.random.PRNGKey(0)))
    adam = optax.adam(1e-3)

    @jax.jit
    def step(p, state, xb, yb):
        loss, grads = jax.value_and_grad(lambda q: r.reduce(q, xb, yb, kind="loss", reduction="mean"))(p)
        updates, state = adam.update(grads, state, p)
        return optax.apply_updates(p, updates), state, loss

    def stream():
        return mj.fit(r, params, mj.batches(x, y, b), None, adam, steps=k).params

    unchecked = mj.recipe(net.apply, mj.normal("softplus"), validate=False)

    def stream_unchecked():  # the same without the host's value check of each batch
        return mj.fit(unchecked, params, mj.batches(x, y, b), None, adam, steps=k).params

    def jit_loop():
        p, state = params, adam.init(params)
        for xb, yb in mj.batches(x, y, b):
            if len(yb) < b:
                break
            p, state, _ = step(p, state, xb, yb)
        return p

    def fit_per_batch():
        p, state = params, None
        for xb, yb in mj.batches(x, y, b):
            res = mj.fit(r, p, xb, yb, adam, steps=1, run=mj.Run(opt_state=state))
            p, state = res.params, res.opt_state
        return p

    x_mem, y_mem = jax.device_put(np.asarray(x)), jax.device_put(y)

    def in_memory():
        return mj.fit(r, params, x_mem, y_mem, adam, steps=mj.Minibatches(b, steps=k), key=jax.random.key(0)).params

    contenders = {"stream": stream, "stream_unchecked": stream_unchecked, "jit_loop": jit_loop, "fit_per_batch": fit_per_batch, "in_memory": in_memory}
    timings = round_robin(contenders, reps=reps, warmup=1)
    return {"n": n, "d": d, "batch": b, "steps": k, "device": str(jax.devices()[0]),
            "per_step_s": {name: t["median_s"] / k for name, t in timings.items()},
            "ratio_stream_to_jit_loop": timings["stream"]["median_s"] / timings["jit_loop"]["median_s"],
            "paired_stream_to_jit_loop": paired_ratio(timings, "stream", "jit_loop"),
            "ratio_stream_to_in_memory": timings["stream"]["median_s"] / timings["in_memory"]["median_s"],
            "speedup_stream_over_fit_per_batch": timings["fit_per_batch"]["median_s"] / timings["stream"]["median_s"]}
