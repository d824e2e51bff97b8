"""Rankings: Plackett-Luce item scores by maximum likelihood, against Hunter's (2004) MM algorithm."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

import mle_jax as mj

from .common import Experiment, Outcome, close, holds, plt, save

ITEMS = ("A", "B", "C", "D", "E", "F")
TRUE_SCORES = np.array([0.0, 0.6, -0.6, 1.2, -1.1, 1.8])  # item A's score is 0: only differences matter


def simulate(n: int, seed: int = 5) -> np.ndarray:
    """``n`` full rankings of the items (best first) drawn from Plackett-Luce(TRUE_SCORES) by Gumbel-max,
    in NumPy (independent of the library's sampler)."""
    rng = np.random.default_rng(seed)
    noisy = TRUE_SCORES + rng.gumbel(size=(n, len(ITEMS)))
    return np.argsort(-noisy, axis=1).astype(np.int32)


def hunter_mm(rankings: np.ndarray, iters: int = 5000, tol: float = 1e-13) -> np.ndarray:
    """The Plackett-Luce MLE of the item worths ``gamma = exp(s)`` by Hunter's (2004) MM algorithm, in NumPy:

        gamma_t <- w_t / sum_j sum_{i < K} [t in {pi_j(i), ..., pi_j(K)}] / sum_{m >= i} gamma_{pi_j(m)}

    with ``w_t`` the number of stages (positions 1..K-1) at which item t is chosen. Returns ``log gamma``
    less the first item's (the scores with item A's at 0)."""
    n, k = rankings.shape
    wins = np.bincount(rankings[:, :-1].ravel(), minlength=k).astype(np.float64)
    gamma = np.ones(k)
    for _ in range(iters):
        ordered = gamma[rankings]                                  # (n, K) worths in ranked order
        tails = np.cumsum(ordered[:, ::-1], axis=1)[:, ::-1]       # sum_{m >= i} gamma_{pi(m)}
        inverse = np.cumsum(1.0 / tails[:, :-1], axis=1)           # stages i < K up to each position
        denominator = np.zeros(k)
        # item at position p is in the remaining set at stages 1..min(p, K-1): its sum of 1/tails up to there
        np.add.at(denominator, rankings[:, :-1], inverse)
        np.add.at(denominator, rankings[:, -1], inverse[:, -1])
        new = wins / denominator
        new = new / new[0]
        if np.max(np.abs(np.log(new) - np.log(gamma))) < tol:
            gamma = new
            break
        gamma = new
    return np.log(gamma) - np.log(gamma[0])


def _scores(params, x_i):
    """One ranking's K scores: item A's fixed at 0 (identifiability), the other K - 1 learned."""
    return jnp.concatenate([jnp.zeros(1, params["s"].dtype), params["s"]])


def run(out, quick: bool) -> Outcome:
    n = 300 if quick else 800
    rankings = simulate(n)
    with jax.enable_x64(True):
        x = jnp.zeros((n, 1))
        r = mj.recipe(_scores, mj.plackett_luce(len(ITEMS)))
        params = r.init({"s": jnp.zeros(len(ITEMS) - 1)})
        result = mj.fit(r, params, x, jnp.asarray(rankings), optax.lbfgs(), steps=200,
                        objective=mj.Objective(reduction="sum", tol=1e-9))
        fitted = np.concatenate([[0.0], np.asarray(result.params.model["s"])])
        s = mj.inference(r, result.params, x, jnp.asarray(rankings), cov="observed")
        se = np.concatenate([[0.0], np.asarray(s.se.model["s"])])
        loglik_fit = float(s.loglik)
        mm = hunter_mm(rankings)
        loglik_mm = -float(r.nll(mj.Params({"s": jnp.asarray(mm[1:])}, {}), x, jnp.asarray(rankings)))
        top = np.asarray(jax.nn.softmax(jnp.asarray(fitted)))  # Pr(item ranked first) = softmax(s)
    first = np.bincount(rankings[:, 0], minlength=len(ITEMS)) / n
    top_se = np.sqrt(top * (1 - top) / n)
    z = (fitted - TRUE_SCORES)[1:] / se[1:]
    fig = _figure(out, fitted, se, mm, first, top, top_se)
    return Outcome(
        "rankings", "Rankings: Plackett-Luce scores",
        "Rankings live on permutations: choose a distribution there. Plackett-Luce picks the best item with "
        "probabilities softmax(s), then the best of the rest, and so on; maximising its likelihood recovers the "
        "item scores, the same maximum that Hunter's MM algorithm reaches by a different route.",
        f"{n} full rankings of {len(ITEMS)} items drawn (NumPy, Gumbel-max) from Plackett-Luce with scores "
        f"{TRUE_SCORES.tolist()}; mj.plackett_luce({len(ITEMS)}) with item A's score fixed at 0 and five "
        "learned, L-BFGS on the summed NLL in float64; standard errors from mj.inference (observed "
        "information); reference: Hunter's (2004) MM algorithm in NumPy.",
        [fig],
        [
            close("scores equal Hunter's MM estimate", fitted, mm, atol=1e-5),
            close("log-likelihood equals the MM estimate's", loglik_fit, loglik_mm, atol=1e-6),
            holds("every learned score within 4 standard errors of the truth", np.all(np.abs(z) < 4), z,
                  "|z| < 4"),
            holds("the fitted mode (items by score) is the true order",
                  np.array_equal(np.argsort(-fitted), np.argsort(-TRUE_SCORES)), np.argsort(-fitted),
                  f"{np.argsort(-TRUE_SCORES).tolist()}"),
            holds("first-place frequencies within 4 binomial standard errors of softmax(s)",
                  np.all(np.abs(first - top) < 4 * top_se), (first - top) / top_se, "|z| < 4"),
        ],
        {"fitted_scores": fitted.tolist(), "standard_errors": se.tolist(), "mm_scores": mm.tolist(),
         "loglik": loglik_fit, "steps": int(len(result.history)), "stopped": str(result.stopped)},
    )


def _figure(out, fitted, se, mm, first, top, top_se):
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    pos = np.arange(len(ITEMS))
    left.errorbar(pos - 0.1, fitted, yerr=2 * se, fmt="o", color="C0", label="mj.fit +- 2 se")
    left.plot(pos + 0.1, mm, "s", color="C1", mfc="none", label="Hunter's MM")
    left.plot(pos, TRUE_SCORES, "k_", markersize=18, label="true score")
    left.set(xticks=pos, xticklabels=ITEMS, xlabel="item", ylabel="score s (item A at 0)",
             title="Plackett-Luce scores: MLE, MM and truth")
    left.legend(fontsize=8)
    right.bar(pos - 0.2, first, width=0.4, color="0.6", label="observed first places")
    right.errorbar(pos + 0.2, top, yerr=2 * top_se, fmt="o", color="C0", label="softmax(fitted s) +- 2 se")
    right.set(xticks=pos, xticklabels=ITEMS, xlabel="item", ylabel="Pr(ranked first)",
              title="Who comes first")
    right.legend(fontsize=8)
    return save(fig, out, "rankings")


EXPERIMENT = Experiment("rankings", "Rankings: Plackett-Luce scores", run)
