"""Symbolic derivations: the lecture's steps, and checks that catch a wrong step."""

import re
import sys

import pytest

sp = pytest.importorskip("sympy")

import mle_jax as mj  # noqa: E402
from mle_jax.derive import F, F1, F2, SIGMA, Y, derive, i  # noqa: E402
from mle_jax.verify import verify_equivalences  # noqa: E402
from families_table import FAMILIES  # noqa: E402

DERIVED = [name for name, entry in FAMILIES.items() if entry.derive]


@pytest.mark.parametrize("name", DERIVED)
@pytest.mark.deep
def test_derivation_matches_stable_nll(name):
    d = derive(FAMILIES[name].family)
    result = d.check(num=6)
    assert result.passed, result
    assert [s.title.split(" ")[0] for s in d.steps[:4]] == ["likelihood", "take", "expand:", "negate:"]
    assert all(s.text and s.latex for s in d.steps)
    assert "\\prod" in d.steps[0].latex and "\\sum" in d.steps[1].latex


def test_normal_fixed_sigma_is_least_squares():
    d = derive(mj.normal(0.5))
    assert sp.simplify(d.loss - (Y[i] - F[i]) ** 2) == 0
    assert sp.simplify(d.constant - (sp.log(SIGMA) + sp.log(2 * sp.pi) / 2)) == 0
    assert sp.simplify(d.factor - 1 / (2 * SIGMA**2)) == 0
    assert len(d.steps) == 6


def test_bernoulli_is_binary_cross_entropy():
    d = derive(mj.bernoulli())
    lam = 1 / (1 + sp.exp(-F[i]))
    bce = -(1 - Y[i]) * sp.log(1 - lam) - Y[i] * sp.log(lam)
    assert sp.simplify(sp.expand_log(d.loss - bce, force=True)) == 0
    assert d.constant == 0


def test_square_link_derivation_keeps_the_lecture_form():
    d = derive(mj.normal("square"))
    expected = (Y[i] - F1[i]) ** 2 / (2 * F2[i] ** 2) + sp.log(sp.Abs(F2[i]))
    assert sp.simplify(d.loss - expected) == 0


def test_a_wrong_step_fails_the_check():
    d = derive(mj.normal(0.5))
    assert not d._replace(loss=d.loss * sp.Rational(101, 100)).check(num=3).passed
    assert not d._replace(constant=d.constant + 1).check(num=3).passed
    b = derive(mj.bernoulli())
    flipped = b.loss.subs(Y[i], 1 - Y[i])  # a classic sign/label error
    assert not b._replace(loss=flipped).check(num=6).passed


def test_verify_equivalences_all_pass_and_the_command_prints_them(capsys, monkeypatch):
    # one run of the equivalences serves both the API (its rows) and `python -m mle_jax.verify`'s main()
    from mle_jax import verify

    seen = []
    monkeypatch.setattr(verify, "verify_equivalences", lambda: seen.append(verify_equivalences()) or seen[-1])
    assert verify.main() == 0
    rows = seen[0]
    assert len(rows) == 5 and all(r.passed for r in rows), rows
    out = capsys.readouterr().out
    assert out.count("PASS") == 11 and "FAIL" not in out, out


def test_derive_dispatches_on_the_spec_and_refuses_training_losses():
    with pytest.raises(ValueError, match=r"normal\(scale='softplus', beta=0\.5\) trains with a loss that is not"):
        derive(mj.normal("softplus", beta=0.5))
    with pytest.raises(ValueError, match="label_smoothing"):
        derive(mj.categorical(3, label_smoothing=0.1))
    with pytest.raises(NotImplementedError, match=r"poisson\(\)"):
        derive(mj.poisson())
    # the spec, not the display name, decides: a fixed sigma keeps its value as a constant
    assert derive(mj.normal(2.0)).spec.constants == {SIGMA: 2.0}


def test_the_table_says_which_families_derive_covers():
    """Every entry of the family table without ``derive`` is refused by name: NotImplementedError for a
    kind with no symbolic model, ValueError for a training loss that is not the NLL (no sympy work)."""
    assert {FAMILIES[n].family.spec.kind for n in DERIVED} == {"normal", "bernoulli", "categorical"}
    for name, entry in FAMILIES.items():
        if not entry.derive:
            error = ValueError if entry.family.training.options else NotImplementedError
            with pytest.raises(error, match=re.escape(entry.family.name)):
                derive(entry.family)
