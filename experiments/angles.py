"""Angles: von Mises regression of a direction that wraps around."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy import stats

import mle_jax as mj

from .common import Experiment, Outcome, close, holds, plt, save

KAPPA = 8.0


def true_direction(x):
    return 3.0 * np.sin(1.2 * x)  # sweeps past +-pi: the angle wraps


def run(out, quick: bool) -> Outcome:
    n, steps = (1500, 3000) if quick else (3000, 5000)
    rng = np.random.default_rng(31)
    x = np.sort(rng.uniform(0, 4, size=n)).astype(np.float32)
    y = true_direction(x) + stats.vonmises(KAPPA).rvs(size=n, random_state=rng)
    y = (np.mod(y + np.pi, 2 * np.pi) - np.pi).astype(np.float32)  # recorded in (-pi, pi]
    net = mj.mlp([1, 32, 3], jax.nn.tanh)

    def model(p, x_i):  # (cos, sin, raw concentration): the mean direction is an angle on the circle
        out_ = net.apply(p, x_i)
        return jnp.stack([jnp.arctan2(out_[1], out_[0]), out_[2]])

    r = mj.recipe(model, mj.von_mises())
    res = mj.fit(r, r.init(net.init(jax.random.PRNGKey(2))), x, y, optax.adam(0.01), steps=steps)
    grid = np.linspace(0, 4, 200, dtype=np.float32)
    theta = r.predict(res.params, grid)
    error = np.angle(np.exp(1j * (np.asarray(theta.loc) - true_direction(grid))))
    kappa = float(np.median(np.asarray(theta.concentration)))
    # a Normal on the raw angles cannot represent the wrap: compare held-out NLLs on the same data
    x_test = np.sort(rng.uniform(0, 4, size=n)).astype(np.float32)
    y_test = true_direction(x_test) + stats.vonmises(KAPPA).rvs(size=n, random_state=rng)
    y_test = (np.mod(y_test + np.pi, 2 * np.pi) - np.pi).astype(np.float32)
    gauss_net = mj.mlp([1, 32, 2], jax.nn.tanh)
    g = mj.recipe(gauss_net.apply, mj.normal("softplus"))
    g_fit = mj.fit(g, g.init(gauss_net.init(jax.random.PRNGKey(2))), x, y, optax.adam(0.01), steps=steps)
    nll = {"von Mises": float(r.mean_nll(res.params, x_test, y_test)),
           "Normal on raw angles": float(g.mean_nll(g_fit.params, x_test, y_test))}
    fig = _figure(out, x, y, grid, theta)
    return Outcome(
        "angles", "Angles: von Mises regression",
        "For angles, choose a distribution on the circle: the von Mises, whose log density "
        "k cos(y - mu) - log(2 pi I0(k)) is periodic, so a direction just below pi and one just above -pi "
        "are neighbours.",
        f"{n} directions whose mean 3 sin(1.2x) wraps past +-pi, with von Mises noise (k = {KAPPA}); a 1-32-3 "
        "tanh network emitting (cos, sin, raw k), the mean direction taken as atan2; mj.von_mises(); "
        f"Adam, {steps} steps; against a heteroscedastic Normal on the raw angles.",
        [fig],
        [
            close("fitted mean direction within 0.1 rad of the truth (RMS, on the circle)",
                  float(np.sqrt(np.mean(error**2))), 0.0, atol=0.1),
            close("fitted concentration near the true k", kappa, KAPPA, rtol=0.2),
            holds("von Mises held-out NLL is lower than a Normal's on the raw angles",
                  nll["von Mises"] < nll["Normal on raw angles"], [nll["von Mises"], nll["Normal on raw angles"]],
                  "von Mises < Normal"),
        ],
        {"held_out_mean_nll": nll, "median_concentration": kappa,
         "rms_direction_error": float(np.sqrt(np.mean(error**2)))},
    )


def _figure(out, x, y, grid, theta):
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.scatter(x, y, s=3, color="0.6", label="observed directions")
    truth = np.mod(true_direction(grid) + math.pi, 2 * math.pi) - math.pi
    ax.plot(grid, truth, "k.", ms=2, label="true mean direction")
    ax.plot(grid, theta.loc, "C0.", ms=3, label="fitted mean direction")
    ax.set(xlabel="x", ylabel="angle (rad)", ylim=(-math.pi, math.pi),
           title="von Mises regression: the mean direction wraps around +-pi")
    ax.legend(fontsize=8, loc="lower left")
    return save(fig, out, "angles")


EXPERIMENT = Experiment("angles", "Angles: von Mises regression", run)
