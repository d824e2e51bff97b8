"""Entropy: the binary entropy curve in bits, and the lecture's high- and low-entropy predictions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

import mle_jax as mj

from .common import Experiment, Outcome, close, plt, save

HIGH = np.array([0.25, 0.25, 0.25, 0.25])
LOW = np.array([0.99, 0.01, 0.0, 0.0])


def _categorical(p):
    with np.errstate(divide="ignore"):
        return mj.Categorical(jnp.asarray(np.log(p), jnp.float32))  # p = 0 is a logit of -inf


def run(out, quick: bool) -> Outcome:
    lam = np.linspace(0.0, 1.0, 1001)
    with np.errstate(divide="ignore"):
        logits = jnp.asarray(np.log(lam) - np.log1p(-lam), jnp.float32)  # -inf and +inf at the ends
    curve = np.asarray(jax.vmap(lambda z: mj.entropy(mj.Bernoulli(z), base=2))(logits))
    ref = stats.entropy(np.stack([1 - lam, lam]), base=2)
    h_high = float(mj.entropy(_categorical(HIGH), base=2))
    h_low = float(mj.entropy(_categorical(LOW), base=2))
    fig = _figure(out, lam, curve, h_high, h_low)
    return Outcome(
        "entropy", "Entropy",
        "H = -sum_x P(x) log2 P(x) measures uncertainty: (0.25, 0.25, 0.25, 0.25) is high entropy, "
        "(0.99, 0.01, 0, 0) low; the binary entropy -p log2 p - (1-p) log2(1-p) peaks at 1/2.",
        "mle_jax's entropy in bits (base=2) on Bernoulli logits over a grid of lambda including 0 and 1 "
        "(logits -inf and +inf), and on the lecture's two Categorical predictions (zero probabilities as -inf logits).",
        [fig],
        [
            close("binary entropy equals scipy.stats.entropy on the grid (bits)", curve, ref, atol=2e-6),
            close("binary entropy peaks at lambda = 1/2", float(lam[np.argmax(curve)]), 0.5, atol=1e-9),
            close("binary entropy at 1/2 is 1 bit", float(curve[500]), 1.0, rtol=1e-6),
            close("binary entropy at lambda = 0 and 1 is 0 (0 log 0 = 0)", [curve[0], curve[-1]], [0.0, 0.0], atol=0),
            close("H(0.25, 0.25, 0.25, 0.25) = 2 bits (scipy)", h_high, stats.entropy(HIGH, base=2), rtol=1e-6),
            close("H(0.99, 0.01, 0, 0) (scipy)", h_low, stats.entropy(LOW, base=2), rtol=1e-5),
        ],
        {"entropy_high_bits": h_high, "entropy_low_bits": h_low},
    )


def _figure(out, lam, curve, h_high, h_low):
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), gridspec_kw={"width_ratios": [1.4, 1, 1]})
    ax = axes[0]
    ax.plot(lam, curve, color="C0", lw=2)
    ax.axvline(0.5, color="0.5", ls=":")
    ax.plot([0.5], [1.0], "r*", ms=12, label="maximum: 1 bit at 1/2")
    ax.set(xlabel=r"$p = \Pr(x = 1)$", ylabel="H (bits)", title="Entropy of a binary event")
    ax.legend(fontsize=8)
    for ax, p, h, name in ((axes[1], HIGH, h_high, "high entropy: uncertain"),
                           (axes[2], LOW, h_low, "low entropy: confident")):
        ax.bar(range(4), p, color=["C0", "C1", "C2", "C3"])
        ax.set(ylim=(0, 1.05), xticks=range(4), xlabel="class", ylabel="predicted probability",
               title=f"{name}\nH = {h:.4f} bits")
    return save(fig, out, "entropy")


EXPERIMENT = Experiment("entropy", "Entropy", run)
