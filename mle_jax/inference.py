"""After the fit: the covariance of the MLE, standard errors, Wald intervals, AIC / BIC, LR tests.

With the summed NLL ``L(v) = -sum_i w_i log Pr(y_i | x_i, v)`` over the trained parameters v
(the inexact-array leaves of ``params``, in ``jax.flatten_util.ravel_pytree`` order):

    observed   cov = H^-1,          H = grad^2 L(v_hat)                   (observed Fisher information)
    expected   cov = I^-1,          I = sum_i w_i J_i' F(theta_i) J_i     (F: the Fisher information of
                                    theta per example, J_i = d theta_i / d v; canonical links give H = I)
    robust     cov = H^-1 B H^-1,   B = sum_i (w_i s_i)(w_i s_i)'         (HC0 sandwich; s_i the score of example i)
    diagonal   var_j = 1 / H_jj                                           (k Hessian-vector products, no k x k matrix)
    hvp        var_j = (H^-1)_jj    by conjugate gradients on H z = e_j   (Hessian-vector products only)

``diagonal`` ignores the correlations between parameters and so gives a lower bound on each
variance (``(H^-1)_jj >= 1 / H_jj`` for a positive definite H); ``hvp`` is exact for the
parameters it is asked about (``index``) and costs a few Hessian-vector products per parameter.
Everything is computed in float64. Reference: Pawitan, *In All Likelihood* (2001), ch. 8-9;
White (1980), Econometrica 48, for the sandwich.
"""

from __future__ import annotations

import math
import statistics
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from . import distributions as dist
from .params import Params, is_trained, trained_mask

COV_TYPES = ("observed", "expected", "robust", "diagonal", "hvp")
MAX_DENSE_PARAMS = 4096  # a dense k x k Hessian: 4096^2 float64 = 128 MiB and k gradient evaluations


def _mask(params) -> list[bool]:
    """Per leaf, whether a fit trains it (``mle_jax.params.trained_mask``; for a bare pytree, its
    inexact arrays): the leaves inference counts."""
    if isinstance(params, Params):
        return trained_mask(params)
    return [is_trained(a) for a in jax.tree_util.tree_leaves(params)]


def ravel_trained(params) -> tuple[jax.Array, Callable[[jax.Array], Any]]:
    """``(v, unravel)``: the trained leaves as one flat vector (ravel_pytree order) and the inverse,
    which puts every other leaf (ints, keys, callables, state) back unchanged."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    trained = _mask(params)
    flat, unravel_trained = ravel_pytree([a for a, t in zip(leaves, trained) if t])

    def unravel(v):
        it = iter(unravel_trained(v))
        return treedef.unflatten([next(it) if t else a for a, t in zip(leaves, trained)])
    return flat, unravel


def _numpy_unravel(params):
    """Like ``ravel_trained``'s inverse, but into NumPy float64 arrays (results outlive float64 mode)."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    shapes = [np.shape(a) if t else None for a, t in zip(leaves, _mask(params))]

    def unravel(v):
        v, out, start = np.asarray(v, np.float64), [], 0
        for a, shape in zip(leaves, shapes):
            if shape is None:
                out.append(a)
                continue
            size = math.prod(shape)
            out.append(v[start:start + size].reshape(shape))
            start += size
        return treedef.unflatten(out)
    return unravel


def parameter_names(params) -> list[str]:
    """One readable name per trained scalar, in ravel order: ``model.w[0, 1]``, ``family.scale``."""
    names = []
    for (path, leaf), trained in zip(jax.tree_util.tree_flatten_with_path(params)[0], _mask(params)):
        if not trained:
            continue
        base = ".".join(_key_name(k) for k in path) or "param"
        shape = np.shape(leaf)
        names += [base] if shape == () else [f"{base}[{', '.join(map(str, i))}]" for i in np.ndindex(shape)]
    return names


def _key_name(key) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def _to64(tree, numbers: bool = True):
    """Floating arrays (and, with ``numbers``, Python floats) as float64. The params keep their
    Python floats: those are static in a fit, never trained, so never counted here either."""
    kinds = (jax.Array, np.ndarray, np.generic, float) if numbers else (jax.Array, np.ndarray, np.generic)

    def cast(a):
        if isinstance(a, kinds) and jnp.issubdtype(jnp.result_type(a), jnp.floating):
            return jnp.asarray(a, jnp.float64)
        return jnp.asarray(a) if isinstance(a, (np.ndarray, np.generic)) else a
    return jax.tree_util.tree_map(cast, tree)


@dataclass(frozen=True)
class InferenceResult:
    """What ``inference`` found; ``cov`` is None only where a dense k x k matrix was not formed."""

    loglik: float
    nobs: float
    num_params: int
    cov_type: str
    estimate: np.ndarray
    variance: np.ndarray
    cov: np.ndarray | None
    names: tuple[str, ...]
    title: str
    unravel: Callable[[Any], Any]

    @property
    def aic(self) -> float:
        """``2 k - 2 log L``."""
        return 2.0 * self.num_params - 2.0 * self.loglik

    @property
    def bic(self) -> float:
        """``k log n - 2 log L`` with n the (weighted, unmasked) number of examples."""
        return self.num_params * math.log(self.nobs) - 2.0 * self.loglik

    @property
    def params(self):
        return self.unravel(self.estimate)

    @property
    def se(self):
        """Standard errors as a pytree shaped like params (carried, untrained leaves unchanged)."""
        return self.unravel(np.sqrt(self.variance))

    @property
    def zvalues(self) -> np.ndarray:
        return self.estimate / np.sqrt(self.variance)

    @property
    def pvalues(self) -> np.ndarray:
        """Two-sided Wald p-values ``2 (1 - Phi(|z|))``."""
        return np.array([math.erfc(abs(z) / math.sqrt(2.0)) for z in self.zvalues])

    def conf_int(self, level: float = 0.95):
        """Wald intervals ``v_hat -+ z_{(1+level)/2} se`` as ``(lower, upper)`` pytrees shaped like params."""
        lower, upper = self._bounds(level)
        return self.unravel(lower), self.unravel(upper)

    def _bounds(self, level):
        if not 0.0 < level < 1.0:
            raise ValueError(f"conf_int: level must lie in (0, 1); got {level}")
        half = _normal_quantile(0.5 + 0.5 * level) * np.sqrt(self.variance)
        return self.estimate - half, self.estimate + half

    def summary(self, level: float = 0.95) -> str:
        """A text table like statsmodels' ``summary()``: the fit's statistics, then one row per parameter."""
        lower, upper = self._bounds(level)
        a = (1.0 - level) / 2
        width = max([12] + [len(n) + 2 for n in self.names])
        rule = "=" * (width + 66)
        head = [self.title.center(len(rule)), rule,
                f"{'No. observations:':<20}{_num(self.nobs):>14}    {'Log-likelihood:':<20}{self.loglik:>14.4f}",
                f"{'Parameters:':<20}{self.num_params:>14d}    {'AIC:':<20}{self.aic:>14.4f}",
                f"{'Covariance:':<20}{self.cov_type:>14}    {'BIC:':<20}{self.bic:>14.4f}", rule,
                f"{'':<{width}}{'coef':>11}{'std err':>11}{'z':>11}{'P>|z|':>11}{f'[{a:.3f}':>11}{f'{1 - a:.3f}]':>11}",
                "-" * len(rule)]
        rows = [f"{n:<{width}}{c:>11.4f}{s:>11.4f}{z:>11.3f}{p:>11.3f}{lo:>11.4f}{hi:>11.4f}"
                for n, c, s, z, p, lo, hi in zip(self.names, self.estimate, np.sqrt(self.variance),
                                                 self.zvalues, self.pvalues, lower, upper)]
        return "\n".join(head + rows + [rule])


def _num(n):
    return f"{n:.0f}" if float(n).is_integer() else f"{n:.3f}"


def _normal_quantile(p):
    return statistics.NormalDist().inv_cdf(p)


def inference(recipe, params, x, y, cov: str = "observed", *, weights=None, mask=None,
              max_params: int = MAX_DENSE_PARAMS, index=None, batch_size: int = 64) -> InferenceResult:
    """Fit statistics at ``params`` (the MLE): log-likelihood, AIC, BIC, covariance, SEs, Wald intervals.

    Args:
      recipe, params, x, y: the fitted recipe, its parameters and the data the fit used.
      cov: ``"observed"`` (inverse Hessian of the NLL), ``"expected"`` (inverse expected Fisher
        information; Normal, Poisson, Gamma, Beta, Bernoulli, Categorical and Independent of the
        first four), ``"robust"`` (HC0 sandwich), ``"diagonal"`` or ``"hvp"`` (no dense k x k matrix).
      weights, mask: as in ``recipe.nll``; weights multiply each example's log-likelihood
        (frequency weights: ``nobs = sum_i m_i w_i``).
      max_params: the largest k for which a dense k x k Hessian is formed (default 4096).
      index: for ``cov="hvp"``, the flat indices whose variances to solve for (default all);
        the others are reported as NaN.
      batch_size: Hessian-vector products evaluated at once for ``"diagonal"`` and ``"hvp"``.

    Returns:
      An ``InferenceResult``; a singular (or numerically singular) information matrix gives a
      warning naming the cause and the Moore-Penrose pseudo-inverse, whose standard errors are
      meaningful only for the identified directions.
    """
    if cov not in COV_TYPES:
        raise ValueError(f"inference: cov must be one of {COV_TYPES}; got {cov!r}")
    with jax.enable_x64(True):
        params, x, y, weights = _to64(params, numbers=False), _to64(x), _to64(y), _to64(weights)
        v, unravel = ravel_trained(params)
        k = int(v.size)
        if k == 0:
            raise ValueError("inference: params hold no inexact-array leaves to infer")
        if cov in ("observed", "expected", "robust") and k > max_params:
            raise ValueError(
                f"inference: {k} parameters would need a dense {k} x {k} Hessian ({8 * k * k / 2**20:.0f} MiB "
                f"and {k} gradient evaluations), above max_params={max_params}; use cov='diagonal' "
                f"(1 / diag(H), k Hessian-vector products) or cov='hvp' with index=[...] (exact variances "
                f"of chosen parameters by conjugate gradients), or raise max_params")

        loglik = -float(recipe.nll(params, x, y, weights, mask))  # checks the data's values once
        if not math.isfinite(loglik):
            raise ValueError(f"inference: the log-likelihood at params is {loglik}; is params the fitted MLE?")
        nobs = float(y_count(y, weights, mask))
        leaves, treedef = jax.tree_util.tree_flatten(params)
        structure = (treedef, tuple((a.shape, a.dtype) for a in leaves)) if all(_mask(params)) else None
        matrix, variance = _covariance(cov, recipe, v, unravel, structure, (x, y, weights, mask), index,
                                       batch_size, max_params)
    title = f"Maximum-likelihood fit: {getattr(recipe.family, 'name', 'family')}"
    return InferenceResult(loglik, nobs, k, cov, np.asarray(v, np.float64), variance, matrix,
                           tuple(parameter_names(params)), title, _numpy_unravel(params))


def y_count(y, weights, mask) -> float:
    """``sum_i m_i w_i``: the number of examples the NLL counts."""
    n = jax.tree_util.tree_leaves(y)[0].shape[0]
    w = np.ones(n) if weights is None else np.asarray(weights, np.float64)
    return float(np.sum(w if mask is None else np.where(np.asarray(mask), w, 0.0)))


_ONE_SHOT = {"xla_backend_optimization_level": 0}  # run once per fit: compile fast (about 40% less) over run fast
_COMPILED: dict = {}  # (what, recipe, params structure) -> jitted function of (v, data): one trace per shape


def _compiled(what, recipe, structure, build):
    """A jitted ``build()`` reused across calls with the same recipe and params structure (where the
    params carry no untrained leaves, which the unravel function would otherwise close over)."""
    if structure is None:
        return jax.jit(build(), compiler_options=_ONE_SHOT)
    key = (what, recipe, structure)
    if key not in _COMPILED:
        if len(_COMPILED) >= 32:
            _COMPILED.pop(next(iter(_COMPILED)))
        _COMPILED[key] = jax.jit(build(), compiler_options=_ONE_SHOT)
    return _COMPILED[key]


def _summed_nll(recipe, unravel):
    def nll(u, x, y, w, m):
        return recipe.reduce(unravel(u), x, y, w, m)
    return nll


def _dense(recipe, unravel):
    """``(H, B)``: the Hessian of the summed NLL and the sandwich's meat, in one trace."""
    nll = _summed_nll(recipe, unravel)

    def fn(u, x, y, w, m):
        return jax.hessian(nll)(u, x, y, w, m), _meat(recipe, u, unravel, x, y, w, m)
    return fn


def _covariance(cov, recipe, v, unravel, structure, data, index, batch_size, max_params):
    k = v.size
    nll = _summed_nll(recipe, unravel)
    if cov == "diagonal":
        fn = _compiled("diagonal", recipe, structure, lambda: lambda u, *d: jax.lax.map(
            lambda j: _hvp(lambda t: nll(t, *d), u, _unit(u.size, j))[j], jnp.arange(u.size), batch_size=batch_size))
        diag = np.asarray(fn(v, *data))
        if np.any(diag <= 0):
            raise ValueError(f"inference: the Hessian has non-positive diagonal entries at flat indices "
                             f"{np.flatnonzero(diag <= 0)[:10].tolist()}; params is not a strict minimum")
        return (np.diag(1.0 / diag) if k <= max_params else None), 1.0 / diag
    if cov == "hvp":
        chosen = np.arange(k) if index is None else np.asarray(index, int).reshape(-1)
        fn = _compiled("hvp", recipe, structure, lambda: lambda u, js, *d: jax.lax.map(
            lambda j: _cg_column(lambda t: nll(t, *d), u, j)[j], js, batch_size=batch_size))
        var = np.full(k, np.nan)
        var[chosen] = np.asarray(fn(v, jnp.asarray(chosen), *data))
        return (np.diag(var) if k <= max_params else None), var
    if cov == "expected":
        fn = _compiled("expected", recipe, structure, lambda: lambda u, *d: _expected_information(recipe, u, unravel, *d))
        inv = _inverse(np.asarray(fn(v, *data), np.float64), "expected Fisher information")
        return inv, np.diag(inv).copy()
    hessian, meat = _compiled("dense", recipe, structure, lambda: _dense(recipe, unravel))(v, *data)
    inv = _inverse(np.asarray(hessian, np.float64), "observed information (the Hessian of the NLL)")
    if cov == "robust":
        inv = inv @ np.asarray(meat, np.float64) @ inv
    return inv, np.diag(inv).copy()


def _unit(k, j):
    return jnp.zeros(k, jnp.float64).at[j].set(1.0)


def _hvp(f, v, t):
    """``H t`` by forward-over-reverse differentiation."""
    return jax.jvp(jax.grad(f), (v,), (t,))[1]


def _cg_column(nll, v, j):
    """Column j of ``H^-1`` by conjugate gradients, ``H`` applied only as Hessian-vector products."""
    solution, _ = jax.scipy.sparse.linalg.cg(lambda t: _hvp(nll, v, t), _unit(v.size, j), tol=1e-12,
                                             maxiter=10 * v.size)
    return solution


def _inverse(matrix, what):
    """The inverse by a Cholesky solve; a warning and the pseudo-inverse when it is (near) singular."""
    eig = np.linalg.eigvalsh(matrix)
    tol = 1e-10 * max(abs(eig[-1]), np.finfo(np.float64).tiny)
    if eig[0] <= tol:
        warnings.warn(
            f"inference: the {what} is singular or not positive definite (smallest eigenvalue {eig[0]:.3g}, "
            f"largest {eig[-1]:.3g}): some parameters are not identified (a redundant parameter, such as "
            f"one logit per class in a softmax, or a constant column) or params is not a maximum; using "
            f"the pseudo-inverse, whose standard errors hold only for the identified directions",
            RuntimeWarning, stacklevel=4)
        return np.linalg.pinv(matrix, rcond=1e-10, hermitian=True)
    inv_factor = np.linalg.solve(np.linalg.cholesky(matrix), np.eye(matrix.shape[0]))  # L^-1 with H = L L'
    return inv_factor.T @ inv_factor


def _example_weights(n, weights, mask):
    w = jnp.ones(n, jnp.float64) if weights is None else jnp.asarray(weights, jnp.float64)
    return w if mask is None else jnp.where(jnp.asarray(mask), w, 0.0)


def _meat(recipe, v, unravel, x, y, weights=None, mask=None):
    """``B = sum_i (w_i s_i)(w_i s_i)'`` with ``s_i = grad_v log Pr(y_i | x_i, v)``; masked-out rows add 0."""
    def log_probs(u):  # the recipe's own reduction on one example at a time
        one = jax.tree_util.Partial(jax.tree_util.tree_map, lambda a: a[None])
        return jax.vmap(lambda x_i, y_i: -recipe.reduce(unravel(u), one(x_i), one(y_i)))(x, y)

    scores = jax.jacrev(log_probs)(v)
    w = _example_weights(scores.shape[0], weights, mask)
    weighted = jnp.where(w[:, None] != 0, w[:, None] * scores, 0.0)
    return weighted.T @ weighted


# ----------------------------------------------------------------------------- expected information

_ENUMERATED = (dist.Bernoulli, dist.Categorical)
_POLYNOMIAL = (dist.Normal,)  # the Hessian in theta: a polynomial of degree 2 in y
_Y_FREE = (dist.Poisson, dist.Gamma, dist.Beta)  # the Hessian in theta does not involve y


def _theta_fisher(theta, y_like):
    """``F(theta) = -E_y[grad^2_theta log Pr(y | theta)]`` for ONE example, in closed form, as a matrix
    over the flattened theta fields. Discrete families sum over their outcomes; for the others the
    Hessian is free of y (Poisson, Gamma, Beta) or, for the Normal, a polynomial of degree 2 in y, so
    ``E f(y) = f(mu) + 1/2 sum_d f_dd(mu) Var(y_d)``."""
    flat, unflat = ravel_pytree(theta)

    def hessian_at(y):
        return jax.hessian(lambda u: dist.log_prob(unflat(u), y))(flat)

    base = theta.base if isinstance(theta, dist.Independent) else theta
    if isinstance(theta, _ENUMERATED):
        p = dist.probs(theta)
        outcomes = jnp.arange(p.shape[-1]).astype(y_like.dtype)
        return -jnp.tensordot(p, jax.vmap(hessian_at)(outcomes), axes=1)
    if isinstance(base, _Y_FREE):  # evaluated at a point of the support: 0 for counts, the mean otherwise
        point = jnp.zeros_like(dist.mean(theta)) if isinstance(base, dist.Poisson) else dist.mean(theta)
        return -hessian_at(point)
    if isinstance(base, _POLYNOMIAL):
        mu = jnp.asarray(dist.mean(theta), jnp.float64)
        var = jnp.asarray(dist.variance(theta), jnp.float64)
        curvature = jax.hessian(hessian_at)(mu)  # d^2/dy^2 of each Hessian entry
        if mu.ndim == 0:
            return -(hessian_at(mu) + 0.5 * curvature * var)
        return -(hessian_at(mu) + 0.5 * jnp.einsum("abdd,d->ab", curvature, var))
    raise NotImplementedError(
        f"inference: no closed-form expected information for {type(base).__name__}; "
        f"use cov='observed' or cov='robust'")


def _expected_information(recipe, v, unravel, x, y, weights, mask):
    """``I = sum_i w_i J_i' F(theta_i) J_i`` with ``J_i = d theta_i / d v`` (jacfwd through predict)."""
    def thetas(u):
        return recipe.predict(unravel(u), x)

    theta = thetas(v)
    n = jax.tree_util.tree_leaves(theta)[0].shape[0]
    jac = jax.jacfwd(lambda u: jax.vmap(lambda t: ravel_pytree(t)[0])(thetas(u)))(v)  # (N, d, k)
    y_like = jnp.asarray(jax.tree_util.tree_leaves(y)[0])
    fisher = jax.vmap(lambda t: _theta_fisher(t, y_like))(theta)  # (N, d, d)
    w = _example_weights(n, weights, mask)
    return jnp.einsum("n,nda,nde,neb->ab", w, jac, fisher, jac)


# ----------------------------------------------------------------------------- likelihood-ratio test

def lr_test(restricted: InferenceResult, full: InferenceResult):
    """The likelihood-ratio test of a nested (restricted) fit against the full one.

    ``LR = 2 (log L_full - log L_restricted)``, asymptotically chi^2 with
    ``df = k_full - k_restricted`` under the restricted model (Wilks, 1938). Returns
    ``(statistic, df, p_value)``; ``scipy.stats.chi2.sf(LR, df)`` is the p-value.
    """
    df = full.num_params - restricted.num_params
    if df <= 0:
        raise ValueError(f"lr_test: the full model must have more parameters than the restricted one; "
                         f"got {full.num_params} and {restricted.num_params}")
    if restricted.nobs != full.nobs:
        raise ValueError(f"lr_test: both fits must use the same data; nobs {restricted.nobs} != {full.nobs}")
    statistic = 2.0 * (full.loglik - restricted.loglik)
    return statistic, df, chi2_sf(statistic, df)


def chi2_sf(x: float, df: int) -> float:
    """``Pr(chi^2_df > x) = Q(df/2, x/2)``, the regularised upper incomplete gamma function (in float64)."""
    if x <= 0:
        return 1.0
    try:
        from scipy.special import gammaincc
    except ImportError:  # pragma: no cover
        with jax.enable_x64(True):
            return float(jax.scipy.special.gammaincc(df / 2.0, x / 2.0))
    return float(gammaincc(df / 2.0, x / 2.0))
