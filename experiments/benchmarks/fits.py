"""fit per step against a hand-written lax.scan of optax steps and a Python loop of jitted steps.

tiny:  20 points, a 1-3-1 tanh network, Normal with fixed sigma, Adam (overhead-bound);
large: 100,000 points, an 8-128-128-2 ReLU MLP, heteroscedastic Normal (softplus), Adam (compute-bound).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

import mle_jax as mj

from .timing import round_robin


def _problem(n, sizes, family, seed=0):
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(n, sizes[0])), jnp.float32)
    y = jnp.asarray(np.sin(np.asarray(x).sum(axis=1)) + 0.1 * rng.normal(size=n), jnp.float32)
    net = mj.mlp(sizes, jax.nn.tanh if sizes[1] <= 8 else jax.nn.relu)
    return net, mj.recipe(net.apply, family), net.init(jax.random.PRNGKey(seed)), x, y


def _hand_loss(net, family_kind):
    """The same mean NLL written by hand with jnp (what a researcher would write)."""
    half_log_2pi = 0.5 * np.log(2 * np.pi)

    def loss(phi, x, y):
        out = jax.vmap(net.apply, (None, 0))(phi, x)
        if family_kind == "fixed":
            return jnp.mean(0.5 * jnp.square((y - out) / 0.1)) + np.log(0.1) + half_log_2pi
        scale = jax.nn.softplus(out[:, 1]) + 1e-6
        return jnp.mean(0.5 * jnp.square((y - out[:, 0]) / scale) + jnp.log(scale)) + half_log_2pi
    return loss


def _contenders(net, r, phi, x, y, opt, steps, loop_steps, kind):
    loss = _hand_loss(net, kind)

    @jax.jit
    def scan(phi, x, y):
        def step(carry, _):
            p, s = carry
            value, grads = jax.value_and_grad(loss)(p, x, y)
            updates, s = opt.update(grads, s, p)
            return (optax.apply_updates(p, updates), s), value
        return jax.lax.scan(step, (phi, opt.init(phi)), None, length=steps)

    @jax.jit
    def one_step(p, s, x, y):
        value, grads = jax.value_and_grad(loss)(p, x, y)
        updates, s = opt.update(grads, s, p)
        return optax.apply_updates(p, updates), s, value

    def loop():
        p, s = phi, opt.init(phi)
        for _ in range(loop_steps):
            p, s, value = one_step(p, s, x, y)
        return value

    params = r.init(phi)
    return {
        "mle_jax.fit": (lambda: mj.fit(r, params, x, y, opt, steps=steps, run=mj.Run(progress=False)).history, steps),
        "hand lax.scan": (lambda: scan(phi, x, y), steps),
        "python loop": (loop, loop_steps),
    }


def run(reps: int = 15, quick: bool = False) -> dict:
    results = {}
    specs = {
        "tiny_20pts_3units": (20, [1, 3, 1], mj.normal(0.1), "fixed", 20_000, 2_000),
        "large_100k_mlp128": (100_000, [8, 128, 128, 2], mj.normal("softplus"), "softplus", 10, 10),
    }
    for name, (n, sizes, family, kind, steps, loop_steps) in specs.items():
        if quick:
            steps, loop_steps = max(steps // 10, 5), max(loop_steps // 10, 5)
        net, r, phi, x, y = _problem(n, sizes, family)
        contenders = _contenders(net, r, phi, x, y, optax.adam(1e-3), steps, loop_steps, kind)
        timings = round_robin({k: fn for k, (fn, _) in contenders.items()}, reps=reps, warmup=2,
                              budget_s=120)
        per_step = {k: timings[k]["median_s"] / contenders[k][1] for k in contenders}
        results[name] = {
            "per_step_s": per_step,
            "ratio_fit_to_scan": per_step["mle_jax.fit"] / per_step["hand lax.scan"],
            "speedup_fit_over_python_loop": per_step["python loop"] / per_step["mle_jax.fit"],
            "timings": timings,
        }
    return results
