"""The test tables cover the library: every public family constructor and option value has an entry
in tests/families_table.py, every registered theta type a case in tests/cases.py; and each entry's
valid target is valid (nothing compiled)."""

import numpy as np

import mle_jax as mj
from cases import CASES, NO_CASE, VECTOR_CASES
from families_table import DEEP_ONLY, FAMILIES, constructors, kinds, nowhere
from mle_jax.distributions import registry


def test_every_public_family_constructor_has_an_entry():
    public = constructors()
    assert {"normal", "bernoulli", "censored", "independent", "von_mises"} <= public, public  # the scan finds them
    covered = set().union(*(kinds(e.family.spec) for e in FAMILIES.values()))
    assert public <= covered, f"families without an entry in tests/families_table.py: {sorted(public - covered)}"
    exported = {n for n in mj.__all__ if getattr(mj, n) in {getattr(mj.families, c) for c in public}}
    assert exported == public  # the package root exports every constructor
    assert DEEP_ONLY <= set(FAMILIES)


def _options(kind, option):
    values = set()
    for e in FAMILIES.values():
        specs = [e.family.spec, *[a for a in e.family.spec.args if hasattr(a, "kind")]]
        values |= {("fixed" if isinstance(v, float) else v) for s in specs if s.kind == kind
                   for k, v in s.options if k == option}
    return values


def test_every_option_value_has_an_entry():
    links = set(mj.links.POSITIVE)
    assert _options("normal", "scale") >= {"fixed", "learned"} | links
    assert _options("laplace", "scale") >= {"fixed", "learned", "softplus"}
    assert _options("student_t", "scale") >= {"learned", "softplus"}
    assert _options("student_t", "df") >= {"fixed", "learned"}
    assert _options("negative_binomial", "dispersion") >= {"learned", "per_example"}
    assert _options("bernoulli", "soft_labels") >= {True}
    assert _options("independent", "shared") >= {False}
    trained = {k for e in FAMILIES.values() for k, _ in e.family.training.options}
    assert trained >= {"beta", "label_smoothing", "class_weights"}
    assert any(e.family.spec.kind == "independent" and e.family.spec.args[0].kind == "normal"
               for e in FAMILIES.values())


def test_every_entry_states_a_valid_target_and_an_off_rule():
    """One example's valid target passes the family's checks; the off rule gives one flag per example,
    some set exactly where the support is bounded. (The theta type an entry states is checked where
    the theta is built: test_families_support.py.)"""
    for name, entry in FAMILIES.items():
        family = entry.family
        valid = np.asarray([entry.valid], np.int32 if isinstance(entry.valid, int) else np.float32)
        assert valid.shape[1:] == family.event_shape, (name, valid.shape)
        family.check(valid)  # no error
        for kind, values in entry.targets.items():
            y = np.asarray(values, np.float32 if kind == "float" else np.int32).astype(np.float64)
            off = entry.off(y)
            assert off.dtype == bool and off.shape == y.shape[:1], name
            assert off.any() == (entry.off is not nowhere), name  # a bounded support's targets include off ones
            assert entry.refuses(y, kind).shape == off.shape and (entry.refuses(y, kind) >= off).all(), name


def test_the_theta_type_table_covers_every_registered_type():
    """tests/cases.py has a case of every theta type in the registry (a new one fails here until it has)."""
    cased = {type(c.theta).__name__ for c in [*CASES.values(), *VECTOR_CASES.values()]}
    registered = {t.__name__ for t in registry._OPS}
    assert registered - set(NO_CASE) <= cased, f"theta types without a case in tests/cases.py: " \
                                               f"{sorted(registered - set(NO_CASE) - cased)}"
    assert set(NO_CASE) <= registered  # no stale exemption
    assert {e.theta.__name__ for e in FAMILIES.values()} <= cased
