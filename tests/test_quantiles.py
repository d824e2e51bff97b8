"""Every scalar theta type has ``log_cdf``, ``log_sf``, ``quantile`` and ``isf``, exact in both tails.

The types without a closed-form quantile (Student t, Gamma, Beta, the Normal mixture, zero inflation, a
user's type) get the registry's one fallback, bisection of their tails on the floats' order
(``distributions._invert``); the von Mises has its own CDF (quadrature of the tail) and the same inversion.
References: scipy.stats' ``ppf`` / ``isf`` (Student t, Gamma, Beta, Gumbel), the definition by brute
force over the counts with scipy's Poisson ``cdf`` / ``sf`` (zero inflation), a bracketed root of scipy's
``norm.logcdf`` mixture (``brentq`` to 1e-300; the mixture) and mpmath quadrature (the von Mises).
Tolerances (relative, in y): 1000 eps in float64 and 64 eps ... see ``_RTOL``.
"""

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest
from scipy import optimize, special, stats

import mle_jax as mj
from mle_jax.distributions import registry

PS = np.array([1e-30, 1e-10, 1e-3, 0.3, 0.5])  # quantile(p) reads the lower tail; isf(p) the upper
# Relative tolerances in y: the bisection ends within one float of the crossing of the type's own tail, whose
# relative error (a few hundred eps at most for the incomplete-function loops) is divided by
# |d log F / d log y| (>= 0.5 for these parameters): 2000 eps in float64 (4.4e-13), 200 eps in float32 (2.4e-5).
_RTOL = {np.float64: 2000 * np.finfo(np.float64).eps, np.float32: 200 * np.finfo(np.float32).eps}
W = np.array([0.2, 0.8])


@jax.jit
def _both(theta, q):
    return mj.distributions.quantile(theta, q), mj.distributions.isf(theta, q)


def _mixture_reference(w, m, s, p, upper):
    """The mixture's quantile as the root of log F(y) - log p (log S for ``upper``) by brentq, scipy's logcdf."""
    lw = np.log(w)

    def gap(y):
        side = stats.norm.logsf(y, m, s) if upper else stats.norm.logcdf(y, m, s)
        return special.logsumexp(lw + side) - math.log(p)
    lo, hi = np.min(m - 60 * s), np.max(m + 60 * s)
    return optimize.brentq(gap, lo, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)


def _zero_inflated_reference(g, rate, p, upper):
    """The smallest count k with F(k) >= p (with S(k) <= p for ``upper``), by brute force over k."""
    k = np.arange(400)
    if upper:
        return float(k[np.argmax((1 - g) * stats.poisson.sf(k, rate) <= p)])
    return float(k[np.argmax(g + (1 - g) * stats.poisson.cdf(k, rate) >= p)])


def _von_mises_lower(k, a):
    """mpmath's ``Pr(X <= -a)`` for the centred von Mises, by quadrature split where the density falls."""
    k, a = mp.mpf(k), mp.mpf(a)
    width = 1 / (k * mp.sin(a) + mp.sqrt(k) + 1)
    cuts = [a] + [a + width * j for j in (0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128) if a + width * j < mp.pi] + [mp.pi]
    return mp.quad(lambda t: mp.exp(-2 * k * mp.sin(t / 2) ** 2), cuts) / (2 * mp.pi * mp.besseli(0, k) * mp.exp(-k))


class _VonMisesDefinition(NamedTuple):
    """The von Mises quantile checked by its definition: the true quantile lies in ``[y - bound, y + bound]`` where
    mpmath's quadrature CDF at the two ends brackets p (scipy's vonmises.cdf is its normal approximation from
    k = 50, exact to 1e-7 there, and its ppf a root of that)."""

    loc: float
    k: float

    def brackets(self, p, upper, y, bound):
        with mp.workdps(30):
            def tail_beyond(x):  # Pr(X <= x) (Pr(X > x) where upper) of the centred angle x
                x = mp.mpf(x) - self.loc
                if x <= -mp.pi or x >= mp.pi:
                    return mp.mpf(int((x >= mp.pi) != upper))
                below = _von_mises_lower(self.k, abs(x))
                return below if (x <= 0) != upper else 1 - below
            lo, hi = tail_beyond(y - bound), tail_beyond(y + bound)
            return (lo <= p <= hi) if not upper else (hi <= p <= lo)

    def density(self, y):
        return stats.vonmises(self.k, loc=self.loc).pdf(y)


def _mixture(m, s):
    return lambda p, upper: _mixture_reference(W, np.array(m), np.array(s), p, upper)


def _zero_inflated(g, rate):
    return lambda p, upper: _zero_inflated_reference(special.expit(g), rate, p, upper)


# (theta type, two parameter sets, their references): both sets and every p in one compiled program
CASES = {
    "StudentT": (mj.StudentT, [(3.0, 1.0, 2.0), (1.0, 0.0, 1.0)], [stats.t(3.0, 1.0, 2.0), stats.t(1.0)]),
    "Gamma": (mj.Gamma, [(0.5, 2.0), (40.0, 0.1)], [stats.gamma(0.5, scale=0.5), stats.gamma(40.0, scale=10.0)]),
    "Beta": (mj.Beta, [(2.0, 0.5), (0.7, 3.0)], [stats.beta(2.0, 0.5), stats.beta(0.7, 3.0)]),
    "MixtureNormal": (lambda logits, loc, scale: mj.MixtureNormal(logits, loc, scale),
                      [(np.log(W), [-2.0, 3.0], [1.0, 0.5]), (np.log(W), [0.0, 1e-3], [1e-4, 1e3])],
                      [_mixture([-2.0, 3.0], [1.0, 0.5]), _mixture([0.0, 1e-3], [1e-4, 1e3])]),
    "ZeroInflated": (lambda g, rate: mj.ZeroInflated(g, mj.Poisson(np.log(rate))), [(0.3, 2.5), (-2.0, 40.0)],
                     [_zero_inflated(0.3, 2.5), _zero_inflated(-2.0, 40.0)]),
    "VonMises": (mj.VonMises, [(0.5, 2.0), (-3.0, 300.0)], [_VonMisesDefinition(0.5, 2.0),
                                                             _VonMisesDefinition(-3.0, 300.0)]),
}
# compiled in the default phase in both dtypes (a second or two each); the incomplete-function loops of the
# others cost 8 s a program: the Gamma's in float64 by default, the rest and float32 in the deep phase
CHEAP = {"MixtureNormal", "VonMises"}


def _reference(ref, p, upper):
    if hasattr(ref, "ppf"):
        return float(ref.isf(p) if upper else ref.ppf(p))
    return ref(p, upper)


def _batch(name, dtype):
    """One theta holding every (parameter set, p) pair, the p's, and the references' rows."""
    make, params, refs = CASES[name]
    rows = [(j, p) for j in range(len(params)) for p in PS]
    fields = [np.array([params[j][i] for j, _ in rows], np.float64) for i in range(len(params[0]))]
    theta = make(*(jnp.asarray(f, dtype) for f in fields))
    return theta, jnp.asarray([p for _, p in rows], dtype), [(refs[j], p) for j, p in rows]


def _spread(ref, p, side, want):
    """How far the quantile moves from p to 1.1 p: 0.1 p / f(y) from the density where the reference has one."""
    if hasattr(ref, "density"):
        return 0.1 * min(p, 1 - p) / ref.density(want)
    return abs(_reference(ref, 1.1 * p, side) - want)


def ps_of(refs):
    return np.array([p for _, p in refs])


def _check_against_references(name, dtype):
    with jax.enable_x64(dtype == np.float64):
        theta, ps, refs = _batch(name, dtype)
        lower, upper = (np.asarray(v, np.float64) for v in _both(theta, ps))
    for got, side in ((lower, False), (upper, True)):
        if name == "VonMises":  # the definition, at the tolerance's ends
            for (ref, p), y in zip(refs, got):
                bound = _RTOL[dtype] * (abs(y) + 10 * _spread(ref, p, side, y))
                assert ref.brackets(p, side, y, bound), (name, dtype, p, side, y)
            continue
        want = np.array([_reference(ref, p, side) for ref, p in refs])
        # the conditioning: a relative error of the tail probability p moves y by about p / f(y), here the
        # quantile's spread from p to 1.1 p (near a median at 0 the relative error in y means nothing)
        spread = np.array([_spread(ref, p, side, w) for (ref, p), w in zip(refs, want)])
        # only where the answer is 0 or a normal float of the dtype (Gamma(1/2)'s 1e-30 point is 4e-61)
        keep = (np.abs(want) >= np.finfo(dtype).tiny) | (want == 0)
        bound = _RTOL[dtype] * (np.abs(want) + 10 * spread)
        bad = keep & ~(np.abs(got - want) <= bound)
        assert not bad.any(), (f"{name} {'isf' if side else 'ppf'} ({dtype.__name__}) at p = {ps_of(refs)[bad]}: "
                               f"{got[bad]} against {want[bad]}")


@pytest.mark.parametrize("name", sorted(CHEAP | {"Gamma"}))
def test_quantile_and_isf_match_scipy_in_both_tails_float64(name):
    _check_against_references(name, np.float64)


@pytest.mark.deep
@pytest.mark.parametrize("name", sorted(set(CASES) - CHEAP - {"Gamma"}))
def test_quantile_and_isf_of_the_other_looped_tails_in_float64(name):
    _check_against_references(name, np.float64)


@pytest.mark.parametrize("name", sorted(CHEAP))
def test_quantile_and_isf_match_scipy_in_both_tails_float32(name):
    _check_against_references(name, np.float32)


@pytest.mark.deep
@pytest.mark.parametrize("name", sorted(set(CASES) - CHEAP))
def test_quantile_and_isf_of_the_looped_tails_in_float32(name):
    _check_against_references(name, np.float32)


class Gumbel(NamedTuple):
    """A user's theta: the Gumbel (scipy's ``gumbel_r``) with log_prob, log_cdf and log_sf only."""

    loc: jax.Array
    scale: jax.Array


def _gumbel_z(theta, y):
    return (y - theta.loc) / theta.scale


def _gumbel_log_prob(theta, y):
    z = _gumbel_z(theta, y)
    return -z - jnp.exp(-z) - jnp.log(theta.scale)


def _gumbel_log_cdf(theta, y):
    return -jnp.exp(-_gumbel_z(theta, y))


def _gumbel_log_sf(theta, y):
    return jnp.log(-jnp.expm1(-jnp.exp(-_gumbel_z(theta, y))))


@pytest.fixture
def gumbel():
    registry.register(Gumbel, log_prob=_gumbel_log_prob, log_cdf=_gumbel_log_cdf, log_sf=_gumbel_log_sf)
    yield Gumbel
    registry._OPS.pop(Gumbel, None)


def test_a_user_type_with_tails_gets_the_quantile_fallback(gumbel, x64):
    # two thetas at three p's each, broadcast by the caller: a level has the shape of a target (a (2, 1) theta
    # against 3 p's is refused, as log_prob refuses it)
    theta = Gumbel(jnp.broadcast_to(jnp.asarray([[0.5], [-1.0]]), (2, 3)),
                   jnp.broadcast_to(jnp.asarray([[2.0], [1e-3]]), (2, 3)))
    table = registry.entries(theta)
    assert getattr(table.quantile, "fallback", False) and getattr(table.isf, "fallback", False)
    ps = np.broadcast_to(np.array([1e-30, 1e-10, 0.5]), (2, 3))
    ref = stats.gumbel_r(np.array([[0.5], [-1.0]]), np.array([[2.0], [1e-3]]))

    @jax.jit
    def run(theta, ps, edges):
        one = Gumbel(theta.loc[0, 0], theta.scale[0, 0])
        grad = jax.grad(lambda t: mj.quantile(t, 0.3))(one)  # the implicit function's derivative
        slope = jax.grad(lambda q: mj.quantile(one, q))(0.3)
        ends = mj.quantile(Gumbel(jnp.zeros(4), jnp.ones(4)), edges)
        return (mj.quantile(theta, ps), mj.distributions.isf(theta, ps), mj.interval(theta, 0.9), grad, slope, ends)

    lower, upper, (lo, hi), grad, slope, ends = run(theta, jnp.asarray(ps), jnp.asarray([0.0, 1.0, -0.1, np.nan]))
    np.testing.assert_allclose(lower, ref.ppf(ps), rtol=_RTOL[np.float64])
    np.testing.assert_allclose(upper, ref.isf(ps), rtol=_RTOL[np.float64])
    np.testing.assert_allclose(np.stack([lo, hi])[..., 0], np.stack(ref.interval(0.9))[..., 0], rtol=_RTOL[np.float64])
    # y = loc - scale log(-log q): d/dloc = 1, d/dscale = -log(-log q), d/dq = 1 / f(y)
    np.testing.assert_allclose([grad.loc, grad.scale], [1.0, -math.log(-math.log(0.3))], rtol=1e-12)
    np.testing.assert_allclose(slope, 1 / stats.gumbel_r(0.5, 2.0).pdf(stats.gumbel_r(0.5, 2.0).ppf(0.3)), rtol=1e-10)
    # edges as scipy: the support's ends at 0 and 1, NaN outside [0, 1]
    np.testing.assert_array_equal(np.asarray(ends), [-np.inf, np.inf, np.nan, np.nan])
    # registering again with another log_cdf rebuilds the fallback from it
    registry.register(Gumbel, registry.entries(theta)._replace(log_cdf=lambda t, y: _gumbel_log_cdf(t, y) * 1.0))
    assert registry.entries(theta).quantile is not table.quantile


@pytest.mark.deep  # 4-10 s of compiling: CI's deep phase, for README's 5-minute suite
def test_batched_and_vmapped_thetas_agree(x64):
    """A batch of mixtures (fields (3, 2)) against a vmap over the same examples and the brentq reference."""
    loc = jnp.asarray([[-2.0, 3.0], [0.0, 1.0], [5.0, 5.5]])
    scale = jnp.asarray([[1.0, 0.5], [0.1, 10.0], [2.0, 0.2]])
    logits = jnp.log(jnp.broadcast_to(jnp.asarray(W), (3, 2)))
    theta = mj.MixtureNormal(logits, loc, scale)
    q = jnp.asarray([1e-12, 0.5, 0.99])
    batched = mj.quantile(theta, q)
    mapped = jax.vmap(mj.quantile)(theta, q)
    np.testing.assert_array_equal(batched, mapped)
    want = [_mixture_reference(W, np.asarray(loc[i]), np.asarray(scale[i]), float(q[i]), False) for i in range(3)]
    np.testing.assert_allclose(batched, want, rtol=_RTOL[np.float64])
    # one theta, many q: the theta is broadcast to q's shape; monotone in q
    many = mj.quantile(mj.MixtureNormal(logits[0], loc[0], scale[0]), jnp.linspace(0.01, 0.99, 7))
    assert np.all(np.diff(np.asarray(many)) > 0)


def test_scalar_types_have_tails_and_quantiles_vector_types_report_none():
    """Every ordered scalar type has all four; the vector-target and unordered types have no univariate CDF."""
    vector = {"MultivariateNormal", "Dirichlet", "PlackettLuce", "Independent", "Categorical", "Empirical"}
    for kind, table in list(registry._OPS.items()):
        if kind.__module__.startswith("tests") or kind.__name__ in vector:
            continue
        missing = [n for n in ("log_cdf", "log_sf", "quantile") if getattr(table, n) is None]
        assert not missing, f"{kind.__name__} has no {missing}"
        assert table.isf is not None or kind.__name__ == "Bernoulli", kind.__name__
    for name in ("MultivariateNormal", "Dirichlet", "PlackettLuce", "Categorical"):
        table = next(t for k, t in registry._OPS.items() if k.__name__ == name)
        assert table.log_cdf is None and table.quantile is None


@pytest.mark.deep  # 4-10 s of compiling: CI's deep phase, for README's 5-minute suite
def test_von_mises_tails_match_mpmath_in_both_dtypes():
    """log Pr(X <= -a) against mpmath's quadrature: an absolute error of the log (a relative error of the
    probability) below 1e-12 (float64) and 2e-6 (float32) times ``1 + |log Pr|``, away from the cut at pi, where
    the float's own rounding of pi - a dominates."""
    from mle_jax.distributions import von_mises
    ks = [0.0, 1e-3, 0.5, 10.0, 300.0, 1e4, 1e6]
    angles = [0.0, 1e-6, 0.3, 1.0, 2.0, 3.1]
    grid = np.array([(k, a) for k in ks for a in angles])
    with mp.workdps(30):
        want = np.array([float(mp.log(_von_mises_lower(k, a))) for k, a in grid])
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 2e-6)):
        with jax.enable_x64(dtype == np.float64):
            got = np.asarray(jax.jit(lambda k, a: von_mises._log_tails(k, a)[0])(jnp.asarray(grid[:, 0], dtype), jnp.asarray(grid[:, 1], dtype)))
        # the rounding of k and a (or of -2k sin^2(a/2) itself) moves log Pr by about eps |log Pr|
        scale = 1 + np.abs(want)
        assert np.all(np.abs(got - want) <= tol * scale), (dtype, grid[np.argmax(np.abs(got - want) / scale)])
    # scipy's series (k < 50) in the bulk, to its absolute 1e-12; log_cdf and log_sf add up to one
    y = np.linspace(-3.0, 3.0, 7)
    with jax.enable_x64(True):
        theta = mj.VonMises(jnp.asarray(0.7), jnp.asarray(2.0))
        cdf = np.exp(np.asarray(mj.log_cdf(theta, jnp.asarray(y + 0.7))))
        sf = np.exp(np.asarray(mj.log_sf(theta, jnp.asarray(y + 0.7 + 4 * np.pi))))  # any turn of the angle
    np.testing.assert_allclose(cdf, stats.vonmises(2.0, loc=0.7).cdf(y + 0.7), atol=1e-11)
    np.testing.assert_allclose(cdf + sf, 1.0, atol=1e-14)


@pytest.mark.deep
def test_the_zero_inflated_quantile_is_the_smallest_count(x64):
    """Brute force over the counts at many q, and monotone in q (``_zero_inflated_reference``)."""
    q = np.concatenate([[1e-300, 0.2], np.linspace(0.3, 0.999, 40)])
    theta = mj.ZeroInflated(jnp.full(q.shape, 0.3), mj.Poisson(jnp.full(q.shape, np.log(2.5))))
    got = np.asarray(mj.quantile(theta, jnp.asarray(q)))
    want = [_zero_inflated_reference(special.expit(0.3), 2.5, p, False) for p in q]
    np.testing.assert_array_equal(got, want)
    assert np.all(np.diff(got) >= 0)


@pytest.mark.deep
def test_von_mises_coverage_counts_any_turn_of_the_angle(x64):
    """The central interval around mu covers draws given in [-pi, pi] (not around mu) at its level."""
    theta = mj.VonMises(jnp.full(4000, 3.0), jnp.full(4000, 2.0))
    y = jax.vmap(mj.sample)(jax.random.split(jax.random.PRNGKey(0), 4000), theta)
    covered = float(jnp.mean(mj.scores.coverage(theta, y, 0.8)))
    # the binomial standard error at n = 4000 is 0.0063; 5 of them
    assert abs(covered - 0.8) < 5 * math.sqrt(0.8 * 0.2 / 4000)


@pytest.mark.deep  # four incomplete-function inversions compiled: 40 s
def test_a_quantile_beyond_the_floats_rounds_to_the_support_end():
    """The bisection stops on the first float above an open lower end (-max; the smallest normal float above
    0); where the true quantile lies beyond it, the answer is the end itself, as scipy's float64 quantile
    cast to float32 (-1.4e42 -> -inf; 7.9e-61 -> 0), and a quantile near that float is kept."""
    f32 = np.float32
    cases = [(mj.StudentT, (0.7, 0.0, 1.0), stats.t(0.7), [1e-30, 1e-20, 1e-3]),
             (mj.Gamma, (0.5, 1.0), stats.gamma(0.5), [1e-30, 1e-20, 1e-3]),
             (mj.Gamma, (2.5, 3.0), stats.gamma(2.5, scale=1 / 3.0), [1e-30, 1e-3])]
    for kind in (mj.StudentT, mj.Gamma):  # every (theta, p) of a type in one batched theta: one compile a type
        rows = [(params, ref, p) for k, params, ref, ps in cases if k is kind for p in ps]
        theta = kind(*(jnp.asarray(column, f32) for column in zip(*(params for params, _, _ in rows))))
        quantiles = np.asarray(jax.jit(mj.distributions.quantile)(theta, jnp.asarray([p for _, _, p in rows], f32)))
        for (params, ref, p), got in zip(rows, quantiles):
            with np.errstate(over="ignore"):  # float64, then rounded to float32 (-inf or 0 beyond its range)
                want = f32(ref.ppf(p))
            if abs(want) < np.finfo(f32).tiny:
                want = f32(0.0)  # a subnormal: XLA:CPU flushes those to 0 (7.9e-41 at p = 1e-20)
            if np.isfinite(want) and want != 0:
                np.testing.assert_allclose(got, want, rtol=_RTOL[np.float32], err_msg=f"{kind.__name__}{params} at {p}")
            else:
                assert got == want, (kind.__name__, params, p, got, want)
    with jax.enable_x64(True):  # float64: 7.9e-601 underflows to 0, the upper side overflows to +inf
        g = mj.Gamma(np.float64(0.5), np.float64(1.0))
        assert float(jax.jit(mj.distributions.quantile)(g, 1e-300)) == 0.0
        t = mj.StudentT(np.float64(0.7), np.float64(0.0), np.float64(1.0))
        t_quantile, t_isf = (float(v) for v in jax.jit(_both)(t, 1e-300))
        assert t_isf == np.inf == -t_quantile


@pytest.mark.deep  # the Student t's incomplete-beta inversion compiled in two dtypes: about 16 s
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: d.__name__)
def test_the_student_t_median_is_its_location_exactly_and_its_tails_keep_their_accuracy(dtype):
    """The t is symmetric about loc, so scipy's ``t.ppf(0.5)`` and ``t.isf(0.5)`` are loc exactly; the bisection
    alone stopped on the first float whose rounded CDF reaches 1/2 (-8.7e-17 in float64, -4.7e-8 in float32).
    Beside the median, quantile and isf stay within the module's tolerance of scipy's, from 1e-30 to 0.49."""
    params = [(3.0, 0.0, 1.0), (0.7, 1.0, 2.0), (1e6, -3.5, 1e-3), (1.0, 1e10, 1.0), (30.0, 0.0, 1e-30)]
    ps = np.array([1e-30, 1e-10, 0.25, 0.49, 0.5, 0.51, 0.75, 1 - 1e-6])
    rows = [(df, loc, scale, p) for df, loc, scale in params for p in ps]
    fields = [np.array([r[i] for r in rows], dtype) for i in range(4)]
    with jax.enable_x64(dtype == np.float64):
        got_q, got_isf = (np.asarray(v, np.float64) for v in _both(mj.StudentT(*map(jnp.asarray, fields[:3])),
                                                                    jnp.asarray(fields[3])))
    df, loc, scale, p = (f.astype(np.float64) for f in fields)  # scipy at the parameters as the dtype holds them
    want_q, want_isf = stats.t.ppf(p, df, loc, scale), stats.t.isf(p, df, loc, scale)
    median = p == 0.5
    assert np.array_equal(want_q[median], loc[median]) and np.array_equal(want_isf[median], loc[median])
    for got, want in ((got_q, want_q), (got_isf, want_isf)):
        assert np.array_equal(got[median], want[median])  # absolute and relative error 0
        tails = ~median & (np.abs(want) >= np.finfo(dtype).tiny) & (np.abs(want) < np.finfo(dtype).max)
        # near loc the absolute error carries loc's rounding (1e10 + O(1)): relative to |want| + |loc| ulp
        bound = _RTOL[dtype] * np.abs(want[tails]) + 4 * np.spacing(np.abs(loc[tails]).astype(dtype)).astype(float)
        assert np.all(np.abs(got[tails] - want[tails]) <= bound), (got[tails], want[tails])
