"""Symbolic models of the scalar families: location-scale (Normal, Laplace, Student t), Gamma, Beta,
von Mises, the counts (Poisson, negative binomial) and the labels (Bernoulli, Categorical)."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import sympy as sp

from ..families._family import Spec
from .symbols import F, F1, F2, K, LINK_TEXT, LINKS, NU, S, SIGMA, T, Y, Model, i, indexed, k, softplus

# ----------------------------------------------------------------------------- location-scale families

def _normal_density(mu, sigma):
    return sp.exp(-(Y[i] - mu) ** 2 / (2 * sigma**2)) / sp.sqrt(2 * sp.pi * sigma**2)


def _normal_cdf(mu, sigma):
    return sp.erfc(-(Y[i] - mu) / (sp.sqrt(2) * sigma)) / 2, sp.erfc((Y[i] - mu) / (sp.sqrt(2) * sigma)) / 2


class _Scale(NamedTuple):
    loc: Any
    scale: Any
    phi: tuple
    raw: tuple
    fparams: dict
    constants: dict
    draw_raw: Callable
    draw_fp: Callable
    where: tuple


def _scale(option, name="sigma") -> _Scale:
    """The location and scale of a location-scale family from its ``scale`` option."""
    if option == "learned":
        return _Scale(F[i], softplus(S), (F[i], S), (F[i],), {S: ("scale", None)}, {},
                      lambda rng: [rng.normal()], lambda rng: {"scale": rng.normal()},
                      (f"f[i]: the model's raw output, the location", f"{name} = log(1 + exp(s)): s is the "
                       "family's own learned parameter, one for every example"))
    if isinstance(option, str):
        return _Scale(F1[i], LINKS[option](F2[i]), (F1[i], F2[i]), (F1[i], F2[i]), {}, {},
                      lambda rng: [rng.normal(), rng.choice([-1, 1]) * rng.uniform(0.3, 2)], lambda rng: {},
                      ("f_1[i], f_2[i]: the model's raw outputs", f"the location is f_1[i], "
                       f"{name} = {LINK_TEXT[option].format('f_2[i]', 'f_2[i]')} (the {option} link)"))
    return _Scale(F[i], SIGMA, (F[i],), (F[i],), {}, {SIGMA: float(option)}, lambda rng: [rng.normal()],
                  lambda rng: {}, ("f[i]: the model's raw output, the location", f"sigma = {option}, fixed"))


def _location_scale(spec: Spec, density, cdf=None, reduces=("", "")) -> Model:
    sc = _scale(spec.option("scale"))
    cdfs = cdf(sc.loc, sc.scale) if cdf else (None, None)
    fixed = not isinstance(spec.option("scale"), str)
    return Model(density(sc.loc, sc.scale), sc.phi, sc.raw,
                 lambda rng: (rng.normal(), sc.draw_raw(rng), sc.draw_fp(rng)), sc.fparams, sc.constants,
                 cdf=cdfs[0], sf=cdfs[1], where=sc.where, reduces_to=reduces[0] if fixed else reduces[1])


def normal(spec: Spec) -> Model:
    return _location_scale(spec, _normal_density, _normal_cdf,
                           ("least squares (y - f)^2", "the Gaussian NLL (y - mu)^2 / (2 sigma^2) + log sigma"))


def _laplace_density(mu, b):
    return sp.exp(-sp.Abs(Y[i] - mu) / b) / (2 * b)


def laplace(spec: Spec) -> Model:
    return _location_scale(spec, _laplace_density, None,
                           ("absolute error |y - f|", "|y - mu| / b + log b"))


def student_t(spec: Spec) -> Model:
    df = spec.option("df")
    sc = _scale(spec.option("scale"), "s")
    if df == "learned":
        nu, fparams, phi = softplus(T), {**sc.fparams, T: ("df", None)}, sc.phi + (T,)
        constants, df_where = sc.constants, "nu = log(1 + exp(t)): t is the family's own learned parameter"
    else:
        nu, fparams, phi = NU, sc.fparams, sc.phi
        constants, df_where = {**sc.constants, NU: float(df)}, f"nu = {df}, fixed"
    z2 = (Y[i] - sc.loc) ** 2 / (nu * sc.scale**2)
    density = (sp.gamma((nu + 1) / 2) / (sp.gamma(nu / 2) * sp.sqrt(nu * sp.pi) * sc.scale)
               * (1 + z2) ** (-(nu + 1) / 2))

    def draw(rng):
        fp = sc.draw_fp(rng)
        if df == "learned":
            fp["df"] = rng.normal()
        return 2 * rng.normal(), sc.draw_raw(rng), fp

    return Model(density, phi, sc.raw, draw, fparams, constants, where=sc.where + (df_where,),
                 reduces_to="the robust loss (nu + 1)/2 log(1 + r^2 / (nu s^2)) + log s, r = y - mu")


# ----------------------------------------------------------------------------- positive, unit, angle

def _two_raw(rng):
    return [rng.normal(), rng.normal()]


def gamma(spec: Spec) -> Model:
    if spec.options:
        from .survival import gamma_mean
        return gamma_mean(spec)
    a, b = softplus(F1[i]), softplus(F2[i])
    density = b**a * Y[i] ** (a - 1) * sp.exp(-b * Y[i]) / sp.gamma(a)
    return Model(density, (F1[i], F2[i]), (F1[i], F2[i]), lambda rng: (rng.gamma(2.0) + 0.05, _two_raw(rng), {}),
                 cdf=sp.lowergamma(a, b * Y[i]) / sp.gamma(a), sf=sp.uppergamma(a, b * Y[i]) / sp.gamma(a),
                 where=("f_1[i], f_2[i]: the model's raw outputs", "concentration a = log(1 + exp(f_1[i])), "
                        "rate b = log(1 + exp(f_2[i]))"),
                 reduces_to="b y - a log b - (a - 1) log y + log Gamma(a), with log y dropped")


def beta(spec: Spec) -> Model:
    if spec.options:
        from .survival import beta_mean
        return beta_mean(spec)
    a, b = softplus(F1[i]), softplus(F2[i])
    density = Y[i] ** (a - 1) * (1 - Y[i]) ** (b - 1) * sp.gamma(a + b) / (sp.gamma(a) * sp.gamma(b))
    return Model(density, (F1[i], F2[i]), (F1[i], F2[i]), lambda rng: (rng.uniform(0.05, 0.95), _two_raw(rng), {}),
                 cdf=sp.betainc_regularized(a, b, 0, Y[i]), sf=sp.betainc_regularized(a, b, Y[i], 1),
                 where=("f_1[i], f_2[i]: the model's raw outputs",
                        "a = log(1 + exp(f_1[i])), b = log(1 + exp(f_2[i]))"),
                 reduces_to="log B(a, b) - (a - 1) log y - (b - 1) log(1 - y), log y and log(1 - y) dropped")


def von_mises(spec: Spec) -> Model:
    kappa = softplus(F2[i])
    density = sp.exp(kappa * sp.cos(Y[i] - F1[i])) / (2 * sp.pi * sp.besseli(0, kappa))
    return Model(density, (F1[i], F2[i]), (F1[i], F2[i]), lambda rng: (3 * rng.normal(), _two_raw(rng), {}),
                 where=("f_1[i], f_2[i]: the model's raw outputs",
                        "the mean direction mu = f_1[i], the concentration kappa = log(1 + exp(f_2[i]))"),
                 reduces_to="-kappa cos(y - mu) + log I0(kappa), the normaliser log(2 pi I0(kappa)) less log 2 pi")


# ----------------------------------------------------------------------------- counts

def poisson(spec: Spec) -> Model:
    density = sp.exp(F[i]) ** Y[i] * sp.exp(-sp.exp(F[i])) / sp.factorial(Y[i])
    return Model(density, (F[i],), (F[i],), lambda rng: (int(rng.integers(0, 9)), [rng.normal()], {}),
                 where=("f[i]: the model's raw output, the log-rate: lambda = exp(f[i])",),
                 reduces_to="exp(f) - y f, the Poisson deviance up to constants (log y! dropped)")


def negative_binomial(spec: Spec) -> Model:
    if spec.option("dispersion") == "learned":
        m, r, phi, raw, fparams = F[i], softplus(T), (F[i], T), (F[i],), {T: ("total_count", None)}
        draw = lambda rng: (int(rng.integers(0, 11)), [rng.normal()], {"total_count": rng.normal()})  # noqa: E731
        where = ("f[i]: the model's raw output, the log-mean", "r = log(1 + exp(t)): t is the family's own "
                 "learned parameter (the total count)")
    else:
        m, r, phi, raw, fparams = F1[i], softplus(F2[i]), (F1[i], F2[i]), (F1[i], F2[i]), {}
        draw = lambda rng: (int(rng.integers(0, 11)), _two_raw(rng), {})  # noqa: E731
        where = ("f_1[i], f_2[i]: the model's raw outputs", "the log-mean f_1[i], r = log(1 + exp(f_2[i]))")
    mu = sp.exp(m)
    density = (sp.gamma(Y[i] + r) / (sp.gamma(r) * sp.factorial(Y[i]))
               * (mu / (mu + r)) ** Y[i] * (r / (mu + r)) ** r)
    return Model(density, phi, raw, draw, fparams, where=where,
                 reduces_to="(y + r) log(mu + r) - y log mu - r log r - log Gamma(y + r) + log Gamma(r)")


# ----------------------------------------------------------------------------- labels

def bernoulli(spec: Spec) -> Model:
    lam = 1 / (1 + sp.exp(-F[i]))
    soft = bool(spec.option("soft_labels"))
    draw = ((lambda rng: (float(rng.uniform()), [3 * rng.normal()], {})) if soft
            else (lambda rng: (int(rng.integers(0, 2)), [3 * rng.normal()], {})))
    return Model((1 - lam) ** (1 - Y[i]) * lam ** Y[i], (F[i],), (F[i],), draw,
                 where=("f[i]: the model's raw output, the logit: lambda = sig(f[i])",),
                 reduces_to="binary cross-entropy")


def _label(y):
    return ((Y[i], int(y)),), {}


def categorical(spec: Spec) -> Model:
    n_classes = spec.args[0]
    Fk = indexed("f")
    density = sp.exp(Fk[i, Y[i]]) / sp.Sum(sp.exp(Fk[i, k]), (k, 0, K - 1))
    raw = tuple(Fk[i, j] for j in range(n_classes))
    return Model(density, (Fk,), raw,
                 lambda rng: (int(rng.integers(0, n_classes)), list(2 * rng.normal(size=n_classes)), {}),
                 constants={K: n_classes}, bind=_label,
                 where=("f[i, k]: the model's K raw outputs, the logits: Pr(y = k) = softmax(f[i])_k",),
                 reduces_to="cross-entropy -f_y + log sum_k exp(f_k)")


