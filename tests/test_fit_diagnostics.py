"""fit says what it cannot deliver: perfect separation, a validation that keeps nothing, a wrong
optimizer state; and fits that differ only in their step counts run one compiled program."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import assume, given, settings, strategies as st
from scipy import optimize, special

import mle_jax as mj
from compiles import compiles
from mle_jax.diagnostics import PerfectSeparationWarning, ValidationWarning, separated


def linear(p, x):
    return p["w"] @ x + p["b"]


def _separable(x, y) -> bool:
    """Independent reference: the labels are linearly separable iff some (w, b) has
    (2 y_i - 1)(w . x_i + b) >= 1 for every i (a linear program's feasibility, scipy's HiGHS)."""
    s = 2.0 * y - 1.0
    a_ub = -s[:, None] * np.hstack([x, np.ones((len(y), 1))])
    lp = optimize.linprog(np.zeros(x.shape[1] + 1), A_ub=a_ub, b_ub=-np.ones(len(y)), bounds=(None, None))
    return lp.status == 0


def _logistic_sets():
    """Data sets of one shape (one compile): labels from a line (separable) and from noisy logits."""
    rng = np.random.default_rng(7)
    sets = []
    for noise in (0.0, 0.0, 1.0, 1.0, 0.3):
        x = rng.normal(size=(40, 2))
        logit = 3.0 * (x[:, 0] - 0.5 * x[:, 1]) + noise * rng.logistic(size=40)
        sets.append((x, (logit > 0).astype(np.int32)))
    return sets


_RECIPE = mj.recipe(linear, mj.bernoulli())  # shared: its fit program is compiled once per dtype


def _fit_warns(r, x, y, dtype, **kwargs):
    start = r.init({"w": jnp.zeros(2, dtype), "b": jnp.zeros((), dtype)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = mj.fit(r, start, jnp.asarray(x, dtype), jnp.asarray(y), optax.lbfgs(), steps=100,
                     objective=mj.Objective(tol=1e-6), **kwargs)
    return res, [w for w in caught if issubclass(w.category, PerfectSeparationWarning)]


@pytest.mark.parametrize("x64_on", [False, True])
@pytest.mark.deep
def test_separation_is_said_exactly_when_a_linear_program_separates_the_labels(x64_on):
    r = _RECIPE
    verdicts = []
    with jax.enable_x64(x64_on):
        dtype = jnp.float64 if x64_on else jnp.float32
        for x, y in _logistic_sets():
            res, caught = _fit_warns(r, x, y, dtype)
            separable = _separable(x, y)
            verdicts.append(separable)
            assert bool(caught) == separable, (separable, res.message)
            assert (res.stopped == "perfect_separation") == separable, res.message
            if separable:  # the fit claims neither convergence nor a finite estimate
                assert ("perfect separation: the maximum-likelihood estimate does not exist "
                        "(parameters diverge)") in res.message
                assert "perfect separation" in str(caught[0].message)
    assert True in verdicts and False in verdicts  # both kinds of data were checked


@pytest.mark.deep
def test_separation_in_other_discrete_families_and_not_under_label_smoothing():
    """Closed forms: three classes cut from a line by two thresholds are separated by a linear
    softmax and by an ordinal model; counts all 0 have Poisson MLE rate 0 (log-rate -> -inf)."""
    x = np.linspace(-3.0, 3.0, 30, dtype=np.float32)[:, None]
    y = np.digitize(x[:, 0], [-1.0, 1.0]).astype(np.int32)
    for family, raw in ((mj.categorical(3), 3), (mj.ordinal(3), 1)):
        model = (lambda p, x: p["w"] @ x + p["b"]) if raw == 3 else (lambda p, x: p["w"] @ x)
        start = {"w": jnp.zeros((raw, 1)), "b": jnp.zeros(raw)} if raw == 3 else {"w": jnp.zeros((1, 1))}
        r = mj.recipe(model, family)
        with pytest.warns(PerfectSeparationWarning):
            res = mj.fit(r, r.init(start), x, y, optax.adam(0.1), steps=500)
        assert res.stopped == "perfect_separation", res.message
    r = mj.recipe(lambda p, x: p["b"], mj.poisson())
    with pytest.warns(PerfectSeparationWarning):
        res = mj.fit(r, r.init({"b": jnp.float32(0.0)}), x, np.zeros(30, np.int32), optax.adam(0.1), steps=100)
    assert res.stopped == "perfect_separation"
    # label smoothing: the training loss has a finite minimum, so nothing diverges
    r = mj.recipe(lambda p, x: p["w"] @ x + p["b"], mj.categorical(3, label_smoothing=0.1))
    res = mj.fit(r, r.init({"w": jnp.zeros((3, 1)), "b": jnp.zeros(3)}), x, y, optax.adam(0.1), steps=50)
    assert res.stopped == "completed"


def test_step_counts_every_patience_and_tol_do_not_recompile():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 2)).astype(np.float32)
    y = (x[:, 0] + rng.logistic(size=64) > 0).astype(np.int32)  # overlapping classes: no separation
    r, opt = mj.recipe(linear, mj.bernoulli()), optax.adam(0.01)
    start = r.init({"w": jnp.zeros(2), "b": jnp.float32(0.0)})
    short = mj.fit(r, start, x, y, opt, steps=40)
    with_val = mj.fit(r, start, x, y, opt, steps=40, validation=mj.Validation(x, y, every=5, patience=3),
                      objective=mj.Objective(tol=1e-9))
    r.log_prob(start, x, y)  # compiled once per recipe: fit reads it to diagnose separation
    with compiles() as count:
        long = mj.fit(r, start, x, y, opt, steps=1500)  # more steps than one call's buffer holds
        mj.fit(r, start, x, y, opt, steps=3)
        mj.fit(r, start, x, y, opt, steps=700, validation=mj.Validation(x, y, every=7, patience=50),
               objective=mj.Objective(tol=1e-3))
        mj.fit(r, start, x, y, opt, steps=123, validation=mj.Validation(x, y, patience=2),
               objective=mj.Objective(tol=0.5))
    assert count.n == 0
    np.testing.assert_array_equal(long.history[:40], short.history)  # the same steps, whatever the count
    assert long.history.shape == (1500,) and np.all(np.isfinite(long.history))
    assert with_val.best_step is not None


def _noisy(n=48, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2)).astype(np.float32)
    return x, (x[:, 0] + rng.logistic(size=n) > 0).astype(np.int32)


def test_validation_that_never_happens_is_refused_before_compiling():
    x, y = _noisy()
    r = mj.recipe(linear, mj.bernoulli())
    start, key = r.init({"w": jnp.zeros(2), "b": jnp.float32(0.0)}), jax.random.key(0)
    with compiles() as count:
        for kwargs in (dict(steps=50, validation=mj.Validation(x, y, every=51)),
                       dict(steps=mj.Minibatches(16, epochs=2), key=key, validation=mj.Validation(x, y, every=7))):
            with pytest.raises(ValueError, match="never happens"):
                mj.fit(r, start, x, y, optax.adam(0.1), **kwargs)
    assert count.n == 0


@pytest.mark.deep  # 4-10 s of compiling: CI's deep phase, for README's 5-minute suite
def test_validation_that_keeps_nothing_is_said_and_the_parameters_match_the_history():
    x, y = _noisy()
    x_bad = x.copy()
    x_bad[0, 0] = np.nan  # every validation NLL is NaN
    r = mj.recipe(linear, mj.bernoulli(), validate=False)
    start = r.init({"w": jnp.zeros(2), "b": jnp.float32(0.0)})
    opt = optax.adam(0.05)
    with pytest.warns(ValidationWarning, match="every validation NLL was NaN or inf"):
        res = mj.fit(r, start, x, y, opt, steps=60, validation=mj.Validation(x_bad, y, every=5))
    assert res.stopped == "completed" and res.best_step is None and res.val_history.shape == (0, 2)
    assert "every validation NLL was NaN or inf" in res.message
    # with patience the fit stops after 3 evaluations (step 15) and returns that step's parameters
    with pytest.warns(ValidationWarning):
        early = mj.fit(r, start, x, y, opt, steps=60, validation=mj.Validation(x_bad, y, every=5, patience=3))
    plain = mj.fit(r, start, x, y, opt, steps=15)
    assert early.stopped == "early_stopping" and early.steps_run == 15
    np.testing.assert_array_equal(early.history, plain.history)
    for a, b in zip(jax.tree_util.tree_leaves(early.params), jax.tree_util.tree_leaves(plain.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # converged before the first evaluation
    with pytest.warns(ValidationWarning, match="before the first validation"):
        res = mj.fit(r, start, x, y, opt, steps=60, validation=mj.Validation(x, y, every=50),
                     objective=mj.Objective(tol=10.0))
    assert res.stopped == "converged" and res.best_step is None


def test_opt_state_is_checked_against_the_optimizer_and_params():
    x, y = _noisy()
    r = mj.recipe(linear, mj.bernoulli())
    start = r.init({"w": jnp.zeros(2), "b": jnp.float32(0.0)})
    opt = optax.adam(0.05)
    with pytest.raises(ValueError, match="opt_state does not match"):
        mj.fit(r, start, x, y, opt, steps=5, run=mj.Run(opt_state=optax.sgd(0.1).init({"w": jnp.zeros(2)})))
    other = mj.fit(mj.recipe(linear, mj.bernoulli()), r.init({"w": jnp.zeros(3), "b": jnp.float32(0.0)}),
                   np.zeros((4, 3), np.float32), np.array([0, 1, 0, 1], np.int32), opt, steps=1)
    with pytest.raises(ValueError, match=r"shape \(3,\).*shape \(2,\)"):
        mj.fit(r, start, x, y, opt, steps=5, run=mj.Run(opt_state=other.opt_state))
    # the right state continues the fit exactly: 20 + 20 steps are the 40 steps of one fit
    first = mj.fit(r, start, x, y, opt, steps=20)
    second = mj.fit(r, r.init(first.params.model), x, y, opt, steps=20, run=mj.Run(opt_state=first.opt_state))
    whole = mj.fit(r, start, x, y, opt, steps=40)
    np.testing.assert_array_equal(np.concatenate([first.history, second.history]), whole.history)


@pytest.mark.deep  # a few seconds of compiling: CI's deep phase, for README's 5-minute suite
def test_separation_of_a_minibatch_fit_is_read_batch_by_batch_with_weights_and_mask():
    x, y = _logistic_sets()[0]  # separable
    x = x.astype(np.float32)
    r = mj.recipe(linear, mj.bernoulli())
    start = r.init({"w": jnp.zeros(2), "b": jnp.float32(0.0)})
    kwargs = dict(steps=mj.Minibatches(batch_size=8, epochs=60), key=jax.random.key(1))
    with pytest.warns(PerfectSeparationWarning):
        res = mj.fit(r, start, x, y, optax.adam(0.1), **kwargs)
    assert res.stopped == "perfect_separation"
    # one example flipped breaks the separation (a linear program agrees); masked out, it restores it
    flipped = y.copy()
    flipped[0] = 1 - flipped[0]
    assert not _separable(x, flipped) and _separable(x[1:], flipped[1:])
    res = mj.fit(r, start, x, flipped, optax.adam(0.1), **kwargs)
    assert res.stopped == "completed", res.message
    mask = np.arange(len(y)) > 0
    with pytest.warns(PerfectSeparationWarning):
        res = mj.fit(r, start, x, flipped, optax.adam(0.1), mask=mask, **kwargs)
    assert res.stopped == "perfect_separation"


def test_separated_counts_only_examples_with_weight_and_mask():
    half = np.log(0.5)
    assert separated(np.array([-0.1, -0.2]))[0] and not separated(np.array([-0.1, half]))[0]
    assert separated(np.array([-0.1, -5.0]), weights=np.array([1.0, 0.0]))[0]
    assert separated(np.array([-0.1, -5.0]), mask=np.array([True, False]))[0]
    assert not separated(np.array([-0.1, np.nan]))[0]
    assert separated(np.array([-0.1, -5.0]), mask=np.array([False, False])) == (False, pytest.approx(np.nan,
                                                                                                     nan_ok=True))
    assert separated(np.array([np.log(0.75), -0.1]))[1] == pytest.approx(0.75)


@settings(max_examples=8, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31 - 1), noise=st.sampled_from([0.0, 0.05, 0.3, 1.0]),
       scale=st.sampled_from([1e-3, 1.0, 1e3]))
@pytest.mark.deep
def test_separation_verdict_matches_the_fitted_probabilities_and_the_linear_program(seed, noise, scale):
    """Property: fit's verdict equals "every label has probability > 1/2" recomputed with scipy's
    expit at the returned parameters, and it is never given for data a linear program cannot
    separate. Data of the shape of the test above (no new compile); features scaled from 1e-3 to 1e3."""
    rng = np.random.default_rng(seed)
    x = scale * rng.normal(size=(40, 2))
    y = (x[:, 0] / scale + 0.7 * x[:, 1] / scale + noise * rng.logistic(size=40) > 0).astype(np.int32)
    res, caught = _fit_warns(_RECIPE, x, y, jnp.float32)
    w, b = (np.asarray(res.params.model[k], np.float64) for k in ("w", "b"))
    p_label = special.expit((2 * y - 1) * (x.astype(np.float32) @ w + b))
    assume(np.all(np.abs(p_label - 0.5) > 1e-4))  # no example at the boundary, where rounding decides
    assert bool(caught) == bool(np.all(p_label > 0.5)), res.message
    if not _separable(x, y):
        assert not caught
