"""mle_jax.families._arguments: every constructor rejects a bad start with a named ValueError."""

import inspect
import math

import jax.numpy as jnp
import numpy as np
import pytest

import mle_jax as mj
from families_table import constructors

NOT_POSITIVE = [0.0, -1.0, math.nan, math.inf, -math.inf, True, None, [1.0, 2.0], "2"]
NOT_WHOLE = [0, -1, 2.5, 3.0, True, None, "3", np.float32(3)]

CONSTRUCTORS = {  # name -> (argument, a constructor taking the bad value, what the error names)
    "normal scale": lambda v: mj.normal(v),
    "normal init_scale": lambda v: mj.normal("learned", init_scale=v),
    "laplace scale": lambda v: mj.laplace(v),
    "laplace init_scale": lambda v: mj.laplace("learned", init_scale=v),
    "student_t df": lambda v: mj.student_t(v),
    "student_t init_df": lambda v: mj.student_t("learned", init_df=v),
    "student_t scale": lambda v: mj.student_t(4.0, v),
    "student_t init_scale": lambda v: mj.student_t(4.0, "learned", init_scale=v),
    "negative_binomial init_total_count": lambda v: mj.negative_binomial(init_total_count=v),
    "log_normal scale": lambda v: mj.log_normal(v),
    "log_normal init_scale": lambda v: mj.log_normal("learned", init_scale=v),
    "asymmetric_laplace scale": lambda v: mj.asymmetric_laplace(0.5, v),
    "asymmetric_laplace init_scale": lambda v: mj.asymmetric_laplace(0.5, "learned", init_scale=v),
    "weibull concentration": lambda v: mj.weibull(v),
    "weibull init_concentration": lambda v: mj.weibull("learned", init_concentration=v),
    "gamma init_shape": lambda v: mj.gamma("mean", init_shape=v),
    "beta init_precision": lambda v: mj.beta("mean", init_precision=v),
}
COUNTS = {
    "categorical num_classes": lambda v: mj.categorical(v),
    "ordinal num_classes": lambda v: mj.ordinal(v),
    "mixture_normal num_components": lambda v: mj.mixture_normal(v),
    "mvn_cholesky dim": lambda v: mj.mvn_cholesky(v),
    "independent dim": lambda v: mj.independent(mj.normal(1.0), v),
    "dirichlet num_components": lambda v: mj.dirichlet(v),
    "plackett_luce num_items": lambda v: mj.plackett_luce(v),
}


@pytest.mark.parametrize("value", NOT_POSITIVE, ids=repr)
@pytest.mark.parametrize("what", sorted(CONSTRUCTORS))
def test_positive_arguments(what, value):
    family = what.split()[0]
    if what == "student_t df" and value == float("inf"):  # the Normal, its limit (as a traced inf always was)
        assert CONSTRUCTORS[what](value).spec.option("df") == value
        return
    with pytest.raises(ValueError, match=rf"^{family}\(.*(must|scale|df)"):
        CONSTRUCTORS[what](value)


@pytest.mark.parametrize("value", NOT_WHOLE, ids=repr)
@pytest.mark.parametrize("what", sorted(COUNTS))
def test_whole_number_arguments(what, value):
    family, argument = what.split()
    minimum = 1 if family in ("mixture_normal", "mvn_cholesky", "independent") else 2
    if isinstance(value, int) and not isinstance(value, bool) and value >= minimum:
        pytest.skip("a valid value")
    with pytest.raises(ValueError, match=rf"^{family}: {argument} must be an integer >= {minimum}; got"):
        COUNTS[what](value)


OTHER = [  # (constructor argument, a constructor call with a bad value, what the error says)
    ("normal beta", lambda: mj.normal("softplus", beta=1.5), r"beta must lie in \[0\.0, 1\.0\]"),
    ("normal beta", lambda: mj.normal("softplus", beta=math.nan), "beta must lie in"),
    ("normal beta", lambda: mj.normal("softplus", beta=True), "beta must lie in"),
    ("normal beta", lambda: mj.normal(0.5, beta=0.5), "beta .* needs a heteroscedastic scale link"),
    ("normal scale", lambda: mj.normal("cube"), "scale must be a positive number or one of 'learned'"),
    ("student_t df", lambda: mj.student_t("many"), "df must be a positive number or 'learned'"),
    ("negative_binomial dispersion", lambda: mj.negative_binomial("global"),
     "dispersion must be 'learned' or 'per_example'"),
    ("categorical label_smoothing", lambda: mj.categorical(3, label_smoothing=1.0),
     r"label_smoothing must lie in \[0\.0, 1\.0\)"),
    ("categorical label_smoothing", lambda: mj.categorical(3, label_smoothing=-0.1), "label_smoothing"),
    ("categorical label_smoothing", lambda: mj.categorical(3, label_smoothing=math.nan), "label_smoothing"),
    ("categorical class_weights", lambda: mj.categorical(3, class_weights=[1.0, math.nan, 1.0]),
     "class_weights must be 3 finite numbers"),
    ("categorical class_weights", lambda: mj.categorical(3, class_weights=[1.0, 1.0]), "class_weights"),
    ("categorical class_weights", lambda: mj.categorical(3, class_weights=[True, False, True]), "class_weights"),
    ("bernoulli soft_labels", lambda: mj.bernoulli(soft_labels="yes"), "soft_labels must be True or False"),
    ("independent shared", lambda: mj.independent(mj.normal(1.0), 2, shared=None), "shared must be True or False"),
    ("zero_inflated family", lambda: mj.zero_inflated(mj.normal(1.0)), "the base must be mj.poisson"),
    ("asymmetric_laplace q", lambda: mj.asymmetric_laplace(1.5), r"q \(the quantile level\) must lie in the open"),
    ("asymmetric_laplace q", lambda: mj.asymmetric_laplace(0.0), "must lie in the open interval"),
    ("asymmetric_laplace q", lambda: mj.asymmetric_laplace(math.nan), "must lie in the open interval"),
    ("gamma parameterization", lambda: mj.gamma("median"), r"parameterization must be one of \('default', 'mean'\)"),
    ("beta parameterization", lambda: mj.beta("median"), r"parameterization must be one of \('default', 'mean'\)"),
    ("dirichlet link", lambda: mj.dirichlet(3, link="cube"), "link must be one of"),
]


@pytest.mark.parametrize("what, make, match", OTHER, ids=[f"{w}-{i}" for i, (w, _, _) in enumerate(OTHER)])
def test_other_bad_options(what, make, match):
    with pytest.raises(ValueError, match=rf"^{what.split()[0]}.*{match}"):
        make()


FAMILY_ARGUMENTS = {"censored family": lambda v: mj.censored(v), "independent family": lambda v: mj.independent(v, 2),
                    "zero_inflated family": lambda v: mj.zero_inflated(v)}


@pytest.mark.parametrize("value", ["normal", mj.Normal(0.0, 1.0), None], ids=repr)
@pytest.mark.parametrize("what", sorted(FAMILY_ARGUMENTS))
def test_family_arguments_must_be_families(what, value):
    with pytest.raises(TypeError, match=rf"^{what.split()[0]}.*family must be an mle_jax Family"):
        FAMILY_ARGUMENTS[what](value)


def test_every_constructor_argument_has_a_bad_value_test():
    """Every argument of every public family constructor (tests/families_table.py's list) is given a
    bad value above: a new argument without one fails here."""
    tested = {*CONSTRUCTORS, *COUNTS, *(w for w, _, _ in OTHER), *FAMILY_ARGUMENTS}
    arguments = {f"{c} {a}" for c in constructors() for a in inspect.signature(getattr(mj.families, c)).parameters}
    assert arguments <= tested, sorted(arguments - tested)


def test_valid_starts_give_finite_parameters(x64):
    for family in (mj.student_t("learned", "learned", init_df=0.5, init_scale=1e-3),
                   mj.negative_binomial(init_total_count=1e3), mj.normal("learned", init_scale=np.float32(2.0))):
        leaves = [np.asarray(v) for v in family.init(jnp.float32).values()]
        assert all(np.all(np.isfinite(v)) for v in leaves), family.name
    np.testing.assert_allclose(np.log1p(np.exp(float(mj.student_t("learned", init_df=7.0).init(jnp.float64)["df"]))),
                               7.0, rtol=1e-6)
