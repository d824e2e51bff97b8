"""Heteroscedastic regression: the model predicts the mean and the scale; links and their failure modes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

import mle_jax as mj

from .common import Experiment, Outcome, close, holds, plt, regression_data, save, true_curve


def true_sd(x):
    return 0.05 + 0.1 * x


def run(out, quick: bool) -> Outcome:
    n, steps = (300, 3000) if quick else (600, 6000)
    x, y = regression_data(n, seed=4, noise=true_sd)
    net = mj.mlp([1, 32, 2], jax.nn.tanh)
    start = net.init(jax.random.PRNGKey(2))
    grid = np.linspace(0.05, 4, 200, dtype=np.float32)
    fits, sigma_err, thetas = {}, {}, {}
    variants = {
        "softplus": mj.normal("softplus"),
        "exp": mj.normal("exp"),
        "square": mj.normal("square"),
        "beta-NLL (softplus, beta=0.5)": mj.normal("softplus", beta=0.5),
    }
    for label, family in variants.items():
        r = mj.recipe(net.apply, family)
        fits[label] = mj.fit(r, r.init(start), x, y, optax.adam(0.01), steps=steps)
        thetas[label] = r.predict(fits[label].params, grid)
        sigma_err[label] = float(np.mean(np.abs(np.asarray(thetas[label].scale) / true_sd(grid) - 1)))
    # the square link's failure: a scale unit that starts at f2 = 0 has gradient exactly 0 and never moves
    dead = jax.tree_util.tree_map(lambda a: a, start)
    dead[-1] = {"w": dead[-1]["w"].at[1].set(0.0), "b": dead[-1]["b"].at[1].set(0.0)}
    r_sq = mj.recipe(net.apply, mj.normal("square"))
    stuck = mj.fit(r_sq, r_sq.init(dead), x, y, optax.adam(0.01), steps=steps // 3)
    stuck_scale = float(jnp.max(r_sq.predict(stuck.params, grid).scale))
    eps = float(jnp.finfo(jnp.float32).eps)
    mean_err = {k: float(np.sqrt(np.mean((np.asarray(t.loc) - true_curve(grid)) ** 2))) for k, t in thetas.items()}
    fig = _figure(out, x, y, grid, thetas, stuck_scale)
    checks = [
        close(f"{k}: sigma(x) within 20% of the true noise sd (mean relative error)", sigma_err[k], 0.0, atol=0.2)
        for k in variants if k != "square"  # the square link is fragile: its errors are reported, not asserted
    ]
    checks += [
        close(f"{k}: fitted mean within 0.1 of the true mean (RMS on the grid)", mean_err[k], 0.0, atol=0.1)
        for k in variants if k != "square"  # square's slower mean fit is reported in the metrics
    ]
    checks += [
        holds("square link started at f2 = 0: sigma stays at the floor (gradient exactly 0)",
              stuck_scale <= 2 * eps, stuck_scale, f"<= 2 eps = {2 * eps:.3g}"),
        holds("square link started at f2 = 0: its loss stays enormous", float(stuck.history[-1]) > 1e6,
              float(stuck.history[-1]), "> 1e6"),
        holds("every fit's loss stayed finite", all(np.all(np.isfinite(f.history)) for f in fits.values()),
              1.0, "all finite"),
    ]
    return Outcome(
        "heteroscedastic", "Heteroscedastic regression",
        "The noise need not be the same everywhere: the network can output the mean f1 and, through a "
        "positive link, the variance (the lecture squares f2: sigma^2 = f2^2).",
        f"A 1-32-2 tanh network on {n} points whose noise sd grows as 0.05 + 0.1 x; scale links softplus, exp, "
        f"the lecture's square, and beta-NLL (Seitzer et al., 2022) with beta = 0.5; Adam, {steps} steps. "
        "Then the square link with its scale unit started at exactly 0. The square link's own fit is "
        "fragile (a scale unit that crosses f2 = 0 meets a zero gradient and an unbounded likelihood): "
        "its errors are reported in the metrics rather than asserted.",
        [fig], checks,
        {"sigma_mean_relative_error": sigma_err, "mean_rmse": mean_err, "square_from_zero_max_sigma": stuck_scale,
         "square_from_zero_final_loss": float(stuck.history[-1])},
    )


def _figure(out, x, y, grid, thetas, stuck_scale):
    fig, axes = plt.subplots(1, len(thetas) + 1, figsize=(18, 3.8), sharey=False)
    for ax, (label, theta) in zip(axes, thetas.items()):
        ax.scatter(x, y, s=4, color="0.5")
        loc, scale = np.asarray(theta.loc), np.asarray(theta.scale)
        ax.fill_between(grid, true_curve(grid) - 2 * true_sd(grid), true_curve(grid) + 2 * true_sd(grid),
                        color="k", alpha=0.08, label="true $\\pm 2\\sigma$")
        ax.plot(grid, loc, color="C0")
        ax.fill_between(grid, loc - 2 * scale, loc + 2 * scale, color="C0", alpha=0.25, label="fitted $\\pm 2\\sigma(x)$")
        ax.set(title=label, xlabel="x")
        ax.legend(fontsize=7, loc="upper left")
    ax = axes[-1]
    ax.plot(grid, true_sd(grid), "k--", label="true sd")
    for label, theta in thetas.items():
        ax.plot(grid, theta.scale, label=label)
    ax.axhline(stuck_scale, color="C3", ls=":", label=f"square from f2=0: {stuck_scale:.1e}")
    ax.set(title=r"$\sigma(x)$", xlabel="x", yscale="log")
    ax.legend(fontsize=7)
    return save(fig, out, "heteroscedastic")


EXPERIMENT = Experiment("heteroscedastic", "Heteroscedastic regression", run)
