"""Data in from a table: a real data set as a pandas DataFrame, a model written as a formula.

    fair (6366 women, 1974)   affair (any extramarital affair, 0/1)
        ~ C(rate_marriage) + C(religious) + np.log(yrs_married) * I(age / 10) + educ + children

a logistic regression with two categorical factors (treatment coding), a transform and an
interaction, built by ``mj.formula`` (formulaic) and fitted by ``mj.fit``; its coefficients,
standard errors and log-likelihood are compared with statsmodels' ``smf.glm`` on the same frame,
and its predictions for held-out rows (``d.x_for(frame)``, the same encoding) with statsmodels'.

Every fit in ``fits`` is compared alike: a new way of fitting the same design is one more
``(label, function)`` pair there, a function ``(design, quick) -> params``. The second is the design
as a stream of batches (``mj.batches``, ``fit(r, params, batches, None, ...)``): Adam on shuffled
batches, then L-BFGS on the gradient accumulated over each epoch's batches; its inference is also
computed over the stream (sums of per-batch Hessians) and equals the in-memory one.
"""

from __future__ import annotations

import jax
import numpy as np
import optax

import mle_jax as mj

from .common import Experiment, Outcome, close, plt, save

SPEC = ("affair ~ C(rate_marriage) + C(religious) + np.log(yrs_married) * I(age / 10) + educ + children")
HELD_OUT = 500  # the last rows: predicted, never fitted


def load():
    """statsmodels' fair data as a DataFrame, with the 0/1 response ``affair = affairs > 0``."""
    import statsmodels.api as sm

    frame = sm.datasets.fair.load_pandas().data
    return frame.assign(affair=(frame["affairs"] > 0).astype(np.float64))


def full_batch(d, quick: bool):
    """L-BFGS on the whole design, from every coefficient 0."""
    return mj.fit(d.recipe, d.init(), d.x, d.y, optax.lbfgs(), steps=1000,
                  objective=mj.Objective(reduction="sum", tol=1e-8)).params


STREAM_BATCH = 838  # rows per batch of the stream: 7 batches cover the 5866 fitted rows exactly


def stream(d, quick: bool):
    """The same design as a stream of batches (``mj.batches`` over its rows, as from a file too large
    for memory), fitted by ``mj.fit(r, params, batches, None, ...)`` in two streams: 100 epochs of
    Adam on shuffled batches (a decaying rate), then 400 L-BFGS steps each on the summed NLL's gradient
    accumulated over one epoch's 7 batches (``optax.MultiSteps``: the whole data's gradient, never in
    memory at once), without a line search (a line search would see one batch). Plain Adam on a
    stream would need thousands of epochs on this ill-conditioned design (0.15 SE after 2000)."""
    x, y = np.asarray(d.x), np.asarray(d.y)
    per_epoch = len(y) // STREAM_BATCH
    assert per_epoch * STREAM_BATCH == len(y), "the batches must cover the rows exactly (equal means)"
    warm = mj.batches(x, y, STREAM_BATCH, shuffle=True, key=jax.random.key(0), epochs=100)
    adam = optax.adam(optax.exponential_decay(0.05, len(warm), 1e-2))
    params = mj.fit(d.recipe, d.init(), warm, None, adam, steps=len(warm)).params
    polish = mj.batches(x, y, STREAM_BATCH, epochs=400)
    lbfgs = optax.MultiSteps(optax.lbfgs(learning_rate=1.0, linesearch=None), every_k_schedule=per_epoch)
    return mj.fit(d.recipe, params, polish, None, lbfgs.gradient_transformation(), steps=len(polish),
                  objective=mj.Objective(reduction="sum")).params  # reaches statsmodels to ~2e-5 (1e-4 SE)


fits = [("L-BFGS, whole design", full_batch), ("stream of batches", stream)]


def _reference(frame):
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    return smf.glm(SPEC, frame, family=sm.families.Binomial()).fit(tol=1e-12)


def _by_name(ref, names):
    """statsmodels' values in the design's column order (patsy orders an interaction's factors differently)."""
    key = {frozenset(n.replace(" ", "").split(":")): i for i, n in enumerate(ref.params.index)}
    order = [key[frozenset(n.replace(" ", "").split(":"))] for n in names]
    return np.asarray(ref.params)[order], np.asarray(ref.bse)[order]


def run(out, quick: bool) -> Outcome:
    frame = load()
    fitted, held_out = frame.iloc[:-HELD_OUT], frame.iloc[-HELD_OUT:]
    ref = _reference(fitted)
    checks, rows, table = [], [], {}
    with jax.enable_x64(True):
        d = mj.formula(SPEC, fitted, mj.bernoulli())
        coef_ref, se_ref = _by_name(ref, d.names)
        for label, fitter in fits:
            params = fitter(d, quick)
            s = mj.inference(d.recipe, params, d.x, d.y)
            p = len(d.names)
            prob = np.asarray(jax.nn.sigmoid(d.recipe.predict(params, d.x_for(held_out)).logits))
            checks += [
                close(f"{label}: coefficients equal statsmodels' (smf.glm)", s.estimate, coef_ref, rtol=1e-4,
                      atol=1e-4 * np.max(se_ref)),
                close(f"{label}: standard errors equal statsmodels'", np.sqrt(s.variance), se_ref, rtol=1e-4),
                close(f"{label}: log-likelihood equals statsmodels'", s.loglik, ref.llf, rtol=1e-8),
                close(f"{label}: held-out probabilities (d.x_for) equal statsmodels' predict", prob,
                      ref.predict(held_out), rtol=1e-4, atol=1e-6),
            ]
            if fitter is stream:  # inference over the same stream: sums of per-batch Hessians, one pass
                t = mj.inference(d.recipe, params, mj.batches(np.asarray(d.x), np.asarray(d.y), 1000), None)
                checks += [close(f"{label}: inference over the stream equals it in memory (log-likelihood)",
                                 t.loglik, s.loglik, rtol=1e-10),
                           close(f"{label}: inference over the stream equals it in memory (variances)",
                                 t.variance, s.variance, rtol=1e-8)]
            rows.append((label, s))
            table[label] = {"loglik": s.loglik, "coef": dict(zip(d.names, s.estimate[:p].tolist())),
                            "se": dict(zip(d.names, np.sqrt(s.variance[:p]).tolist()))}
        checks.append(close("summary() rows are the design's columns", float(rows[0][1].names == d.names), 1.0))
    table["statsmodels"] = {"loglik": float(ref.llf), "coef": dict(zip(d.names, coef_ref.tolist())),
                            "se": dict(zip(d.names, se_ref.tolist()))}
    out.mkdir(parents=True, exist_ok=True)
    (out / "formula_data_table.md").write_text(_markdown(d.names, rows, coef_ref, se_ref, ref.llf))
    (out / "formula_data_summary.txt").write_text(rows[0][1].summary() + "\n")
    return Outcome(
        "formula_data", "Data in: a DataFrame and a formula, against statsmodels",
        "A model written as a formula on a DataFrame (categoricals, a transform, an interaction) is the "
        "same GLM as statsmodels': equal coefficients, standard errors, log-likelihood and predictions.",
        f"fair ({len(fitted)} rows fitted, {HELD_OUT} held out): {SPEC}; " + "; ".join(label for label, _ in fits),
        [_figure(out, d.names, rows, coef_ref, se_ref)], checks,
        {"table": table, "files": ["formula_data_table.md", "formula_data_summary.txt"]})


def _markdown(names, rows, coef_ref, se_ref, llf) -> str:
    head = "| column | statsmodels coef (SE) | " + " | ".join(f"{label} coef (SE)" for label, _ in rows) + " |"
    lines = [head, "|" + "---|" * (2 + len(rows))]
    for i, name in enumerate(names):
        ours = " | ".join(f"{s.estimate[i]:.6f} ({np.sqrt(s.variance[i]):.6f})" for _, s in rows)
        lines.append(f"| `{name}` | {coef_ref[i]:.6f} ({se_ref[i]:.6f}) | {ours} |")
    lines.append(f"| log-likelihood | {llf:.6f} | " + " | ".join(f"{s.loglik:.6f}" for _, s in rows) + " |")
    return "\n".join(lines) + "\n"


def _figure(out, names, rows, coef_ref, se_ref) -> str:
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(names) + 1.2))
    at = np.arange(len(names))
    ax.errorbar(coef_ref, at, xerr=1.96 * se_ref, fmt="o", color="k", label="statsmodels (95% Wald)")
    for k, (label, s) in enumerate(rows):
        est = np.asarray(s.estimate[:len(names)])
        ax.errorbar(est, at + 0.2 * (k + 1), xerr=1.96 * np.sqrt(s.variance[:len(names)]), fmt="s", ms=3,
                    label=f"mle_jax: {label}")
    ax.set_yticks(at, names)
    ax.axvline(0.0, color="0.7", lw=0.8)
    ax.invert_yaxis()
    ax.set_xlabel("coefficient (log-odds)")
    ax.set_title("fair: affair ~ formula, mj.formula vs statsmodels")
    ax.legend(fontsize=7, loc="lower right")
    return save(fig, out, "formula_data")


EXPERIMENT = Experiment("formula_data", "Data in: a DataFrame and a formula", run)
