"""Symbolic derivations: the lecture's steps, and checks that catch a wrong step."""

import re
import sys

import pytest

sp = pytest.importorskip("sympy")

import mle_jax as mj  # noqa: E402
from mle_jax.derive import F, F1, F2, SIGMA, Y, derive, i, softplus  # noqa: E402
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


@pytest.mark.deep  # a few seconds of compiling: CI's deep phase, for README's 5-minute suite
def test_verify_equivalences_all_pass_and_the_command_prints_them(capsys, monkeypatch):
    # one run of the equivalences serves both the API (its rows) and `python -m mle_jax.verify`'s main();
    # the derivation rows are cut to three families here (all of them: the deep test below)
    from mle_jax import derive as derive_module
    from mle_jax import verify

    seen = []
    monkeypatch.setattr(verify, "verify_equivalences", lambda: seen.append(verify_equivalences()) or seen[-1])
    monkeypatch.setattr(derive_module, "all_families", lambda: [mj.normal(0.5), mj.poisson(), mj.laplace(0.5)])
    assert verify.main() == 0
    rows = seen[0]
    assert len(rows) == 5 and all(r.passed for r in rows), rows
    out = capsys.readouterr().out
    assert out.count("PASS") == 8 and "FAIL" not in out, out
    assert "derive poisson()" in out


@pytest.mark.deep
def test_verify_has_a_passing_row_per_family_kind():
    from mle_jax.derive import all_families
    from mle_jax.verify import verify_derivations
    from families_table import kinds

    rows = verify_derivations(num=4)
    assert all(r.passed for r in rows), [r for r in rows if not r.passed]
    covered = set().union(*(kinds(f.spec) for f in all_families()))
    table = set().union(*(kinds(e.family.spec) for e in FAMILIES.values()))
    assert table <= covered, table - covered
    assert len(rows) == len(all_families())


def test_derive_dispatches_on_the_spec_and_refuses_training_losses():
    import dataclasses

    from mle_jax.families._family import Spec

    with pytest.raises(ValueError, match=r"normal\(scale='softplus', beta=0\.5\) trains with a loss that is not"):
        derive(mj.normal("softplus", beta=0.5))
    with pytest.raises(ValueError, match="label_smoothing"):
        derive(mj.categorical(3, label_smoothing=0.1))
    # a kind with no entry in the table is named; so is a censored family with no symbolic CDF
    with pytest.raises(NotImplementedError, match=r"gumbel\(\).*'gumbel'"):
        derive(dataclasses.replace(mj.poisson(), spec=Spec("gumbel")))
    with pytest.raises(NotImplementedError, match=r"gamma\(parameterization='median'\)"):  # a form with no entry
        derive(dataclasses.replace(mj.gamma(), spec=Spec("gamma", options=(("parameterization", "median"),))))
    with pytest.raises(NotImplementedError, match=r"censored\(student_t.*no symbolic CDF for student_t"):
        derive(mj.censored(mj.student_t()))
    # the spec, not the display name, decides: a fixed sigma keeps its value as a constant
    assert derive(mj.normal(2.0)).spec.constants == {SIGMA: 2.0}


def test_the_table_says_which_families_derive_covers():
    """Every entry of the family table without ``derive`` is refused by name: NotImplementedError for a
    kind with no symbolic model, ValueError for a training loss that is not the NLL (no sympy work)."""
    from mle_jax.derive import MODELS

    assert {FAMILIES[n].family.spec.kind for n in DERIVED} <= set(MODELS)
    for name, entry in FAMILIES.items():
        if not entry.derive:
            error = ValueError if entry.family.training.options else NotImplementedError
            with pytest.raises(error, match=re.escape(entry.family.name)):
                derive(entry.family)


# ----------------------------------------------------------------------------- the losses each family reduces to

R = sp.IndexedBase("r", real=True)


def _same(a, b):
    return sp.simplify(sp.expand_log(a - b, force=True)) == 0


def test_poisson_is_the_deviance_up_to_constants():
    d = derive(mj.poisson())
    assert _same(d.loss, sp.exp(F[i]) - Y[i] * F[i])
    assert _same(d.constant, sp.log(sp.factorial(Y[i])))
    assert d.check(num=3).passed


def test_laplace_with_fixed_scale_is_absolute_error():
    d = derive(mj.laplace(0.5))
    assert d.loss == sp.Abs(F[i] - Y[i])
    assert _same(d.factor, 1 / SIGMA) and _same(d.constant, sp.log(2 * SIGMA))
    assert d.check(num=3).passed
    wrong = d._replace(loss=(F[i] - Y[i]) ** 2)  # squared error is not the Laplace NLL
    assert not wrong.check(num=3).passed


def test_von_mises_is_cosine_plus_the_normaliser():
    d = derive(mj.von_mises())
    kappa = softplus(F2[i])
    assert _same(d.loss, -kappa * sp.cos(Y[i] - F1[i]) + sp.log(sp.besseli(0, kappa)))
    assert _same(d.constant, sp.log(2 * sp.pi))
    assert d.check(num=3).passed


def test_student_t_is_the_robust_loss():
    from mle_jax.derive import NU

    d = derive(mj.student_t(3.0, "softplus"))
    s = softplus(F2[i])
    robust = (NU + 1) / 2 * sp.log(1 + (Y[i] - F1[i]) ** 2 / (NU * s**2)) + sp.log(s)
    assert _same(d.loss, robust)
    assert d.spec.constants == {NU: 3.0}


def test_independent_outputs_sum_the_inner_loss():
    from mle_jax.derive import D, d as out

    d = derive(mj.independent(mj.poisson(), 3))
    f, y = sp.IndexedBase("f", real=True), sp.IndexedBase("y", real=True)
    assert _same(d.loss.doit(), sp.Sum(sp.exp(f[i, out]) - y[i, out] * f[i, out], (out, 0, D - 1)).doit())
    assert d.check(num=2).passed


def test_mixture_is_a_log_sum_exp_and_mvn_a_quadratic_form_plus_log_det():
    mix = derive(mj.mixture_normal(2)).loss
    assert any(isinstance(a, sp.log) and isinstance(a.args[0], sp.Sum) for a in sp.preorder_traversal(mix))
    mvn = derive(mj.mvn_cholesky(2))
    L = sp.IndexedBase("l", real=True)
    assert all(mvn.loss.has(sp.log(softplus(L[i, a, a]))) for a in range(2))  # log det L
    assert "the log det" in mvn.legend() and "quadratic form" in mvn.reduces_to


def test_censored_uses_the_cdf_and_sf_by_side():
    d = derive(mj.censored(mj.normal("softplus")))
    assert d.loss.has(sp.erfc) and d.loss.has(sp.IndexedBase("l", nonnegative=True)[i])
    assert "log CDF" in d.reduces_to and "log SF" in d.reduces_to


@pytest.mark.deep
def test_a_wrong_step_fails_the_check_for_the_structured_families():
    from mle_jax.derive import LEFT, RIGHT

    censored = derive(mj.censored(mj.normal("softplus")))
    swapped = censored.loss.xreplace({LEFT: RIGHT, RIGHT: LEFT})  # the CDF on the right-censored side
    assert not censored._replace(loss=swapped).check(num=6).passed
    ordinal = derive(mj.ordinal(4))
    flipped = ordinal.loss.xreplace({F[i]: -F[i]})  # sig(f - c) for sig(c - f): the classic sign error
    assert not ordinal._replace(loss=flipped).check(num=6).passed


def test_exponential_is_rate_times_y_minus_log_rate_and_the_quantile_loss_is_the_check_loss():
    from mle_jax._derivations.survival import Q

    d = derive(mj.exponential())
    assert _same(d.loss, sp.exp(F[i]) * Y[i] - F[i]) and d.constant == 0
    q = derive(mj.asymmetric_laplace(0.9))  # fixed scale b = 1: rho_q(y - f), the quantile-regression loss
    u = Y[i] - F[i]
    assert _same(q.loss * q.factor, (sp.Abs(u) + (2 * Q - 1) * u) / (2 * SIGMA))
    assert q.spec.constants[Q] == 0.9 and "check loss" in q.reduces_to


def test_log_normal_is_the_normal_in_log_y_and_plackett_luce_a_sum_of_logsumexps():
    d = derive(mj.log_normal(0.5))
    assert _same(d.loss, (sp.log(Y[i]) - F[i]) ** 2)
    assert d.constant.has(sp.log(Y[i]))  # the Jacobian log y, dropped
    pl = derive(mj.plackett_luce(3))
    s, y = sp.IndexedBase("s", real=True), lambda j: Y[i, j]
    expected = sum(sp.log(sum(sp.exp(s[i, y(m)]) for m in range(j, 3))) - s[i, y(j)] for j in range(3))
    assert _same(pl.loss, expected)


def test_censored_survival_families_use_closed_form_survival_functions():
    d = derive(mj.censored(mj.weibull()))
    u = sp.IndexedBase("u", nonnegative=True)[i]
    assert d.loss.has(u) and not d.loss.has(sp.erfc) and not d.loss.has(sp.uppergamma)
    assert derive(mj.censored(mj.log_normal("learned"))).loss.has(sp.erfc)


@pytest.mark.deep
def test_a_wrong_step_fails_the_check_for_the_new_families():
    pl = derive(mj.plackett_luce(3))
    s = sp.IndexedBase("s", real=True)
    reversed_ranking = pl.loss.xreplace({s[i, Y[i, j]]: s[i, Y[i, 2 - j]] for j in range(3)})
    assert not pl._replace(loss=reversed_ranking).check(num=6).passed
    weibull = derive(mj.weibull(1.5))  # the scale's log dropped from the density's k / s
    from mle_jax._derivations.survival import KAPPA
    assert not weibull._replace(loss=weibull.loss - KAPPA * F[i] + F[i]).check(num=6).passed
