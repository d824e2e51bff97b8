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


def _slope_after(steps: int) -> float:
    """The reference: plain gradient descent by hand, d/dp mean(0.5 (y - p x)^2) = -mean((y - p x) x)."""
    p = np.float32(0.0)
    x, y = np.asarray(X), np.asarray(Y)
    for _ in range(steps):
        p = np.float32(p + 1e3 * np.mean((y - p * x) * x, dtype=np.float32))
    return float(p)


def test_non_finite_right_after_a_checkpoint_replays_from_an_older_one(tmp_path):
    pytest.importorskip("orbax.checkpoint")
    first = mj.fit(SLOPE, START, X, Y, DIVERGES, steps=20, checkpoint_dir=tmp_path, checkpoint_every=4)
    assert first.stopped == "non_finite" and "step 8" in first.message and "step 7" in first.message
    np.testing.assert_allclose(first.params.model, _slope_after(7), rtol=1e-5)
    again = mj.fit(SLOPE, START, X, Y, DIVERGES, steps=20, checkpoint_dir=tmp_path, checkpoint_every=4)
    assert again.stopped == mj.Stop.NON_FINITE and again.message == first.message
    np.testing.assert_array_equal(again.params.model, first.params.model)


def test_non_finite_at_the_first_step_says_it_returns_the_start():
    res = mj.fit(SLOPE, SLOPE.init(jnp.float32(jnp.inf)), X, Y, ADAM, steps=5)
    assert res.stopped == "non_finite" and "starting parameters" in res.message


def test_resuming_with_fewer_steps_than_the_checkpoint_is_refused(tmp_path):
    pytest.importorskip("orbax.checkpoint")
    done = mj.fit(SLOPE, START, X, Y, ADAM, steps=6, checkpoint_dir=tmp_path, checkpoint_every=3)
    with pytest.raises(ValueError, match=r"at step 6, past the 3 steps.*start afresh"):
        mj.fit(SLOPE, START, X, Y, ADAM, steps=3, checkpoint_dir=tmp_path, checkpoint_every=3)
    same = mj.fit(SLOPE, START, X, Y, ADAM, steps=6, checkpoint_dir=tmp_path, checkpoint_every=3)
    np.testing.assert_array_equal(same.history, done.history)
    assert same.stopped == "completed"


def test_checkpoints_of_another_fit_are_refused(tmp_path):
    pytest.importorskip("orbax.checkpoint")
    mj.fit(SLOPE, START, X, Y, ADAM, steps=2, checkpoint_dir=tmp_path / "a", checkpoint_every=2)
    with pytest.raises(ValueError, match="another fit.*start afresh"):  # another optimizer
        mj.fit(SLOPE, START, X, Y, optax.sgd(0.1), steps=4, checkpoint_dir=tmp_path / "a", checkpoint_every=2)
    wide = mj.recipe(lambda p, x_i: p[0] * x_i + p[1], mj.normal(1.0))
    with pytest.raises(ValueError, match="another fit.*start afresh"):  # another model shape
        mj.fit(wide, wide.init(jnp.zeros(2)), X, Y, ADAM, steps=4, checkpoint_dir=tmp_path / "a", checkpoint_every=2)
    (tmp_path / "b" / "4").mkdir(parents=True)  # an empty step directory
    with pytest.raises(ValueError, match="cannot resume from the checkpoint at step 4.*start afresh"):
        mj.fit(SLOPE, START, X, Y, ADAM, steps=8, checkpoint_dir=tmp_path / "b", checkpoint_every=2)
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(ValueError, match="is a file, not a directory"):
        mj.fit(SLOPE, START, X, Y, ADAM, steps=2, checkpoint_dir=tmp_path / "file", checkpoint_every=1)


def test_non_finite_with_validation_says_it_returned_the_best():
    val = (X[:8], Y[:8])
    res = mj.fit(SLOPE, START, X, Y, DIVERGES, steps=20, validation=val, eval_every=1)
    assert res.stopped == "non_finite"
    assert f"the parameters of step {res.best_step}, the best by validation NLL" in res.message
    np.testing.assert_allclose(SLOPE.mean_nll(res.params, *val), res.val_history[:, 1].min(), rtol=1e-6)


def test_weights_and_masks_that_leave_nothing_are_errors():
    with pytest.raises(ValueError, match="mask leave no example"):
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


BAD_ARGUMENTS = [
    (dict(steps=2.5), TypeError, "steps must be an integer"),
    (dict(steps=True), TypeError, "steps must be an integer"),
    (dict(steps=0), ValueError, "steps must be >= 1"),
    (dict(steps=3, chunk_size=0), ValueError, "chunk_size must be >= 1"),
    (dict(steps=3, chunk_size=-1), ValueError, "chunk_size must be >= 1"),
    (dict(steps=3, chunk_size=1.5), TypeError, "chunk_size must be an integer"),
    (dict(steps=3, validation=(X, Y), eval_every=0), ValueError, "eval_every must be >= 1"),
    (dict(steps=3, validation=(X, Y), eval_every=-1), ValueError, "eval_every must be >= 1"),
    (dict(steps=3, validation=(X, Y), patience=0), ValueError, "patience must be >= 1"),
    (dict(steps=3, eval_every=2), ValueError, "need validation"),
    (dict(steps=3, validation=X), TypeError, "validation must be"),
    (dict(steps=3, checkpoint_every=2), ValueError, "needs a checkpoint_dir"),
    (dict(steps=3, checkpoint_dir="unused", checkpoint_every=0), ValueError, "checkpoint_every must be >= 1"),
    (dict(steps=3, batch_size=0, key=jax.random.key(0)), ValueError, "batch_size must be >= 1"),
    (dict(steps=3, batch_size=True, key=jax.random.key(0)), TypeError, "batch_size must be an integer"),
    (dict(steps=3, batch_size=33, key=jax.random.key(0)), ValueError, r"batch_size must lie in \[1, 32\]"),
    (dict(epochs=2), ValueError, "epochs needs a batch_size"),
    (dict(steps=3, reduction="max"), ValueError, "reduction"),
    (dict(steps=3, tol=0.0), ValueError, "tol must be"),
    (dict(steps=3, key="seed"), TypeError, "key must be a PRNG key"),
    (dict(steps=3, progress="yes"), TypeError, "progress must be"),
    (dict(steps=3, callback=3), TypeError, "callback must be callable"),
    (dict(steps=3, learning_rate=0.1), TypeError, "unexpected keyword argument 'learning_rate'"),
]


@pytest.mark.parametrize("kwargs, error, match", BAD_ARGUMENTS, ids=[m for _, _, m in BAD_ARGUMENTS])
def test_bad_fit_arguments_are_named_before_compiling(kwargs, error, match):
    with pytest.raises(error, match=match):
        mj.fit(SLOPE, START, X, Y, ADAM, **kwargs)


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


def test_grouped_options_equal_the_keyword_form_and_callback_sees_validation():
    key, val = jax.random.key(0), (X[::4], Y[::4])
    events = []
    grouped = mj.fit(SLOPE, START, X, Y, ADAM, key=key, minibatches=mj.Minibatches(8, epochs=3),
                     validation=mj.Validation(*val, every=2, patience=50),
                     progress=mj.Progress(chunk_size=4, callback=events.append))
    flat = mj.fit(SLOPE, START, X, Y, ADAM, key=key, epochs=3, batch_size=8, validation=val, eval_every=2,
                  patience=50, chunk_size=4)
    np.testing.assert_array_equal(grouped.history, flat.history)
    np.testing.assert_array_equal(grouped.val_history, flat.val_history)
    assert grouped.stopped == flat.stopped == mj.Stop.COMPLETED == "completed"
    assert [e.step for e in events] == [4, 8, 12]
    last = events[-1]
    np.testing.assert_allclose(last.val_nll, SLOPE.mean_nll(last.params, *val), rtol=1e-6)  # step 12 evaluated
    np.testing.assert_array_equal(last.history, grouped.history)


def test_requested_bar_without_tqdm_warns_once(monkeypatch):
    import sys
    from mle_jax import fit_loop
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # importing it now raises ImportError
    monkeypatch.setattr(fit_loop, "_warned_no_tqdm", [False])
    with pytest.warns(UserWarning, match="needs tqdm") as record:
        first = mj.fit(SLOPE, START, X, Y, ADAM, steps=4, progress=True)
        mj.fit(SLOPE, START, X, Y, ADAM, steps=4, progress=True)
    assert len(record) == 1 and first.stopped == "completed"


def test_a_minibatch_with_no_weight_adds_nothing_instead_of_nan():
    mask = jnp.arange(32) == 5  # one example: in each epoch of 8 batches, 7 hold no example, whatever the shuffle
    res = mj.fit(SLOPE, START, X, Y, ADAM, epochs=2, batch_size=4, key=jax.random.key(0), mask=mask)
    assert res.stopped == "completed" and np.all(np.isfinite(res.history))
    assert np.sum(res.history == 0.0) == 14  # a batch of masked-out examples: loss 0, no update from it
    traced = jax.jit(jax.value_and_grad(lambda p: SLOPE.mean_nll(p, X, Y, mask=jnp.zeros(32, bool))))
    with pytest.warns(UserWarning, match="cannot be checked"):
        value, grad = traced(START)
    assert float(value) == 0.0 and float(grad.model) == 0.0
