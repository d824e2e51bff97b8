"""Cost as N grows: time and XLA's temporary memory of the recipe's value-and-grad, N = 1e4 .. 1e7.

Linear cost means time / N and memory / N stay flat; quadratic memory (an (N, N) broadcast)
would show as memory / N growing with N.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import mle_jax as mj

from .timing import round_robin


def run(sizes=(10_000, 100_000, 1_000_000, 10_000_000), reps: int = 15) -> dict:
    rng = np.random.default_rng(0)
    r = mj.recipe(lambda b, x_i: jnp.stack([x_i + b[0], b[1]]), mj.normal("softplus"), validate=False)
    fn = jax.jit(jax.value_and_grad(lambda b, x, y: r.nll(mj.Params(b, {}), x, y)))
    b = jnp.array([0.1, 0.2], jnp.float32)
    rows = []
    for n in sizes:
        x = jnp.asarray(rng.normal(size=n), jnp.float32)
        y = jnp.asarray(rng.normal(size=n), jnp.float32)
        compiled = fn.lower(b, x, y).compile()
        memory = compiled.memory_analysis()
        temp = None if memory is None else int(memory.temp_size_in_bytes)
        t = round_robin({"nll": lambda: fn(b, x, y)}, reps=reps, budget_s=30)["nll"]["median_s"]
        rows.append({"n": n, "median_s": t, "ns_per_example": t / n * 1e9, "temp_bytes": temp,
                     "temp_bytes_per_example": None if temp is None else temp / n})
    per = [row["ns_per_example"] for row in rows if row["n"] >= 100_000]
    return {"rows": rows, "max_over_min_ns_per_example_from_1e5": max(per) / min(per) if per else None}
