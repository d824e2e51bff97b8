"""Adversarial checks from the wave-10 audit: the ordinal family at extremes, ``mj.losses`` against torch and
optax, the samplers against scipy. Each compares with an independent reference (mpmath, closed forms, torch,
optax, scipy). Cheap cases run in the README suite; sweeps are ``deep``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mle_jax as mj


# ----------------------------------------------------------------------------- ordinal (cumulative logits)

def _phi(x):
    """``sig(x) sig(-x)`` in 50 digits: the curvature of ``-log sig(x)``."""
    import mpmath as mp
    mp.mp.dps = 40
    x = mp.mpf(float(x))
    return mp.exp(-x) / (1 + mp.exp(-x)) ** 2


def _ordinal_hessian(cuts, f, y):
    """The NLL's Hessian in ``(f, c_0, ..., c_{K-2})`` in closed form (mpmath): with ``u = c_y - f``,
    ``v = c_{y-1} - f``, ``g = c_y - c_{y-1}``, ``NLL = -log sig(u) - log sig(-v) - log(1 - exp(-g))``, a sum of
    three rank-one curvatures ``phi(u) a a' + phi(v) b b' + e^g / (e^g - 1)^2 d d'``, ``phi(x) = sig(x) sig(-x)``,
    ``a = e_{c_y} - e_f``, ``b = e_{c_{y-1}} - e_f``, ``d = e_{c_y} - e_{c_{y-1}}``."""
    import mpmath as mp
    mp.mp.dps = 40
    k = len(cuts) + 1
    h = np.zeros((k, k))
    c = [mp.mpf(float(v)) for v in cuts]
    f = mp.mpf(float(f))

    def add(weight, plus, minus):
        e = np.zeros(k)
        e[plus] += 1
        e[minus] -= 1
        h[:] += float(weight) * np.outer(e, e)
    if y < k - 1:
        add(_phi(c[y] - f), 1 + y, 0)
    if y > 0:
        add(_phi(c[y - 1] - f), y, 0)
    if 0 < y < k - 1:
        g = c[y] - c[y - 1]
        add(mp.exp(g) / mp.expm1(g) ** 2, 1 + y, y)
    return h


@pytest.mark.parametrize("dtype, far, rtol", [(jnp.float32, [-20.0, -15.0, -10.0, 12.0, 18.0], 2e-5),
                                              (jnp.float64, [-700.0, -70.0, -40.0, -30.0, 30.0, 45.0, 300.0], 1e-11)])
def test_ordinal_hessian_where_the_observed_class_is_far_off(dtype, far, rtol):
    """The ordinal kernel's written derivative ``sig(v) - sig(-u)`` was differentiated by the logistic's own rule,
    ``s (1 - s)``, which keeps only rounding where ``s`` is near 1: d2 NLL / df2 at ``f - c = 30`` (float64) was
    9.348e-14 for 9.358e-14, at 40 and beyond 0 for 4.2e-18; in float32 0.17 off at 15 and 0 at 20. Reference: the
    closed-form Hessian in (f, cutpoints) (``_ordinal_hessian``, mpmath), for every class of K = 4."""
    with jax.enable_x64(dtype == jnp.float64):
        cuts = np.asarray([-1.0, 0.0, 1.5], dtype)

        def nll(fc, y):
            return mj.losses.ordinal(fc[:1], y[None], cutpoints=fc[1:])[0]
        f = np.asarray([c + d for c in (cuts[0], cuts[-1]) for d in far], dtype)
        f, y = np.tile(f, 4), np.repeat(np.arange(4), len(f))  # every class of K = 4 at every f
        fc = jnp.concatenate([jnp.asarray(f)[:, None], jnp.broadcast_to(jnp.asarray(cuts), (len(f), 3))], axis=1)
        got = np.asarray(jax.jit(jax.vmap(jax.hessian(nll)))(fc, jnp.asarray(y)), np.float64)
        for g, fi, yi in zip(got, f, y):
            want = _ordinal_hessian(cuts, fi, yi)
            # the curvature in f, exact however small; every entry within rounding of the gradient (of size
            # 1: the cutpoints enter as c_0 and gaps, whose round trip leaves eps-sized second derivatives)
            np.testing.assert_allclose(g[0, 0], want[0, 0], rtol=rtol, err_msg=f"y={yi} f={fi}")
            np.testing.assert_allclose(g, want, rtol=rtol, atol=8 * np.finfo(dtype).eps)


def test_ordinal_family_hessian_in_its_score_matches_the_closed_form():
    """The recipe's path (``family.log_prob`` with the family's own parameters, K = 5 by selects and K = 20 by a
    gather): d2 NLL / df2 = phi(u) + phi(v) (``_ordinal_hessian``), float64, f up to 60 from the cutpoints."""
    with jax.enable_x64(True):
        for k in (5, 20):
            family = mj.ordinal(k)
            fp = family.init(jnp.float64)
            cuts = np.asarray(fp["first_cut"] + np.concatenate([[0.0], np.cumsum(np.ones(k - 2))]))
            f = np.tile([-60.0, -38.0, 0.25, 41.0, 60.0], 3)
            y = np.repeat([0, 1, k - 1], 5)
            hessian = jax.jit(jax.vmap(jax.hessian(lambda z, y: -family.log_prob(fp, z, y))))
            got = hessian(jnp.asarray(f), jnp.asarray(y))
            want = [_ordinal_hessian(cuts, fi, yi)[0, 0] for fi, yi in zip(f, y)]
            np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12)


# ----------------------------------------------------------------------------- mj.losses against torch and optax

@pytest.mark.deep
def test_classification_losses_match_torch_at_extreme_logits_with_smoothing_weights_and_ignored_labels():
    """``mj.losses.categorical`` / ``bernoulli`` against torch (float64) at logits of +-1e4, with label smoothing,
    class weights, and torch's ``ignore_index`` as a mask of ``mj.reduce_terms``: values and gradients of the
    mean. The one deliberate difference (documented): with smoothing AND class weights, mle_jax scales example i's
    whole smoothed term by ``w[y_i]`` (torch weights each class's smoothing term by ``w_k``), so the reference
    there is ``w[y_i]`` times torch's unweighted smoothed loss. optax's float32 cross-entropy at logits
    (-1e4, 1e4, 1e4, ...) reads 0.69336 for log 2; mle_jax's 0.693147."""
    torch = pytest.importorskip("torch", reason="torch is in the bench extra, not the test extra (a multi-GB "
                                                "CUDA build from PyPI): run with the bench extra installed")
    F = torch.nn.functional
    rng = np.random.default_rng(3)
    k, n = 5, 9
    z = rng.normal(size=(n, k)) * 3
    z[0], z[1] = [1e4, -1e4, 0, 3, -2], [-1e4, 1e4, 1e4, 0, 0]
    y = rng.integers(0, k, n)
    y[:2] = (1, 2)
    w = np.array([0.5, 2.0, 1.0, 0.25, 3.0])
    ignored = np.arange(n) % 4 == 3
    tz = torch.tensor(z, requires_grad=True)
    ty = torch.tensor(y)
    for dtype, rtol in ((np.float32, 3e-6), (np.float64, 1e-12)):
        with jax.enable_x64(dtype == np.float64):
            zj, yj = jnp.asarray(z.astype(dtype)), jnp.asarray(y)
            for eps in (0.0, 0.1):
                for weights in (None, w):
                    def mean(zz):
                        terms = mj.losses.categorical(zz, yj, label_smoothing=eps, class_weights=weights)
                        terms = jnp.where(jnp.asarray(ignored), 0.0, terms)  # torch's ignore_index
                        return jnp.sum(terms) / (np.sum(~ignored) if weights is None else np.sum(w[y][~ignored]))
                    value, grad = jax.value_and_grad(mean)(zj)
                    tw = torch.tensor(weights) if weights is not None and eps == 0 else None
                    terms = F.cross_entropy(tz, ty.masked_fill(torch.tensor(ignored), -100), weight=tw,
                                            label_smoothing=eps, reduction="none")
                    if weights is not None and eps > 0:
                        terms = terms * torch.tensor(w[y])
                    ref = terms.sum() / (np.sum(~ignored) if weights is None else np.sum(w[y][~ignored]))
                    ref_grad, = torch.autograd.grad(ref, tz)
                    np.testing.assert_allclose(float(value), ref.item(), rtol=rtol)
                    np.testing.assert_allclose(np.asarray(grad, np.float64), ref_grad.numpy(), rtol=rtol, atol=rtol / n)
            zb = np.concatenate([[1e4, -1e4, 1e4, -1e4, 40.0, -40.0], rng.normal(size=6) * 3])
            for yb in (np.array([0, 1, 1, 0] + [1, 0] * 4, float), rng.uniform(size=12)):
                tzb = torch.tensor(zb, requires_grad=True)
                ref = F.binary_cross_entropy_with_logits(tzb, torch.tensor(yb), reduction="none")
                ref_grad, = torch.autograd.grad(ref.sum(), tzb)
                loss = lambda zz: mj.losses.bernoulli(zz, jnp.asarray(yb.astype(dtype)), soft_labels=True)  # noqa: E731
                got = np.asarray(loss(jnp.asarray(zb.astype(dtype))), np.float64)
                np.testing.assert_allclose(got, ref.detach().numpy(), rtol=rtol, atol=rtol)
                grad = jax.grad(lambda zz: jnp.sum(loss(zz)))(jnp.asarray(zb.astype(dtype)))
                np.testing.assert_allclose(np.asarray(grad, np.float64), ref_grad.numpy(), rtol=rtol, atol=rtol)


# ----------------------------------------------------------------------------- samplers against scipy

_DRAWS = 20_000
# Dvoretzky-Kiefer-Wolfowitz: Pr(sup |F_n - F| > eps) <= 2 exp(-2 n eps^2) for ANY distribution (discrete ones too),
# so with eps below a false failure has probability < 1e-7 for every case, whatever the seed
_KS_EPS = float(np.sqrt(np.log(2 / 1e-7) / (2 * _DRAWS)))  # 0.0205 at n = 20,000


def _sampler_cases(stats):
    """name: (theta maker (float -> theta), scipy reference, transform of the draws, support check). Extreme yet
    representable parameters: no case puts more than ~1e-10 of its mass where the dtype rounds the draw to 0 or
    inf (those cases draw ``sample_log`` instead, compared on the log scale)."""
    from mle_jax.distributions import beta as _beta, gamma as _gamma
    unit = lambda d: (d >= 0) & (d <= 1)  # noqa: E731
    anyr = lambda d: ~np.isnan(d)  # noqa: E731
    pos = lambda d: d >= 0  # noqa: E731
    count = lambda d: (d >= 0) & (d == np.floor(d))  # noqa: E731
    q = 1e-6
    kappa = np.sqrt(q / (1 - q))
    return {
        "gamma(0.3, rate 1e-20)": (lambda: mj.Gamma(0.3, 1e-20), stats.gamma(0.3, scale=1e20), None, pos),
        "gamma(1e7, rate 1e20)": (lambda: mj.Gamma(1e7, 1e20), stats.gamma(1e7, scale=1e-20), None, pos),
        "log gamma(1e-3)": (lambda: mj.Gamma(1e-3, 1.0), stats.loggamma(1e-3), _gamma.sample_log, anyr),
        "beta(1e3, 1e3)": (lambda: mj.Beta(1e3, 1e3), stats.beta(1e3, 1e3), None, unit),
        "log beta(0.05, 5)": (lambda: mj.Beta(0.05, 5.0), stats.beta(0.05, 5.0), _beta.sample_log, anyr),
        "poisson(e^-5)": (lambda: mj.Poisson(-5.0), stats.poisson(np.exp(-5.0)), None, count),
        "poisson(e^12)": (lambda: mj.Poisson(12.0), stats.poisson(np.exp(12.0)), None, count),
        "poisson(e^17), the normal branch": (lambda: mj.Poisson(17.0), stats.poisson(np.exp(17.0)), None, count),
        "negative binomial(0.1, e^5)": (lambda: mj.NegativeBinomial(0.1, 5.0), stats.nbinom(0.1, 1 / (1 + np.exp(5.0))),
                                        None, count),
        "negative binomial(1e8, e^-16)": (lambda: mj.NegativeBinomial(1e8, -16.0),
                                          stats.nbinom(1e8, 1 / (1 + np.exp(-16.0))), None, count),
        "binomial(50, sig(3))": (lambda: mj.Binomial(50.0, 3.0), stats.binom(50, 1 / (1 + np.exp(-3.0))), None, count),
        "binomial(1e5, sig(-9))": (lambda: mj.Binomial(1e5, -9.0), stats.binom(100000, 1 / (1 + np.exp(9.0))), None,
                                   count),
        "student t(0.5)": (lambda: mj.StudentT(0.5, 0.0, 1e-20), stats.t(0.5, 0.0, 1e-20), None, anyr),
        "student t(1e30)": (lambda: mj.StudentT(1e30, 0.0, 1e30), stats.norm(0.0, 1e30), None, anyr),
        "von mises(1e-8)": (lambda: mj.VonMises(0.0, 1e-8), stats.vonmises(1e-8), None, lambda d: np.abs(d) <= 3.1416),
        "von mises(500) at 3.1": (lambda: mj.VonMises(3.1, 500.0), stats.vonmises(500.0, 3.1),
                                  lambda key, theta: jnp.mod(mj.distributions.sample(key, theta), 2 * jnp.pi),
                                  lambda d: (d >= 0) & (d < 6.2832)),
        "weibull(0.2, 1e-3)": (lambda: mj.Weibull(0.2, 1e-3), stats.weibull_min(0.2, scale=1e-3), None, pos),
        "weibull(1e4, 1)": (lambda: mj.Weibull(1e4, 1.0), stats.weibull_min(1e4), None, pos),
        "exponential(1e-30)": (lambda: mj.Exponential(1e-30), stats.expon(scale=1e30), None, pos),
        "laplace(1, 1e30)": (lambda: mj.Laplace(1.0, 1e30), stats.laplace(1.0, 1e30), None, anyr),
        "log normal(0, 10)": (lambda: mj.LogNormal(0.0, 10.0), stats.lognorm(10.0), None, pos),
        "asymmetric laplace(q 1e-6)": (lambda: mj.AsymmetricLaplace(0.0, 1.0, q),
                                       stats.laplace_asymmetric(kappa, scale=kappa / q), None, anyr),
    }


# one jitted sampler for every case: the cases of one type and dtype share its compile
_SAMPLE = jax.jit(jax.vmap(mj.distributions.sample))


def _check_sampler(name, dtype):
    from scipy import stats
    make, ref, draw, support = _sampler_cases(stats)[name]
    with jax.enable_x64(dtype == np.float64):
        theta = jax.tree.map(lambda a: jnp.full((_DRAWS,), a, dtype), make())
        keys = jax.random.split(jax.random.key(20261205), _DRAWS)
        d = np.asarray((jax.jit(jax.vmap(draw)) if draw else _SAMPLE)(keys, theta), np.float64)
    if d.ndim == 2:  # sample_log of the Beta: (log y, log(1 - y))
        d = d[:, 0]
        cdf = lambda t: ref.cdf(np.exp(t))  # noqa: E731
    else:
        cdf = ref.cdf
    assert np.all(np.isfinite(d) & support(d)), f"{name}: {np.unique(d[~(np.isfinite(d) & support(d))])[:5]}"
    xs = np.sort(d)
    with np.errstate(over="ignore", under="ignore"):
        f = cdf(xs)
    # sup |F_n - F| over the draws, both sides of each step (ties: the last of equal values counts)
    right = np.searchsorted(xs, xs, side="right") / _DRAWS
    left = np.searchsorted(xs, xs, side="left") / _DRAWS
    distance = max(np.max(np.abs(right - f)), np.max(np.abs(f - left)) if ref.dist.name in _CONTINUOUS else 0.0)
    assert distance < _KS_EPS, f"{name}, {np.dtype(dtype).name}: sup |F_n - F| = {distance:.4f} >= {_KS_EPS:.4f}"


_CONTINUOUS = {"gamma", "loggamma", "beta", "t", "norm", "vonmises", "weibull_min", "expon", "laplace", "lognorm",
               "laplace_asymmetric"}


@pytest.mark.deep
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_samplers_against_scipy(dtype):
    """Every theta type's sampler at extreme parameters (tiny and huge shapes, rates, scales, concentrations), in
    float32 and float64: no NaN, inf or out-of-support draw, and the Kolmogorov distance of 20,000 draws to scipy's
    CDF under the DKW bound ``sqrt(log(2 / 1e-7) / (2 n))`` = 0.0205, which a correct sampler exceeds with
    probability < 1e-7 (any seed). Draws the dtype rounds to 0 or inf are avoided by choice of parameters (such
    shapes are checked through ``sample_log``)."""
    from scipy import stats
    failures = []
    for name in _sampler_cases(stats):
        try:
            _check_sampler(name, dtype)
        except AssertionError as error:
            failures.append(str(error))
    assert not failures, "\n".join(failures)


@pytest.mark.deep
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binomial_sampler_at_a_billion_trials_and_near_certain_trials(dtype):
    """``jax.random.binomial``'s rejection test adds terms of the size of n: in float32 at n = 1e9 its draws had
    1.26x the binomial's variance (p = 0.3) and 1.43x (p = 3e-7), 1.005-1.013x already at n = 4e6. And the failure
    probability was ``1 - sigmoid(z)``, which float32 rounds: at z = 17 the failures of n = 1e6 trials averaged 0.0596
    for 0.0414. Now n is halved exactly (Devroye's beta splitting) down to 2^19 trials and the rarer outcome is drawn
    with ``sigmoid(-|z|)``. Bounds: 8 standard errors of 20,000 draws (the mean's ``sqrt(v / N)``; the near-normal
    counts' variance ratio ``sqrt(2 / N)`` = 0.01), exceeded by a correct sampler with probability < 1e-14."""
    cases = [(1e9, 0.3), (1e9, 3e-7), (4e6, 1e-4), (1e6, 1 / (1 + np.exp(-17.0)))]
    with jax.enable_x64(dtype == np.float64):
        n = np.repeat([c[0] for c in cases], _DRAWS)
        z = np.repeat([np.log(c[1]) - np.log1p(-c[1]) if c[1] < 0.5 else 17.0 for c in cases], _DRAWS)
        keys = jax.random.split(jax.random.key(7), len(n))
        d = np.asarray(jax.jit(jax.vmap(mj.distributions.sample))(keys, mj.Binomial(jnp.asarray(n, dtype),
                                                                                     jnp.asarray(z, dtype))),
                       np.float64).reshape(len(cases), _DRAWS)
    for (trials, p), draws in zip(cases, d):
        assert np.all((draws >= 0) & (draws <= trials) & (draws == np.floor(draws)))
        if p > 0.5:  # the failures: mean n (1 - p), Poisson-like
            failures = trials - draws
            mean = trials / (1 + np.exp(17.0))
            assert abs(failures.mean() - mean) < 8 * np.sqrt(mean / _DRAWS), (failures.mean(), mean)
            continue
        mean, var = trials * p, trials * p * (1 - p)
        assert abs(draws.mean() - mean) < 8 * np.sqrt(var / _DRAWS), (trials, p, draws.mean(), mean)
        assert abs(draws.var() / var - 1) < 8 * np.sqrt(2 / _DRAWS), (trials, p, draws.var() / var)


@pytest.mark.parametrize("dtype", [np.float32, pytest.param(np.float64, marks=pytest.mark.deep)])
def test_student_t_sampler_tail_at_small_df(dtype):
    """``jax.random.t`` draws ``Z sqrt(nu / (2 G))`` with ``G ~ Gamma(nu / 2)`` itself, which underflows to 0 for small
    nu: at nu = 0.05 in float32, 11% of the draws were inf, where ``Pr(|T| > 1e30) = 0.0284`` and ``Pr(|T| > 3.4e38)``
    (float32's range) ``= 0.0106``. Now ``log G`` is drawn. The number of draws beyond each bound is binomial; the test
    allows 8 of its standard deviations (a correct sampler fails with probability < 1e-14). Reference: the regularized
    incomplete beta ``Pr(|T| > x) = I_{nu / (nu + x^2)}(nu / 2, 1 / 2)`` (scipy's ``t.sf``, checked against mpmath)."""
    from scipy import stats
    n, df = 4000, 0.05
    with jax.enable_x64(dtype == np.float64):
        theta = mj.StudentT(jnp.full((n,), df, dtype), jnp.zeros((n,), dtype), jnp.ones((n,), dtype))
        d = np.asarray(jax.jit(jax.vmap(mj.distributions.sample))(jax.random.split(jax.random.key(11), n), theta),
                       np.float64)
    assert not np.any(np.isnan(d))
    for bound in (1e10, 1e30, float(np.finfo(dtype).max)):
        p = 2 * stats.t(df).sf(bound)
        beyond = np.sum(np.abs(d) > bound) if bound < np.finfo(dtype).max else np.sum(np.isinf(d))
        assert abs(beyond - n * p) < 8 * np.sqrt(n * p * (1 - p)) + 1, (bound, beyond, n * p)


# ----------------------------------------------------------------------------- properties of the discrete families

@pytest.mark.deep
def test_negative_binomial_cdf_at_a_large_total_count_in_float32():
    """``NegativeBinomial(r = 1e8, logits = -17)`` (mean 4.14, nearly Poisson) in float32: ``Pr(Y <= 3)`` read 0.684
    for 0.407 (0.264 for 0.218 at 2, 0.0869 for 0.0818 at 1), not monotone in y; float64 is right. The CDF is
    ``I_p(r, k + 1)`` from ``incomplete.log_betainc``, which at a = 1e8, b = 2, 3, 4, x = sig(17) gives -2.443,
    -1.332, -0.380 for -2.503, -1.522, -0.900 (mpmath); b = 1 is the exact ``p^r`` and b >= 5 is right. Reference:
    the partial sums of the pmf (scipy ``nbinom.cdf``)."""
    from scipy import stats
    theta = mj.NegativeBinomial(jnp.float32(1e8), jnp.float32(-17.0))
    y = np.arange(8)
    got = np.exp(np.asarray(jax.vmap(mj.log_cdf, (None, 0))(theta, jnp.asarray(y, jnp.float32)), np.float64))
    np.testing.assert_allclose(got, stats.nbinom(1e8, 1 / (1 + np.exp(-17.0))).cdf(y), rtol=1e-4)


@pytest.mark.deep
def test_count_pmfs_sum_to_one_and_cdfs_are_their_partial_sums():
    """Poisson, binomial and negative binomial at extreme parameters (rates e^-30 ... e^12, n up to 1e6 with logits
    +-20, r from 1e-3 to 1e8), float64: ``sum_y Pr(y) = 1`` over the support (to 1e-10, the mass left off below
    1e-25), ``Pr(Y <= y)`` equals the partial sums of the pmf (to 1e-10) and is monotone, and each ``log Pr(y)``
    matches scipy where scipy is itself exact (to 1e-9 absolute, above 1e-300, logits within +-10: beyond, scipy's
    ``1 - p`` is the less exact of the two, ``log Pr(0) = -599.99999899`` for ``30 log sig(-20) = -600.00000006``)."""
    from scipy import stats
    from scipy.special import logsumexp
    cases = []
    for lr in (-30.0, -3.0, 5.0, 12.0):
        rate = np.exp(lr)
        width = 9 * np.sqrt(rate)
        lo, hi = (int(rate - width), int(rate + width)) if lr > 10 else (0, int(rate + 14 * np.sqrt(rate) + 60))
        cases.append((mj.Poisson(lr), stats.poisson(rate), np.arange(lo, hi)))
    for n, z in ((50.0, 3.0), (1e4, -2.0), (30.0, 20.0), (30.0, -20.0), (1e6, -14.0)):
        p = 1 / (1 + np.exp(-z))
        top = int(min(n, n * p + 14 * np.sqrt(n * p) + 60))
        cases.append((mj.Binomial(n, z), stats.binom(int(n), p), np.arange(0, top + 1)))
    for r, z in ((1e-3, 0.0), (0.5, 3.0), (1e3, -3.0), (1e8, -17.0), (2.0, 5.0)):
        m = r * np.exp(z)
        cases.append((mj.NegativeBinomial(r, z), stats.nbinom(r, 1 / (1 + np.exp(z))),
                      np.arange(0, int(m + 25 * np.sqrt(m * (1 + np.exp(z))) + 400))))
    with jax.enable_x64(True):
        for theta, ref, ys in cases:
            theta = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), theta)
            assert len(ys) <= 8192
            y = jnp.asarray(np.pad(ys, (0, 8192 - len(ys)), mode="edge"), jnp.float64)  # one shape: one compile a type
            lp = np.asarray(jax.jit(jax.vmap(mj.log_prob, (None, 0)))(theta, y))[:len(ys)]
            lc = np.asarray(jax.jit(jax.vmap(mj.log_cdf, (None, 0)))(theta, y))[:len(ys)]
            label = f"{type(theta).__name__}{tuple(float(v) for v in theta)}"
            if ys[0] == 0:
                assert abs(np.exp(logsumexp(lp)) - 1) < 1e-10, label
                np.testing.assert_allclose(np.exp(lc), np.exp(np.logaddexp.accumulate(lp)), atol=1e-10, err_msg=label)
            assert np.all(np.diff(lc) >= -1e-12), label
            if abs(float(theta[-1])) > 10:  # scipy forms 1 - p: its own error there is 1e-9 (30 x 20 logits)
                continue
            want = ref.logpmf(ys)
            keep = want > -690
            np.testing.assert_allclose(lp[keep], want[keep], atol=1e-9, rtol=1e-9, err_msg=label)


def _torch_twin(torch, name, p):
    """torch.distributions' twin of a theta, on its fields in order."""
    D = torch.distributions
    return {"normal": lambda: D.Normal(p[0], p[1]), "laplace": lambda: D.Laplace(p[0], p[1]),
            "student_t": lambda: D.StudentT(p[0], p[1], p[2]), "gamma": lambda: D.Gamma(p[0], p[1]),
            "beta": lambda: D.Beta(p[0], p[1]), "negative_binomial": lambda: D.NegativeBinomial(p[0], logits=p[1]),
            "exponential": lambda: D.Exponential(p[0]), "log_normal": lambda: D.LogNormal(p[0], p[1]),
            "dirichlet": lambda: D.Dirichlet(p[0]), "mvn_cholesky": lambda: D.MultivariateNormal(p[0], scale_tril=p[1]),
            "mixture_normal": lambda: D.MixtureSameFamily(D.Categorical(logits=p[0]), D.Normal(p[1], p[2]))}[name]()


@pytest.mark.deep
def test_family_losses_match_torch_distributions_in_value_and_gradient():
    """``mj.losses.nll`` of eleven families on raw outputs of scale 8 (float64) against torch.distributions'
    ``-log_prob`` of the same theta: values to 1e-9 (relative, or absolute below 1), and gradients in the raw
    outputs, torch's score in the theta chained with the link's Jacobian, to 1e-9 of the largest entry (the MVN's, plus
    what an ill-conditioned Cholesky solve costs any backward-stable code: eps times Skeel's condition number). Not here:
    von Mises (torch's Bessel approximations are 1e-7 off scipy; mle_jax matches scipy to 1e-15) and the Laplace at
    ``y = mu`` (mle_jax takes the subgradient ``-1/b``, torch 0)."""
    torch = pytest.importorskip("torch", reason="torch is in the bench extra, not the test extra (a multi-GB "
                                                "CUDA build from PyPI): run with the bench extra installed")
    families = {"normal": mj.normal(), "laplace": mj.laplace(), "student_t": mj.student_t(), "gamma": mj.gamma(),
                "beta": mj.beta(), "negative_binomial": mj.negative_binomial("per_example"),
                "exponential": mj.exponential(), "log_normal": mj.log_normal(), "dirichlet": mj.dirichlet(3),
                "mvn_cholesky": mj.mvn_cholesky(2), "mixture_normal": mj.mixture_normal(2)}
    rng = np.random.default_rng(10)
    torch.manual_seed(10)
    with jax.enable_x64(True):
        for name, family in families.items():
            fp = family.init(jnp.float64)
            for scale in (8.0,):
                raw = rng.normal(size=(24,) + family.raw_shape) * scale
                theta = jax.vmap(family.theta, (None, 0))(fp, jnp.asarray(raw))
                fields = [torch.tensor(np.asarray(a), requires_grad=True) for a in theta]
                y = _torch_twin(torch, name, [f.detach() for f in fields]).sample().numpy()
                flat = y.reshape(len(y), -1)
                keep = np.all(np.isfinite(flat) & (np.abs(flat) < 1e12), axis=1)
                if name in ("gamma", "exponential", "log_normal", "beta", "dirichlet"):
                    keep &= np.all((flat > 1e-200) & (flat < (1 - 1e-15 if name in ("beta", "dirichlet") else 1e200)),
                                   axis=1)
                raw, y = raw[keep], y[keep]
                fields = [torch.tensor(np.asarray(a)[keep], requires_grad=True) for a in theta]
                ref = -_torch_twin(torch, name, fields).log_prob(torch.tensor(y))
                scores = torch.autograd.grad(ref.sum(), fields)
                got = np.asarray(mj.losses.nll(family, jnp.asarray(raw), jnp.asarray(y), fp))
                ref_value = ref.detach().numpy()
                allowance = grad_allowance = np.zeros(len(raw))
                if name == "mvn_cholesky":
                    # |z|^2/2, z = L^-1 (y - mu), is as ill-conditioned as the solve: with Skeel's condition number
                    # kappa = || |L^-1| |L| |z| || / ||z||, any backward-stable solve (torch's and mle_jax's alike) is
                    # off by about eps kappa |z|^2. A draw with L's diagonal (5.3, 2.3e-9) has kappa ~ 2e9, and both
                    # read 2-3e-9 of mpmath's value at the same float64 inputs (the 1e-9 below failed on it)
                    mu, chol = np.asarray(theta[0])[keep], np.asarray(theta[1])[keep]
                    z = np.linalg.solve(chol, (np.asarray(y) - mu)[..., None])[..., 0]
                    skeel = np.abs(np.linalg.inv(chol)) @ np.abs(chol) @ np.abs(z)[..., None]
                    kappa = np.linalg.norm(skeel[..., 0], axis=1) / np.linalg.norm(z, axis=1)
                    allowance = 8 * np.finfo(np.float64).eps * kappa * np.sum(z * z, axis=1)
                    # the score carries the same solve (L^-T z and z z^T): its error is about eps kappa (1 + |z|^2)
                    # of its largest entry (3.7e-7 of it at the draw above)
                    grad_allowance = 8 * np.finfo(np.float64).eps * kappa * (1.0 + np.sum(z * z, axis=1))
                bound = 1e-9 + 1e-9 * np.abs(ref_value) + allowance
                assert np.all(np.abs(got - ref_value) <= bound), (name, np.max(np.abs(got - ref_value) / bound))
                grad = np.asarray(jax.vmap(jax.grad(lambda r, t: -family.log_prob(fp, r, t)))(jnp.asarray(raw),
                                                                                            jnp.asarray(y)))
                jac = jax.vmap(jax.jacobian(lambda r: family.theta(fp, r)))(jnp.asarray(raw))
                want = np.zeros_like(grad)
                for j, s in zip(jac, scores):
                    j, s = np.asarray(j), s.numpy()
                    want += np.einsum("nps,np->ns", j.reshape(len(raw), s[0].size, -1),
                                      s.reshape(len(raw), -1)).reshape(grad.shape)
                size = np.abs(want).reshape(len(raw), -1).max(axis=1)
                tie = np.asarray(y) == raw[:, 0] if name == "laplace" else np.zeros(len(raw), bool)
                err = np.abs(grad - want).reshape(len(raw), -1).max(axis=1) / np.maximum(size, 1.0)
                assert np.all((err < 1e-9 + grad_allowance) | tie), (name, scale, err.max())
