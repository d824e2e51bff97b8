"""After the fit, on real data: four regressions from statsmodels' own data sets, checked against statsmodels.

    spector    grade improved (0/1) ~ GPA, TUCE, PSI           Bernoulli (logistic regression)
    stackloss  stack loss ~ air flow, water temp., acid        Normal with a learned sigma (least squares)
    randhie    doctor visits (counts) ~ 9 covariates           Poisson and NB2 (the first 6000 rows)
    anes96     party identification (7 classes) ~ 5 covariates Categorical with class 0's logit at 0 (MNLogit)

Each is fitted by ``mj.fit`` (L-BFGS, float64; quick mode starts from statsmodels' estimate and
checks that our gradient is ~0 there) and compared with statsmodels on the same data:
coefficients, observed and robust (HC0) standard errors, log-likelihood, AIC, BIC, and a
likelihood-ratio test. Covariates other than the constant are standardised for both fits.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax

import mle_jax as mj
from mle_jax.scores import evaluate, pit

from .common import Experiment, Outcome, close, holds, plt, save

COEF_RTOL, SE_RTOL = 1e-4, 1e-4


def _design(frame, columns=None):
    sm = _statsmodels()
    x = frame.values.astype(np.float64) if columns is None else frame[columns].values.astype(np.float64)
    return sm.add_constant((x - x.mean(0)) / x.std(0))


def _statsmodels():
    try:
        import statsmodels.api as sm
    except ImportError as error:  # pragma: no cover
        raise ImportError("the real-data experiments need statsmodels (the 'test' extra)") from error
    return sm


def _linear(p, x):
    return x @ p["b"]


def _multinomial(p, x):
    return jnp.concatenate([jnp.zeros(1, x.dtype), x @ p["b"]])


def _fit(r, params, x, y, steps):
    return mj.fit(r, params, x, y, optax.lbfgs(), steps=steps, objective=mj.Objective(reduction="sum")).params


def _estimate(label, r, start, x, y, steps, quick, reference, checks):
    """The MLE: fitted by L-BFGS, or in quick mode statsmodels' own, checked to be our maximum too
    (the gradient of our summed NLL there is ~0)."""
    if not quick:
        return _fit(r, start, x, y, steps)
    grad = jax.grad(lambda p: r.nll(p, x, y))(reference)
    size = max(float(jnp.max(jnp.abs(g))) for g in jax.tree_util.tree_leaves(grad))
    checks.append(holds(f"{label}: statsmodels' MLE is our maximum too (max |gradient| < 1e-5)", size < 1e-5,
                        size, "0"))
    return reference


def _compare(label, ours, ref, ref_robust, checks, *, se_scale=1.0, aic_shift=0.0, bic_shift=0.0, k=None):
    """Coefficients, observed and HC0 SEs, log-likelihood, AIC and BIC against a statsmodels result."""
    observed, robust = ours
    k = len(np.ravel(ref.params)) if k is None else k
    coef = observed.estimate[:k]
    ref_coef = np.ravel(ref.params, order="C")[:k]
    scale = np.max(np.abs(ref_coef))
    checks += [
        close(f"{label}: coefficients equal statsmodels'", coef, ref_coef, rtol=COEF_RTOL, atol=COEF_RTOL * scale),
        close(f"{label}: observed-information SEs equal statsmodels'", np.sqrt(observed.variance[:k]) * se_scale,
              np.ravel(ref.bse, order="C")[:k], rtol=SE_RTOL),
        close(f"{label}: robust (HC0) SEs equal statsmodels'", np.sqrt(robust.variance[:k]),
              np.ravel(ref_robust.bse, order="C")[:k], rtol=SE_RTOL),
        close(f"{label}: log-likelihood, AIC, BIC equal statsmodels'", [observed.loglik, observed.aic, observed.bic],
              [ref.llf, ref.aic + aic_shift, ref.bic + bic_shift], rtol=1e-7),
    ]
    return observed.zvalues[:k], np.ravel(ref.tvalues)[:k] * se_scale


def _both(r, params, x, y):
    return mj.inference(r, params, x, y, cov="observed"), mj.inference(r, params, x, y, cov="robust")


def run(out, quick: bool) -> Outcome:
    sm = _statsmodels()
    checks, summaries, z_pairs, metrics = [], [], {}, {}
    with jax.enable_x64(True):
        # --- spector: logistic regression (in full mode also an LR test dropping TUCE, and stackloss)
        data = sm.datasets.spector.load_pandas()
        X, y = _design(data.exog), data.endog.values.astype(np.int32)
        r = mj.recipe(_linear, mj.bernoulli())
        ref = sm.Logit(y, X).fit(disp=0, tol=1e-12)
        params = _estimate("spector logit", r, r.init({"b": jnp.zeros(4)}), jnp.asarray(X), jnp.asarray(y), 60, quick,
                           r.init({"b": jnp.asarray(ref.params)}), checks)
        s = _both(r, params, jnp.asarray(X), jnp.asarray(y))
        z_pairs["spector (logit)"] = _compare("spector logit", s, ref, sm.Logit(y, X).fit(disp=0, cov_type="HC0"), checks)
        summaries.append(s[0].summary())
        stack_pit = None
        if not quick:
            stack_pit = _lr_and_stackloss(sm, r, s, ref, X, y, checks, summaries, z_pairs)

        # --- randhie: Poisson and NB2 on doctor visits
        data = sm.datasets.randhie.load_pandas()
        rows = slice(0, 3000 if quick else 6000)  # of 20190: enough for the checks, within the time budget
        X, y = _design(data.exog)[rows], data.endog.values[rows].astype(np.float64)
        x_j, y_j = jnp.asarray(X), jnp.asarray(y)
        start = {"b": jnp.zeros(X.shape[1]).at[0].set(np.log(y.mean()))}
        rp = mj.recipe(_linear, mj.poisson())
        ref = sm.Poisson(y, X).fit(disp=0, method="newton", tol=1e-12)
        pois = _estimate("randhie Poisson", rp, rp.init(start), x_j, y_j, 60, quick,
                         rp.init({"b": jnp.asarray(ref.params)}), checks)
        sp = _both(rp, pois, x_j, y_j)
        z_pairs["randhie (Poisson)"] = _compare("randhie Poisson", sp, ref,
                                                sm.Poisson(y, X).fit(disp=0, method="newton", cov_type="HC0"), checks)
        rn = mj.recipe(_linear, mj.negative_binomial(init_total_count=1.0))
        nb2 = sm.NegativeBinomial(y, X, loglike_method="nb2")
        with warnings.catch_warnings():  # statsmodels' own search for a start; Newton alone can diverge here
            warnings.simplefilter("ignore")
            start_nb = nb2.fit(disp=0, method="bfgs", maxiter=500).params
        ref = nb2.fit(start_params=start_nb, disp=0, method="newton", maxiter=100, tol=1e-12)
        at_ref = mj.Params({"b": jnp.asarray(ref.params[:-1])},
                           {"total_count": mj.links.softplus.inverse(jnp.float64(1.0 / ref.params[-1]))})
        nb = _estimate("randhie NB2", rn, rn.init(pois.model), x_j, y_j, 150, quick, at_ref, checks)
        sn = _both(rn, nb, x_j, y_j)
        z_pairs["randhie (NB2)"] = _compare("randhie NB2", sn, ref,
                                            nb2.fit(start_params=start_nb, disp=0, method="newton", maxiter=100,
                                                     cov_type="HC0"), checks,
                                            k=X.shape[1])
        summaries += [sp[0].summary(), sn[0].summary()]
        key = jax.random.PRNGKey(0)
        m_pois, m_nb = evaluate(rp, pois, x_j, y_j, key=key), evaluate(rn, nb, x_j, y_j, key=key)
        checks.append(holds("randhie: NB2 has the lower CRPS and the flatter PIT (overdispersed counts)",
                            m_nb["crps"] < m_pois["crps"] and m_nb["pit_ks"] < m_pois["pit_ks"],
                            [m_pois["crps"], m_nb["crps"], m_pois["pit_ks"], m_nb["pit_ks"]],
                            "Poisson's CRPS and KS distance"))
        metrics.update(randhie_poisson=m_pois, randhie_nb2=m_nb)
        pits = _count_pits(y, rp.predict(pois, x_j), rn.predict(nb, x_j))

        if not quick:
            _anes96(sm, checks, summaries, z_pairs)

    out.mkdir(parents=True, exist_ok=True)
    (out / "real_glm_summaries.txt").write_text("\n\n".join(summaries) + "\n")
    figure = _figure(out, z_pairs, pits, stack_pit)
    metrics["summaries"] = "real_glm_summaries.txt"
    return Outcome(
        "real_glm", "Real data: GLMs against statsmodels",
        "After the fit: the observed Fisher information gives standard errors, the HC0 sandwich robust ones, "
        "and the log-likelihood AIC, BIC and LR tests; on real data they equal statsmodels' to 1e-4.",
        ("statsmodels' MLE (our gradient ~0 there) " if quick else "L-BFGS in float64 ")
        + "on spector (logit) and randhie (Poisson, NB2; "
        + ("first 3000 of 20190 rows; quick mode)." if quick else
           "first 6000 of 20190 rows), stackloss (Gaussian) and anes96 (7-class multinomial)."),
        [figure], checks, metrics)


def _lr_and_stackloss(sm, r, s, ref, X, y, checks, summaries, z_pairs):
    """The LR test of TUCE on spector, and the stackloss least-squares fit (full mode)."""
    keep = [0, 1, 3]
    small = _fit(r, r.init({"b": jnp.zeros(3)}), jnp.asarray(X[:, keep]), jnp.asarray(y), 60)
    stat, df, p = mj.lr_test(mj.inference(r, small, jnp.asarray(X[:, keep]), jnp.asarray(y)), s[0])
    ref_stat, ref_p, ref_df = _lr(ref, sm.Logit(y, X[:, keep]).fit(disp=0, tol=1e-12))
    checks.append(close("spector: LR test of TUCE (statistic, df, p) equals statsmodels'", [stat, df, p],
                        [ref_stat, ref_df, ref_p], rtol=1e-6))

    # --- stackloss: least squares with a learned sigma; OLS's SEs use SSR / (N - p), the MLE's SSR / N
    data = sm.datasets.stackloss.load_pandas()
    X, y = _design(data.exog), data.endog.values.astype(np.float64)
    r = mj.recipe(_linear, mj.normal(scale="learned"))
    params = _fit(r, r.init({"b": jnp.zeros(4)}), jnp.asarray(X), jnp.asarray(y), 100)
    s = _both(r, params, jnp.asarray(X), jnp.asarray(y))
    ref = sm.OLS(y, X).fit()
    n, k = X.shape
    z_pairs["stackloss (Gaussian)"] = _compare(
        "stackloss OLS", s, ref, sm.OLS(y, X).fit(cov_type="HC0"), checks, se_scale=np.sqrt(n / (n - k)),
        aic_shift=2.0, bic_shift=np.log(n), k=k)
    summaries.append(s[0].summary())
    return np.asarray(pit(r.predict(params, jnp.asarray(X)), jnp.asarray(y)))


def _anes96(sm, checks, summaries, z_pairs):
    """Party identification (7 classes): a multinomial logit, class 0 (strong Democrat) the reference."""
    data = sm.datasets.anes96.load_pandas()
    X, y = _design(data.exog), data.endog.values.astype(np.int32)
    r = mj.recipe(_multinomial, mj.categorical(7))
    params = _fit(r, r.init({"b": jnp.zeros((X.shape[1], 6))}), jnp.asarray(X), jnp.asarray(y),
                  200)
    s = _both(r, params, jnp.asarray(X), jnp.asarray(y))
    ref = sm.MNLogit(y, X).fit(disp=0, method="newton", tol=1e-12)
    z_pairs["anes96 (MNLogit)"] = _compare("anes96 MNLogit", s, ref,
                                           sm.MNLogit(y, X).fit(disp=0, method="newton", cov_type="HC0"), checks)
    summaries.append(s[0].summary())



def _count_pits(y, poisson, negative_binomial):
    """Randomised PIT values for the figure, from scipy's cdfs (the checks use mj.evaluate's own)."""
    from scipy import special, stats
    rate = np.exp(np.asarray(poisson.log_rate))
    n, p = np.asarray(negative_binomial.total_count), special.expit(-np.asarray(negative_binomial.logits))
    v = np.random.default_rng(0).uniform(size=len(y))
    return {"Poisson": stats.poisson.cdf(y - 1, rate) + v * stats.poisson.pmf(y, rate),
            "NB2": stats.nbinom.cdf(y - 1, n, p) + v * stats.nbinom.pmf(y, n, p)}


def _lr(full, restricted):
    from scipy import stats
    stat = 2 * (full.llf - restricted.llf)
    df = len(full.params) - len(restricted.params)
    return stat, stats.chi2.sf(stat, df), df


def _figure(out, z_pairs, pits, stack_pit):
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for (name, (ours, ref)), marker in zip(z_pairs.items(), "osD^v"):
        axes[0].scatter(ref, ours, s=18, marker=marker, label=name)
    lim = max(abs(v) for pair in z_pairs.values() for v in np.concatenate(pair))
    axes[0].plot([-lim, lim], [-lim, lim], "k:", lw=1)
    axes[0].set(xlabel="statsmodels z = coef / SE", ylabel="mle_jax z", title="Wald z statistics")
    axes[0].legend(fontsize=7)
    bins = np.linspace(0, 1, 21)
    for name, u in pits.items():
        axes[1].hist(u, bins=bins, density=True, histtype="step", lw=2, label=name)
    axes[1].axhline(1.0, color="k", ls=":", lw=1)
    axes[1].set(xlabel="randomised PIT", ylabel="density", title="randhie doctor visits: PIT histogram")
    axes[1].legend(fontsize=8)
    if stack_pit is not None:
        axes[2].hist(stack_pit, bins=np.linspace(0, 1, 6), density=True, color="C2", alpha=0.7)
        axes[2].axhline(1.0, color="k", ls=":", lw=1)
    axes[2].set(xlabel="PIT", title="stackloss (21 runs): Normal PIT (full mode)")
    return save(fig, out, "real_glm")


EXPERIMENT = Experiment("real_glm", "Real data: GLMs against statsmodels", run)
