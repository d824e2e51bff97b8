"""Is the predicted probability a probability? Calibration of a logistic regression on real data.

scikit-learn's breast-cancer data (569 tumours, malignant or benign): a logistic regression on five
standardised features, fitted on 400 tumours and judged on the other 169 by the Brier score,
the expected calibration error and a reliability diagram, each checked against scikit-learn's
own functions on the same predicted probabilities; the fit itself against statsmodels' Logit.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import mle_jax as mj
from mle_jax.scores import evaluate

from .common import Experiment, Outcome, close, holds, plt, save
from .real_glm import _estimate, _linear, _statsmodels

FEATURES = ["mean radius", "mean texture", "mean smoothness", "mean concave points", "worst symmetry"]


def _data():
    from sklearn.datasets import load_breast_cancer
    data = load_breast_cancer()
    columns = [list(data.feature_names).index(f) for f in FEATURES]
    x = data.data[:, columns]
    order = np.random.default_rng(0).permutation(len(x))
    train, test = order[:400], order[400:]
    mean, sd = x[train].mean(0), x[train].std(0)
    design = np.c_[np.ones(len(x)), (x - mean) / sd]
    y = data.target.astype(np.int32)  # 1 = benign
    return design[train], y[train], design[test], y[test]


def run(out, quick: bool) -> Outcome:
    sm = _statsmodels()
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import brier_score_loss, log_loss

    x_train, y_train, x_test, y_test = _data()
    checks = []
    with jax.enable_x64(True):
        r = mj.recipe(_linear, mj.bernoulli())
        ref = sm.Logit(y_train, x_train).fit(disp=0, tol=1e-12)
        params = _estimate("breast cancer logit", r, r.init({"b": jnp.zeros(x_train.shape[1])}),
                           jnp.asarray(x_train), jnp.asarray(y_train), 100, quick,
                           r.init({"b": jnp.asarray(ref.params)}), checks)
        s = mj.inference(r, params, jnp.asarray(x_train), jnp.asarray(y_train))
        scale = np.max(np.abs(ref.params))
        checks += [
            close("coefficients equal statsmodels' Logit", s.estimate, ref.params, rtol=1e-4, atol=1e-4 * scale),
            close("standard errors equal statsmodels'", np.sqrt(s.variance), ref.bse, rtol=1e-4),
            close("log-likelihood equals statsmodels'", s.loglik, ref.llf, rtol=1e-7),
        ]
        theta = r.predict(params, jnp.asarray(x_test))
        metrics = evaluate(r, params, jnp.asarray(x_test), jnp.asarray(y_test), bins=10)
        cal = mj.calibration(theta, jnp.asarray(y_test), bins=10)
        prob = np.asarray(jax.nn.sigmoid(theta.logits))
    freq, conf = calibration_curve(y_test, prob, n_bins=10)
    filled = np.asarray(cal.counts) > 0
    checks += [
        close("held-out Brier score equals sklearn's brier_score_loss", metrics["brier"],
              brier_score_loss(y_test, prob), rtol=1e-10),
        close("held-out mean NLL equals sklearn's log_loss", metrics["nll"], log_loss(y_test, prob), rtol=1e-8),
        close("reliability diagram equals sklearn's calibration_curve",
              np.r_[np.asarray(cal.frequency)[filled], np.asarray(cal.confidence)[filled]], np.r_[freq, conf],
              rtol=1e-10),
        holds("the held-out ECE is small (< 0.1): the probabilities can be read as probabilities",
              metrics["ece"] < 0.1, metrics["ece"], "0.1"),
    ]
    out.mkdir(parents=True, exist_ok=True)
    (out / "real_calibration_summary.txt").write_text(s.summary() + "\n")
    metrics["summary"] = "real_calibration_summary.txt"
    return Outcome(
        "real_calibration", "Real data: calibration of a classifier",
        "A maximum-likelihood classifier's probabilities are judged by proper scores (Brier, NLL) and by "
        "calibration: of the tumours given probability p of being benign, about a fraction p should be.",
        f"Logistic regression on 5 standardised features of 400 breast-cancer tumours "
        f"({'statsmodels MLE, our gradient ~0' if quick else 'L-BFGS, float64'}); 169 held out.",
        [_figure(out, cal, prob, y_test, metrics)], checks, metrics)


def _figure(out, cal, prob, y, metrics):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    filled = np.asarray(cal.counts) > 0
    axes[0].plot([0, 1], [0, 1], "k:", lw=1, label="perfect calibration")
    axes[0].plot(np.asarray(cal.confidence)[filled], np.asarray(cal.frequency)[filled], "o-", color="C0",
                 label=f"logistic regression (ECE {metrics['ece']:.3f})")
    axes[0].set(xlabel="predicted Pr(benign)", ylabel="fraction benign", title="Reliability diagram (held out)")
    axes[0].legend(fontsize=8, loc="upper left")
    axes[1].hist([prob[y == 0], prob[y == 1]], bins=np.linspace(0, 1, 11), stacked=True,
                 label=["malignant", "benign"], color=["C3", "C2"])
    axes[1].set(xlabel="predicted Pr(benign)", ylabel="tumours",
                title=f"Brier {metrics['brier']:.3f}, accuracy {metrics['accuracy']:.3f}")
    axes[1].legend(fontsize=8)
    return save(fig, out, "real_calibration")


EXPERIMENT = Experiment("real_calibration", "Real data: calibration of a classifier", run)
