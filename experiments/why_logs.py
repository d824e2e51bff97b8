"""Why logs: the product of likelihoods underflows; the sum of log-likelihoods does not."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

import mle_jax as mj

from .common import Experiment, Outcome, close, holds, plt, save


def run(out, quick: bool) -> Outcome:
    n_max = 1000 if quick else 3000
    rng = np.random.default_rng(2)
    y = rng.normal(size=n_max)
    theta = mj.Normal(jnp.float32(0.0), jnp.float32(1.0))
    log_p32 = np.asarray(jax.vmap(mj.log_prob, (None, 0))(theta, jnp.asarray(y, jnp.float32)))
    ns = np.arange(1, n_max + 1)
    prod32 = np.cumprod(np.exp(log_p32).astype(np.float32), dtype=np.float32)
    prod64 = np.cumprod(np.exp(log_p32.astype(np.float64)))
    # the log-likelihood summed in float32 by the library (the recipe's reduction) at every N
    logsum32 = np.array([float(mj.reduce_terms(jnp.asarray(log_p32[:n]))) for n in _marks(n_max)])
    exact = np.array([math.fsum(log_p32[:n].astype(np.float64)) for n in _marks(n_max)])
    first32 = int(ns[np.argmax(prod32 == 0)])
    first64 = int(ns[np.argmax(prod64 == 0)])
    before = first32 - 1
    fig = _figure(out, ns, prod32, prod64, np.cumsum(log_p32.astype(np.float64)), first32, first64)
    return Outcome(
        "why_logs", "Why logs: products underflow, sums of logs do not",
        "Each Pr(y_i | theta) may be small; their product over I examples can be too small to represent "
        "in fixed precision, while the log-likelihood, a sum, stays representable and has the same maximiser.",
        f"Standard Normal densities of {n_max} draws; their running product in float32 and float64 and the "
        "running sum of their logs (summed in float32 by mle_jax's reduction).",
        [fig],
        [
            holds(f"float32 product is exactly 0 from N = {first32}", prod32[-1] == 0 and first32 < 200, first32,
                  "underflow below 1.4e-45"),
            holds(f"float64 product is exactly 0 from N = {first64}", prod64[-1] == 0 and first64 < n_max, first64,
                  "underflow below 4.9e-324"),
            close("float32 log-likelihood sum equals float64 fsum at every N", logsum32, exact, rtol=1e-6),
            close(f"before underflow (N = {before}) log(product) equals the sum of logs",
                  math.log(float(prod64[before - 1])), float(np.sum(log_p32[:before].astype(np.float64))), rtol=1e-9),
        ],
        {"first_zero_float32": first32, "first_zero_float64": first64,
         "log_likelihood_at_n_max": float(logsum32[-1])},
    )


def _marks(n_max):
    return [n for n in (1, 10, 50, 100, 200, 500, 1000, 2000, 3000) if n <= n_max]


def _figure(out, ns, prod32, prod64, logsum, first32, first64):
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4))
    with np.errstate(divide="ignore"):
        ax.plot(ns, np.log10(prod32.astype(np.float64)), label="product, float32")
        ax.plot(ns, np.log10(prod64), label="product, float64", ls="--")
    ax.plot(ns, logsum / math.log(10), "k:", label="sum of logs / ln 10 (exact)")
    for n, c in ((first32, "C0"), (first64, "C1")):
        ax.axvline(n, color=c, lw=0.8)
        ax.annotate(f"0 from N={n}", (n, -50), color=c, fontsize=8, rotation=90, ha="right")
    ax.set(xscale="log", xlabel="N (examples)", ylabel=r"$\log_{10}$ likelihood", title="The likelihood product underflows")
    ax.legend(fontsize=8)
    bx.plot(ns, logsum, color="C2")
    bx.set(xscale="log", xlabel="N (examples)", ylabel="log-likelihood", title="The log-likelihood sum does not")
    return save(fig, out, "why_logs")


EXPERIMENT = Experiment("why_logs", "Why logs: products underflow, sums of logs do not", run)
