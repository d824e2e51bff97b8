"""Counts: Poisson vs negative binomial regression on overdispersed data."""

from __future__ import annotations

import jax
import numpy as np
import optax

import mle_jax as mj

from .common import Experiment, Outcome, close, holds, plt, save

R_TRUE = 2.0


def true_log_mean(x):
    return 1.2 + np.sin(1.5 * x)


def _coverage(r, params, x, y, key, level=0.9, draws=400):
    """Fraction of held-out counts inside the central ``level`` interval of 400 predictive draws."""
    theta = r.predict(params, x)
    keys = jax.random.split(key, draws)
    samples = np.asarray(jax.vmap(lambda k: jax.vmap(mj.sample)(jax.random.split(k, len(y)), theta))(keys))
    lo, hi = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return float(np.mean((y >= lo) & (y <= hi)))


def run(out, quick: bool) -> Outcome:
    n = 1500 if quick else 3000
    rng = np.random.default_rng(11)
    x = np.sort(rng.uniform(0, 4, size=2 * n)).astype(np.float32)
    mean = np.exp(true_log_mean(x))
    y = rng.negative_binomial(R_TRUE, R_TRUE / (R_TRUE + mean)).astype(np.int32)
    train, test = np.arange(2 * n) % 2 == 0, np.arange(2 * n) % 2 == 1
    net = mj.mlp([1, 16, 1], jax.nn.tanh)
    start = net.init(jax.random.PRNGKey(7))
    fits = {}
    for label, family in {"Poisson": mj.poisson(), "negative binomial": mj.negative_binomial("learned")}.items():
        r = mj.recipe(net.apply, family)
        res = mj.fit(r, r.init(start), x[train], y[train], optax.adam(0.01), steps=3000)
        fits[label] = (r, res.params)
    held_out = {k: float(r.mean_nll(p, x[test], y[test])) for k, (r, p) in fits.items()}
    coverage = {k: _coverage(r, p, x[test], y[test], jax.random.PRNGKey(3)) for k, (r, p) in fits.items()}
    r_nb, p_nb = fits["negative binomial"]
    r_fit = float(r_nb.predict(p_nb, x[:1]).total_count[0])
    grid = np.linspace(0, 4, 200, dtype=np.float32)
    fig = _figure(out, x, y, grid, fits)
    return Outcome(
        "counts", "Counts: Poisson vs negative binomial",
        "Counts live on {0, 1, 2, ...}: choose a distribution there. The Poisson ties the variance to the "
        "mean; when the data vary more (overdispersion), a negative binomial with a learned dispersion "
        "fits the same mean and an honest spread.",
        f"{n} training and {n} held-out counts with log-mean 1.2 + sin(1.5x) and negative-binomial noise "
        f"(r = {R_TRUE}); a 1-16-1 tanh network emitting the log-mean, with mj.poisson() and with "
        "mj.negative_binomial() (one learned dispersion); Adam, 3000 steps.",
        [fig],
        [
            close("negative binomial: learned dispersion r near the true 2.0", r_fit, R_TRUE, rtol=0.25),
            holds("negative binomial has the lower held-out NLL",
                  held_out["negative binomial"] < held_out["Poisson"],
                  [held_out["negative binomial"], held_out["Poisson"]], "NB < Poisson"),
            holds("negative binomial: 90% predictive intervals cover 88-98% of held-out counts (an interval "
                  "of whole numbers covers at least its level)", 0.88 <= coverage["negative binomial"] <= 0.98,
                  coverage["negative binomial"], "in [0.88, 0.98]"),
            holds("Poisson: its 90% intervals under-cover overdispersed counts (< 80%)",
                  coverage["Poisson"] < 0.8, coverage["Poisson"], "< 0.8"),
        ],
        {"held_out_mean_nll": held_out, "coverage_90": coverage, "learned_total_count": r_fit},
    )


def _figure(out, x, y, grid, fits):
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.scatter(x, y, s=3, color="0.6", label="counts")
    ax.plot(grid, np.exp(true_log_mean(grid)), "k:", label="true mean")
    for i, (label, (r, p)) in reversed(list(enumerate(fits.items()))):  # the narrow Poisson band on top
        theta = r.predict(p, grid)
        m = np.asarray(jax.vmap(mj.mean)(theta))
        sd = np.sqrt(np.asarray(jax.vmap(mj.variance)(theta)))
        ax.plot(grid, m, color=f"C{i}", label=f"{label}: mean")
        ax.fill_between(grid, np.maximum(m - 2 * sd, 0), m + 2 * sd, color=f"C{i}", alpha=0.35 if i == 0 else 0.15,
                        label=f"{label}: mean +- 2 sd")
    ax.set(xlabel="x", ylabel="count", title="Overdispersed counts: the Poisson's spread is too narrow")
    ax.legend(fontsize=8)
    return save(fig, out, "counts")


EXPERIMENT = Experiment("counts", "Counts: Poisson vs negative binomial", run)
