"""A mixture density network on a multimodal inverse problem."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy import integrate

import mle_jax as mj

from .common import Experiment, Outcome, close, holds, plt, save

K = 3


def _data(n, seed):
    """The forward map x = y + 0.3 sin(2 pi y) + noise is one-to-one; predicting y from x is not:
    for x near 0.5 there are three y's."""
    rng = np.random.default_rng(seed)
    y = rng.uniform(0, 1, size=n)
    x = y + 0.3 * np.sin(2 * np.pi * y) + rng.normal(0, 0.03, size=n)
    return x.astype(np.float32), y.astype(np.float32)


def run(out, quick: bool) -> Outcome:
    n, steps = (2000, 4000) if quick else (3000, 6000)
    x, y = _data(n, 21)
    x_test, y_test = _data(n, 22)
    mdn_net = mj.mlp([1, 32, 3 * K], jax.nn.tanh)
    normal_net = mj.mlp([1, 32, 2], jax.nn.tanh)
    mdn = mj.recipe(mdn_net.apply, mj.mixture_normal(K))
    gauss = mj.recipe(normal_net.apply, mj.normal("softplus"))
    fit_mdn = mj.fit(mdn, mdn.init(mdn_net.init(jax.random.PRNGKey(1))), x, y, optax.adam(0.005), steps=steps)
    fit_gauss = mj.fit(gauss, gauss.init(normal_net.init(jax.random.PRNGKey(1))), x, y, optax.adam(0.005),
                       steps=steps)
    nll = {"mixture of 3 Normals": float(mdn.mean_nll(fit_mdn.params, x_test, y_test)),
           "one Normal": float(gauss.mean_nll(fit_gauss.params, x_test, y_test))}
    at = jax.tree_util.tree_map(lambda a: a[0], mdn.predict(fit_mdn.params, jnp.array([0.5], jnp.float32)))
    mass = _mass(at)
    # the true branches at x = 0.5: the y's with y + 0.3 sin(2 pi y) = 0.5
    fine = np.linspace(0, 1, 200001)
    g = fine + 0.3 * np.sin(2 * np.pi * fine) - 0.5
    roots = np.unique(np.round(fine[np.flatnonzero(np.sign(g[:-1]) != np.sign(g[1:]))], 3))
    mode = float(mj.mode(at))
    fig = _figure(out, x, y, mdn, fit_mdn.params, gauss, fit_gauss.params)
    return Outcome(
        "mixture_density", "A mixture density network",
        "When one input has several plausible outputs, a unimodal distribution averages them into a value "
        "that never happens; a mixture of K Normals (a mixture density network) is still the same recipe: "
        "a distribution over the domain of y, parameters predicted by the network, the NLL minimised.",
        f"{n} points of the inverse of x = y + 0.3 sin(2 pi y) + noise; a 1-32-9 tanh network emitting "
        f"mixture logits, means and raw scales (mj.mixture_normal(3)) against a 1-32-2 network with one "
        f"heteroscedastic Normal; Adam, {steps} steps; {n} held-out points.",
        [fig],
        [
            holds("the mixture's held-out NLL is lower than one Normal's by more than 0.5 nats",
                  nll["mixture of 3 Normals"] < nll["one Normal"] - 0.5, [nll["mixture of 3 Normals"], nll["one Normal"]],
                  "mixture < Normal - 0.5"),
            close("the predictive density at x = 0.5 integrates to 1", mass, 1.0, rtol=1e-4),
            close("its mode at x = 0.5 lies on a true branch", min(abs(mode - r) for r in roots), 0.0, atol=0.05),
            holds("three branches at x = 0.5", len(roots) == 3, len(roots), "3 roots"),
        ],
        {"held_out_mean_nll": nll, "mode_at_0.5": mode, "branches_at_0.5": roots.tolist()},
    )


def _mass(theta: mj.MixtureNormal) -> float:
    """The integral of the mixture's density by the trapezoid rule: a step of a twentieth of the narrowest
    component's scale over 12 of the widest scales beyond the outer means. The density is smooth and
    Gaussian-tailed, so the rule's error is far below 1e-6 (it converges faster than any power of the
    step) and the tails left out weigh under 1e-30; adaptive quadrature on the same function warns."""
    loc, scale = np.asarray(theta.loc, np.float64), np.asarray(theta.scale, np.float64)
    lo, hi = loc.min() - 12 * scale.max(), loc.max() + 12 * scale.max()
    grid = np.linspace(lo, hi, int(np.ceil((hi - lo) / (scale.min() / 20))) + 1)
    log_density = jax.vmap(mj.log_prob, (None, 0))(theta, jnp.asarray(grid, jnp.float32))
    return float(integrate.trapezoid(np.exp(np.asarray(log_density, np.float64)), grid))


def _figure(out, x, y, mdn, p_mdn, gauss, p_gauss):
    xs = np.linspace(-0.1, 1.1, 160, dtype=np.float32)
    ys = np.linspace(-0.2, 1.2, 160, dtype=np.float32)
    theta = mdn.predict(p_mdn, xs)
    dens = np.exp(np.asarray(jax.vmap(lambda t: jax.vmap(lambda v: mj.log_prob(t, v))(ys))(theta)))
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.5))
    ax.pcolormesh(xs, ys, dens.T, shading="auto", cmap="viridis", vmax=np.quantile(dens, 0.99))
    ax.scatter(x[:600], y[:600], s=2, color="w", alpha=0.4)
    ax.set(xlabel="x", ylabel="y", title="mixture of 3 Normals: Pr(y | x)")
    tg = gauss.predict(p_gauss, xs)
    bx.scatter(x, y, s=2, color="0.6")
    bx.plot(xs, tg.loc, "C3", label="one Normal: mean")
    bx.fill_between(xs, tg.loc - 2 * tg.scale, tg.loc + 2 * tg.scale, color="C3", alpha=0.2, label="+- 2 sigma")
    bx.plot(xs, np.asarray(jax.vmap(mj.mode)(theta)), "C0.", ms=3, label="mixture: mode")
    bx.set(xlabel="x", ylabel="y", title="one Normal averages the branches")
    bx.legend(fontsize=8)
    return save(fig, out, "mixture_density")


EXPERIMENT = Experiment("mixture_density", "A mixture density network", run)
