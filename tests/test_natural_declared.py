"""``_delta.natural`` reads the family's declaration (``Family.positive``), not the leaves' names: a family of
your own whose ``scale`` is ``exp(raw)`` (declaring nothing) is not shown as ``softplus(raw)``, a declared leaf
of any name is. Reference: the delta method by hand, ``se = |g'(raw)| sd(raw)`` (softplus' = sigmoid)."""

import math
from types import SimpleNamespace

import jax.numpy as jnp
import numpy as np

from mle_jax._delta import natural, natural_values


def _at(names):
    return lambda u: SimpleNamespace(family={name: u[i] for i, name in enumerate(names)})


def test_only_declared_leaves_go_through_softplus(x64):
    raw = {"scale": jnp.asarray(0.3), "rate": jnp.asarray(-1.2)}
    assert set(natural_values(raw)) == {"scale"}  # no declaration: the built-in names, as before
    assert natural_values(raw, positive=()) == {}  # a user's scale = exp(raw), nothing declared: not softplus
    got = natural_values(raw, positive=("rate",))
    assert set(got) == {"rate"} and abs(float(got["rate"]) - math.log1p(math.exp(-1.2))) < 1e-15
    got = natural_values(raw, extra={"scale": jnp.exp}, positive=())
    assert set(got) == {"scale"} and abs(float(got["scale"]) - math.exp(0.3)) < 1e-15


def test_the_standard_errors_are_the_hand_delta_method(x64):
    v = jnp.asarray([0.3, -1.2])
    cov = np.array([[0.04, 0.01], [0.01, 0.09]])
    out = natural(_at(("scale", "rate")), v, cov, None, extra={"scale": jnp.exp}, positive=("rate",))
    sigmoid = 1.0 / (1.0 + math.exp(1.2))
    assert abs(out["scale"][0] - math.exp(0.3)) < 1e-14 and abs(out["scale"][1] - math.exp(0.3) * 0.2) < 1e-14
    assert abs(out["rate"][0] - math.log1p(math.exp(-1.2))) < 1e-14 and abs(out["rate"][1] - sigmoid * 0.3) < 1e-14
    assert natural(_at(("scale", "rate")), v, cov, None, positive=()) == {}
