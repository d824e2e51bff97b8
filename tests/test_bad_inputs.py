"""The table of bad inputs, generated from the families' supports.

For every built-in family, targets off its support, NaN / inf, wrong dtypes, wrong shapes, an
empty or mismatched batch, values that the cast to JAX's dtype would change, and the recipe's own
checks (x, weights, mask), each expecting a named ValueError from ``mj.recipe(model, family).nll``
before anything is compiled; and the targets that tests/families_table.py states the checks refuse
(off the support, an open support's ends) raise it too, while the others pass. The families are that
table's (one entry per configuration of every public constructor; test_families_table.py checks that
none is missing). One test per family runs all of its cases and lists every one that fails.
"""

import functools
import math
import re

import jax.numpy as jnp
import numpy as np
import pytest

import mle_jax as mj
from mle_jax.families import _support
from families_table import FAMILIES as TABLE, constructors, kinds

N = 4
FAMILIES = {name: entry.family for name, entry in TABLE.items()}  # every configuration of every family


def _columns(support):
    return support.columns or (support,)


def _valid(family):
    """N valid targets, built from the support: its ``inside`` value in every entry."""
    cols = _columns(family.support)
    dtype = np.float32 if "float" in cols[0].dtypes else np.int32
    if family.support.columns:
        return np.tile(np.array([c.inside() for c in cols], dtype), (N, 1))
    return np.full((N,) + family.event_shape, cols[0].inside(), dtype)


def _with(y, value, dtype=None):
    """``y`` with its example 1 set to ``value`` (in column 0 of a structured target)."""
    y = np.array(y, dtype=dtype or y.dtype)
    target = y[1] if y.ndim == 1 else y[1].reshape(-1)
    if y.ndim == 1:
        y[1] = value
    else:
        target[0] = value
        y[1] = target.reshape(y.shape[1:])
    return y




def _cases(family):
    """(label, x, y, keyword arguments, a regex the error must match), from the family's support."""
    support = _columns(family.support)[0]
    name = re.escape(family.name)
    y = _valid(family)
    x = np.zeros((N, 1), np.float32)
    for v in support.outside():
        as_float = "float" in support.dtypes or v != int(v)
        yield f"off the support: {v}", x, _with(y, v, np.float32 if as_float else None), {}, name
    if "float" in support.dtypes:
        for v in (math.nan, math.inf, -math.inf):
            yield f"{v}", x, _with(y, v), {}, name + r".*not finite"
        yield "NaN in bfloat16", x, jnp.asarray(_with(y, math.nan), jnp.bfloat16), {}, name + r".*not finite"
        if support.upper == math.inf and support.values is None:
            yield "1e39 overflows float32", x, _with(y, 1e39, np.float64), {}, name + r".*cast to float32"
        if support.lower == 0.0 and support.open_lower:
            yield "1e-50 underflows float32", x, _with(y, 1e-50, np.float64), {}, name + r".*cast to float32"
        if support.upper == 1.0 and support.open_upper:
            yield "1 - 1e-10 rounds to 1", x, _with(y, 1 - 1e-10, np.float64), {}, name + r".*cast to float32"
        if support.integer and support.upper == math.inf:  # a bounded support refuses 2**25 + 1 by its rule
            yield "2**25 + 1 is not whole in float32", x, _with(y, 2**25 + 1, np.float64), {}, name + r".*cast"
    if support.integer and "int" in support.dtypes and support.upper == math.inf:
        yield "int64 2**40 + 3 wraps in int32", x, _with(y.astype(np.int64), 2**40 + 3), {}, name + r".*cast to int32"
    for dtype in (np.bool_, np.float32, np.complex64, np.str_):
        kind = {np.bool_: "bool", np.float32: "float"}.get(dtype, "other")
        if kind not in support.dtypes:
            yield f"dtype {np.dtype(dtype).name}", x, y.astype(dtype), {}, name + r".*got dtype"
    yield "an extra axis", x, y[..., None], {}, name + r".*(expects shape|must have shape)"
    yield "one example short", x, y[:-1], {}, r"x has 4 examples.*y has 3"
    yield "empty", x[:0], y[:0], {}, r"empty"
    yield "NaN in x", _with(x, math.nan), y, {}, name + r".*x.*not finite"
    yield "NaN in bfloat16 x", jnp.asarray(_with(x, math.nan), jnp.bfloat16), y, {}, name + r".*x.*not finite"
    yield "1e39 in float64 x", _with(x, 1e39, np.float64), y, {}, name + r".*x.*cast to float32"
    yield "NaN in x given as a list", _with(x, math.nan).tolist(), y, {}, name + r".*x.*not finite"
    weights = np.ones(N, np.float32)
    yield "negative weights", x, y, {"weights": -weights}, r"weights.*>= 0"
    yield "NaN in bfloat16 weights", x, y, {"weights": jnp.asarray(_with(weights, math.nan), jnp.bfloat16)}, \
        r"weights.*not finite"
    yield "weights of the wrong shape", x, y, {"weights": weights[:2]}, r"weights must have shape \(4,\)"
    yield "a mask of 2s", x, y, {"mask": 2 * weights}, r"mask.*boolean"


def _stated(name):
    """The table's own targets, one example at a time in row 1 of valid targets: those it states the
    checks refuse (finite ones, as the computation sees them: off the support, an open support's ends)
    must raise, the others must pass."""
    entry = TABLE[name]
    x = np.zeros((N, 1), np.float32)
    for kind, values in entry.targets.items():
        dtype = np.float32 if kind == "float" else np.int32
        rows = np.asarray(values, dtype)
        off = entry.refuses(rows.astype(np.float64), kind)
        finite = np.isfinite(rows.astype(np.float64)).reshape(len(rows), -1).all(axis=1)
        for row, is_off, is_finite in zip(rows, off, finite):
            if is_finite:
                y = _valid(entry.family).astype(dtype)
                y[1] = row
                yield f"stated {'refused' if is_off else 'valid'}: {kind} {row.tolist()}", x, y, is_off


CASES = [(name, FAMILIES[name], *case) for name in FAMILIES for case in _cases(FAMILIES[name])]
STATED = [(name, *case) for name in TABLE for case in _stated(name)]


@functools.lru_cache(maxsize=None)
def _recipe(family):
    r = mj.recipe(lambda p, x_i: p, family)
    return r, r.init(jnp.zeros(family.raw_shape, jnp.float32))


@pytest.mark.parametrize("name", FAMILIES)
def test_bad_input_is_a_named_error(name):
    """Every case of the family (one test per family: the checks cost about a millisecond each, a test
    item four), each error matched against its regex; every case that fails is listed."""
    r, params = _recipe(FAMILIES[name])
    wrong = []
    for case_name, _, label, x, y, kwargs, match in CASES:
        if case_name != name:
            continue
        try:
            r.nll(params, x, y, **kwargs)
            wrong.append(f"{label}: no error")
        except ValueError as error:
            if not re.search(match, str(error)):
                wrong.append(f"{label}: {error!r} does not match {match!r}")
    assert not wrong, f"{FAMILIES[name].name}:\n" + "\n".join(wrong)


@pytest.mark.parametrize("name", TABLE)
def test_the_tables_refused_targets_are_named_errors_and_its_valid_ones_pass(name):
    r, _ = _recipe(TABLE[name].family)
    for _, label, x, y, refused in [c for c in STATED if c[0] == name]:
        if refused:
            with pytest.raises(ValueError, match=re.escape(TABLE[name].family.name)):
                r.check(x, y)
                pytest.fail(f"{name}: {label} passed")
        else:
            r.check(x, y)  # no error


def test_every_family_and_support_is_in_the_table():
    assert {c[0] for c in CASES} == set(FAMILIES) == {c[0] for c in STATED}  # every entry yields cases
    public = constructors()
    assert public <= set().union(*(kinds(f.spec) for f in FAMILIES.values())), public
    named = {v.name for v in vars(_support).values() if isinstance(v, _support.Support)}  # every named support
    used = {s.name for f in FAMILIES.values() for s in (f.support, *f.support.columns)}
    assert named <= used, named - used
    assert len(CASES) > 600 and sum(c[-1] for c in STATED) > 40


def test_valid_bfloat16_targets_are_accepted():
    accepted = [f for f in FAMILIES.values() if "float" in _columns(f.support)[0].dtypes]
    refused = {f.spec.kind for f in FAMILIES.values() if f not in accepted}
    assert refused == {"categorical", "ordinal"}  # all but the label families
    x = np.zeros((N, 1), np.float32)
    for family in accepted:
        r, _ = _recipe(family)
        r.check(x, jnp.asarray(_valid(family), jnp.bfloat16))  # no error
    for family in (mj.normal(1.0), mj.poisson(), mj.von_mises()):  # the values are exact in bfloat16
        r, params = _recipe(family)
        want = r.nll(params, x, jnp.asarray(_valid(family), jnp.float32))
        np.testing.assert_allclose(r.nll(params, x, jnp.asarray(_valid(family), jnp.bfloat16)), want, rtol=1e-6)
        assert np.isfinite(float(want))
