"""Example 1: least squares is maximum likelihood under a Normal with fixed sigma."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy import stats

import mle_jax as mj

from .common import Experiment, Outcome, close, plt, regression_data, save, true_curve

SIGMA = 0.3


def run(out, quick: bool) -> Outcome:
    n, steps = (60, 1500) if quick else (120, 4000)
    x, y = regression_data(n, seed=1, noise=SIGMA)
    net = mj.mlp([1, 20, 1])
    r = mj.recipe(net.apply, mj.normal(SIGMA))
    params = r.init(net.init(jax.random.PRNGKey(0)))
    # Adam is invariant to the constant factor 1/(2 sigma^2) between the two losses' gradients
    # (up to its eps, made negligible here): the two fits follow the same path up to float rounding
    opt = optax.adam(0.01, eps=1e-20)
    res = mj.fit(r, params, x, y, opt, steps=steps)

    # the same network fitted by plain least squares: mean squared error, same optimizer and start
    def mse(phi):
        return jnp.mean((jnp.asarray(y) - jax.vmap(net.apply, (None, 0))(phi, jnp.asarray(x))) ** 2)

    def ls_step(carry, _):
        phi, state = carry
        grads = jax.grad(mse)(phi)
        updates, state = opt.update(grads, state, phi)
        return (optax.apply_updates(phi, updates), state), None

    (phi_ls, _), _ = jax.lax.scan(ls_step, (params.model, opt.init(params.model)), None, length=steps)
    flat_nll = jnp.concatenate([a.ravel() for a in jax.tree_util.tree_leaves(res.params.model)])
    flat_ls = jnp.concatenate([a.ravel() for a in jax.tree_util.tree_leaves(phi_ls)])
    grid = jnp.linspace(0.0, 4.0, 200)
    curve_gap = jnp.max(jnp.abs(jax.vmap(net.apply, (None, 0))(phi_ls, grid) - r.point(res.params, grid)))

    # exact in value and gradient: grad NLL(phi) = grad SSE(phi) / (2 sigma^2) at any phi
    grad_nll = jax.grad(lambda phi: r.nll(mj.Params(phi, {}), x, y))(params.model)
    grad_sse = jax.grad(lambda phi: n * mse(phi))(params.model)
    ratio_gap = max(float(jnp.max(jnp.abs(a * 2 * SIGMA**2 - b)) / jnp.max(jnp.abs(b)))
                    for a, b in zip(jax.tree_util.tree_leaves(grad_nll), jax.tree_util.tree_leaves(grad_sse)))

    # the identity NLL = SSE / (2 sigma^2) + N log sigma + (N/2) log 2 pi, in float64 on the side
    pred = np.asarray(r.point(res.params, x), np.float64)
    sse = float(np.sum((y.astype(np.float64) - pred) ** 2))
    identity = sse / (2 * SIGMA**2) + n * math.log(SIGMA) + 0.5 * n * math.log(2 * math.pi)

    # on a linear model the NLL minimiser is the closed-form least-squares solution
    lin = mj.recipe(lambda p, xi: p[0] * xi + p[1], mj.normal(SIGMA))
    lin_fit = mj.fit(lin, lin.init(jnp.zeros(2)), x, y, optax.lbfgs(), steps=30)
    lstsq = np.linalg.lstsq(np.column_stack([x, np.ones(n)]).astype(np.float64), y.astype(np.float64), rcond=None)[0]

    figure = _figure(out, x, y, r, res.params)
    slice_theta = r.predict(res.params, jnp.array([2.8], jnp.float32))
    return Outcome(
        "least_squares", "Least squares is maximum likelihood",
        "With Pr(y | x) = N(y | f[x, phi], sigma^2) and sigma fixed, minimising the NLL is minimising "
        "the sum of squares; the NLL is SSE / (2 sigma^2) plus terms that do not depend on phi.",
        f"A 1-20-1 ReLU network on {n} points (noise sd {SIGMA}), Normal(scale={SIGMA}), Adam, {steps} steps; "
        "the same network and optimizer on the mean squared error; a line fitted by L-BFGS.",
        [figure],
        [
            close("NLL equals SSE/(2 sigma^2) + N log sigma + N/2 log 2pi", r.nll(res.params, x, y), identity,
                  rtol=1e-5),
            close("gradient: 2 sigma^2 grad NLL = grad SSE (relative gap)", ratio_gap, 0.0, atol=1e-5),
            close("NLL fit and least-squares fit: same parameters (max gap / max |phi|; Adam's float "
                  "rounding drifts slowly)", float(jnp.max(jnp.abs(flat_nll - flat_ls)) / jnp.max(jnp.abs(flat_nll))),
                  0.0, atol=1e-2),
            close("NLL fit and least-squares fit: same fitted curve on [0, 4]", float(curve_gap), 0.0, atol=1e-2),
            close("linear model: NLL minimiser equals numpy lstsq", np.asarray(lin_fit.params.model), lstsq,
                  atol=1e-4),
            close("NLL fit loss equals scipy.stats.norm.logpdf sum", r.nll(res.params, x, y),
                  -stats.norm(pred, SIGMA).logpdf(y.astype(np.float64)).sum(), rtol=1e-5),
        ],
        {"final_mean_nll": float(res.history[-1]), "sse": sse, "rmse": math.sqrt(sse / n),
         "max_param_difference_nll_vs_ls": float(jnp.max(jnp.abs(flat_nll - flat_ls))),
         "max_curve_difference_nll_vs_ls": float(curve_gap),
         "mu_at_2.8": float(slice_theta.loc[0])},
    )


def _figure(out, x, y, r, params):
    grid = np.linspace(0, 4, 300, dtype=np.float32)
    theta = r.predict(params, grid)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [2, 1]})
    ax.scatter(x, y, s=12, color="0.3", label="data")
    ax.plot(grid, true_curve(grid), "k:", lw=1, label="true mean")
    ax.plot(grid, theta.loc, color="C0", lw=2, label=r"fitted $\mu = f[x, \phi]$")
    ax.fill_between(grid, theta.loc - 2 * theta.scale, theta.loc + 2 * theta.scale, color="C0", alpha=0.2,
                    label=r"$\mu \pm 2\sigma$")
    ax.axvline(2.8, color="C3", ls="--", lw=1)
    ax.set(xlabel="x", ylabel="y", title="Normal NLL with fixed $\\sigma$ = least squares")
    ax.legend(loc="upper left", fontsize=8)
    at = r.predict(params, np.array([2.8], np.float32))
    ys = np.linspace(float(at.loc[0]) - 4 * SIGMA, float(at.loc[0]) + 4 * SIGMA, 200, dtype=np.float32)
    density = np.exp(jax.vmap(mj.log_prob, (None, 0))(jax.tree_util.tree_map(lambda a: a[0], at), ys))
    bx.plot(density, ys, color="C3")
    bx.fill_betweenx(ys, 0, density, color="C3", alpha=0.15)
    near = np.abs(x - 2.8) < 0.15
    bx.scatter(np.zeros(near.sum()), y[near], color="0.3", s=12, zorder=3, label="data near x = 2.8")
    bx.set(xlabel="density", ylabel="y", title="Pr(y | x = 2.8)")
    bx.legend(fontsize=8)
    return save(fig, out, "least_squares")


EXPERIMENT = Experiment("least_squares", "Least squares is maximum likelihood", run)
