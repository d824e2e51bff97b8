"""What an inference over a stream of batches gives back (mle_jax._stream_inference): the same result
as the in-memory inference of the same data, ``natural()``, ``mean_interval()`` and ``summary()``
included; profile intervals, which re-fit over all the data, refused with that reason.

Reference: ``mj.inference`` on the in-memory arrays (every quantity is a sum over examples; the
natural scale and the mean's interval need only the params, the covariance and the recipe)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mle_jax as mj

N, B = 150, 64  # three batches, the last of 22 rows
RNG = np.random.default_rng(3)
X = RNG.normal(size=(N, 2))
Y = X @ np.array([0.5, -1.0]) + 0.3 + 0.8 * RNG.normal(size=N)
W = RNG.uniform(0.5, 2.0, size=N)
R = mj.recipe(lambda p, x: x @ p["w"] + p["b"], mj.normal("learned"))


def _mle(x, y, w):
    """The weighted least-squares fit and its MLE sigma (closed form)."""
    design = np.column_stack([x, np.ones(len(y))])
    beta = np.linalg.lstsq(design * np.sqrt(w)[:, None], y * np.sqrt(w), rcond=None)[0]
    sigma = np.sqrt(np.sum(w * (y - design @ beta) ** 2) / np.sum(w))
    return beta, sigma


@pytest.mark.deep
def test_stream_result_is_the_in_memory_result(x64):
    cov = "robust"  # the sandwich: natural() and mean_interval() read whichever covariance the result holds
    beta, sigma = _mle(X, Y, W)
    params = R.init({"w": jnp.asarray(beta[:2]), "b": jnp.asarray(beta[2])})
    params = params._replace(family={"scale": mj.links.softplus_inverse(jnp.asarray(sigma))})
    memory = mj.inference(R, params, X, Y, cov, weights=W)
    stream = mj.inference(R, params, mj.batches(X, Y, B, weights=W), None, cov)
    np.testing.assert_allclose(stream.cov, memory.cov, rtol=1e-10, atol=1e-14)
    (value, se), (ref_value, ref_se) = stream.natural()["scale"], memory.natural()["scale"]
    np.testing.assert_allclose([value, se], [ref_value, ref_se], rtol=1e-10)
    assert value == pytest.approx(sigma, rel=1e-12)  # softplus(softplus^-1(sigma))
    x_new = RNG.normal(size=(4, 2))
    for got, ref in zip(stream.mean_interval(x_new, 0.9), memory.mean_interval(x_new, 0.9)):
        np.testing.assert_allclose(got, ref, rtol=1e-10)
    assert "natural scale" in stream.summary()
    with pytest.raises(ValueError, match="over a stream of batches.*x and y in memory"):
        stream.conf_int(0.95, method="profile")
