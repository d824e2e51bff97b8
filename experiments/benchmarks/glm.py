"""Time to the MLE of a GLM: mle_jax's fit (``mj.newton()`` and ``optax.lbfgs()``) against glum,
statsmodels and scikit-learn; dense float64, no regularisation; and the covariance after the fit.

Models (one intercept, standard-normal features, true coefficients of sd 0.5 / sqrt(d)):
logistic, multinomial (K = 5; mle_jax and statsmodels with the first class as reference),
Poisson, negative binomial (alpha = 1 / total_count = 0.5 fixed, as statsmodels' and glum's
families take it), Gamma by its mean (log link; mle_jax learns the shape jointly, the others
report none: every contender's coefficients are scored by the profile log-likelihood, the shape
at its MLE given the coefficients) and binomial with trials (1 + Poisson(4) trials per row).
mle_jax's fits start at the intercept-only MLE (``fit(..., start="intercept_only")``: w = 0 and b = g(mean y),
the multinomial's b_k = log(p_k / p_0), as scikit-learn's and glum's do); with it the Gamma's fit its coefficients
with the shape held at 1 (their MLE does not depend on it) and then the shape's MLE given them
(``mj.family_mle``): the joint MLE, the shape profiled out. Both are inside the timed call.
Plus one badly scaled design (logistic, columns on scales 1e-3 ... 1e4: cond(X) ~ 1e8), where
L-BFGS stalls and Newton does not.

Every contender's log-likelihood is recomputed here from its coefficients with scipy.stats; a
contender "reaches the MLE" when it is within ``REL_TOL`` (relative) of the best of all. Times
are medians over repetitions, contenders in a fresh random order each repetition; the data are
prepared outside the timing in each library's own form (mle_jax: arrays on the device;
statsmodels: the design with its constant column). mle_jax's time is warm (its programs compiled
by a first call, what a repeated analysis pays); its cold time (compile included) is reported
separately. ``ratio`` = a contender's median over the fastest median among the contenders that
reached the MLE.

Covariance (``inference_row``; alone: ``python -m experiments.benchmarks.glm --inference``):
``mj.inference`` at the MLE (observed information and the HC0 sandwich) against statsmodels computing
the same from the same coefficients (``model.hessian`` inverted; ``score_obs`` for the meat).
"""

from __future__ import annotations

import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy import optimize, special, stats

import mle_jax as mj

REL_TOL = 1e-8  # reaching the MLE: |loglik - best| <= REL_TOL |best|
MODELS = ("logistic", "multinomial", "poisson", "negative_binomial", "gamma", "binomial", "logistic_scaled")
ALPHA, SHAPE, K = 0.5, 2.0, 5
# (model, features, rows) -> contenders not run there, and why
NOT_RUN = {("multinomial", 100, 1_000_000): {"mle_jax newton": "404 coefficients over 5 raw outputs a row: 10 "
                                                                "weighted Grams of 101^2 a row and step; L-BFGS is "
                                                                "mle_jax's route there"}}


# ----------------------------------------------------------------------------- data and log-likelihoods

def data(model: str, n: int, d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    if model == "multinomial":
        coef = rng.normal(size=(d, K - 1)) * 0.5 / np.sqrt(d)
        eta = np.column_stack([np.zeros(n), x @ coef + 0.2])
        p = special.softmax(eta, axis=1)
        y = (p.cumsum(1) < rng.uniform(size=(n, 1))).sum(1).clip(0, K - 1)
        return x, y
    eta = x @ (rng.normal(size=d) * 0.5 / np.sqrt(d)) + 0.3
    if model == "logistic_scaled":
        x = x * np.logspace(-3, 4, d)
    if model in ("logistic", "logistic_scaled"):
        y = (rng.uniform(size=n) < special.expit(eta)).astype(np.int64)
    elif model == "poisson":
        y = rng.poisson(np.exp(eta)).astype(np.float64)
    elif model == "negative_binomial":
        r = 1 / ALPHA
        y = rng.negative_binomial(r, r / (r + np.exp(eta))).astype(np.float64)
    elif model == "gamma":
        y = rng.gamma(SHAPE, np.exp(eta) / SHAPE)
    else:  # binomial with trials: (successes, trials)
        trials = 1 + rng.poisson(4.0, size=n)
        y = np.column_stack([rng.binomial(trials, special.expit(eta)), trials]).astype(np.float64)
    return x, y


def loglik(model: str, x, y, intercept, coef) -> float:
    """The log-likelihood at (intercept, coef) by scipy.stats (the Gamma's: profiled over its shape)."""
    eta = x @ coef + intercept
    if model == "multinomial":
        eta = np.column_stack([np.zeros(len(y)), eta])
        return float(np.sum(special.log_softmax(eta, axis=1)[np.arange(len(y)), y]))
    if model in ("logistic", "logistic_scaled"):
        return float(np.sum(stats.bernoulli.logpmf(y, special.expit(eta))))
    if model == "poisson":
        return float(np.sum(stats.poisson.logpmf(y, np.exp(eta))))
    if model == "negative_binomial":
        r = 1 / ALPHA
        return float(np.sum(stats.nbinom.logpmf(y, r, r / (r + np.exp(eta)))))
    if model == "gamma":
        mu = np.exp(eta)
        s = np.mean(y / mu - np.log(y / mu) - 1)  # log a - psi(a) = s at the shape's MLE
        a = optimize.brentq(lambda a: np.log(a) - special.digamma(a) - s, 1e-6, 1e8)
        return float(np.sum(stats.gamma.logpdf(y, a, scale=mu / a)))
    return float(np.sum(stats.binom.logpmf(y[:, 0], y[:, 1], special.expit(eta))))


# ----------------------------------------------------------------------------- contenders

def _mle_jax(model, x, y, d):
    """``{name: (fit, coefficients)}``: Newton and L-BFGS through ``mj.fit`` on device arrays."""
    if model == "multinomial":  # the first class is the reference: K - 1 linear predictors, a 0 first
        linear, family, shape = mj.models.linear(d, (K - 1,), reference=True).apply, mj.categorical(K), (d, K - 1)
    else:
        linear = mj.models.linear(d).apply
        family = {"logistic": mj.bernoulli(), "logistic_scaled": mj.bernoulli(), "poisson": mj.poisson(),
                  "negative_binomial": mj.negative_binomial(), "gamma": mj.gamma("mean"),
                  "binomial": mj.binomial()}[model]
        shape = (d,)
    out = {}
    for name, opt, steps, tol in (("mle_jax newton", mj.newton(), 100, 1e-10),
                                  ("mle_jax lbfgs", optax.lbfgs(), 2000, 1e-9)):
        r = mj.recipe(linear, family)  # a recipe each: cold times compile from nothing
        params = r.init({"w": jnp.zeros(shape), "b": jnp.zeros(shape[1:])})
        if model == "negative_binomial":  # a Python float is static: the dispersion fixed, as the others take it
            params = params._replace(family={"total_count": float(mj.links.softplus_inverse(jnp.float64(1 / ALPHA)))})
        xj, yj = jnp.asarray(x), jnp.asarray(y)

        def fit(r=r, params=params, xj=xj, yj=yj, opt=opt, steps=steps, tol=tol):
            # from the intercept-only MLE (the Gamma's shape profiled out): fit's start= option, timed with the fit
            res = mj.fit(r, params, xj, yj, opt, steps=steps, objective=mj.Objective(tol=tol),
                         run=mj.Run(progress=False), start="intercept_only")
            jax.block_until_ready(res.params)
            return np.asarray(res.params.model["b"]), np.asarray(res.params.model["w"])
        out[name] = fit
    return out


def _glum(model, x, y):
    import glum
    family = {"logistic": "binomial", "logistic_scaled": "binomial", "poisson": "poisson",
              "negative_binomial": glum.NegativeBinomialDistribution(theta=ALPHA), "gamma": "gamma",
              "binomial": "binomial"}.get(model)
    if family is None:
        return {}
    link = "log" if model == "gamma" else "auto"

    def fit():
        m = glum.GeneralizedLinearRegressor(alpha=0, family=family, link=link, gradient_tol=1e-10, max_iter=500)
        if model == "binomial":
            m.fit(x, y[:, 0] / y[:, 1], sample_weight=y[:, 1])
        else:
            m.fit(x, y)
        return m.intercept_, m.coef_
    return {"glum": fit}


def _statsmodels(model, x, y):
    import statsmodels.api as sm
    xc = sm.add_constant(x, has_constant="add")
    if model == "multinomial":
        def fit():
            p = sm.MNLogit(y, xc).fit(method="newton", disp=0, maxiter=100).params
            return p[0], p[1:]
        return {"statsmodels": fit}
    fams = sm.families
    family = {"logistic": fams.Binomial(), "logistic_scaled": fams.Binomial(), "poisson": fams.Poisson(),
              "negative_binomial": fams.NegativeBinomial(alpha=ALPHA), "gamma": fams.Gamma(fams.links.Log()),
              "binomial": fams.Binomial()}[model]
    endog = np.column_stack([y[:, 0], y[:, 1] - y[:, 0]]) if model == "binomial" else y

    def fit():
        p = sm.GLM(endog, xc, family=family).fit(tol=1e-10, maxiter=300).params
        return p[0], p[1:]
    return {"statsmodels": fit}


def _sklearn(model, x, y):
    from sklearn.linear_model import GammaRegressor, LogisticRegression, PoissonRegressor
    if model in ("logistic", "logistic_scaled", "multinomial"):
        def fit():
            m = LogisticRegression(C=np.inf, solver="newton-cholesky", tol=1e-10, max_iter=500).fit(x, y)
            if model == "multinomial":  # the overparameterised softmax: differences from class 0
                return m.intercept_[1:] - m.intercept_[0], (m.coef_[1:] - m.coef_[0]).T
            return m.intercept_[0], m.coef_[0]
        return {"scikit-learn": fit}
    make = {"poisson": PoissonRegressor, "gamma": GammaRegressor}.get(model)
    if make is None:
        return {}

    def fit_glm():
        m = make(alpha=0, solver="newton-cholesky", tol=1e-10, max_iter=500).fit(x, y)
        return m.intercept_, m.coef_
    return {"scikit-learn": fit_glm}


# ----------------------------------------------------------------------------- timing

def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def row(model: str, n: int, d: int, reps: int, budget_s: float, cap_s: float | None = None,
        skip: dict | None = None) -> dict:
    """One (model, n, d): each contender's cold time, median warm time, log-likelihood and gap. A contender
    whose first call took over ``cap_s`` is not repeated (its one time is its median); one named in
    ``skip`` (name -> why) is not run at all and reported with the reason."""
    x, y = data(model, n, d)
    contenders = {**_mle_jax(model, x, y, d), **_glum(model, x, y), **_statsmodels(model, x, y), **_sklearn(model, x, y)}
    skip = {name: why for name, why in (skip or {}).items() if name in contenders}
    contenders = {name: fn for name, fn in contenders.items() if name not in skip}
    result = {"model": model, "n": n, "d": d, "contenders": {}, "skipped": skip}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        times, lls = {}, {}
        for name, fn in contenders.items():  # first call: mle_jax compiles; everyone's result is scored
            cold, (b, w) = _timed(fn)
            lls[name] = loglik(model, x, y, np.asarray(b), np.asarray(w))
            times[name] = [] if name.startswith("mle_jax") else [cold]
            result["contenders"][name] = {"cold_s": cold}
        # too slow to repeat: its one time stands (mle_jax's first call compiles: one warm call is timed)
        capped = {name for name, c in result["contenders"].items() if cap_s is not None and c["cold_s"] > cap_s}
        for name in capped:
            times[name] = [_timed(contenders[name])[0]] if name.startswith("mle_jax") else [result["contenders"][name]["cold_s"]]
        order = np.random.default_rng(0)
        start = time.perf_counter()
        for rep in range(reps):
            for name in order.permutation(list(contenders)):
                if name not in capped and len(times[name]) < reps:
                    times[name].append(_timed(contenders[name])[0])
            if time.perf_counter() - start > budget_s:
                break
    best = max(lls.values())
    for name, c in result["contenders"].items():
        c.update(median_s=float(np.median(times[name])), reps=len(times[name]), loglik=lls[name],
                 rel_gap=abs(lls[name] - best) / abs(best), reached=abs(lls[name] - best) <= REL_TOL * abs(best))
    reached = [c["median_s"] for c in result["contenders"].values() if c["reached"]]
    fastest = min(reached) if reached else float("nan")
    for c in result["contenders"].values():
        c["ratio"] = c["median_s"] / fastest
    return result


def inference_row(n: int, d: int, reps: int) -> dict:
    """``mj.inference`` (observed, robust) against statsmodels' Hessian and sandwich at the same MLE."""
    import statsmodels.api as sm
    x, y = data("logistic", n, d)
    xc = sm.add_constant(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mod = sm.GLM(y, xc, family=sm.families.Binomial())
        b = mod.fit(tol=1e-10).params
    r = mj.recipe(lambda p, x_i: x_i @ p["w"] + p["b"], mj.bernoulli())
    with jax.enable_x64(True):
        params = r.init({"w": jnp.asarray(b[1:]), "b": jnp.float64(b[0])})
        xj, yj = jnp.asarray(x), jnp.asarray(y)

    def sandwich():
        h_inv = np.linalg.inv(-mod.hessian(b))
        s = mod.score_obs(b)
        return h_inv @ (s.T @ s) @ h_inv
    contenders = {
        "mle_jax observed": lambda: mj.inference(r, params, xj, yj).cov,
        "mle_jax robust": lambda: mj.inference(r, params, xj, yj, cov="robust").cov,
        "statsmodels observed": lambda: np.linalg.inv(-mod.hessian(b)),
        "statsmodels robust": sandwich,
    }
    out, covs = {}, {}
    for name, fn in contenders.items():
        cold, covs[name] = _timed(fn)
        out[name] = {"cold_s": cold, "times": []}
    order = np.random.default_rng(1)
    for _ in range(reps):
        for name in order.permutation(list(contenders)):
            out[name]["times"].append(_timed(contenders[name])[0])
    for kind in ("observed", "robust"):
        ours, theirs = covs[f"mle_jax {kind}"], covs[f"statsmodels {kind}"]
        out[f"mle_jax {kind}"]["max_rel_diff_se"] = float(np.max(np.abs(np.sqrt(np.diag(ours)) /
                                                                         np.sqrt(np.diag(theirs)) - 1)))
    for name, c in out.items():
        c["median_s"] = float(np.median(c.pop("times")))
    for kind in ("observed", "robust"):
        out[f"mle_jax {kind}"]["ratio_to_statsmodels"] = (out[f"mle_jax {kind}"]["median_s"] /
                                                         out[f"statsmodels {kind}"]["median_s"])
    return {"n": n, "d": d, "contenders": out}


def _load_contenders() -> None:
    """Import glum, statsmodels and scikit-learn (and so load their OpenMP and BLAS libraries) before
    ``threadpool_limits``, which limits only the libraries loaded when it is entered: imported inside it,
    their OpenMP threads ran unlimited, and glum and scikit-learn took 30x longer (0.29 s against 0.008
    s for a 10,000 x 5 Poisson GLM here)."""
    import glum  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import statsmodels.api  # noqa: F401


def grid(quick: bool = False, models=MODELS) -> list[tuple[str, int, int]]:
    """The (model, rows, features) of a run: 1e4 and 1e5 rows (and 1e6 unless ``quick``) by 20 and 100
    features; the badly scaled logistic at 1e5 x 20 only."""
    rows_n = (10_000, 100_000) if quick else (10_000, 100_000, 1_000_000)
    return [(model, n, d) for model in models for d in (20, 100) for n in rows_n
            if model != "logistic_scaled" or (d, n) == (20, 100_000)]


def run(quick: bool = False, reps: int | None = None, models=MODELS, budget_s: float = 60.0,
        blas_threads: int | None = 1, cap_s: float = 30.0, rows=None, inference: bool = True,
        skip: dict | None = None) -> dict:
    """Every row of ``grid`` (``quick``: 1e4 and 1e5 rows only; or the ``rows`` given as (model, n, d)) and
    the covariance row. ``blas_threads``: OpenBLAS's and OpenMP's threads (numpy, scipy, statsmodels,
    scikit-learn, glum, and the LAPACK behind ``jnp.linalg``) for the run; 1 by default: on a loaded
    machine their spinning threads make statsmodels 10-30x slower (0.12 s against 1-4 s for a
    10,000 x 20 logistic GLM here), so one thread is the contenders' best case. XLA keeps its own
    thread pool. ``cap_s``: a contender whose first call takes longer is timed once; one whose time at
    a tenth of the rows (same model and features, earlier in the run) was over ``cap_s / 10`` is not run
    (glum's logistic took 438 s at 1e6 x 20 once), and the row says so. ``skip``: contender name -> why, not
    run on any row (the CLI's ``--skip``: a row run alone has no earlier row to judge by)."""
    from threadpoolctl import threadpool_limits
    _load_contenders()
    reps = reps or (3 if quick else 5)
    out, seen = [], {}
    with jax.enable_x64(True), threadpool_limits(blas_threads):
        for model, n, d in rows or grid(quick, models):
            before = seen.get((model, n // 10, d), {})
            row_skip = {name: f"{t:.3g} s at {n // 10:,} rows: over cap_s / 10 = {cap_s / 10:.3g} s"
                        for name, t in before.items() if t > cap_s / 10 and not name.startswith("mle_jax")}
            row_skip.update(NOT_RUN.get((model, d, n), {}))
            row_skip.update(skip or {})
            out.append(row(model, n, d, reps if n < 1_000_000 else 3, budget_s, cap_s, row_skip))
            seen[(model, n, d)] = {name: c["median_s"] for name, c in out[-1]["contenders"].items()}
            print(format_row(out[-1]), flush=True)
        cov = inference_row(100_000, 100, 3) if inference else None
    return {"rel_tol": REL_TOL, "blas_threads": blas_threads, "cap_s": cap_s, "rows": out, "inference": cov}


def format_row(row: dict) -> str:
    cells = "; ".join(f"{name} {c['median_s']:.3g} s ({c['ratio']:.2f}{'' if c['reached'] else ', MISSED ' + format(c['rel_gap'], '.0e')})"
                      for name, c in sorted(row["contenders"].items(), key=lambda kv: kv[1]["median_s"]))
    skipped = "".join(f"; {name} not run ({why})" for name, why in row.get("skipped", {}).items())
    return f"{row['model']:<18} {row['n']:>9,} x {row['d']:<4} {cells}{skipped}"


def run_inference(reps: int = 5, blas_threads: int | None = 1) -> dict:
    """The covariance row alone (``python -m experiments.benchmarks.glm --inference``)."""
    from threadpoolctl import threadpool_limits
    _load_contenders()
    with jax.enable_x64(True), threadpool_limits(blas_threads):
        return inference_row(100_000, 100, reps)


if __name__ == "__main__":
    import argparse
    import json
    parser = argparse.ArgumentParser(prog="python -m experiments.benchmarks.glm",
                                     description="time to the GLM MLE for chosen rows (--rows model:n:d ...), or the "
                                                 "covariance row (--inference): mj.inference against statsmodels at the "
                                                 "MLE of a 100,000 x 100 logistic regression; BLAS at one thread")
    parser.add_argument("--inference", action="store_true", help="run the covariance row")
    parser.add_argument("--rows", nargs="+", metavar="MODEL:N:D", help=f"rows to time; models: {', '.join(MODELS)}")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--cap", type=float, default=30.0, help="cap_s of run(): a slower contender is timed once")
    parser.add_argument("--json", help="write the rows here")
    parser.add_argument("--skip", nargs="+", default=[], metavar="NAME",
                        help="contenders not run (e.g. statsmodels at 1e6 x 100: 29 s at 1e5 rows), reported as skipped")
    args = parser.parse_args()
    if args.rows:
        spec = [(m, int(float(n)), int(d)) for m, n, d in (a.split(":") for a in args.rows)]
        res = run(reps=args.reps, cap_s=args.cap, rows=spec, inference=False,
                  skip={name: "--skip" for name in args.skip})
        if args.json:
            with open(args.json, "w") as f:
                json.dump(res, f, indent=1)
    if args.inference or not args.rows:
        print(json.dumps(run_inference(args.reps), indent=1))
