"""Value and gradient of the summed NLL of every family beyond the lecture's five: mle_jax's recipe
against a hand-written jnp loss of the same maths, TFP-on-JAX and distrax ``log_prob`` and torch's
loss or ``log_prob`` (where each has the family), float32 and float64, N = 1e2 ... 1e7.

    python -m experiments.benchmarks --only families            # N = 1e2 ... 1e7, float32 and float64
    python -m experiments.benchmarks --only families --quick    # N = 1e3, 1e5
    python -m experiments.benchmarks.families --quick --family poisson --dtype float32

The model is a bias on precomputed raw outputs, ``raw_i = x_i + b``; every contender computes
``-sum_i log Pr(y_i | raw_i)`` and its gradient with respect to ``b`` (and the family's own parameter
where it is learned: the negative binomial's r, the Student t's df), on the same inputs passed as
arguments; contenders are interleaved in a fresh random order each repetition (``timing.round_robin``).
"""

from __future__ import annotations

import argparse
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import mle_jax as mj

from .timing import paired_ratio, round_robin

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
sp = jax.nn.softplus
gl = jax.scipy.special.gammaln


class Workload(NamedTuple):
    family: Any
    b: np.ndarray            # the bias, shape family.raw_shape
    fp: dict                 # the family's own raw parameters ({} if none)
    learn_fp: bool           # differentiate with respect to fp too
    x: np.ndarray            # (N, *raw_shape)
    y: np.ndarray            # (N, *event_shape)
    jnp_nll: Callable        # (raw, fp, y) -> summed NLL, hand-written
    tfp_nll: Callable | None
    distrax_nll: Callable | None
    torch_nll: Callable | None  # (raw, fp, y) on torch tensors


def _tfd():
    from tensorflow_probability.substrates import jax as tfp
    return tfp.distributions


def _distrax():
    import distrax
    return distrax


def _torch():
    import torch
    return torch


def _col(raw, j):
    return raw[:, j]


# ----------------------------------------------------------------------------- workloads

def poisson(n, rng):
    x = rng.normal(1.0, 1.0, size=n)
    y = rng.poisson(np.exp(x)).astype(float)
    return Workload(mj.poisson(), np.array(0.1), {}, False, x, y,
                    lambda r, fp, y: jnp.sum(jnp.exp(r) - y * r + gl(y + 1)),
                    lambda r, fp, y: -jnp.sum(_tfd().Poisson(log_rate=r).log_prob(y)),
                    None,
                    lambda r, fp, y: -_torch().distributions.Poisson(r.exp()).log_prob(y).sum())


def _nb_jnp(r, fp, y):
    tc = sp(fp["total_count"])
    logits = r - jnp.log(tc)
    return -jnp.sum(gl(y + tc) - gl(tc) - gl(y + 1) + tc * jax.nn.log_sigmoid(-logits)
                    + y * jax.nn.log_sigmoid(logits))


def _nb(learn):
    def make(n, rng):
        x = rng.normal(1.0, 1.0, size=n)
        r = 5.0
        y = rng.negative_binomial(r, r / (r + np.exp(x))).astype(float)
        fam = mj.negative_binomial()
        fp = {"total_count": np.asarray(mj.links.softplus_inverse(r))}

        def tfp_nll(raw, fp, y):
            tc = sp(fp["total_count"])
            return -jnp.sum(_tfd().NegativeBinomial(tc, logits=raw - jnp.log(tc)).log_prob(y))

        def torch_nll(raw, fp, y):
            torch = _torch()
            tc = torch.nn.functional.softplus(fp["total_count"])
            return -torch.distributions.NegativeBinomial(tc, logits=raw - tc.log()).log_prob(y).sum()
        return Workload(fam, np.array(0.1), fp, learn, x, y, _nb_jnp, tfp_nll, None, torch_nll)
    return make


def _student_t(learn):
    def make(n, rng):
        x = rng.normal(size=n)
        y = x + rng.standard_t(5.0, size=n)
        fam = mj.student_t("learned" if learn else 5.0, scale=1.0)
        fp = {"df": np.asarray(mj.links.softplus_inverse(5.0))} if learn else {}

        def df(fp):
            return sp(fp["df"]) if learn else 5.0

        def jnp_nll(raw, fp, y):
            nu = df(fp)
            z = y - raw
            return -jnp.sum(gl((nu + 1) / 2) - gl(nu / 2) - 0.5 * jnp.log(nu * jnp.pi)
                            - (nu + 1) / 2 * jnp.log1p(z * z / nu))

        def torch_nll(raw, fp, y):
            torch = _torch()
            nu = torch.nn.functional.softplus(fp["df"]) if learn else 5.0
            return -torch.distributions.StudentT(nu, raw, 1.0).log_prob(y).sum()
        return Workload(fam, np.array(0.1), fp, learn, x, y, jnp_nll,
                        lambda raw, fp, y: -jnp.sum(_tfd().StudentT(df(fp), raw, 1.0).log_prob(y)),
                        None, torch_nll)
    return make


def laplace(n, rng):
    x = rng.normal(size=n)
    y = x + rng.laplace(size=n)
    return Workload(mj.laplace(1.0), np.array(0.1), {}, False, x, y,
                    lambda r, fp, y: jnp.sum(jnp.abs(y - r)) + y.shape[0] * math.log(2.0),
                    lambda r, fp, y: -jnp.sum(_tfd().Laplace(r, 1.0).log_prob(y)),
                    lambda r, fp, y: -jnp.sum(_distrax().Laplace(r, 1.0).log_prob(y)),
                    lambda r, fp, y: -_torch().distributions.Laplace(r, 1.0).log_prob(y).sum())


def _two_softplus(family, sample, jnp_nll, tfp_cls, distrax_cls, torch_cls, kind="gamma"):
    def make(n, rng):
        x = rng.normal(0.5, 0.3, size=(n, 2))
        a, b = np.log1p(np.exp(x[:, 0])), np.log1p(np.exp(x[:, 1]))
        y = sample(rng, a, b)

        def tfp_nll(raw, fp, y):
            return -jnp.sum(getattr(_tfd(), tfp_cls)(sp(raw[:, 0]), sp(raw[:, 1])).log_prob(y))

        def distrax_nll(raw, fp, y):
            return -jnp.sum(getattr(_distrax(), distrax_cls)(sp(raw[:, 0]), sp(raw[:, 1])).log_prob(y))

        def torch_nll(raw, fp, y):
            torch = _torch()
            f = torch.nn.functional.softplus
            return -getattr(torch.distributions, torch_cls)(f(raw[:, 0]), f(raw[:, 1])).log_prob(y).sum()
        return Workload(family, np.array([0.1, 0.2]), {}, False, x, y, jnp_nll, tfp_nll, distrax_nll, torch_nll)
    return make


def _gamma_jnp(raw, fp, y):
    a, b = sp(raw[:, 0]), sp(raw[:, 1])
    return -jnp.sum(a * jnp.log(b) + (a - 1) * jnp.log(y) - b * y - gl(a))


def _beta_jnp(raw, fp, y):
    a, b = sp(raw[:, 0]), sp(raw[:, 1])
    return -jnp.sum((a - 1) * jnp.log(y) + (b - 1) * jnp.log1p(-y) - gl(a) - gl(b) + gl(a + b))


def _gamma_sample(rng, a, b):
    return np.maximum(rng.gamma(a, 1 / b), 1e-30)


def _beta_sample(rng, a, b):
    return np.clip(rng.beta(a + 1, b + 1), 1e-6, 1 - 1e-6)


def von_mises(n, rng):
    x = rng.normal(0.0, 0.5, size=(n, 2))
    y = rng.vonmises(x[:, 0], np.log1p(np.exp(x[:, 1])) + 1.0)

    def jnp_nll(raw, fp, y):
        k = sp(raw[:, 1])
        return -jnp.sum(k * (jnp.cos(y - raw[:, 0]) - 1) - jnp.log(jax.scipy.special.i0e(k))
                        - math.log(2 * math.pi))

    def torch_nll(raw, fp, y):
        return -_torch().distributions.VonMises(raw[:, 0], _torch().nn.functional.softplus(raw[:, 1])).log_prob(y).sum()
    return Workload(mj.von_mises(), np.array([0.1, 0.2]), {}, False, x, y, jnp_nll,
                    lambda raw, fp, y: -jnp.sum(_tfd().VonMises(raw[:, 0], sp(raw[:, 1])).log_prob(y)),
                    lambda raw, fp, y: -jnp.sum(_distrax().VonMises(raw[:, 0], sp(raw[:, 1])).log_prob(y)),
                    torch_nll)


K_MIX = 3


def mixture(n, rng):
    k = K_MIX
    x = rng.normal(size=(n, 3 * k)) * 0.3
    y = rng.normal(size=n) * 2

    def jnp_nll(raw, fp, y):
        logits, loc, s = raw[:, :k], raw[:, k:2 * k], sp(raw[:, 2 * k:])
        z = (y[:, None] - loc) / s
        comp = -0.5 * z * z - jnp.log(s) - HALF_LOG_2PI
        return -jnp.sum(jax.nn.logsumexp(jax.nn.log_softmax(logits) + comp, axis=1))

    def tfp_nll(raw, fp, y):
        tfd = _tfd()
        d = tfd.MixtureSameFamily(tfd.Categorical(logits=raw[:, :k]), tfd.Normal(raw[:, k:2 * k], sp(raw[:, 2 * k:])))
        return -jnp.sum(d.log_prob(y))

    def distrax_nll(raw, fp, y):
        dx = _distrax()
        d = dx.MixtureSameFamily(dx.Categorical(logits=raw[:, :k]), dx.Normal(raw[:, k:2 * k], sp(raw[:, 2 * k:])))
        return -jnp.sum(d.log_prob(y))

    def torch_nll(raw, fp, y):
        td = _torch().distributions
        d = td.MixtureSameFamily(td.Categorical(logits=raw[:, :k]),
                                 td.Normal(raw[:, k:2 * k], _torch().nn.functional.softplus(raw[:, 2 * k:])))
        return -d.log_prob(y).sum()
    return Workload(mj.mixture_normal(k), np.zeros(3 * k), {}, False, x, y, jnp_nll, tfp_nll, distrax_nll, torch_nll)


D_MVN = 3


def mvn(n, rng):
    d = D_MVN
    rows, cols = np.tril_indices(d)
    m = len(rows)
    x = rng.normal(size=(n, d + m)) * 0.2
    y = rng.normal(size=(n, d))
    diag_pos = np.array([i for i, (r, c) in enumerate(zip(rows, cols)) if r == c])

    def tril_jnp(raw):
        ent = raw[:, d:]
        ent = ent.at[:, diag_pos].set(sp(ent[:, diag_pos]))
        return jnp.zeros((raw.shape[0], d, d), raw.dtype).at[:, rows, cols].set(ent)

    def jnp_nll(raw, fp, y):
        tril = tril_jnp(raw)
        z = jax.scipy.linalg.solve_triangular(tril, (y - raw[:, :d])[..., None], lower=True)[..., 0]
        return jnp.sum(0.5 * jnp.sum(z * z, -1) + jnp.sum(jnp.log(jnp.diagonal(tril, axis1=1, axis2=2)), -1)
                       + d * HALF_LOG_2PI)

    def torch_nll(raw, fp, y):
        torch = _torch()
        ent = raw[:, d:]
        diag = torch.zeros(m, dtype=torch.bool)
        diag[diag_pos] = True
        ent = torch.where(diag, torch.nn.functional.softplus(ent), ent)
        tril = torch.zeros(raw.shape[0], d, d, dtype=raw.dtype)
        tril[:, rows, cols] = ent
        return -torch.distributions.MultivariateNormal(raw[:, :d], scale_tril=tril).log_prob(y).sum()
    return Workload(mj.mvn_cholesky(d), np.zeros(d + m), {}, False, x, y, jnp_nll,
                    lambda raw, fp, y: -jnp.sum(_tfd().MultivariateNormalTriL(raw[:, :d], tril_jnp(raw)).log_prob(y)),
                    lambda raw, fp, y: -jnp.sum(_distrax().MultivariateNormalTri(raw[:, :d], tril_jnp(raw)).log_prob(y)),
                    torch_nll)


K_ORD = 5


def ordinal(n, rng):
    k = K_ORD
    fam = mj.ordinal(k)
    fp = {key: np.asarray(v) for key, v in fam.init(jnp.float32).items()}
    x = rng.normal(size=n)
    y = np.clip(np.round(x + rng.logistic(size=n) + (k - 1) / 2), 0, k - 1).astype(np.int32)

    def cuts_of(fp):
        gaps = sp(fp["gaps"])
        return fp["first_cut"] + jnp.concatenate([jnp.zeros((1,), gaps.dtype), jnp.cumsum(gaps)])

    def jnp_nll(raw, fp, y):
        c = cuts_of(fp)
        upper = jnp.concatenate([c, jnp.array([jnp.inf], c.dtype)])[y]
        lower = jnp.concatenate([jnp.array([-jnp.inf], c.dtype), c])[y]
        return -jnp.sum(jnp.log(jax.nn.sigmoid(upper - raw) - jax.nn.sigmoid(lower - raw)))

    def tfp_nll(raw, fp, y):
        return -jnp.sum(_tfd().OrderedLogistic(cuts_of(fp), raw).log_prob(y))
    return Workload(fam, np.array(0.1), fp, True, x, y, jnp_nll, tfp_nll, None, None)


def _censored(side):
    def make(n, rng):
        x = rng.normal(size=n)
        value = x + rng.normal(size=n)
        s = np.where(rng.random(n) < 0.3, side, 0.0)
        y = np.stack([value, s], axis=1)

        def jnp_nll(raw, fp, y):
            v, sd = y[:, 0], y[:, 1]
            z = v - raw
            obs = -0.5 * z * z - HALF_LOG_2PI
            tail = jax.scipy.special.log_ndtr(side * -z)
            return -jnp.sum(jnp.where(sd == 0, obs, tail))

        def tfp_nll(raw, fp, y):
            d = _tfd().Normal(raw, 1.0)
            v, sd = y[:, 0], y[:, 1]
            tail = d.log_survival_function(v) if side > 0 else d.log_cdf(v)
            return -jnp.sum(jnp.where(sd == 0, d.log_prob(v), tail))

        def torch_nll(raw, fp, y):
            torch = _torch()
            v, sd = y[:, 0], y[:, 1]
            d = torch.distributions.Normal(raw, 1.0)
            tail = torch.special.log_ndtr(side * (raw - v))
            return -torch.where(sd == 0, d.log_prob(v), tail).sum()
        return Workload(mj.censored(mj.normal(1.0)), np.array(0.1), {}, False, x, y, jnp_nll, tfp_nll, None,
                        torch_nll)
    return make


def binomial(n, rng):
    x = rng.normal(size=n)
    trials = rng.integers(1, 20, size=n)
    succ = rng.binomial(trials, 1 / (1 + np.exp(-x)))
    y = np.stack([succ, trials], axis=1).astype(float)

    def jnp_nll(raw, fp, y):
        k, m = y[:, 0], y[:, 1]
        return -jnp.sum(gl(m + 1) - gl(k + 1) - gl(m - k + 1) + k * jax.nn.log_sigmoid(raw)
                        + (m - k) * jax.nn.log_sigmoid(-raw))

    def torch_nll(raw, fp, y):
        return -_torch().distributions.Binomial(y[:, 1], logits=raw).log_prob(y[:, 0]).sum()
    return Workload(mj.binomial(), np.array(0.1), {}, False, x, y, jnp_nll,
                    lambda raw, fp, y: -jnp.sum(_tfd().Binomial(y[:, 1], logits=raw).log_prob(y[:, 0])),
                    None, torch_nll)


def zero_inflated(n, rng):
    x = rng.normal(0.0, 0.5, size=(n, 2)) + np.array([1.0, -1.0])
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-x[:, 1])), 0.0, rng.poisson(np.exp(x[:, 0])))

    def jnp_nll(raw, fp, y):
        z, g = raw[:, 0], raw[:, 1]
        pois = y * z - jnp.exp(z) - gl(y + 1)
        log_g, log_1g = jax.nn.log_sigmoid(g), jax.nn.log_sigmoid(-g)
        return -jnp.sum(jnp.where(y == 0, jnp.logaddexp(log_g, log_1g + pois), log_1g + pois))

    def tfp_nll(raw, fp, y):
        tfd = _tfd()
        d = tfd.Mixture(tfd.Categorical(logits=jnp.stack([raw[:, 1], jnp.zeros_like(raw[:, 1])], -1)),
                        [tfd.Deterministic(jnp.zeros_like(raw[:, 0])), tfd.Poisson(log_rate=raw[:, 0])])
        return -jnp.sum(d.log_prob(y))

    def torch_nll(raw, fp, y):
        torch = _torch()
        z, g = raw[:, 0], raw[:, 1]
        pois = torch.distributions.Poisson(z.exp()).log_prob(y)
        log_g, log_1g = torch.nn.functional.logsigmoid(g), torch.nn.functional.logsigmoid(-g)
        return -torch.where(y == 0, torch.logaddexp(log_g, log_1g + pois), log_1g + pois).sum()
    return Workload(mj.zero_inflated(mj.poisson()), np.array([0.1, 0.2]), {}, False, x, y, jnp_nll, tfp_nll, None,
                    torch_nll)


def exponential(n, rng):
    x = rng.normal(size=n)
    y = rng.exponential(np.exp(-x))
    return Workload(mj.exponential(), np.array(0.1), {}, False, x, y,
                    lambda r, fp, y: -jnp.sum(r - jnp.exp(r) * y),
                    lambda r, fp, y: -jnp.sum(_tfd().Exponential(jnp.exp(r)).log_prob(y)),
                    None,
                    lambda r, fp, y: -_torch().distributions.Exponential(r.exp()).log_prob(y).sum())


def weibull(n, rng):
    x = rng.normal(size=n)
    k = 1.5
    y = np.exp(x) * rng.weibull(k, size=n)
    fam = mj.weibull(k)

    def jnp_nll(raw, fp, y):
        ly = jnp.log(y) - raw
        return -jnp.sum(math.log(k) - raw + (k - 1) * ly - jnp.exp(k * ly))
    return Workload(fam, np.array(0.1), {}, False, x, y, jnp_nll,
                    lambda raw, fp, y: -jnp.sum(_tfd().Weibull(k, jnp.exp(raw)).log_prob(y)),
                    None,
                    lambda raw, fp, y: -_torch().distributions.Weibull(raw.exp(), k).log_prob(y).sum())


def log_normal(n, rng):
    x = rng.normal(size=(n, 2)) * 0.3
    y = np.exp(x[:, 0] + np.log1p(np.exp(x[:, 1])) * rng.normal(size=n))

    def jnp_nll(raw, fp, y):
        s = sp(raw[:, 1])
        ly = jnp.log(y)
        z = (ly - raw[:, 0]) / s
        return jnp.sum(0.5 * z * z + jnp.log(s) + HALF_LOG_2PI + ly)

    def torch_nll(raw, fp, y):
        torch = _torch()
        return -torch.distributions.LogNormal(raw[:, 0], torch.nn.functional.softplus(raw[:, 1])).log_prob(y).sum()
    return Workload(mj.log_normal(), np.array([0.1, 0.2]), {}, False, x, y, jnp_nll,
                    lambda raw, fp, y: -jnp.sum(_tfd().LogNormal(raw[:, 0], sp(raw[:, 1])).log_prob(y)),
                    None, torch_nll)


Q_AL = 0.9


def asymmetric_laplace(n, rng):
    x = rng.normal(size=n)
    y = x + rng.laplace(size=n)
    q = Q_AL

    def jnp_nll(raw, fp, y):
        u = y - raw
        return jnp.sum(u * (q - (u < 0))) - y.shape[0] * math.log(q * (1 - q))

    def torch_nll(raw, fp, y):
        u = y - raw
        return (u * (q - (u < 0).to(u.dtype))).sum() - y.shape[0] * math.log(q * (1 - q))
    return Workload(mj.asymmetric_laplace(q), np.array(0.1), {}, False, x, y, jnp_nll, None, None, torch_nll)


K_DIR = 4


def dirichlet(n, rng):
    k = K_DIR
    x = rng.normal(1.0, 0.3, size=(n, k))
    y = rng.dirichlet(np.ones(k) * 2, size=n)
    y = np.clip(y, 1e-6, 1)
    y = y / y.sum(1, keepdims=True)

    def jnp_nll(raw, fp, y):
        a = sp(raw)
        return -jnp.sum(jnp.sum((a - 1) * jnp.log(y) - gl(a), -1) + gl(jnp.sum(a, -1)))

    def torch_nll(raw, fp, y):
        torch = _torch()
        return -torch.distributions.Dirichlet(torch.nn.functional.softplus(raw)).log_prob(y).sum()
    return Workload(mj.dirichlet(k), np.zeros(k), {}, False, x, y, jnp_nll,
                    lambda raw, fp, y: -jnp.sum(_tfd().Dirichlet(sp(raw)).log_prob(y)),
                    lambda raw, fp, y: -jnp.sum(_distrax().Dirichlet(sp(raw)).log_prob(y)),
                    torch_nll)


K_PL = 5


def plackett_luce(n, rng):
    k = K_PL
    x = rng.normal(size=(n, k))
    y = np.argsort(-(x + rng.gumbel(size=(n, k))), axis=1).astype(np.int32)  # rankings drawn at the scores

    def jnp_nll(raw, fp, y):
        ordered = jnp.take_along_axis(raw, y, axis=1)
        return -jnp.sum(ordered - jax.lax.cumlogsumexp(ordered, axis=1, reverse=True))
    return Workload(mj.plackett_luce(k), np.zeros(k), {}, False, x, y, jnp_nll,
                    lambda raw, fp, y: -jnp.sum(_tfd().PlackettLuce(jnp.exp(raw)).log_prob(y)), None, None)


WORKLOADS: dict[str, Callable] = {
    "poisson": poisson,
    "student_t_fixed_df": _student_t(False),
    "negative_binomial_fixed_r": _nb(False),
    "gamma": _two_softplus(mj.gamma(), _gamma_sample, _gamma_jnp, "Gamma", "Gamma", "Gamma"),
    "student_t_learned_df": _student_t(True),
    "negative_binomial_learned_r": _nb(True),
    "laplace": laplace,
    "beta": _two_softplus(mj.beta(), _beta_sample, _beta_jnp, "Beta", "Beta", "Beta"),
    "von_mises": von_mises,
    "mixture_normal_k3": mixture,
    "mvn_cholesky_d3": mvn,
    "ordinal_k5": ordinal,
    "censored_normal_right": _censored(1.0),
    "censored_normal_left": _censored(-1.0),
    "binomial": binomial,
    "zero_inflated_poisson": zero_inflated,
    "exponential": exponential,
    "weibull_k1.5": weibull,
    "log_normal": log_normal,
    "asymmetric_laplace_q0.9": asymmetric_laplace,
    "dirichlet_k4": dirichlet,
    "plackett_luce_k5": plackett_luce,
}


# ----------------------------------------------------------------------------- contenders

def _cast(tree, dtype):
    def one(a):
        a = np.asarray(a)
        return jnp.asarray(a, dtype) if np.issubdtype(a.dtype, np.floating) else jnp.asarray(a)
    return jax.tree_util.tree_map(one, tree)


def _jax_contender(nll, w: Workload, dtype):
    b, fp, x, y = (_cast(v, dtype) for v in (w.b, w.fp, w.x, w.y))
    if w.learn_fp:
        fn = jax.jit(jax.value_and_grad(lambda b, fp, x, y: nll(x + b, fp, y), argnums=(0, 1)))
    else:
        fn = jax.jit(jax.value_and_grad(lambda b, fp, x, y: nll(x + b, fp, y)))
    return lambda: fn(b, fp, x, y)


def _recipe_nll(family):
    r = mj.recipe(lambda b, x_i: x_i + b, family, validate=False)
    return lambda raw_b, fp, x, y: r.nll(mj.Params(raw_b, fp), x, y)


def _mle_jax_contender(w: Workload, dtype):
    b, fp, x, y = (_cast(v, dtype) for v in (w.b, w.fp, w.x, w.y))
    loss = _recipe_nll(w.family)
    fn = jax.jit(jax.value_and_grad(loss, argnums=(0, 1) if w.learn_fp else 0))
    return lambda: fn(b, fp, x, y)


def _torch_contender(nll, w: Workload, dtype):
    torch = _torch()
    from .losses import _torch_device
    device = _torch_device()
    tdtype = torch.float32 if dtype == jnp.float32 else torch.float64

    def tensor(a, grad=False):
        a = np.asarray(a)
        t = torch.tensor(a, device=device, dtype=tdtype if np.issubdtype(a.dtype, np.floating) else None)
        return t.requires_grad_(grad)
    tb = tensor(w.b, True)
    tfp_ = {k: tensor(v, w.learn_fp) for k, v in w.fp.items()}
    tx, ty = tensor(w.x), tensor(w.y)
    leaves = [tb] + (list(tfp_.values()) if w.learn_fp else [])

    def run():
        for t in leaves:
            t.grad = None
        value = nll(tx + tb, tfp_, ty)
        value.backward()
        return value.item(), [t.grad for t in leaves]
    return run


def contenders(w: Workload, dtype) -> dict[str, Callable[[], object]]:
    c = {"mle_jax": _mle_jax_contender(w, dtype), "jnp": _jax_contender(w.jnp_nll, w, dtype)}
    if w.tfp_nll is not None:
        c["tfp"] = _jax_contender(w.tfp_nll, w, dtype)
    if w.distrax_nll is not None:
        c["distrax"] = _jax_contender(w.distrax_nll, w, dtype)
    if w.torch_nll is not None:
        c["torch"] = _torch_contender(w.torch_nll, w, dtype)
    return c


def _reps(n, reps):
    return reps if n <= 1_000_000 else max(5, reps // 3)


def run(sizes=(100, 10_000, 1_000_000, 10_000_000), dtypes=("float32", "float64"), reps: int = 20,
        only=None, budget_s: float = 20.0) -> dict:
    """Medians (seconds) and ratios to the fastest anchor: ``results[dtype][family][N]``."""
    results: dict[str, Any] = {}
    for dtype_name in dtypes:
        with jax.enable_x64(dtype_name == "float64"):
            dtype = jnp.float32 if dtype_name == "float32" else jnp.float64
            results[dtype_name] = {}
            for name, make in WORKLOADS.items():
                if only and name not in only:
                    continue
                results[dtype_name][name] = {}
                for n in sizes:
                    w = make(n, np.random.default_rng(0))
                    try:
                        timings = round_robin(contenders(w, dtype), reps=_reps(n, reps), budget_s=budget_s)
                    except Exception as err:  # one family or anchor failing must not lose the others
                        results[dtype_name][name][n] = {"error": f"{type(err).__name__}: {err}"}
                        continue
                    anchors = {k: v["median_s"] for k, v in timings.items() if k != "mle_jax"}
                    best = min(anchors, key=anchors.get)
                    results[dtype_name][name][n] = {
                        "timings": {k: {kk: vv for kk, vv in v.items() if kk != "times_s"} for k, v in timings.items()},
                        "fastest_anchor": best,
                        "ratio_to_fastest_anchor": timings["mle_jax"]["median_s"] / anchors[best],
                        "paired_ratio_to_fastest_anchor": paired_ratio(timings, "mle_jax", best)}
                    row = results[dtype_name][name][n]
                    print(f"  {dtype_name} {name:<28} N={n:>9,}: mle_jax {timings['mle_jax']['median_s'] * 1e3:9.3f} ms"
                          f"  {best} {anchors[best] * 1e3:9.3f} ms  ratio {row['ratio_to_fastest_anchor']:.2f}"
                          f" (paired {row['paired_ratio_to_fastest_anchor']:.2f})", flush=True)
    return results


def show(res) -> None:
    names = ["mle_jax", "jnp", "tfp", "distrax", "torch"]
    for dtype_name, table in res.items():
        print(f"\nfamilies, value-and-grad of the summed NLL, {dtype_name} (median ms; ratio = mle_jax / fastest)")
        print(f"{'family':<28}{'N':>10}" + "".join(f"{n:>10}" for n in names) + f"{'ratio':>8}{'paired':>8}")
        for name, rows in table.items():
            for n, row in rows.items():
                if "error" in row:
                    print(f"{name:<28}{n:>10}  error: {row['error']}")
                    continue
                cells = "".join(f"{row['timings'][c]['median_s'] * 1e3:>10.3f}" if c in row["timings"] else f"{'-':>10}"
                                for c in names)
                print(f"{name:<28}{n:>10}{cells}{row['ratio_to_fastest_anchor']:>8.2f}"
                      f"{row['paired_ratio_to_fastest_anchor']:>8.2f}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m experiments.benchmarks.families")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--family", action="append", choices=list(WORKLOADS))
    parser.add_argument("--dtype", action="append", choices=["float32", "float64"])
    parser.add_argument("--n", action="append", type=int)
    parser.add_argument("--reps", type=int, default=None)
    args = parser.parse_args(argv)
    import torch
    import os
    torch.set_num_threads(os.cpu_count() or 1)
    sizes = tuple(args.n) if args.n else ((1_000, 100_000) if args.quick else (100, 10_000, 1_000_000, 10_000_000))
    reps = args.reps or (7 if args.quick else 20)
    show(run(sizes=sizes, dtypes=tuple(args.dtype or ("float32", "float64")), reps=reps, only=args.family))


if __name__ == "__main__":
    main()
