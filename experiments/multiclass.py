"""Example 3: multiclass classification, Categorical through a softmax = cross-entropy."""

from __future__ import annotations

import jax
import numpy as np
import optax
from scipy import special

import mle_jax as mj

from .common import Experiment, Outcome, close, holds, plt, save

K = 3


def true_logits(x):
    x = np.asarray(x, np.float64)
    return np.stack([2.5 * np.cos(1.5 * x), 2.0 * np.sin(1.2 * x), 1.2 * x - 2.5], axis=-1)


def run(out, quick: bool) -> Outcome:
    n, steps = (400, 3000) if quick else (900, 5000)
    rng = np.random.default_rng(6)
    x = np.sort(rng.uniform(0, 4, size=n)).astype(np.float32)
    probs_true = special.softmax(true_logits(x), axis=-1)
    y = np.array([rng.choice(K, p=p) for p in probs_true], np.int32)
    net = mj.mlp([1, 24, K], jax.nn.tanh)
    r = mj.recipe(net.apply, mj.categorical(K))
    res = mj.fit(r, r.init(net.init(jax.random.PRNGKey(4))), x, y, optax.adam(0.01), steps=steps)
    theta = r.predict(res.params, x)
    ce = optax.softmax_cross_entropy_with_integer_labels(theta.logits, y).sum()
    logits64 = np.asarray(theta.logits, np.float64)
    lecture = -np.sum(logits64[np.arange(n), y] - special.logsumexp(logits64, axis=1))
    grid = np.linspace(0, 4, 300, dtype=np.float32)
    probs = np.asarray(jax.vmap(mj.probs)(r.predict(res.params, grid)))
    point = np.asarray(r.point(res.params, grid))
    fig = _figure(out, x, y, grid, probs, point)
    return Outcome(
        "multiclass", "Multiclass classification",
        "With y in {1, ..., K}, choose a Categorical whose lambda = softmax(f[x, phi]); the NLL "
        "-f_y + log sum_k exp f_k is multiclass cross-entropy; predict the argmax class.",
        f"A 1-24-3 tanh network emitting K = 3 logits, on {n} labels drawn from a softmax of three "
        f"curves; Adam, {steps} steps.",
        [fig],
        [
            close("NLL equals optax.softmax_cross_entropy_with_integer_labels (summed)", r.nll(res.params, x, y), ce,
                  rtol=1e-6),
            close("NLL equals the lecture's -f_y + log sum exp f (float64)", r.nll(res.params, x, y), lecture,
                  rtol=1e-5),
            close("class probabilities sum to 1", probs.sum(axis=1), np.ones(len(grid)), atol=1e-6),
            holds("point prediction is the argmax of the probabilities", np.all(point == probs.argmax(axis=1)),
                  float(np.mean(point == probs.argmax(axis=1))), "argmax"),
            close("fitted probabilities near the true ones (mean abs. error)",
                  float(np.mean(np.abs(probs - special.softmax(true_logits(grid), axis=-1)))), 0.0, atol=0.08),
        ],
        {"mean_nll": float(res.history[-1]),
         "accuracy": float(np.mean(np.asarray(r.point(res.params, x)) == y))},
    )


def _figure(out, x, y, grid, probs, point):
    fig, (ax, bx) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    truth = special.softmax(true_logits(grid), axis=-1)
    for k in range(K):
        ax.plot(grid, probs[:, k], color=f"C{k}", lw=2, label=f"Pr(y = {k} | x), fitted")
        ax.plot(grid, truth[:, k], color=f"C{k}", ls=":", lw=1)
    ax.set(ylabel="probability", title="Categorical NLL = cross-entropy; softmax probabilities (dotted: true)")
    ax.legend(fontsize=8)
    bx.scatter(x, y + np.random.default_rng(0).uniform(-0.15, 0.15, len(y)), s=5, c=[f"C{k}" for k in y])
    for k in range(K):
        bx.fill_between(grid, -0.5, 2.5, where=point == k, color=f"C{k}", alpha=0.15, step="mid")
    bx.set(xlabel="x", ylabel="class", yticks=range(K), title="data and argmax decision regions")
    return save(fig, out, "multiclass")


EXPERIMENT = Experiment("multiclass", "Multiclass classification", run)
