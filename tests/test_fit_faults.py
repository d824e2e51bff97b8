"""fit at its edges: fits that must not lie, named argument errors, checkpoints that are not this fit's."""

import gc
import weakref

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import mle_jax as mj
from compiles import compiles

X = jnp.linspace(-1.0, 1.0, 32)
Y = 3.0 * X
SLOPE = mj.recipe(lambda p, x_i: p * x_i, mj.normal(1.0))
START = SLOPE.init(jnp.float32(0.0))
DIVERGES = optax.sgd(1e3)  # overflows: the loss is inf at step 8 (every earlier loss is finite)
ADAM = optax.adam(0.1)


def _saved(directory, every: int) -> mj.Run:
    return mj.Run(checkpoints=mj.Checkpoints(directory, every=every))


def _slope_after(steps: int) -> float:
    """The reference: plain gradient descent by hand, d/dp mean(0.5 (y - p x)^2) = -mean((y - p x) x)."""
    p = np.float32(0.0)
    x, y = np.asarray(X), np.asarray(Y)
    for _ in range(steps):
        p = np.float32(p + 1e3 * np.mean((y - p * x) * x, dtype=np.float32))
    return float(p)


def test_non_finite_right_after_a_checkpoint_replays_from_an_older_one(tmp_path):
    pytest.importorskip("orbax.checkpoint")
    first = mj.fit(SLOPE, START, X, Y, DIVERGES, steps=20, run=_saved(tmp_path, every=4))
    assert first.stopped == "non_finite" and "step 8" in first.message and "step 7" in first.message
    np.testing.assert_allclose(first.params.model, _slope_after(7), rtol=1e-5)
    again = mj.fit(SLOPE, START, X, Y, DIVERGES, steps=20, run=_saved(tmp_path, every=4))
    assert again.stopped == mj.Stop.NON_FINITE and again.message == first.message
    np.testing.assert_array_equal(again.params.model, first.params.model)


def test_non_finite_at_the_first_step_says_it_returns_the_start():
    res = mj.fit(SLOPE, SLOPE.init(jnp.float32(jnp.inf)), X, Y, ADAM, steps=5)
    assert res.stopped == "non_finite" and "starting parameters" in res.message


def test_resuming_with_fewer_steps_than_the_checkpoint_is_refused(tmp_path):
    pytest.importorskip("orbax.checkpoint")
    done = mj.fit(SLOPE, START, X, Y, ADAM, steps=6, run=_saved(tmp_path, every=3))
    with pytest.raises(ValueError, match=r"at step 6, past the 3 steps.*start afresh"):
        mj.fit(SLOPE, START, X, Y, ADAM, steps=3, run=_saved(tmp_path, every=3))
    same = mj.fit(SLOPE, START, X, Y, ADAM, steps=6, run=_saved(tmp_path, every=3))
    np.testing.assert_array_equal(same.history, done.history)
    assert same.stopped == "completed"


def test_checkpoints_of_another_fit_are_refused(tmp_path):
    pytest.importorskip("orbax.checkpoint")
    mj.fit(SLOPE, START, X, Y, ADAM, steps=2, run=_saved(tmp_path / "a", every=2))
    with pytest.raises(ValueError, match="another fit.*start afresh"):  # another optimizer
        mj.fit(SLOPE, START, X, Y, optax.sgd(0.1), steps=4, run=_saved(tmp_path / "a", every=2))
    wide = mj.recipe(lambda p, x_i: p[0] * x_i + p[1], mj.normal(1.0))
    with pytest.raises(ValueError, match="another fit.*start afresh"):  # another model shape
        mj.fit(wide, wide.init(jnp.zeros(2)), X, Y, ADAM, steps=4, run=_saved(tmp_path / "a", every=2))
    (tmp_path / "b" / "4").mkdir(parents=True)  # an empty step directory
    with pytest.raises(ValueError, match="cannot resume from the checkpoint at step 4.*start afresh"):
        mj.fit(SLOPE, START, X, Y, ADAM, steps=8, run=_saved(tmp_path / "b", every=2))
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(ValueError, match="is a file, not a directory"):
        mj.fit(SLOPE, START, X, Y, ADAM, steps=2, run=_saved(tmp_path / "file", every=1))


def test_non_finite_with_validation_says_it_returned_the_best():
    val = (X[:8], Y[:8])
    res = mj.fit(SLOPE, START, X, Y, DIVERGES, steps=20, validation=mj.Validation(*val, every=1))
    assert res.stopped == "non_finite"
    assert f"the parameters of step {res.best_step}, the best by validation NLL" in res.message
    np.testing.assert_allclose(SLOPE.mean_nll(res.params, *val), res.val_history[:, 1].min(), rtol=1e-6)


def test_weights_and_masks_that_leave_nothing_are_errors():
    with pytest.raises(ValueError, match="the mask leaves no example"):
        mj.fit(SLOPE, START, X, Y, ADAM, steps=2, mask=jnp.zeros(32, bool))
    with pytest.raises(ValueError, match="weights leave no example"):
        SLOPE.mean_nll(START, X, Y, weights=jnp.zeros(32))
    assert SLOPE.nll(START, X, Y, weights=jnp.zeros(32)) == 0.0  # a sum over no example is 0
    r = mj.recipe(lambda p, x_i: p * x_i, mj.categorical(3, class_weights=jnp.array([0.0, 0.0, 1.0])))
    with pytest.raises(ValueError, match="class weights"):
        mj.fit(r, r.init(jnp.ones(3)), X, jnp.zeros(32, jnp.int32), ADAM, steps=2)


def test_python_lists_are_arrays():
    listed = mj.fit(SLOPE, START, X.tolist(), Y.tolist(), ADAM, steps=3)
    arrays = mj.fit(SLOPE, START, X, Y, ADAM, steps=3)
    np.testing.assert_array_equal(listed.history, arrays.history)
    np.testing.assert_allclose(SLOPE.nll(START, X.tolist(), Y.tolist()), SLOPE.nll(START, X, Y), rtol=1e-6)
    with pytest.raises(TypeError, match="not a rectangular array"):
        SLOPE.nll(START, [[1.0], [1.0, 2.0]], [0.0, 1.0])


KEY = jax.random.key(0)
BAD_ARGUMENTS = [  # each made when its test runs: a group checks its fields when it is made
    (lambda: dict(steps=2.5), TypeError, "fit: steps must be an integer"),
    (lambda: dict(steps=True), TypeError, "fit: steps must be an integer"),
    (lambda: dict(steps=0), ValueError, "fit: steps must be >= 1"),
    (lambda: dict(), ValueError, "fit: give the number of steps"),
    (lambda: dict(steps=3, run=mj.Run(progress=mj.Progress(chunk_size=0))), ValueError,
     "Progress: chunk_size must be >= 1"),
    (lambda: dict(steps=3, run=mj.Run(progress=mj.Progress(chunk_size=-1))), ValueError,
     "Progress: chunk_size must be >= 1"),
    (lambda: dict(steps=3, run=mj.Run(progress=mj.Progress(chunk_size=1.5))), TypeError,  # type: ignore[arg-type]
     "Progress: chunk_size must be an integer"),
    (lambda: dict(steps=3, validation=mj.Validation(X, Y, every=0)), ValueError, "Validation: every must be >= 1"),
    (lambda: dict(steps=3, validation=mj.Validation(X, Y, every=-1)), ValueError, "Validation: every must be >= 1"),
    (lambda: dict(steps=3, validation=mj.Validation(X, Y, patience=0)), ValueError,
     "Validation: patience must be >= 1"),
    (lambda: dict(steps=3, validation=mj.Validation(X, Y, every=5)), ValueError,
     "Validation every=5 never happens in a fit of 3 steps"),
    (lambda: dict(steps=3, validation=X), TypeError, "fit: validation must be Validation"),
    (lambda: dict(steps=3, run=mj.Run(checkpoints=mj.Checkpoints(None))), ValueError,
     "Checkpoints: directory must be a path"),
    (lambda: dict(steps=3, run=_saved("unused", every=0)), ValueError,
     "Checkpoints: every must be >= 1"),
    (lambda: dict(steps=3, run=mj.Run(checkpoints="unused")), TypeError,  # type: ignore[arg-type]
     "Run: checkpoints must be Checkpoints"),
    (lambda: dict(steps=mj.Minibatches(0, epochs=1), key=KEY), ValueError, "Minibatches: batch_size must be >= 1"),
    (lambda: dict(steps=mj.Minibatches(True, epochs=1), key=KEY), TypeError,
     "Minibatches: batch_size must be an integer"),
    (lambda: dict(steps=mj.Minibatches(33, epochs=1), key=KEY), ValueError,
     r"fit: Minibatches batch_size must lie in \[1, 32\]"),
    (lambda: dict(steps=mj.Minibatches(8)), ValueError, "Minibatches: give exactly one of epochs or steps"),
    (lambda: dict(steps=mj.Minibatches(8, epochs=2, steps=3)), ValueError,
     "Minibatches: give exactly one of epochs or steps"),
    (lambda: dict(steps=mj.Minibatches(8, epochs=2)), ValueError,
     r"fit: Minibatches need an explicit PRNG key for the shuffles \(key=...\)"),
    (lambda: dict(steps=3, objective=mj.Objective(reduction="max")), ValueError,  # type: ignore[arg-type]
     "Objective: reduction must be 'mean' or 'sum'; got 'max'"),
    (lambda: dict(steps=3, objective=mj.Objective(tol=0.0)), ValueError, "Objective: tol must be a number > 0"),
    (lambda: dict(steps=3, objective="sum"), TypeError, "fit: objective must be Objective"),
    (lambda: dict(steps=3, key="seed"), TypeError, "fit: key must be a PRNG key"),
    (lambda: dict(steps=3, run=mj.Run(progress="yes")), TypeError, "Run: progress must be"),  # type: ignore[arg-type]
    (lambda: dict(steps=3, run=mj.Run(progress=mj.Progress(bar="yes"))), TypeError,  # type: ignore[arg-type]
     "Progress: bar must be True, False or None"),
    (lambda: dict(steps=3, run=mj.Run(progress=mj.Progress(callback=3))), TypeError,  # type: ignore[arg-type]
     "Progress: callback must be callable"),
    (lambda: dict(steps=3, run=mj.Run(mesh="cpu")), TypeError, "Run: mesh must be a jax.sharding.Mesh"),
    (lambda: dict(steps=3, run={"mesh": None}), TypeError, "fit: run must be Run"),
    (lambda: dict(steps=3, learning_rate=0.1), TypeError, "unexpected keyword argument 'learning_rate'"),
    (lambda: dict(stepz=3), TypeError, "unexpected keyword argument 'stepz'"),
    (lambda: dict(steps=3, epochs=2), TypeError, "unexpected keyword argument 'epochs'"),  # the flat form is gone
    (lambda: dict(steps=3, tol=1e-6), TypeError, "unexpected keyword argument 'tol'"),
]


@pytest.mark.parametrize("kwargs, error, match", BAD_ARGUMENTS, ids=[m for _, _, m in BAD_ARGUMENTS])
def test_bad_fit_arguments_are_named_before_compiling(kwargs, error, match):
    with pytest.raises(error, match=match):
        mj.fit(SLOPE, START, X, Y, ADAM, **kwargs())


def test_bad_optimizer_params_and_recipe_are_named():
    with pytest.raises(TypeError, match=r"adam is a factory: call it"):
        mj.fit(SLOPE, START, X, Y, optax.adam, steps=2)
    with pytest.raises(TypeError, match=r"recipe.init"):
        mj.fit(SLOPE, jnp.float32(0.0), X, Y, ADAM, steps=2)
    with pytest.raises(TypeError, match=r"recipe.init"):
        SLOPE.nll({"w": jnp.float32(0.0)}, X, Y)
    with pytest.raises(TypeError, match="mj.recipe"):
        mj.fit(SLOPE.model, START, X, Y, ADAM, steps=2)


def test_more_steps_do_not_compile_again_and_programs_die_with_the_recipe():
    r = mj.recipe(lambda p, x_i: p * x_i, mj.normal(1.0))
    opt = optax.adam(0.1)
    mj.fit(r, r.init(jnp.float32(0.0)), X, Y, opt, steps=30)
    with compiles() as count:
        longer = mj.fit(r, r.init(jnp.float32(0.0)), X, Y, opt, steps=70)
    assert count.n == 0 and longer.history.shape == (70,)
    dead_recipe, dead_optimizer = weakref.ref(r), weakref.ref(opt.update)
    del r, opt, longer
    gc.collect()
    assert dead_recipe() is None and dead_optimizer() is None


def test_epochs_equal_steps_chunks_change_nothing_and_callback_sees_validation():
    key, val = jax.random.key(0), (X[::4], Y[::4])
    events = []
    by_epochs = mj.fit(SLOPE, START, X, Y, ADAM, mj.Minibatches(8, epochs=3), key=key,
                       validation=mj.Validation(*val, every=2, patience=50),
                       run=mj.Run(progress=mj.Progress(chunk_size=4, callback=events.append)))
    by_steps = mj.fit(SLOPE, START, X, Y, ADAM, steps=mj.Minibatches(8, steps=12), key=key,
                      validation=mj.Validation(*val, every=2, patience=50))
    np.testing.assert_array_equal(by_epochs.history, by_steps.history)
    np.testing.assert_array_equal(by_epochs.val_history, by_steps.val_history)
    assert by_epochs.stopped == by_steps.stopped == mj.Stop.COMPLETED == "completed"
    assert [e.step for e in events] == [4, 8, 12]
    last = events[-1]
    np.testing.assert_allclose(last.val_nll, SLOPE.mean_nll(last.params, *val), rtol=1e-6)  # step 12 evaluated
    np.testing.assert_array_equal(last.history, by_epochs.history)


def test_requested_bar_without_tqdm_warns_once(monkeypatch):
    import sys
    from mle_jax import _fit_loop
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # importing it now raises ImportError
    monkeypatch.setattr(_fit_loop, "_warned_no_tqdm", [False])
    with pytest.warns(UserWarning, match="needs tqdm") as record:
        first = mj.fit(SLOPE, START, X, Y, ADAM, steps=4, run=mj.Run(progress=True))
        mj.fit(SLOPE, START, X, Y, ADAM, steps=4, run=mj.Run(progress=True))
    assert len(record) == 1 and first.stopped == "completed"


def test_a_minibatch_with_no_weight_adds_nothing_instead_of_nan():
    mask = jnp.arange(32) == 5  # one example: in each epoch of 8 batches, 7 hold no example, whatever the shuffle
    res = mj.fit(SLOPE, START, X, Y, ADAM, mj.Minibatches(4, epochs=2), key=jax.random.key(0), mask=mask)
    assert res.stopped == "completed" and np.all(np.isfinite(res.history))
    assert np.sum(res.history == 0.0) == 14  # a batch of masked-out examples: loss 0, no update from it
    traced = jax.jit(jax.value_and_grad(lambda p: SLOPE.mean_nll(p, X, Y, mask=jnp.zeros(32, bool))))
    with pytest.warns(UserWarning, match="cannot be checked"):
        value, grad = traced(START)
    assert float(value) == 0.0 and float(grad.model) == 0.0


def test_the_loop_stops_at_the_step_that_ends_it_and_says_why_in_one_table():
    assert [s.value for s in mj.Stop] == ["completed", "converged", "early_stopping", "non_finite",
                                          "perfect_separation", "exhausted", "boundary"]
    from mle_jax._fit_options import RESULTS, code
    assert RESULTS[0] is mj.Stop.COMPLETED and all(RESULTS[code(s)] is s for s in RESULTS)
    # adam counts its updates: a fit that checks each step (tol, validation) runs exactly the steps in
    # its history, none after the stop; a plain one finds a non-finite loss after its call, at no cost per step
    start = SLOPE.init(jnp.float32(jnp.inf))
    bad = mj.fit(SLOPE, start, X, Y, ADAM, steps=50, objective=mj.Objective(tol=1e-9))
    assert bad.stopped == "non_finite" and bad.steps_run == 1 and int(bad.opt_state[0].count) == 1
    plain = mj.fit(SLOPE, start, X, Y, ADAM, steps=50)
    assert plain.stopped == "non_finite" and plain.message == bad.message and int(plain.opt_state[0].count) == 50
    val = mj.Validation(X[:8], -Y[:8], every=1, patience=2)  # slope -3: worse at every step towards 3
    early = mj.fit(SLOPE, START, X, Y, ADAM, steps=50, validation=val)
    assert early.stopped == "early_stopping" and early.best_step == 1
    assert int(early.opt_state[0].count) == early.steps_run == 3  # evaluations at steps 2 and 3 were worse
    ran = mj.fit(SLOPE, START, X, Y, optax.lbfgs(), steps=50, objective=mj.Objective(tol=1e-3))
    assert ran.stopped == "converged" and len(ran.history) < 50
    np.testing.assert_allclose(ran.params.model, 3.0, rtol=1e-3)  # the least-squares slope of Y = 3 X


def test_a_fit_that_converged_resumes_from_its_checkpoint_as_converged(tmp_path):
    pytest.importorskip("orbax.checkpoint")
    kwargs = dict(steps=50, objective=mj.Objective(tol=1e-3), run=_saved(tmp_path, every=40))
    first = mj.fit(SLOPE, START, X, Y, optax.lbfgs(), **kwargs)
    assert first.stopped == "converged" and first.steps_run < 40
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.isdigit()) == [str(first.steps_run)]  # where it stopped
    again = mj.fit(SLOPE, START, X, Y, optax.lbfgs(), **kwargs)
    assert again.stopped == "converged" and again.message == first.message
    np.testing.assert_array_equal(again.history, first.history)
    np.testing.assert_array_equal(again.params.model, first.params.model)


def test_a_checkpoint_without_the_gradient_norm_still_resumes_a_fit_with_a_tol(tmp_path, monkeypatch):
    """A fit with a tol carries its last step's gradient norm (fit's profiled dispersion reads it); a checkpoint
    written before the carry held it (the same state less that scalar) resumes to the uninterrupted fit's
    parameters, bit for bit. A checkpoint of another fit is still refused."""
    pytest.importorskip("orbax.checkpoint")
    from mle_jax import _checkpoint

    tight = mj.Objective(tol=1e-12)  # never reached in 8 steps: the fit runs them all
    whole = mj.fit(SLOPE, START, X, Y, ADAM, steps=8, objective=tight)
    save = _checkpoint.Store.save
    monkeypatch.setattr(_checkpoint.Store, "save",
                        lambda self, step, state, history: save(self, step, state._replace(grad_norm=None), history))
    first = mj.fit(SLOPE, START, X, Y, ADAM, steps=4, objective=tight, run=_saved(tmp_path, every=2))
    monkeypatch.undo()
    again = mj.fit(SLOPE, START, X, Y, ADAM, steps=8, objective=tight, run=_saved(tmp_path, every=2))
    assert first.steps_run == 4 and again.steps_run == 8
    np.testing.assert_array_equal(again.params.model, whole.params.model)
    np.testing.assert_array_equal(again.history, whole.history)
    with pytest.raises(ValueError, match="written by another fit"):
        mj.fit(SLOPE, SLOPE.init(jnp.zeros(2)), X, Y, ADAM, steps=8, objective=tight, run=_saved(tmp_path, every=2))


@pytest.mark.deep  # three fits, checkpoints written: 2 s
def test_a_checkpoint_of_a_fit_with_a_tol_resumes_the_fit_without_it(tmp_path):
    """The carry holds the gradient norm only with a tol: a checkpoint written by a fit with a tol resumes the same
    fit without one (as it did before the norm was carried; it was refused as another fit's), to the uninterrupted
    fit's parameters and history."""
    pytest.importorskip("orbax.checkpoint")
    tight = mj.Objective(tol=1e-12)  # never reached in 8 steps
    whole = mj.fit(SLOPE, START, X, Y, ADAM, steps=8, run=mj.Run(progress=False))
    first = mj.fit(SLOPE, START, X, Y, ADAM, steps=4, objective=tight, run=_saved(tmp_path, every=2))
    again = mj.fit(SLOPE, START, X, Y, ADAM, steps=8, run=_saved(tmp_path, every=2))
    assert first.steps_run == 4 and again.steps_run == 8
    np.testing.assert_allclose(again.params.model, whole.params.model, rtol=1e-12)
    np.testing.assert_allclose(again.history, whole.history, rtol=1e-12)
