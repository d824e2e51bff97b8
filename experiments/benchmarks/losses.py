"""Value and gradient of the summed NLL at large N: mle_jax's recipe against hand-written jnp,
optax, distrax, TFP-on-JAX and torch, on the same float32 inputs passed as arguments.

The model is a bias on precomputed raw outputs, ``raw_i = x_i + b``; every contender computes
``-sum_i log Pr(y_i | raw_i)`` and its gradient with respect to ``b``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

import mle_jax as mj

from .timing import paired_ratio, round_robin

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
SIGMA = 0.5


def _jax_contender(loss, *args):
    fn = jax.jit(jax.value_and_grad(loss))
    return lambda: fn(*args)


def _torch_device():
    """torch runs where JAX runs: on the GPU when JAX's default backend is one and torch sees it."""
    import torch
    return "cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu"


def _torch_contender(loss, b, *args):
    import torch
    device = _torch_device()
    tb = torch.tensor(np.asarray(b), requires_grad=True, device=device)
    targs = [torch.tensor(np.asarray(a), device=device) for a in args]

    def run():  # .item() waits for the device
        tb.grad = None
        value = loss(tb, *targs)
        value.backward()
        return value.item(), tb.grad
    return run


def _recipe_loss(family, bias_shape):
    r = mj.recipe(lambda b, x_i: x_i + b, family, validate=False)
    return lambda b, x, y: r.nll(mj.Params(b, {}), x, y)


def _anchors():
    import distrax
    from tensorflow_probability.substrates import jax as tfp
    return distrax, tfp.distributions


def normal_fixed(n, rng):
    distrax, tfd = _anchors()
    import torch
    x = jnp.asarray(rng.normal(size=n), jnp.float32)
    y = jnp.asarray(rng.normal(size=n), jnp.float32)
    b = jnp.float32(0.1)
    import optax
    c = {
        "mle_jax": _jax_contender(_recipe_loss(mj.normal(SIGMA), ()), b, x, y),
        "jnp": _jax_contender(lambda b, x, y: jnp.sum(0.5 * jnp.square((y - x - b) / SIGMA))
                              + n * (math.log(SIGMA) + HALF_LOG_2PI), b, x, y),
        "optax": _jax_contender(lambda b, x, y: jnp.sum(optax.squared_error(x + b, y)) / (2 * SIGMA**2)
                                + n * (math.log(SIGMA) + HALF_LOG_2PI), b, x, y),
        "distrax": _jax_contender(lambda b, x, y: -jnp.sum(distrax.Normal(x + b, SIGMA).log_prob(y)), b, x, y),
        "tfp": _jax_contender(lambda b, x, y: -jnp.sum(tfd.Normal(x + b, SIGMA).log_prob(y)), b, x, y),
        "torch": _torch_contender(lambda b, x, y: -torch.distributions.Normal(x + b, SIGMA).log_prob(y).sum(),
                                  b, x, y),
    }
    return c


def normal_softplus(n, rng):
    distrax, tfd = _anchors()
    import torch
    x = jnp.asarray(rng.normal(size=(n, 2)), jnp.float32)
    y = jnp.asarray(rng.normal(size=n), jnp.float32)
    b = jnp.array([0.1, 0.2], jnp.float32)
    sp = jax.nn.softplus

    def hand(b, x, y):
        raw = x + b[None]
        scale = sp(raw[:, 1])
        z = (y - raw[:, 0]) / scale
        return jnp.sum(0.5 * z * z + jnp.log(scale)) + n * HALF_LOG_2PI

    return {
        "mle_jax": _jax_contender(_recipe_loss(mj.normal("softplus"), (2,)), b, x, y),
        "jnp": _jax_contender(hand, b, x, y),
        "distrax": _jax_contender(lambda b, x, y: -jnp.sum(distrax.Normal((x + b[None])[:, 0], sp((x + b[None])[:, 1]))
                                                           .log_prob(y)), b, x, y),
        "tfp": _jax_contender(lambda b, x, y: -jnp.sum(tfd.Normal((x + b[None])[:, 0], sp((x + b[None])[:, 1]))
                                                       .log_prob(y)), b, x, y),
        "torch": _torch_contender(
            lambda b, x, y: torch.nn.functional.gaussian_nll_loss(
                (x + b)[:, 0], y, torch.nn.functional.softplus((x + b)[:, 1]) ** 2, full=True, reduction="sum"),
            b, x, y),
    }


def bernoulli(n, rng):
    distrax, tfd = _anchors()
    import optax
    import torch
    x = jnp.asarray(rng.normal(scale=2.0, size=n), jnp.float32)
    y = jnp.asarray(rng.integers(0, 2, size=n), jnp.float32)
    b = jnp.float32(0.1)
    return {
        "mle_jax": _jax_contender(_recipe_loss(mj.bernoulli(), ()), b, x, y),
        "jnp": _jax_contender(lambda b, x, y: jnp.sum(jax.nn.softplus(x + b) - y * (x + b)), b, x, y),
        "optax": _jax_contender(lambda b, x, y: jnp.sum(optax.sigmoid_binary_cross_entropy(x + b, y)), b, x, y),
        "distrax": _jax_contender(lambda b, x, y: -jnp.sum(distrax.Bernoulli(logits=x + b).log_prob(y)), b, x, y),
        "tfp": _jax_contender(lambda b, x, y: -jnp.sum(tfd.Bernoulli(logits=x + b).log_prob(y)), b, x, y),
        "torch": _torch_contender(lambda b, x, y: torch.nn.functional.binary_cross_entropy_with_logits(
            x + b, y, reduction="sum"), b, x, y),
    }


def categorical(n, k, rng):
    distrax, tfd = _anchors()
    import optax
    import torch
    x = jnp.asarray(rng.normal(size=(n, k)), jnp.float32)
    y = jnp.asarray(rng.integers(0, k, size=n), jnp.int32)
    b = jnp.zeros(k, jnp.float32)

    def hand(b, x, y):
        z = x + b[None]
        return jnp.sum(jax.nn.logsumexp(z, axis=1) - jnp.take_along_axis(z, y[:, None], axis=1)[:, 0])

    return {
        "mle_jax": _jax_contender(_recipe_loss(mj.categorical(k), (k,)), b, x, y),
        "jnp": _jax_contender(hand, b, x, y),
        "optax": _jax_contender(lambda b, x, y: jnp.sum(optax.softmax_cross_entropy_with_integer_labels(
            x + b[None], y)), b, x, y),
        "distrax": _jax_contender(lambda b, x, y: -jnp.sum(distrax.Categorical(logits=x + b[None]).log_prob(y)),
                                  b, x, y),
        "tfp": _jax_contender(lambda b, x, y: -jnp.sum(tfd.Categorical(logits=x + b[None]).log_prob(y)), b, x, y),
        "torch": _torch_contender(lambda b, x, y: torch.nn.functional.cross_entropy(
            x + b, y.long(), reduction="sum"), b, x, y),
    }


WORKLOADS = {
    "normal_fixed": lambda n, rng: normal_fixed(n, rng),
    "normal_softplus": lambda n, rng: normal_softplus(n, rng),
    "bernoulli": lambda n, rng: bernoulli(n, rng),
    "categorical_k10": lambda n, rng: categorical(n, 10, rng),
    "categorical_k1000": lambda n, rng: categorical(max(1, n // 100), 1000, rng),
}


def run(n: int = 2_000_000, reps: int = 30, only=None, budget_s: float = 60.0) -> dict:
    """Medians (seconds) and ratios to the fastest anchor for every workload."""
    rng = np.random.default_rng(0)
    results = {}
    for name, make in WORKLOADS.items():
        if only and name not in only:
            continue
        timings = round_robin(make(n, rng), reps=reps, budget_s=budget_s)
        anchors = {k: v["median_s"] for k, v in timings.items() if k != "mle_jax"}
        best = min(anchors, key=anchors.get)
        results[name] = {"timings": timings, "fastest_anchor": best,
                         "ratio_to_fastest_anchor": timings["mle_jax"]["median_s"] / anchors[best],
                         "paired_ratio_to_fastest_anchor": paired_ratio(timings, "mle_jax", best)}
    return results
