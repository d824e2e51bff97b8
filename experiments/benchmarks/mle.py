"""Time to the MLE of a logistic regression (100,000 x 20, float64): mle_jax's fit with optax's
L-BFGS (stopping at a gradient norm of 1e-8) against scikit-learn's LogisticRegression(penalty=None)
and statsmodels' Logit (Newton).

Each fit is timed warm (compiled once before; what a repeated experiment pays) and every
result's log-likelihood is compared with statsmodels' maximum.
"""

from __future__ import annotations

import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax

import mle_jax as mj


def _data(n, d, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    w = rng.normal(size=d) / np.sqrt(d)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(x @ w - 0.3)))).astype(np.int32)
    return x, y


def _loglik(x, y, w, b):
    z = x @ w + b
    return float(np.sum(y * z - np.logaddexp(0.0, z)))


def _median_time(fn, reps):
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), out


def run(n: int = 100_000, d: int = 20, reps: int = 5, steps: int = 100, tol: float = 1e-8) -> dict:
    import statsmodels.api as sm
    from sklearn.linear_model import LogisticRegression

    x, y = _data(n, d)
    results = {}
    t_sm, sm_fit = _median_time(lambda: sm.Logit(y, sm.add_constant(x)).fit(disp=0, method="newton"), reps)
    best = float(sm_fit.llf)
    results["statsmodels Logit (Newton)"] = {"median_s": t_sm, "loglik": best}

    def sklearn_fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return LogisticRegression(penalty=None, solver="lbfgs", tol=1e-10, max_iter=1000).fit(x, y)
    t_sk, sk = _median_time(sklearn_fit, reps)
    results["scikit-learn LogisticRegression (lbfgs)"] = {
        "median_s": t_sk, "loglik": _loglik(x, y, sk.coef_[0], sk.intercept_[0])}

    with jax.enable_x64(True):
        r = mj.recipe(lambda p, x_i: x_i @ p["w"] + p["b"], mj.bernoulli())
        params = r.init({"w": jnp.zeros(d), "b": jnp.float64(0.0)})
        xj, yj = jnp.asarray(x), jnp.asarray(y)
        opt = optax.lbfgs()
        fit = lambda: mj.fit(r, params, xj, yj, opt, steps=steps, objective=mj.Objective(tol=tol),
                             run=mj.Run(progress=False))
        t0 = time.perf_counter()
        fit()  # compiles
        t_cold = time.perf_counter() - t0
        t_mj, res = _median_time(fit, reps)
        w = np.asarray(res.params.model["w"])
        b = float(res.params.model["b"])
    results["mle_jax fit (optax L-BFGS)"] = {"median_s": t_mj, "cold_s": t_cold, "steps": len(res.history),
                                            "loglik": _loglik(x, y, w, b)}
    for row in results.values():
        row["relative_gap_to_statsmodels"] = abs(row["loglik"] - best) / abs(best)
    results["speedup_vs_sklearn"] = t_sk / t_mj
    results["speedup_vs_statsmodels"] = t_sm / t_mj
    return results
