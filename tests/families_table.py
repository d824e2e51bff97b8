"""The one table of built-in families that drives the per-family tests.

One ``Entry`` per configuration of a public family constructor (``mle_jax.families``): the
constructor call, the theta type it gives, one example's raw output and valid target, and
targets on and off the support with the rule saying which are off (written here from the
support's mathematics, not read from the library's ``Support``). The tests that iterate over it:

    test_bad_inputs.py        every entry: named ValueErrors before anything is compiled
    test_families_support.py  every entry: the fused kernel against its theta's log_prob (drawn
                              raw outputs, hypothesis), in float64 where ``float64``
    test_families_family.py   entries with ``grads``: gradients of the fused kernel
    test_derive.py            entries with ``derive``: the symbolic derivation; the others refuse
    test_properties.py        the theta types the entries give (batched thetas)

The theta types have their own table, tests/cases.py (a reference for each registered type).
A new family (or a new option value) joins every one of these by an entry here:
``test_families_table.py`` fails until it has one.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np

import mle_jax as mj

INF, NAN = np.inf, np.nan
REAL = [-3.0, 0.0, 0.4, 7.5, INF, -INF, NAN]                 # no finite value is off the real line
COUNTS = [0.0, 3.0, 2.5, -1.0, 1e-3, INF]                      # off: 2.5, -1, 1e-3
LABELS3 = [0, 2, 1, 3, -1, 7]                                  # labels(3), off: 3, -1, 7
LABELS4 = [0, 3, 1, 4, -1, 2]                                  # labels(4), off: 4, -1
PAIRS = [[0.5, 1.0], [INF, 1.0], [1.0, 0.0]]                   # two real outputs
# (value, side): side 0 observed, -1 left-censored (y <= value), +1 right-censored; any other side is off
# (successes, trials); off: successes > trials, negative or fractional entries
BINOMIAL = [[3.0, 10.0], [0.0, 0.0], [5.0, 5.0], [6.0, 5.0], [-1.0, 3.0], [1.0, -1.0], [1.5, 3.0], [2.0, 2.5]]
CENSORED = [[0.7, 0.0], [0.7, -1.0], [0.7, 1.0], [0.7, 2.0], [0.7, 0.5], [0.7, -3.0], [-1.0, -1.0], [2.0, 1.0]]


def nowhere(y):
    """No finite target is off the support (the real line, angles, vectors of reals)."""
    y = np.asarray(y)
    return np.zeros(y.shape[:1], bool)


def binomial_off(y):
    """(successes, trials): whole numbers with 0 <= successes <= trials."""
    y = np.asarray(y)
    return counts_off(y).any(axis=1) | (y[:, 0] > y[:, 1])


def counts_off(y):
    return (y < 0) | (y != np.floor(y))


def unit_off(y):
    return (y < 0) | (y > 1)


def labels_off(k):
    return lambda y: (y < 0) | (y >= k) | (y != np.floor(y))


def any_output(rule):
    """Off where any of one example's outputs is off (``independent``)."""
    return lambda y: rule(np.asarray(y)).reshape(len(y), -1).any(axis=1)


def side_off(y):
    return ~np.isin(np.asarray(y)[:, 1], [-1.0, 0.0, 1.0])


def simplex_off(y):
    """Off the (closed) simplex: a share below 0 or above 1, or shares not summing to 1 (within 1e-4)."""
    y = np.asarray(y)
    return ((y < 0) | (y > 1)).any(axis=1) | (np.abs(y.sum(axis=1) - 1) > 1e-4)


def simplex_refused(y, kind=None):
    """The checks ask for the open simplex: every share strictly inside (0, 1)."""
    y = np.asarray(y)
    return simplex_off(y) | ((y <= 0) | (y >= 1)).any(axis=1)


def permutation_off(y):
    """Not a permutation of range(K): a value outside it, a fraction or a repeated item."""
    y = np.asarray(y)
    return (np.sort(y, axis=1) != np.arange(y.shape[1])).any(axis=1)


def positive_refused(y, kind=None):
    return y <= 0


def unit_refused(y, kind=None):
    return (y <= 0) | (y >= 1)


def censored_refused(inner):
    """A side off {-1, 0, +1}, or a value off the inner support (its density is still defined there)."""
    return lambda y, kind: side_off(y) | inner(np.asarray(y)[:, 0])


def labels_refused(k):
    """Labels must have an integer (or boolean) dtype: every float target is refused."""
    return lambda y, kind: np.ones(len(y), bool) if kind == "float" else labels_off(k)(y)


class Entry(NamedTuple):
    """One family configuration and what the tests need of it."""

    family: Any                      # the constructor call's Family
    theta: type                      # the theta type family.theta gives
    targets: dict                    # target dtype kind ("float" / "int") -> targets, one per example, on and off
    off: Callable                    # targets (float64, as the computation sees them) -> off the support
    valid: Any = 0.9                 # one valid target (one example)
    float64: bool = False            # the fused kernel is written apart from the theta: checked in float64 too
    #                                  (with the first kind of targets)
    grads: bool = False              # second-order gradient check of the fused kernel (deep)
    derive: bool = False             # mle_jax.derive.derive covers it
    refused: Callable | None = None  # (targets, kind) -> what the recipe's checks refuse, where that is more than
    #                                  ``off``: an open support's ends, a dtype it does not take, a censored value

    def refuses(self, y, kind):
        return self.off(y) if self.refused is None else self.refused(y, kind)

    @property
    def censored(self) -> bool:
        return self.family.spec.kind == "censored"


def raw_example(family, dtype=np.float32):
    """One example's raw output: 0.3, -0.2, 0.3, ... in the family's raw shape."""
    size = int(np.prod(family.raw_shape, dtype=int))
    return np.asarray(0.3 - 0.5 * (np.arange(size) % 2), dtype).reshape(family.raw_shape)


_REAL = {"float": REAL}
_POSITIVE = {"float": [0.5, 3.0, 1e-30, -1.0, -1e-30, 0.0, INF]}
FAMILIES = {
    # regression: real, positive and unit-interval targets
    "normal-fixed": Entry(mj.normal(0.7), mj.Normal, _REAL, nowhere, float64=True, derive=True),
    "normal-tiny-fixed": Entry(mj.normal(1e-20), mj.Normal, _REAL, nowhere, valid=1e-20, float64=True,
                               derive=True),
    "normal-learned": Entry(mj.normal("learned"), mj.Normal, _REAL, nowhere, float64=True, derive=True),
    "normal-softplus": Entry(mj.normal("softplus"), mj.Normal, _REAL, nowhere, float64=True, derive=True),
    "normal-exp": Entry(mj.normal("exp"), mj.Normal, _REAL, nowhere, derive=True),
    "normal-square": Entry(mj.normal("square"), mj.Normal, _REAL, nowhere, derive=True),
    "normal-exp-beta": Entry(mj.normal("exp", beta=0.5), mj.Normal, _REAL, nowhere),
    "laplace-fixed": Entry(mj.laplace(0.5), mj.Laplace, _REAL, nowhere, grads=True, derive=True),
    "laplace-learned": Entry(mj.laplace("learned"), mj.Laplace, _REAL, nowhere, float64=True, derive=True),
    "laplace-softplus": Entry(mj.laplace("softplus"), mj.Laplace, _REAL, nowhere, grads=True, derive=True),
    "asymmetric_laplace-fixed": Entry(mj.asymmetric_laplace(0.8), mj.AsymmetricLaplace, _REAL, nowhere, grads=True,
                                      derive=True),
    "asymmetric_laplace-learned": Entry(mj.asymmetric_laplace(0.3, "learned"), mj.AsymmetricLaplace, _REAL, nowhere,
                                        float64=True, derive=True),
    "asymmetric_laplace-softplus": Entry(mj.asymmetric_laplace(0.5, "softplus"), mj.AsymmetricLaplace, _REAL, nowhere,
                                         float64=True, derive=True),
    "student_t-softplus": Entry(mj.student_t(), mj.StudentT, _REAL, nowhere, float64=True, derive=True),
    "student_t-learned": Entry(mj.student_t("learned", "learned"), mj.StudentT, _REAL, nowhere, float64=True,
                               derive=True),
    "student_t-fixed-df-learned-scale": Entry(mj.student_t(3.0, "learned"), mj.StudentT, _REAL, nowhere,
                                              grads=True, derive=True),
    "student_t-learned-df-softplus": Entry(mj.student_t("learned", "softplus"), mj.StudentT, _REAL, nowhere,
                                           grads=True, derive=True),
    "mixture_normal": Entry(mj.mixture_normal(2), mj.MixtureNormal, _REAL, nowhere, derive=True),
    # The ends of an open support (y = 0 for the Gamma, 0 and 1 for the Beta) are where the density has
    # a limit (+inf below a shape of 1, -inf above): there the kernel is held to the theta only.
    "gamma": Entry(mj.gamma(), mj.Gamma, {"float": [0.5, 3.0, 1e-30, -1.0, -1e-30, 0.0, INF]}, lambda y: y < 0,
                   valid=1.2, grads=True, refused=positive_refused, derive=True),
    "beta": Entry(mj.beta(), mj.Beta, {"float": [0.5, 0.01, 0.999, -0.5, 1.5, 0.0, 1.0]}, unit_off, valid=0.3,
                  grads=True, refused=unit_refused, derive=True),
    "gamma-mean": Entry(mj.gamma("mean"), mj.Gamma, {"float": [0.5, 3.0, 1e-30, -1.0, -1e-30, 0.0, INF]},
                        lambda y: y < 0, valid=1.2, grads=True, refused=positive_refused, derive=True),
    "beta-mean": Entry(mj.beta("mean"), mj.Beta, {"float": [0.5, 0.01, 0.999, -0.5, 1.5, 0.0, 1.0]}, unit_off,
                       valid=0.3, grads=True, refused=unit_refused, derive=True),
    # survival: positive magnitudes (y = 0 is the end of the support: held to the theta only)
    "exponential": Entry(mj.exponential(), mj.Exponential, _POSITIVE, lambda y: y < 0, valid=1.2, float64=True,
                         grads=True, refused=positive_refused, derive=True),
    "weibull-learned": Entry(mj.weibull(), mj.Weibull, _POSITIVE, lambda y: y < 0, valid=1.2, float64=True,
                             grads=True, refused=positive_refused, derive=True),
    "weibull-per_example": Entry(mj.weibull("per_example"), mj.Weibull, _POSITIVE, lambda y: y < 0, valid=1.2,
                                 float64=True, refused=positive_refused, derive=True),
    "weibull-fixed": Entry(mj.weibull(1.5), mj.Weibull, _POSITIVE, lambda y: y < 0, valid=1.2, float64=True,
                           refused=positive_refused, derive=True),
    "log_normal-softplus": Entry(mj.log_normal(), mj.LogNormal, _POSITIVE, lambda y: y < 0, valid=1.2,
                                 grads=True, refused=positive_refused, derive=True),
    "log_normal-learned": Entry(mj.log_normal("learned"), mj.LogNormal, _POSITIVE, lambda y: y < 0, valid=1.2,
                                refused=positive_refused, derive=True),
    "log_normal-fixed": Entry(mj.log_normal(0.5), mj.LogNormal, _POSITIVE, lambda y: y < 0, valid=1.2,
                              refused=positive_refused, derive=True),
    # angles
    "von_mises": Entry(mj.von_mises(), mj.VonMises, _REAL, nowhere, grads=True, derive=True),
    # counts
    "poisson": Entry(mj.poisson(), mj.Poisson, {"float": COUNTS}, counts_off, valid=2.0, grads=True, derive=True),
    "negative_binomial": Entry(mj.negative_binomial(), mj.NegativeBinomial, {"float": COUNTS}, counts_off, valid=2.0,
                               float64=True, derive=True),
    "negative_binomial-per_example": Entry(mj.negative_binomial("per_example"), mj.NegativeBinomial,
                                           {"float": COUNTS}, counts_off, valid=2.0, derive=True),
    "binomial": Entry(mj.binomial(), mj.Binomial, {"float": BINOMIAL, "int": BINOMIAL}, binomial_off, valid=[3.0, 10.0],
                      float64=True, derive=True),
    "zero_inflated-poisson": Entry(mj.zero_inflated(mj.poisson()), mj.ZeroInflated, {"float": COUNTS}, counts_off,
                                   valid=2.0, derive=True),
    "zero_inflated-negative_binomial": Entry(mj.zero_inflated(mj.negative_binomial()), mj.ZeroInflated,
                                             {"float": COUNTS}, counts_off, valid=2.0, derive=True),
    # labels
    "bernoulli": Entry(mj.bernoulli(), mj.Bernoulli, {"float": [0.0, 1.0, 2.0, -1.0, 1.5, 1e-8 + 1.0],
                                                       "int": [0, 1, 2, -1, 5, 1]}, unit_off, valid=1, float64=True,
                       derive=True),
    "bernoulli-soft": Entry(mj.bernoulli(soft_labels=True), mj.Bernoulli,
                            {"float": [0.0, 0.3, 1.0, -0.2, 1.2, NAN]}, unit_off, valid=0.3, float64=True,
                            derive=True),
    "categorical": Entry(mj.categorical(3), mj.Categorical, {"int": LABELS3, "float": [0.0, 2.0, 1.5, 3.0, -1.0, 1.0]},
                         labels_off(3), valid=2, derive=True, refused=labels_refused(3)),
    "categorical-training": Entry(mj.categorical(3, label_smoothing=0.1, class_weights=[1.0, 0.0, 2.0]),
                                  mj.Categorical, {"int": LABELS3}, labels_off(3), valid=2, float64=True),
    "ordinal": Entry(mj.ordinal(4), mj.Categorical, {"int": LABELS4}, labels_off(4), valid=3, float64=True,
                     derive=True),
    # vectors
    "mvn_cholesky": Entry(mj.mvn_cholesky(2), mj.MultivariateNormal,
                          {"float": [[0.0, 1.0], [INF, 0.0], [2.0, NAN], [-1.0, -2.0]]}, nowhere, valid=[0.5, -1.0],
                          derive=True),
    # compositions and rankings (the Dirichlet's K = 4: 1/4 is exact in bfloat16, the checks' valid target there)
    "dirichlet": Entry(mj.dirichlet(4), mj.Dirichlet,
                       {"float": [[0.1, 0.2, 0.3, 0.4], [0.0, 0.5, 0.5, 0.0], [0.5, 0.6, -0.1, 0.0],
                                  [0.3, 0.3, 0.3, 0.3], [1.0, 0.0, 0.0, 0.0], [0.7, 0.1, 0.1, 0.1],
                                  [1e-30, 0.5, 0.25, 0.25], [0.25, 0.25, 0.25, 0.26]]},
                       simplex_off, valid=[0.1, 0.2, 0.3, 0.4], float64=True, refused=simplex_refused, derive=True),
    "dirichlet-exp": Entry(mj.dirichlet(2, link="exp"), mj.Dirichlet,
                           {"float": [[0.2, 0.8], [0.5, 0.6], [1.0, 0.0], [1e-3, 0.999]]}, simplex_off,
                           valid=[0.2, 0.8], refused=simplex_refused, derive=True),
    "plackett_luce": Entry(mj.plackett_luce(3), mj.PlackettLuce,
                           {"int": [[2, 0, 1], [0, 1, 2], [0, 0, 1], [1, 2, 3], [-1, 0, 1], [2, 1, 0]],
                            "float": [[2.0, 0.0, 1.0], [0.5, 1.0, 2.0], [1.0, 0.0, 2.0], [0.0, 1.0, 1.0]]},
                           permutation_off, valid=[2, 0, 1], float64=True, derive=True),
    # families of families
    "independent-bernoulli": Entry(mj.independent(mj.bernoulli(), 2), mj.Independent,
                                   {"float": [[0.0, 1.0], [2.0, 1.0], [1.0, -1.0], [1.0, 1.0]]}, any_output(unit_off),
                                   valid=[1.0, 0.0], float64=True, derive=True),
    "independent-gamma-unshared": Entry(mj.independent(mj.gamma(), 2, shared=False), mj.Independent,
                                        {"float": [[0.5, 1.0], [-1.0, 1.0], [1.0, 0.0], [2.0, 3.0]]},
                                        any_output(lambda y: y < 0), valid=[0.5, 1.0],
                                        refused=lambda y, kind: any_output(positive_refused)(y), derive=True),
    "independent-normal-learned": Entry(mj.independent(mj.normal("learned"), 2, shared=False), mj.Independent,
                                        {"float": PAIRS}, nowhere, valid=[0.5, 1.0], float64=True, derive=True),
    "independent-normal-learned-shared": Entry(mj.independent(mj.normal("learned"), 2), mj.Independent,
                                               {"float": PAIRS}, nowhere, valid=[0.5, 1.0], derive=True),
    "independent-poisson": Entry(mj.independent(mj.poisson(), 3), mj.Independent,
                                 {"float": [[0.0, 1.0, 2.0], [1.0, -1.0, 3.0], [2.5, 0.0, 1.0], [0.0, 0.0, 0.0]]},
                                 any_output(counts_off), valid=[0.0, 1.0, 2.0], derive=True),
    "censored-normal-fixed": Entry(mj.censored(mj.normal(1.0)), mj.Normal, {"float": CENSORED}, side_off,
                                   valid=[0.7, 1.0], derive=True),
    "censored-normal-softplus": Entry(mj.censored(mj.normal("softplus")), mj.Normal, {"float": CENSORED}, side_off,
                                      valid=[0.7, 1.0], float64=True, derive=True),
    "censored-gamma": Entry(mj.censored(mj.gamma()), mj.Gamma, {"float": CENSORED}, side_off, valid=[0.7, -1.0],
                             refused=censored_refused(positive_refused), derive=True),
    "censored-exponential": Entry(mj.censored(mj.exponential()), mj.Exponential, {"float": CENSORED}, side_off,
                                  valid=[0.7, 1.0], refused=censored_refused(positive_refused), derive=True),
    "censored-weibull": Entry(mj.censored(mj.weibull()), mj.Weibull, {"float": CENSORED}, side_off,
                              valid=[0.7, 1.0], refused=censored_refused(positive_refused), derive=True),
    "censored-log_normal": Entry(mj.censored(mj.log_normal("learned")), mj.LogNormal, {"float": CENSORED}, side_off,
                                 valid=[0.7, 1.0], refused=censored_refused(positive_refused), derive=True),
    "censored-beta": Entry(mj.censored(mj.beta()), mj.Beta, {"float": CENSORED}, side_off, valid=[0.7, 0.0],
                           refused=censored_refused(unit_refused), derive=True),
}

# the per-family compiled checks of these run in the deep phase only (a compile of an incomplete-function
# loop costs seconds; the default run keeps the configurations it had)
DEEP_ONLY = {"censored-beta", "censored-normal-fixed"}


def kinds(spec) -> set:
    """The family kinds in a spec, the inner ones of combinators included."""
    inner = [a for a in spec.args if isinstance(a, type(spec))]
    return {spec.kind}.union(*(kinds(a) for a in inner))


def constructors() -> set:
    """The public family constructors: the names of ``mle_jax.families.__all__`` defined in its
    public modules (``regression``, ``counts``, ...; not the private ``_family`` helpers)."""
    from mle_jax import families

    return {n for n in families.__all__ if callable(getattr(families, n))
            and getattr(getattr(families, n), "__module__", "").startswith("mle_jax.families.")
            and not getattr(families, n).__module__.split(".")[-1].startswith("_")}
