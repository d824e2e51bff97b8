"""One shape rule for every direct function of every theta type: ``log_cdf``, ``log_sf``, ``log_tail``,
``quantile`` and ``isf`` (``registry.check_target``). A batch of thetas takes exactly the targets its ``log_prob``
takes: an (N,) theta never broadcasts against (N, 1) or (M,) targets (an (N, N) result, silently). One
distribution takes any number of points (scipy's ``logcdf`` / ``ppf`` over a grid: nothing to misalign), targets
whose trailing axes are its event shape. A level (``quantile``'s q, ``isf``'s p) may also be one scalar shared by
every example; ``log_tail``'s ``upper`` one scalar or one flag per point.

The reference is ``log_prob`` itself: the refused shapes are those it refuses. Shapes only: nothing is compiled."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mle_jax as mj
from mle_jax.distributions import isf, registry

from cases import CASES, VECTOR_CASES

DIRECT = ("log_cdf", "log_sf", "log_tail", "quantile", "isf")
LEVELS = ("quantile", "isf")


def _examples():
    """The first case of each registered type (every built-in with a log_prob has one in tests/cases.py)."""
    first = {}
    for table in (CASES, VECTOR_CASES):
        for case in table.values():
            first.setdefault(type(case.theta), case)
    return first


EXAMPLES = _examples()
TYPES = sorted((kind for kind in registry._OPS if registry._OPS[kind].log_prob is not None), key=lambda k: k.__name__)


def _call(name, theta, y):
    if name == "log_tail":
        return mj.log_tail(theta, y, jnp.zeros(jnp.shape(y)[:jnp.ndim(y) - registry.event_ndims(theta)], bool))
    return {"log_cdf": mj.log_cdf, "log_sf": mj.log_sf, "quantile": mj.quantile, "isf": isf}[name](theta, y)


def test_every_type_with_a_log_prob_has_a_case():
    assert {k.__name__ for k in TYPES} <= {k.__name__ for k in EXAMPLES}


@pytest.mark.parametrize("kind", TYPES, ids=lambda k: k.__name__)
def test_direct_functions_refuse_what_log_prob_refuses(kind):
    case = EXAMPLES[kind]
    theta = jax.tree.map(lambda v: jnp.asarray(v, jnp.float32), case.theta)
    table = registry.entries(theta)
    event = tuple(registry.target_shape(theta))
    one = np.asarray(case.grid[1], np.float32)  # one example's target (a label, a count, a vector, a ranking)
    if jnp.issubdtype(np.asarray(case.grid).dtype, jnp.integer) or case.integer:
        one = np.asarray(case.grid[1])
    assert one.shape == event
    many = np.broadcast_to(one, (3,) + event)  # a vector of targets against ONE theta
    batch = jax.tree.map(lambda v: jnp.broadcast_to(v, (2,) + jnp.shape(v)), theta)  # (2,) examples ...
    column = np.broadcast_to(one, (2, 1) + event)  # ... against (2, 1) targets
    with pytest.raises(ValueError, match="never broadcasts"):
        jax.eval_shape(mj.log_prob, theta, many)  # the rule every direct function follows
    names = [n for n in DIRECT if getattr(table, n) is not None and not (n in LEVELS and event)]
    for name in names:
        level = name in LEVELS
        matched = np.float32(0.3) if level and not event else one
        points = np.full((3,), 0.3, np.float32) if level else many
        registry.check_target(theta, matched, name, levels=level)  # accepted (the values: test_distributions.py)
        registry.check_target(batch, np.broadcast_to(matched, (2,) + np.shape(matched)), name, levels=level)
        registry.check_target(theta, points, name, levels=level)  # one distribution at three points: accepted
        for bad in (column if not level else np.full((2, 1), 0.3, np.float32), points):  # (2,) against (2, 1), (3,)
            with pytest.raises(ValueError, match=f"{name}.*never broadcasts"):
                _call(name, batch, bad)
    if table.log_tail is not None or (table.log_cdf is not None and table.log_sf is not None):
        with pytest.raises(ValueError, match="upper"):  # upper: one flag per point, or one for all
            mj.log_tail(theta, many, np.zeros((2,), bool))
        with pytest.raises(ValueError, match="upper"):
            mj.log_tail(batch, np.broadcast_to(one, (2,) + event), np.zeros((2, 1), bool))


def test_one_student_t_over_a_grid_and_a_batch_that_does_not_align():
    """The reported case: ``log_cdf`` of one Student t at five points gave five values where ``log_prob``
    refused; ``log_prob`` still takes one example (SPEC), the direct functions take one distribution over a grid
    (scipy's values), and a batch of five thetas refuses a column of five targets or levels (a (5, 5) result)."""
    from scipy import stats
    theta = mj.StudentT(3.0, 0.0, 1.0)
    y = jnp.linspace(-1.0, 1.0, 5)
    with pytest.raises(ValueError, match=r"shape \(5,\) but the distribution expects shape \(\)"):
        mj.log_prob(theta, y)
    grid = np.asarray(y, np.float64)
    np.testing.assert_allclose(mj.log_cdf(theta, y), stats.t.logcdf(grid, 3.0), rtol=1e-5)
    np.testing.assert_allclose(mj.log_sf(theta, y), stats.t.logsf(grid, 3.0), rtol=1e-5)
    upper = jnp.asarray([True, False, True, False, True])
    np.testing.assert_allclose(mj.log_tail(theta, y, upper),
                               np.where(upper, stats.t.logsf(grid, 3.0), stats.t.logcdf(grid, 3.0)), rtol=1e-5)
    levels = 0.5 + 0.4 * y
    np.testing.assert_allclose(mj.quantile(theta, levels), stats.t.ppf(np.asarray(levels, np.float64), 3.0), rtol=1e-5)
    np.testing.assert_allclose(isf(theta, levels), stats.t.isf(np.asarray(levels, np.float64), 3.0), rtol=1e-5)
    batch = mj.StudentT(jnp.full(5, 3.0), jnp.zeros(5), jnp.ones(5))
    assert jax.eval_shape(mj.log_cdf, batch, y).shape == (5,)
    for fn in (mj.log_cdf, mj.log_sf, mj.quantile, isf):
        with pytest.raises(ValueError, match="never broadcasts"):
            fn(batch, 0.5 + 0.4 * y[:, None])
