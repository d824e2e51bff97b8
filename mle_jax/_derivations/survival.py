"""Symbolic models of the survival families (Exponential, Weibull, log-normal: the log of the scale is
the raw output, the accelerated-failure-time form), the asymmetric Laplace (quantile regression) and
the mean forms of the Gamma (the GLM) and the Beta (beta regression)."""

from __future__ import annotations

import numpy as np
import sympy as sp

from ..families._family import Spec
from .scalar import _location_scale, _normal_cdf, _normal_density
from .symbols import F, F1, F2, T, Y, Model, i, softplus

KAPPA = sp.Symbol("kappa", positive=True)  # a fixed Weibull concentration
Q = sp.Symbol("q", positive=True)          # the asymmetric Laplace's quantile level


def _positive_y(rng):
    return float(np.exp(rng.normal()))


def exponential(spec: Spec) -> Model:
    rate = sp.exp(F[i])
    return Model(rate * sp.exp(-rate * Y[i]), (F[i],), (F[i],), lambda rng: (_positive_y(rng), [rng.normal()], {}),
                 cdf=1 - sp.exp(-rate * Y[i]), sf=sp.exp(-rate * Y[i]),
                 where=("f[i]: the model's raw output, the log-rate: lambda = exp(f[i])",),
                 reduces_to="exp(f) y - f")


def weibull(spec: Spec) -> Model:
    option = spec.option("concentration")
    if option == "learned":
        kc, phi, raw, fparams, constants = softplus(T), (F[i], T), (F[i],), {T: ("concentration", None)}, {}
        draw = lambda rng: (_positive_y(rng), [rng.normal()], {"concentration": rng.normal()})  # noqa: E731
        where = ("f[i]: the model's raw output, the log-scale: s = exp(f[i])",
                 "k = log(1 + exp(t)): t is the family's own learned parameter (the concentration)")
    elif option == "per_example":
        kc, phi, raw, fparams, constants = softplus(F2[i]), (F1[i], F2[i]), (F1[i], F2[i]), {}, {}
        draw = lambda rng: (_positive_y(rng), [rng.normal(), rng.normal()], {})  # noqa: E731
        where = ("f_1[i], f_2[i]: the model's raw outputs", "the scale s = exp(f_1[i]), k = log(1 + exp(f_2[i]))")
    else:
        kc, phi, raw, fparams, constants = KAPPA, (F[i],), (F[i],), {}, {KAPPA: float(option)}
        draw = lambda rng: (_positive_y(rng), [rng.normal()], {})  # noqa: E731
        where = ("f[i]: the model's raw output, the log-scale: s = exp(f[i])", f"kappa = {option}, fixed")
    z = Y[i] * sp.exp(-raw[0])
    sf = sp.exp(-z**kc)
    density = kc * sp.exp(-raw[0]) * z ** (kc - 1) * sf
    return Model(density, phi, raw, draw, fparams, constants, cdf=1 - sf, sf=sf, where=where,
                 reduces_to="(y / s)^k - log k + k log s - (k - 1) log y")


def _log_normal_density(mu, sigma):
    return _normal_density(mu, sigma).xreplace({Y[i]: sp.log(Y[i])}) / Y[i]


def _log_normal_cdf(mu, sigma):
    return tuple(c.xreplace({Y[i]: sp.log(Y[i])}) for c in _normal_cdf(mu, sigma))


def log_normal(spec: Spec) -> Model:
    m = _location_scale(spec, _log_normal_density, _log_normal_cdf,
                        ("least squares (log y - f)^2", "the Gaussian NLL in log y: (log y - mu)^2 / (2 sigma^2) "
                         "+ log sigma (log y dropped)"))
    return m._replace(draw=lambda rng, d=m.draw: (_positive_y(rng),) + tuple(d(rng)[1:]))


def asymmetric_laplace(spec: Spec) -> Model:
    level = spec.args[0]

    def density(mu, b):
        u = Y[i] - mu
        return Q * (1 - Q) / b * sp.exp(-(sp.Abs(u) + (2 * Q - 1) * u) / (2 * b))

    m = _location_scale(spec, density, None,
                        ("the check loss rho_q(y - f) = (|y - f| + (2q - 1)(y - f)) / 2 (quantile regression)",
                         "rho_q(y - mu) / b + log b"))
    return m._replace(constants={**m.constants, Q: float(level)}, where=m.where + (f"q = {level}, the quantile level",))


def _mean_only(spec: Spec) -> None:
    if spec.options != (("parameterization", "mean"),):
        raise NotImplementedError(f"derive: no symbolic derivation for {spec.render()} yet")


def gamma_mean(spec: Spec) -> Model:
    _mean_only(spec)
    a, mu = softplus(T), sp.exp(F[i])
    b = a / mu
    density = b**a * Y[i] ** (a - 1) * sp.exp(-b * Y[i]) / sp.gamma(a)
    return Model(density, (F[i], T), (F[i],),
                 lambda rng: (_positive_y(rng), [rng.normal()], {"shape": rng.normal()}), {T: ("shape", None)},
                 cdf=sp.lowergamma(a, b * Y[i]) / sp.gamma(a), sf=sp.uppergamma(a, b * Y[i]) / sp.gamma(a),
                 where=("f[i]: the model's raw output, the log-mean: mu = exp(f[i])",
                        "the shape a = log(1 + exp(t)): t is the family's own learned parameter; the rate a / mu"),
                 reduces_to="the Gamma GLM: a (y / mu + log mu) - a log a + log Gamma(a) - (a - 1) log y")


def beta_mean(spec: Spec) -> Model:
    _mean_only(spec)
    phi = softplus(T)
    a, b = phi / (1 + sp.exp(-F[i])), phi / (1 + sp.exp(F[i]))
    density = Y[i] ** (a - 1) * (1 - Y[i]) ** (b - 1) * sp.gamma(phi) / (sp.gamma(a) * sp.gamma(b))
    return Model(density, (F[i], T), (F[i],),
                 lambda rng: (rng.uniform(0.05, 0.95), [rng.normal()], {"precision": rng.normal()}),
                 {T: ("precision", None)},
                 where=("f[i]: the model's raw output, the logit of the mean: mu = sig(f[i])",
                        "the precision phi = log(1 + exp(t)): t is the family's own learned parameter; "
                        "a = mu phi, b = (1 - mu) phi"),
                 reduces_to="beta regression: log B(mu phi, (1 - mu) phi) - (mu phi - 1) log y "
                            "- ((1 - mu) phi - 1) log(1 - y)")
