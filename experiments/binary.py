"""Example 2: binary classification, Bernoulli through a sigmoid = binary cross-entropy."""

from __future__ import annotations

import jax
import numpy as np
import optax
from scipy import special

import mle_jax as mj

from .common import Experiment, Outcome, close, holds, plt, save


def true_logit(x):
    return 3.0 * np.sin(1.5 * x) - 0.5


def run(out, quick: bool) -> Outcome:
    n, steps = (300, 2000) if quick else (600, 2500)
    rng = np.random.default_rng(5)
    x = np.sort(rng.uniform(0, 4, size=n)).astype(np.float32)
    y = (rng.uniform(size=n) < special.expit(true_logit(x))).astype(np.int32)
    net = mj.mlp([1, 8, 1], jax.nn.tanh)
    r = mj.recipe(net.apply, mj.bernoulli())
    res = mj.fit(r, r.init(net.init(jax.random.PRNGKey(3))), x, y, optax.adam(0.01), steps=steps)
    theta = r.predict(res.params, x)
    bce = optax.sigmoid_binary_cross_entropy(theta.logits, y).sum()
    lam = np.asarray(jax.nn.sigmoid(theta.logits), np.float64)
    lecture_bce = -np.sum((1 - y) * np.log1p(-lam) + y * np.log(lam))
    point = np.asarray(r.point(res.params, x))
    grid = np.linspace(0, 4, 300, dtype=np.float32)
    lam_grid = np.asarray(mj.mean(r.predict(res.params, grid)))
    accuracy = float(np.mean(point == y))
    bayes = float(np.mean((true_logit(x) > 0) == y))
    fig = _figure(out, x, y, grid, lam_grid)
    return Outcome(
        "binary", "Binary classification",
        "With y in {0, 1}, choose a Bernoulli whose lambda = sig(f[x, phi]); the NLL is binary cross-entropy; "
        "predict 1 where lambda > 0.5, and lambda itself is a confidence.",
        f"A 1-8-1 tanh network emitting one logit, on {n} labels drawn from sig(3 sin(1.5x) - 0.5); Adam, {steps} steps.",
        [fig],
        [
            close("NLL equals optax.sigmoid_binary_cross_entropy (summed)", r.nll(res.params, x, y), bce, rtol=1e-6),
            close("NLL equals the lecture's -(1-y) log(1-sig) - y log sig (float64)", r.nll(res.params, x, y),
                  lecture_bce, rtol=1e-5),
            holds("point prediction is 1 exactly where lambda > 0.5", np.all(point == (lam > 0.5)),
                  float(np.mean(point == (lam > 0.5))), "threshold at 0.5"),
            close("fitted lambda(x) near the true lambda(x) (mean abs. error)",
                  float(np.mean(np.abs(lam_grid - special.expit(true_logit(grid))))), 0.0, atol=0.08),
            close("training accuracy near the Bayes rule's", accuracy, bayes, atol=0.03),
        ],
        {"accuracy": accuracy, "bayes_accuracy": bayes, "mean_nll": float(res.history[-1])},
    )


def _figure(out, x, y, grid, lam):
    fig, ax = plt.subplots(figsize=(9, 4))
    jitter = np.random.default_rng(0).uniform(-0.03, 0.03, size=len(y))
    ax.scatter(x, y + jitter, s=8, c=np.where(y == 1, "C1", "C0"), alpha=0.6, label="data (y = 0 / 1)")
    ax.plot(grid, special.expit(true_logit(grid)), "k:", label=r"true $\lambda(x)$")
    ax.plot(grid, lam, "C2", lw=2, label=r"fitted $\lambda = \mathrm{sig}[f[x, \phi]]$")
    ax.axhline(0.5, color="0.4", ls="--", lw=1, label="threshold 0.5")
    ax.fill_between(grid, 0, 1, where=lam > 0.5, color="C1", alpha=0.08, label="predict y = 1")
    ax.set(xlabel="x", ylabel=r"Pr(y = 1 | x)", title="Bernoulli NLL = binary cross-entropy; the probability is a confidence")
    ax.legend(fontsize=8, loc="lower left")
    return save(fig, out, "binary")


EXPERIMENT = Experiment("binary", "Binary classification", run)
