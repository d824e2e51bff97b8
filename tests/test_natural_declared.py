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


def test_inference_natural_shows_a_users_exp_scale_only_through_its_own_link(x64):
    """End to end: ``mj.inference(...).natural()`` of a family of your own whose ``scale`` is ``exp(raw)`` and
    declares nothing shows no softplus ``scale``; with ``links={"scale": jnp.exp}`` it is ``exp(raw)`` with the
    delta-method SE ``exp(raw) sd(raw)``; a declared softplus leaf is shown through softplus. Reference: the
    Normal's closed-form MLE (sigma = the population sd, SE(log sigma) = 1 / sqrt(2 N))."""
    import mle_jax as mj
    from mle_jax.distributions import Normal

    y = np.random.default_rng(1).normal(1.0, 0.5, 400)
    x = np.zeros(400)
    exp_family = mj.family("expnormal", theta=lambda fp, raw: Normal(raw, jnp.exp(fp["scale"])),
                           init={"scale": jnp.asarray(0.0)})
    r = mj.recipe(lambda p, x_i: p["mu"] + 0.0 * x_i, exp_family)
    p = r.init({"mu": jnp.asarray(y.mean())})._replace(family={"scale": jnp.asarray(math.log(y.std()))})
    s = mj.inference(r, p, x, y)
    assert "scale" not in s.natural()  # was softplus(log sigma), by the leaf's name
    sigma, se = s.natural(links={"scale": jnp.exp})["scale"]
    assert abs(sigma - y.std()) < 1e-12 and abs(se - y.std() / math.sqrt(800)) < 1e-9
    soft_family = mj.family("softnormal", theta=lambda fp, raw: Normal(raw, mj.links.softplus.forward(fp["s"])),
                            init={"s": jnp.asarray(0.0)}, positive=("s",))
    r = mj.recipe(lambda p, x_i: p["mu"] + 0.0 * x_i, soft_family)
    p = r.init({"mu": jnp.asarray(y.mean())})._replace(family={"s": mj.links.softplus_inverse(jnp.asarray(y.std()))})
    sigma, se = mj.inference(r, p, x, y).natural()["s"]
    assert abs(sigma - y.std()) < 1e-9 and abs(se - y.std() / math.sqrt(800)) < 1e-6
