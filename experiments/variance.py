"""Estimating the variance: sigma learned with phi equals the closed form sqrt(mean squared residual)."""

from __future__ import annotations

import math

import jax
import numpy as np
import optax

import mle_jax as mj

from .common import Experiment, Outcome, close, plt, regression_data, save

TRUE_SIGMA = 0.3


def run(out, quick: bool) -> Outcome:
    n, steps = 200, 5000  # cheap either way: quick mode keeps them
    x, y = regression_data(n, seed=3, noise=TRUE_SIGMA)
    net = mj.mlp([1, 20, 1])
    r = mj.recipe(net.apply, mj.normal("learned", init_scale=1.0))
    res = mj.fit(r, r.init(net.init(jax.random.PRNGKey(0))), x, y, optax.adam(0.01), steps=steps)
    theta = r.predict(res.params, x)
    sigma = float(theta.scale[0])
    resid = y.astype(np.float64) - np.asarray(theta.loc, np.float64)
    closed_form = math.sqrt(np.mean(resid**2))
    # the NLL as a function of sigma with phi held at its fit: minimised at the closed form
    sigmas = np.linspace(0.5 * closed_form, 2.0 * closed_form, 301)
    curve = np.array([mj.recipe(net.apply, mj.normal(float(s))).nll(mj.Params(res.params.model, {}), x, y)
                      for s in sigmas[::10]])
    profile = n * np.log(sigmas) + np.sum(resid**2) / (2 * sigmas**2) + 0.5 * n * math.log(2 * math.pi)
    fig = _figure(out, x, y, theta, sigmas, profile, curve, sigma, closed_form)
    return Outcome(
        "variance", "Estimating the variance",
        "The variance drops out of the least-squares minimiser, but it can be learned with phi by gradient "
        "descent on the NLL; for fixed phi the optimum is sigma^2 = mean squared residual.",
        f"A 1-20-1 ReLU network with one global sigma (a family parameter, softplus link) on {n} points "
        f"with noise sd {TRUE_SIGMA}; Adam, {steps} steps.",
        [fig],
        [
            close("learned sigma equals sqrt(mean squared residual)", sigma, closed_form, rtol=1e-3),
            close("learned sigma is near the true noise sd", sigma, TRUE_SIGMA, rtol=0.2),
            close("the NLL profile in sigma (library) equals the closed-form profile", curve, profile[::10], rtol=1e-5),
            close("the profile's minimiser is the closed form", float(sigmas[np.argmin(profile)]), closed_form,
                  rtol=(sigmas[1] - sigmas[0]) / closed_form),
        ],
        {"learned_sigma": sigma, "closed_form_sigma": closed_form, "true_sigma": TRUE_SIGMA,
         "final_mean_nll": float(res.history[-1])},
    )


def _figure(out, x, y, theta, sigmas, profile, curve, sigma, closed_form):
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4))
    order = np.argsort(x)
    loc, scale = np.asarray(theta.loc)[order], np.asarray(theta.scale)[order]
    ax.scatter(x, y, s=10, color="0.3")
    ax.plot(x[order], loc, color="C0", lw=2, label=r"$\mu = f[x, \phi]$")
    ax.fill_between(x[order], loc - 2 * scale, loc + 2 * scale, color="C0", alpha=0.2,
                    label=rf"$\pm 2\sigma$, learned $\sigma$ = {sigma:.4f}")
    ax.set(xlabel="x", ylabel="y", title=r"$\phi$ and $\sigma$ learned together")
    ax.legend(fontsize=8)
    bx.plot(sigmas, profile, color="C1", label="NLL(sigma), closed form")
    bx.plot(sigmas[::10], curve, "o", ms=4, color="C0", label="NLL(sigma), mle_jax")
    bx.axvline(closed_form, color="k", ls=":", label=f"sqrt(mean sq. residual) = {closed_form:.4f}")
    bx.plot([sigma], [np.interp(sigma, sigmas, profile)], "r*", ms=12, label="learned by gradient descent")
    bx.set(xlabel=r"$\sigma$", ylabel="NLL", title=r"The NLL as a function of $\sigma$")
    bx.legend(fontsize=8)
    return save(fig, out, "variance")


EXPERIMENT = Experiment("variance", "Estimating the variance", run)
