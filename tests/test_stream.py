"""fit and inference over a stream of batches (mle_jax._stream, mle_jax.streams, mle_jax._stream_inference).

References: a plain optax loop over the same batches (the step is the gradient of each batch's own
mean NLL), the in-memory fit (a stream that repeats the whole data set is the full-batch fit) and
the in-memory inference (every quantity is a sum over examples)."""

import weakref

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import mle_jax as mj
from mle_jax._stream import PREFETCH, _stream_step

N, D, B = 300, 3, 64  # five batches, the last of 44 rows
RNG = np.random.default_rng(7)
X = RNG.normal(size=(N, D)).astype(np.float32)
Y = (X @ np.array([0.5, -1.0, 0.25], np.float32) + 0.3 + 0.8 * RNG.normal(size=N)).astype(np.float32)
W = RNG.uniform(0.5, 2.0, size=N).astype(np.float32)
R = mj.recipe(lambda p, x: x @ p["w"] + p["b"], mj.normal("learned"))
START = R.init({"w": jnp.zeros(D), "b": jnp.float32(0.0)})
ADAM = optax.adam(0.05)


def chunks(epochs=1, weights=False):
    for _ in range(epochs):
        for s in range(0, N, B):
            yield (X[s:s + B], Y[s:s + B]) + ((W[s:s + B],) if weights else ())


def optax_loop(batches, optimizer=ADAM, params=START):
    """The reference: value_and_grad of each batch's weighted mean NLL, optimizer.update, apply_updates."""
    state = optimizer.init(params)
    for x, y, *w in batches:
        grads = jax.grad(lambda p: R.reduce(p, x, y, w[0] if w else None, kind="loss", reduction="mean"))(params)
        updates, state = optimizer.update(grads, state, params)
        params = optax.apply_updates(params, updates)
    return params


def close(a, b, rtol=1e-5):
    for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=rtol, atol=1e-6)


def torch_loader():
    torch = pytest.importorskip("torch", reason="torch is in the bench extra, not the test extra (a multi-GB CUDA "
                                                "build from PyPI); a generator and mj.batches are the same protocol")
    from torch.utils.data import DataLoader, TensorDataset
    data = TensorDataset(torch.from_numpy(X), torch.from_numpy(Y))
    return DataLoader(data, batch_size=B, shuffle=False)


@pytest.mark.parametrize("source", ["generator", "batches", pytest.param("torch", marks=pytest.mark.deep)])
def test_a_stream_fit_is_a_plain_optax_loop_over_the_same_batches(source):
    stream = {"generator": lambda: chunks(epochs=2), "batches": lambda: mj.batches(X, Y, B, epochs=2),
              "torch": lambda: (b for _ in range(2) for b in torch_loader())}[source]
    res = mj.fit(R, START, stream(), None, ADAM, steps=10)
    assert res.stopped == mj.Stop.COMPLETED and res.steps_run == 10 and np.all(np.isfinite(res.history))
    close(res.params, optax_loop(chunks(epochs=2)))
    # one compiled program although the last batch of each epoch is shorter (padded and masked)
    assert _stream_step(R, ADAM, mj.fit.__globals__["StepOptions"](
        n=B, keyed=False, batch_size=None, every=None, patience=None, reduction="mean", tol=None))._cache_size() == 1


def test_weighted_and_shuffled_batches():
    key = jax.random.key(3)
    stream = mj.batches(X, Y, B, weights=W, shuffle=True, key=key, epochs=2)
    assert len(stream) == 10
    res = mj.fit(R, START, stream, None, ADAM, steps=10)
    close(res.params, optax_loop(stream))  # re-iterable: the same batches again
    rows = np.sort(np.concatenate([b[1] for b in mj.batches(X, Y, B, shuffle=True, key=key)]))
    np.testing.assert_array_equal(rows, np.sort(Y))  # an epoch is a permutation of the rows


def test_an_exhausted_stream_stops_and_says_so():
    res = mj.fit(R, START, chunks(), None, ADAM, steps=8)
    assert res.stopped == mj.Stop.EXHAUSTED == "exhausted" and res.steps_run == 5
    assert res.message == "the stream of batches ran out after 5 steps (of the 8 asked for)"
    close(res.params, optax_loop(chunks()))
    one_pass = mj.fit(R, START, chunks(), None, ADAM, steps=None)
    assert one_pass.stopped == mj.Stop.EXHAUSTED and one_pass.steps_run == 5
    exact = mj.fit(R, START, chunks(), None, ADAM, steps=5)  # the stream ends where the steps do
    assert exact.stopped == mj.Stop.COMPLETED


SLOPE = mj.recipe(lambda p, xi: p * xi, mj.normal(1.0))
XS = np.linspace(-1.0, 1.0, 32, dtype=np.float32)


@pytest.mark.parametrize("case", ["non_finite", "tol", "patience"])
def test_a_stream_repeating_the_data_is_the_full_batch_fit(case):
    """The same guards, stops, messages and returned parameters as the in-memory fit."""
    ys = 3.0 * XS
    kwargs, optimizer, steps = {}, ADAM, 60
    if case == "non_finite":  # plain gradient descent with a huge learning rate overflows to inf
        optimizer = optax.sgd(1e3)
    elif case == "tol":
        kwargs = dict(objective=mj.Objective(tol=1e-3))
        optimizer = optax.sgd(0.5)
    else:  # the validation NLL gets worse from the start: the slope overshoots the validation's 0
        kwargs = dict(validation=mj.Validation(XS, 0.0 * XS, every=2, patience=3))
    start = SLOPE.init(jnp.float32(0.0))
    memory = mj.fit(SLOPE, start, XS, ys, optimizer, steps=steps, **kwargs)
    stream = mj.fit(SLOPE, start, ((XS, ys) for _ in range(steps)), None, optimizer, steps=steps,
                    run=mj.Run(progress=mj.Progress(chunk_size=7)), **kwargs)
    assert stream.stopped == memory.stopped == case.replace("tol", "converged").replace("patience", "early_stopping")
    assert stream.message == memory.message and stream.best_step == memory.best_step
    np.testing.assert_allclose(stream.history, memory.history, rtol=1e-6)
    close(stream.params, memory.params, rtol=1e-6)


def test_memory_holds_a_few_batches_and_a_memmap_is_read_by_batch(tmp_path):
    alive, most = [0], [0]

    def counted():
        for x, y in chunks(epochs=4):
            x = x.copy()  # a fresh array per batch, whose death is counted
            alive[0] += 1
            most[0] = max(most[0], alive[0])
            weakref.finalize(x, lambda: alive.__setitem__(0, alive[0] - 1))
            yield x, y
    res = mj.fit(R, START, counted(), None, ADAM, steps=20)
    assert res.steps_run == 20 and most[0] <= PREFETCH + 2

    class Guarded:  # a file-backed array that refuses to be read whole
        def __init__(self, a):
            self.a, self.shape, self.read = a, a.shape, 0

        def __array__(self, *args, **kwargs):
            raise AssertionError("the whole file was read")

        def __getitem__(self, rows):
            part = np.asarray(self.a[rows])
            self.read = max(self.read, len(part))
            return part
    path = tmp_path / "x.f32"
    disk = np.memmap(path, np.float32, "w+", shape=X.shape)
    disk[:] = X
    disk.flush()
    gx, gy = Guarded(np.memmap(path, np.float32, "r", shape=X.shape)), Guarded(Y)
    res = mj.fit(R, START, mj.batches(gx, gy, B, epochs=2), None, ADAM, steps=10)
    assert gx.read == B and gy.read == B
    close(res.params, optax_loop(chunks(epochs=2)))


@pytest.mark.deep  # orbax: as README's checkpointed block
def test_checkpoints_resume_when_the_caller_reseeks_the_stream(tmp_path):
    pytest.importorskip("orbax.checkpoint")
    run = mj.Run(checkpoints=mj.Checkpoints(tmp_path, every=3))
    events = []
    first = mj.fit(R, START, mj.batches(X, Y, B, epochs=2), None, ADAM, steps=6,
                   run=mj.Run(checkpoints=run.checkpoints, progress=mj.Progress(callback=events.append)))
    assert [e.step for e in events] == [3, 6]
    resumed = mj.fit(R, START, mj.batches(X, Y, B, epochs=2, start=6), None, ADAM, steps=10, run=run)
    assert resumed.steps_run == 10 and resumed.stopped == mj.Stop.COMPLETED
    close(resumed.params, optax_loop(chunks(epochs=2)))
    np.testing.assert_allclose(resumed.history[:6], first.history)


def test_named_errors_before_anything_runs():
    with pytest.raises(ValueError, match="pass y=None"):
        mj.fit(R, START, chunks(), Y, ADAM, steps=2)
    with pytest.raises(ValueError, match="already batched"):
        mj.fit(R, START, chunks(), None, ADAM, steps=mj.Minibatches(8, epochs=1))
    with pytest.raises(ValueError, match="weights come in each batch"):
        mj.fit(R, START, chunks(), None, ADAM, steps=2, weights=W)
    with pytest.raises(ValueError, match="empty"):
        mj.fit(R, START, iter(()), None, ADAM, steps=2)
    with pytest.raises(TypeError, match="pair"):
        mj.fit(R, START, iter([X]), None, ADAM, steps=2)
    bigger = iter([(X[:8], Y[:8]), (X[:16], Y[:16])])
    with pytest.raises(ValueError, match="batch 1 of the stream has 16 rows"):
        mj.fit(R, START, bigger, None, ADAM, steps=2)
    other = iter([(X[:8], Y[:8]), (X[:8].astype(np.float64), Y[:8])])
    with pytest.raises(ValueError, match="one shape and dtype"):
        mj.fit(R, START, other, None, ADAM, steps=2)
    bad = iter([(X[:8], np.where(np.arange(8) == 3, np.nan, Y[:8]).astype(np.float32))])
    with pytest.raises(ValueError, match="finite"):
        mj.fit(R, START, bad, None, ADAM, steps=2)
    with pytest.raises(ValueError, match="shuffle=True needs"):
        mj.batches(X, Y, B, shuffle=True)


@pytest.mark.parametrize("cov", ["observed", "robust", "expected", "diagonal"])
def test_inference_over_a_stream_is_the_in_memory_inference(cov):
    params = mj.fit(R, START, X, Y, optax.adam(0.05), steps=300).params
    memory = mj.inference(R, params, X, Y, cov, weights=W)
    stream = mj.inference(R, params, mj.batches(X, Y, B, weights=W), None, cov)
    np.testing.assert_allclose(stream.loglik, memory.loglik, rtol=1e-10)
    assert stream.nobs == pytest.approx(memory.nobs, rel=1e-12)
    np.testing.assert_allclose(stream.variance, memory.variance, rtol=1e-9)
    assert stream.names == memory.names
    with pytest.raises(ValueError, match="not available over a stream"):
        mj.inference(R, params, chunks(), None, "hvp")
