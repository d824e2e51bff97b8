"""Multiple outputs: independent outputs sum their NLLs; outputs of very different magnitudes."""

from __future__ import annotations

import jax
import numpy as np
import optax
from scipy import stats

import mle_jax as mj

from .common import Experiment, Outcome, close, holds, plt, save

NOISE = np.array([4.0, 0.045])  # kilos, metres


def true_means(x):
    x = np.asarray(x, np.float64)
    return np.stack([62.0 + 12.0 * np.sin(1.3 * x), 1.62 + 0.12 * np.tanh(2.0 * (x - 2.0))], axis=-1)


def run(out, quick: bool) -> Outcome:
    n, steps = 500, 3000  # quick mode keeps them: fewer steps leave the weight mean under-fitted
    rng = np.random.default_rng(7)
    x = np.sort(rng.uniform(0, 4, size=n)).astype(np.float32)
    y = (true_means(x) + NOISE * rng.normal(size=(n, 2))).astype(np.float32)
    net = mj.mlp([1, 24, 2], jax.nn.tanh)
    start = net.init(jax.random.PRNGKey(5))
    opt = optax.lbfgs()

    def fitted(family, targets):
        r = mj.recipe(net.apply, family)
        res = mj.fit(r, r.init(start), x, targets, opt, steps=steps)
        return r, res

    r_sh, shared = fitted(mj.independent(mj.normal("learned"), 2), y)
    r_pd, per_dim = fitted(mj.independent(mj.normal("learned"), 2, shared=False), y)
    centre, spread = y.mean(axis=0), y.std(axis=0)
    r_rs, rescaled = fitted(mj.independent(mj.normal("learned"), 2), (y - centre) / spread)

    grid = np.linspace(0, 4, 200, dtype=np.float32)
    theta = {"one shared sigma": r_sh.predict(shared.params, grid).base,
             "a sigma per output": r_pd.predict(per_dim.params, grid).base}
    t_rs = r_rs.predict(rescaled.params, grid).base
    theta["rescaled, shared sigma"] = mj.Normal(np.asarray(t_rs.loc) * spread + centre, np.asarray(t_rs.scale) * spread)
    sigmas = {k: np.asarray(t.scale[0]) for k, t in theta.items()}
    rmse = {k: np.sqrt(np.mean((np.asarray(t.loc) - true_means(grid)) ** 2, axis=0)) for k, t in theta.items()}

    # the NLL of independent outputs is the sum of the per-output NLLs (scipy, float64)
    th = r_pd.predict(per_dim.params, x).base
    per_output = -stats.norm(np.asarray(th.loc, np.float64), np.asarray(th.scale, np.float64)).logpdf(y).sum(axis=0)
    fig = _figure(out, x, y, grid, theta)
    return Outcome(
        "multiple_outputs", "Multiple outputs",
        "Treat the outputs as independent: the likelihood is a product and the NLL a sum of per-output terms. "
        "With outputs of very different magnitudes (a weight in kilos, a height in metres) one shared sigma "
        "is wrong for both; learn a sigma per output, or rescale before training and rescale back.",
        f"A 1-24-2 tanh network on {n} people: weight (noise sd {NOISE[0]} kg) and height (noise sd "
        f"{NOISE[1]} m); one shared sigma, a sigma per output, and rescaled targets with one shared sigma; "
        f"L-BFGS, {steps} steps. Both outputs' noise is a similar fraction of their spread, the case where "
        "one sigma in rescaled units can serve both; a sigma per output needs no such luck.",
        [fig],
        [
            close("NLL of independent outputs = sum of per-output NLLs (scipy)", r_pd.nll(per_dim.params, x, y),
                  per_output.sum(), rtol=1e-5),
            close("a sigma per output recovers both noise levels", sigmas["a sigma per output"], NOISE, rtol=0.15),
            close("rescaling recovers both noise levels", sigmas["rescaled, shared sigma"], NOISE, rtol=0.15),
            holds("one shared sigma misses the height noise by more than 10x",
                  sigmas["one shared sigma"][1] > 10 * NOISE[1], sigmas["one shared sigma"][1],
                  f"> 10 x {NOISE[1]} m"),
            holds("per-output sigma fits the height mean at least 3x better than one shared sigma",
                  rmse["a sigma per output"][1] * 3 < rmse["one shared sigma"][1],
                  [rmse["a sigma per output"][1], rmse["one shared sigma"][1]], "RMSE ratio > 3"),
        ],
        {"sigma_kg_m": {k: v.tolist() for k, v in sigmas.items()},
         "mean_rmse_kg_m": {k: v.tolist() for k, v in rmse.items()}},
    )


def _figure(out, x, y, grid, theta):
    fig, axes = plt.subplots(2, 3, figsize=(14, 6), sharex=True)
    truth = true_means(grid)
    for col, (label, t) in enumerate(theta.items()):
        for row, unit in enumerate(("weight (kg)", "height (m)")):
            ax = axes[row, col]
            loc, scale = np.asarray(t.loc[:, row]), np.asarray(t.scale[:, row])
            ax.scatter(x, y[:, row], s=4, color="0.5")
            ax.plot(grid, truth[:, row], "k:", lw=1)
            ax.plot(grid, loc, color=f"C{col}")
            ax.fill_between(grid, loc - 2 * scale, loc + 2 * scale, color=f"C{col}", alpha=0.2)
            ax.set(ylabel=unit)
            ax.set_title(f"{label}: sigma = {scale[0]:.3g}" if row else label + f"\nsigma = {scale[0]:.3g}",
                         fontsize=9)
            if row == 1:
                ax.set_ylim(truth[:, 1].min() - 0.15, truth[:, 1].max() + 0.15)
                ax.set_xlabel("x")
    return save(fig, out, "multiple_outputs")


EXPERIMENT = Experiment("multiple_outputs", "Multiple outputs", run)
