"""After the fit: the covariance of the MLE, standard errors, Wald intervals, AIC / BIC, LR tests.

With the summed NLL ``L(v) = -sum_i m_i w_i log Pr(y_i | x_i, v)`` over the trained parameters v
(the inexact-array leaves of ``params``, in ``jax.flatten_util.ravel_pytree`` order):

    observed   cov = H^-1,          H = grad^2 L(v_hat)                   (observed Fisher information)
    expected   cov = I^-1,          I = sum_i w_i J_i' F(theta_i) J_i     (F: the Fisher information of
                                    theta per example, J_i = d theta_i / d v; canonical links give H = I)
    robust     cov = H^-1 B H^-1,   B = sum_i w_i s_i s_i'                (HC0 sandwich; s_i the score of example i;
                                                                           w_i a frequency: HC0 on the expanded rows)
    diagonal   var_j = 1 / H_jj                                           (k Hessian-vector products, no k x k matrix)
    hvp        var_j = (H^-1)_jj    by conjugate gradients on H z = e_j   (Hessian-vector products only)

``diagonal`` ignores the correlations between parameters and so gives a lower bound on each
variance (``(H^-1)_jj >= 1 / H_jj`` for a positive definite H); ``hvp`` is exact for the
parameters it is asked about (``index``) and costs a few Hessian-vector products per parameter.
Every matrix is a sum over examples, computed chunk by chunk (``mle_jax._curvature``): memory is
linear in the number of examples, and the meat is formed only for ``"robust"`` (in the same pass as
H: each example's gradient and curvature in its raw outputs, then ``X' W X`` and ``S' U S`` as one
matrix product each for a GLM).
Everything is computed in float64. Reference: Pawitan, *In All Likelihood* (2001), ch. 8-9;
White (1980), Econometrica 48, for the sandwich; Albert and Anderson (1984), Biometrika 71, for
separation (the MLE of a logistic regression exists iff the classes overlap).
"""

from __future__ import annotations

import functools
import math
import statistics
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Literal, NamedTuple, TypeAlias, get_args

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from . import _curvature as curvature
from . import distributions as dist
from ._boundary import as_array, names_of
from ._checks import check_batch, check_weights
from ._curvature import DENSE_ELEMENTS, Data, singular_tol
from ._floors import describe, on_floor
from .diagnostics import BoundaryWarning
from ._params import CARRIED, TRAINED, Layout, Params, Parts, is_trained, partition, trained_mask
from ._reductions import affine_as
from .recipe import Recipe
from ._stream import is_stream
from ._separation import (Labels, PerfectSeparationWarning, loglik_and_labels, quasi_separation,
                         quasi_separation_diagonal)

CovType: TypeAlias = Literal["observed", "expected", "robust", "diagonal", "hvp"]
"""The covariance ``inference`` computes (see the module docstring)."""
COV_TYPES: tuple[str, ...] = get_args(CovType)
MAX_DENSE_PARAMS = 4096  # a dense k x k Hessian: 4096^2 float64 = 128 MiB and k gradient evaluations


def _mask(params, keep: list[bool] | None = None) -> list[bool]:
    """Per leaf, whether a fit trains it (``mle_jax._params.trained_mask``; for a bare pytree, its
    inexact arrays) and, with ``keep`` (per leaf, from ``inference(..., trained=)``), the user counts
    it: the leaves inference counts."""
    if isinstance(params, Params):
        mask = trained_mask(params)
    else:
        mask = [is_trained(a) for a in jax.tree_util.tree_leaves(params)]
    return mask if keep is None else [m and k for m, k in zip(mask, keep)]


def ravel_trained(params, keep: list[bool] | None = None) -> tuple[jax.Array, Callable[[jax.Array], Any]]:
    """``(v, unravel)``: the trained leaves as one flat vector (ravel_pytree order) and the inverse,
    which puts every other leaf (ints, keys, callables, state, leaves ``keep`` holds fixed) back unchanged."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    trained = _mask(params, keep)
    flat, unravel_trained = ravel_pytree([a for a, t in zip(leaves, trained) if t])

    def unravel(v):
        it = iter(unravel_trained(v))
        return treedef.unflatten([next(it) if t else a for a, t in zip(leaves, trained)])
    return flat, unravel


def _numpy_unravel(params, keep: list[bool] | None = None):
    """Like ``ravel_trained``'s inverse, but into NumPy float64 arrays (results outlive float64 mode)."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    shapes = [np.shape(a) if t else None for a, t in zip(leaves, _mask(params, keep))]

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


def parameter_names(params, columns=None, keep: list[bool] | None = None) -> list[str]:
    """One readable name per trained scalar, in ravel order: ``model.w[0, 1]``, ``family.scale``.

    ``keep``: per leaf, whether ``inference(..., trained=)`` counts it. With ``columns`` (x's column
    names: ``mle_jax._boundary.names_of``), the one trained model leaf of shape (p,) or (p, k) with
    p = len(columns), if exactly one has it, is named by the columns (``x1``, or ``x1[0]`` ... for k
    outputs): a model linear in the columns."""
    names, linear = [], _linear_leaf(params, columns, keep)
    for i, ((path, leaf), trained) in enumerate(zip(jax.tree_util.tree_flatten_with_path(params)[0], _mask(params, keep))):
        if not trained:
            continue
        base = ".".join(_key_name(k) for k in path) or "param"
        shape = np.shape(leaf)
        if i == linear and columns is not None:
            names += list(columns) if len(shape) == 1 else [f"{c}[{j}]" for c in columns for j in range(shape[1])]
            continue
        names += [base] if shape == () else [f"{base}[{', '.join(map(str, i))}]" for i in np.ndindex(shape)]
    return names


def _linear_leaf(params, columns, keep: list[bool] | None = None) -> int | None:
    """The index of the only trained model leaf with one row per column, or None."""
    if columns is None or not isinstance(params, Params):
        return None
    paths = jax.tree_util.tree_flatten_with_path(params)[0]
    found = [i for i, ((path, leaf), t) in enumerate(zip(paths, _mask(params, keep)))
             if t and path and _key_name(path[0]) == "model" and np.ndim(leaf) in (1, 2)
             and np.shape(leaf)[0] == len(columns)]
    return found[0] if len(found) == 1 else None


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


class _Fit(NamedTuple):
    """What the methods that look back at the fit need: the float64 params at the MLE, the leaves
    counted (``keep``), the data as the curvature saw them and the recipe whose ``reduce`` is the NLL
    (for analytic weights, ``_Analytic``). ``data`` is None after an inference over a stream of
    batches: ``natural`` and ``mean_interval`` need only the params, the covariance and the recipe;
    profile re-fits need the data in memory."""

    recipe: Any
    params: Any
    keep: list[bool] | None
    data: Data | None
    weight_kind: str

    def at(self):
        """``v -> params``, the trained leaves from the flat vector v."""
        return ravel_trained(self.params, self.keep)[1]

    def nll(self):
        """``v -> -log L(v)`` over all the data (float64; memory linear in N)."""
        at, d = self.at(), self.data
        assert d is not None  # InferenceResult._profile refuses a stream's result first
        return lambda v: self.recipe.reduce(at(v), d.x, d.y, d.w, d.m)


ConfIntMethod: TypeAlias = Literal["wald", "profile"]
MeanIntervalMethod: TypeAlias = Literal["endpoint", "delta"]


@dataclass(frozen=True)
class InferenceResult:
    """What ``inference`` found; ``cov`` is None only where a dense k x k matrix was not formed."""

    loglik: float
    nobs: float
    num_params: int
    cov_type: CovType
    estimate: np.ndarray
    variance: np.ndarray
    cov: np.ndarray | None
    names: tuple[str, ...]
    title: str
    unravel: Callable[[Any], Any]
    recipe: Any = None
    fit: Any = None  # a _Fit: what conf_int(method="profile"), natural and mean_interval look back at

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

    def conf_int(self, level: float = 0.95, method: ConfIntMethod = "wald", index=None):
        """Confidence intervals as ``(lower, upper)`` pytrees shaped like params.

        ``method="wald"`` (the default): ``v_hat -+ z_{(1+level)/2} se``. ``method="profile"``: the
        profile-likelihood interval ``{t : 2 (l(v_hat) - max_{v_j = t} l(v)) <= chi2_1(level)}`` of
        each flat parameter j in ``index`` (flat indices or names from ``names``; default all; the
        others are NaN), by constrained re-fits vmapped over parameters and trial points
        (``mle_jax._profile``). It follows the likelihood where it is not quadratic (small samples, a
        parameter near a boundary) and is invariant to reparametrisation; an infinite bound (with a
        warning) means the profile never falls by chi2_1(level) / 2 on that side (separated classes).
        Memory: one re-fit holds the NLL of all N rows per parameter and side (2 |index| N). The profile is
        of the likelihood (with analytic weights, theirs) whatever ``cov_type``; the covariance only
        preconditions the re-fits and sets the first trial points.

        >>> import jax, jax.numpy as jnp, numpy as np, mle_jax as mj
        >>> with jax.enable_x64(True):
        ...     r = mj.recipe(lambda p, x: p["b"] + 0.0 * x, mj.poisson())
        ...     x, y = np.zeros(5), np.array([0, 1, 0, 2, 0])
        ...     s = mj.inference(r, r.init({"b": jnp.log(0.6)}), x, y)
        ...     lo, hi = s.conf_int(0.95, method="profile")
        >>> bool(hi.model["b"] - np.log(0.6) < np.log(0.6) - lo.model["b"])   # skewed, unlike Wald
        True
        """
        if method == "wald":
            if index is not None:
                raise ValueError("conf_int: index chooses the parameters of method='profile'; Wald intervals "
                                 "come for every parameter at once (pass index=None)")
            lower, upper = self._bounds(level)
        elif method == "profile":
            lower, upper = self._profile(level, index)
        else:
            raise ValueError(f"conf_int: method must be 'wald' or 'profile'; got {method!r}")
        return self.unravel(lower), self.unravel(upper)

    def _bounds(self, level):
        _check_level("conf_int", level)
        half = _normal_quantile(0.5 + 0.5 * level) * np.sqrt(self.variance)
        return self.estimate - half, self.estimate + half

    def _profile(self, level, index):
        from ._profile import Profile
        _check_level("conf_int", level)
        fit = self._needs_fit("conf_int(method='profile')")
        if fit.data is None:
            raise ValueError("conf_int(method='profile'): this result is an inference over a stream of batches, "
                             "and profile intervals re-fit the model many times, each evaluating the NLL over "
                             "every example, which needs x and y in memory (a stream is read once). Use "
                             "method='wald', or call mj.inference with x and y as arrays")
        chosen = _chosen(_flat_index(index, self.names), self.num_params)
        bad = chosen[~(self.variance[chosen] > 0) | ~np.isfinite(self.variance[chosen])]
        if bad.size:
            raise ValueError(f"conf_int(method='profile'): flat indices {bad[:10].tolist()} have no finite "
                             f"positive variance to start the search from (cov_type={self.cov_type!r})")
        with jax.enable_x64(True):
            profile = Profile(fit, _partition(fit.params, fit.keep), self.estimate, -self.loglik, self.cov,
                              self.variance,
                              problems=2 * chosen.size)
            return profile.bounds(chosen, _normal_quantile(0.5 + 0.5 * level))

    def _needs_fit(self, what):
        if self.fit is None:
            raise ValueError(f"{what}: this InferenceResult was built without its fit (recipe, params, data); "
                             f"use the one mj.inference returns")
        return self.fit

    def natural(self, links: dict[str, Callable] | None = None) -> dict[str, tuple[Any, Any]]:
        """The family's own parameters on their natural scale: ``{name: (estimate, se)}``.

        ``sigma = softplus(s) + eps`` and the family's other positive parameters (``df``,
        ``total_count``, ``concentration``, ``shape``, ``precision``) through their links, an ordinal
        family's ``cutpoints``; standard errors by the delta method, ``sqrt(J C J')`` with J the
        links' derivative (``jax.jacrev``) and C this result's covariance. ``links`` maps another
        leaf name of ``params.family`` to its inverse link (a family of your own); a family's leaves
        held fixed by ``trained=`` keep their value with SE 0. Empty for a family without parameters.

        >>> import jax, jax.numpy as jnp, numpy as np, mle_jax as mj
        >>> with jax.enable_x64(True):
        ...     y = np.random.default_rng(0).normal(1.0, 0.5, 400)
        ...     r = mj.recipe(lambda p, x: p["mu"] + 0.0 * x, mj.normal(scale="learned"))
        ...     p = r.init({"mu": jnp.asarray(y.mean())})
        ...     p = p._replace(family={"scale": mj.links.softplus_inverse(jnp.asarray(y.std()))})
        ...     sigma, se = mj.inference(r, p, np.zeros(400), y).natural()["scale"]
        >>> bool(abs(sigma - y.std()) < 1e-12 and abs(se - y.std() / np.sqrt(800)) < 1e-9)
        True
        """
        from ._delta import natural
        fit = self._needs_fit("natural")
        with jax.enable_x64(True):
            return natural(fit.at(), jnp.asarray(self.estimate), self.cov, self.variance, links,
                           positive=getattr(fit.recipe.family, "positive", None))  # the family's declaration

    def mean_interval(self, x_new: Any, level: float = 0.95, method: MeanIntervalMethod = "endpoint"):
        """``(mean, lower, upper)``: E[y | x_new] per row and its confidence interval at ``level``.

        ``method="endpoint"`` (the default, statsmodels' for a GLM: ``get_prediction(x).conf_int()``,
        its ``summary_frame``'s ``mean_ci_lower`` / ``mean_ci_upper``): the Wald interval of the
        model's raw output eta (the linear predictor; one number per example) mapped through the
        mean, ``m(eta -+ z se_eta)``, inside the mean's range. ``method="delta"``: ``m -+ z se_m``
        (statsmodels' ``conf_int(method="delta")``). Both by the delta method with this result's
        covariance; with another ``cov`` (``"robust"``) the intervals are statsmodels' of that
        ``cov_type``. This is the interval of the mean, not of y (``recipe.interval``).
        """
        from ._delta import mean_interval
        _check_level("mean_interval", level)
        if method not in get_args(MeanIntervalMethod):
            raise ValueError(f"mean_interval: method must be 'endpoint' or 'delta'; got {method!r}")
        fit = self._needs_fit("mean_interval")
        with jax.enable_x64(True):
            x_new = _to64(as_array("mean_interval", "x_new", x_new))
            if not jax.tree_util.tree_leaves(x_new) or np.ndim(jax.tree_util.tree_leaves(x_new)[0]) < 1:
                raise ValueError("mean_interval: x_new must hold at least one example (a leading batch axis)")
            return mean_interval(self.recipe, _partition(fit.params, fit.keep), jnp.asarray(self.estimate),
                                 self.cov, self.variance, x_new, _normal_quantile(0.5 + 0.5 * level), method)

    def summary(self, level: float = 0.95) -> str:
        """A text table like statsmodels' ``summary()``: the fit's statistics, then one row per parameter,
        then (for a family with parameters of its own) those on their natural scale (``natural``)."""
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
        return "\n".join(head + rows + self._natural_rows(width, rule) + [rule])

    def _natural_rows(self, width, rule) -> list[str]:
        """The natural-scale block of ``summary``: each family parameter through its link, delta-method SE."""
        if self.fit is None:
            return []
        natural = self.natural()
        if not natural:
            return []
        rows = ["-" * len(rule), f"{'natural scale (family, delta method)':<{width + 22}}",
                f"{'':<{width}}{'value':>11}{'std err':>11}"]
        for name, (value, se) in natural.items():
            for i in np.ndindex(np.shape(value)):
                label = f"family.{name}" + (f"[{', '.join(map(str, i))}]" if i else "")
                rows.append(f"{label:<{width}}{np.asarray(value)[i]:>11.4f}{np.asarray(se)[i]:>11.4f}")
        return rows


def _check_level(what, level):
    if not 0.0 < level < 1.0:
        raise ValueError(f"{what}: level must lie in (0, 1); got {level}")


def _flat_index(index, names):
    """``index`` with names (``"model.b[1]"``) turned into flat indices."""
    if index is None:
        return None
    items = [index] if isinstance(index, (str, int, np.integer)) else list(np.asarray(index, object).reshape(-1))
    out = []
    for item in items:
        if isinstance(item, str):
            if item not in names:
                raise ValueError(f"conf_int: no parameter named {item!r}; the names are {list(names)[:20]}")
            out.append(names.index(item))
        else:
            out.append(item)
    return np.asarray(out) if all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in out) else index


def _num(n):
    return f"{n:.0f}" if float(n).is_integer() else f"{n:.3f}"


def _normal_quantile(p):
    return statistics.NormalDist().inv_cdf(p)


WeightKind: TypeAlias = Literal["frequency", "analytic"]
"""What ``inference``'s weights mean (see its docstring)."""


def inference(recipe: Recipe, params: Params, x: Any, y: Any, cov: CovType = "observed", *, weights=None, mask=None,
              weight_kind: WeightKind = "frequency", trained=None,
              max_params: int = MAX_DENSE_PARAMS, index=None, batch_size: int = 64,
              chunk_size: int | None = None) -> InferenceResult:
    """Fit statistics at ``params`` (the MLE): log-likelihood, AIC, BIC, covariance, SEs, Wald intervals.

    Args:
      recipe, params, x, y: the fitted recipe, its parameters and the data the fit used.
      cov: ``"observed"`` (inverse Hessian of the NLL), ``"expected"`` (inverse expected Fisher
        information, where the theta type registers a closed form (``registry.fisher``): Normal, Laplace,
        StudentT, Poisson, Gamma, Beta, VonMises, Bernoulli, Categorical and Independent of these),
        ``"robust"`` (HC0 sandwich), ``"diagonal"`` or ``"hvp"`` (no dense k x k matrix).
      weights, mask: as in ``recipe.nll``.
      weight_kind: what the weights are. ``"frequency"`` (the default; what ``fit`` minimises): a row
        of weight 3 counts as three rows: ``nobs = sum_i m_i w_i``, the NLL ``-sum_i w_i log Pr(y_i)``
        and the robust meat HC0 on the rows so expanded (statsmodels' GLM ``freq_weights``).
        ``"analytic"``: precision weights, row i measured w_i times as precisely (a Normal's variance
        ``sigma^2 / w_i``): ``nobs`` is the number of rows with a nonzero weight, the family's affine
        shift (its ``-log sigma``) counts once per row, ``-sum_i [w_i a(f) k_i + b(f)]`` for a
        density ``a(f) k_i + b(f)``, the robust meat is ``sum_i s_i s_i'`` of the rows' weighted scores
        (statsmodels' GLM ``var_weights``, WLS, for the Normal and for families without parameters of
        their own). The likelihood so defined follows the family's factorisation (``Family.density``):
        for ``gamma("mean")`` it is ``-sum_i [w_i (-a expm1mx(log y_i - eta_i) - log y_i) + b(a)]``, the
        shape's normaliser ``b(a) = a log a - a - lgamma(a)`` once per row; statsmodels' ``var_weights``
        Gamma is the density at shape ``w_i a`` (and estimates ``1/a`` by Pearson's chi2): the
        coefficients agree, the shape and so the standard errors do not. A family whose own parameters enter the shift (a
        learned sigma) is re-fitted at this likelihood (L-BFGS from ``params``): its sigma is the
        scale of a row of weight 1, ``sqrt(sum_i w_i r_i^2 / N)``, not the frequency fit's
        ``sqrt(sum_i w_i r_i^2 / sum_i w_i)``. For a family without parameters of its own (Poisson,
        Bernoulli) the two kinds share estimates and covariance and differ only in nobs (the BIC) and
        in the robust meat. ``cov="expected"`` with analytic weights needs such a family.
      trained: which leaves are parameters: a pytree of bools shaped like ``params`` or a prefix of it
        (an optax mask: ``Params(model={"b": True, "c": False}, family=True)``), or a function of
        ``params`` returning one. A False leaf (frozen in the fit, e.g. by ``optax.masked``) is held at its
        value: left out of the covariance, ``num_params``, AIC and BIC (default: every inexact leaf).
      max_params: the largest k for which a dense k x k Hessian is formed (default 4096).
      index: for ``cov="hvp"``, the flat indices (integers in [0, k)) whose variances to solve for
        (default all); the others are reported as NaN.
      batch_size: Hessian-vector products evaluated at once for ``"diagonal"`` and ``"hvp"``.
      chunk_size: examples differentiated at once (default: about 2^18 / k for the dense k x k sums,
        whose matrix products then run from cache, and 2^21 / batch_size for Hessian-vector products);
        every quantity is summed chunk by chunk, so memory grows linearly in N.

    Returns:
      An ``InferenceResult``. A singular (or numerically singular) information matrix gives a
      ``RuntimeWarning`` naming the cause and the Moore-Penrose pseudo-inverse, whose standard errors
      are meaningful only for the identified directions; conjugate gradients that do not converge
      (``"hvp"``) give a ``RuntimeWarning`` and NaN variances. Bernoulli and Categorical fits whose
      classes are separated give a ``PerfectSeparationWarning``. A family parameter on its link's floor
      (``softplus(raw) <= eps``, ``mle_jax._floors``) gives a ``BoundaryWarning``: the estimate is no
      interior MLE and the link is flat there, so its standard errors (and the others') are meaningless.
    """
    _check_options(cov, max_params, batch_size, chunk_size, index)
    if weight_kind not in get_args(WeightKind):
        raise ValueError(f"inference: weight_kind must be 'frequency' or 'analytic'; got {weight_kind!r}")
    if not isinstance(recipe, Recipe):
        raise TypeError(f"inference: recipe must be an mle_jax Recipe (mj.recipe(model, family)); "
                        f"got {type(recipe).__name__}")
    _floored(recipe, params)
    if y is None and is_stream(x):  # an iterable of (x_b, y_b[, w_b]) batches: sums over them
        if weight_kind != "frequency" or trained is not None:
            raise ValueError("inference: a stream of batches takes frequency weights and every trained leaf; "
                             "weight_kind='analytic' and trained= need the data in memory")
        from ._stream_inference import stream_inference
        return stream_inference(recipe, params, x, cov, weights=weights, mask=mask, max_params=max_params,
                                index=index, batch_size=batch_size, chunk_size=chunk_size)
    keep = _keep(trained, params)
    with jax.enable_x64(True):
        columns = names_of(x)  # a DataFrame's columns (or a formula design's) name a linear model's rows
        x, y, weights, mask = (as_array("inference", what, a) for what, a in
                               (("x", x), ("y", y), ("weights", weights), ("mask", mask)))
        n = check_batch("inference", x, y, ("weights", weights), ("mask", mask))
        check_weights("inference", weights, mask)
        nobs = y_count(y, weights, mask) if weight_kind == "frequency" else row_count(weights, mask, n)
        if not nobs > 0:
            raise ValueError("inference: the weights and mask leave no example (sum_i m_i w_i = 0): there is "
                             "no likelihood to differentiate and log(nobs) in the BIC is undefined")
        params, x, y, weights = _to64(params, numbers=False), _to64(x), _to64(y), _to64(weights)
        parts = _partition(params, keep)
        v = ravel_pytree(parts.trained)[0]
        k = int(v.size)
        check_dense(cov, k, max_params, keep)
        chosen = _chosen(index, k)
        theta = _theta_shape(recipe, parts, x)
        if cov == "expected" and not dist.registry.has_fisher(theta):
            raise dist.registry.no_fisher(theta, "inference")
        own = _owns_parameters(parts)
        if cov == "expected" and weight_kind == "analytic" and own:
            raise ValueError(f"inference: cov='expected' with weight_kind='analytic' has no closed form for "
                             f"{recipe.family.name}, whose own parameters enter every row's density; use "
                             f"cov='observed'")

        if recipe.validate:
            recipe.check(x, y, weights, mask, params=params)  # the data's values, once per data set (as recipe.nll)
        data = Data(x, y, jnp.ones(n) if weights is None else weights,
                    jnp.ones(n, bool) if mask is None else jnp.asarray(mask) != 0)
        loglik, labels = loglik_and_labels(recipe, params, data, dist.registry.entries(theta).probs is not None)
        if not math.isfinite(loglik):
            raise ValueError(f"inference: the log-likelihood at params is {loglik}; is params the fitted MLE?")
        if labels is not None and labels.complete:
            warnings.warn(labels.complete_message(), PerfectSeparationWarning, stacklevel=2)
        target, seen = recipe, data
        if weight_kind == "analytic" and cov != "expected":
            target = recipe.programs.get(("inference", "analytic"), lambda: _Analytic(recipe))
            seen = Data((x, data.w), y, jnp.ones(n), data.m & (data.w != 0))
            if own:
                params = _refit(target, params, keep, seen, k <= max_params)
                parts = _partition(params, keep)
                v = ravel_pytree(parts.trained)[0]
            loglik = -float(target.reduce(params, seen.x, seen.y, seen.w, seen.m))
        matrix, variance = _covariance(cov, target, v, parts, seen, chosen, labels,
                                       _Sizes(n, k, batch_size, chunk_size), max_params)
    return result(recipe, params, keep, columns, loglik, nobs, cov, v, matrix, variance,
                  _Fit(target, params, keep, seen, weight_kind))


def _floored(recipe: Recipe, params) -> None:
    """A ``BoundaryWarning`` where ``params`` has a family parameter on its link's floor (read in its own dtype,
    before the float64 copy: the floor is ``finfo(dtype).eps`` of the fit)."""
    floored = on_floor(getattr(params, "family", None), recipe.family.positive)
    if floored:
        warnings.warn(f"inference: {describe(floored)}. The information there is that of a flat link (the raw "
                      f"gradient vanishes): the estimate is no interior MLE and its standard errors and Wald "
                      f"intervals are meaningless", BoundaryWarning, stacklevel=3)


def _theta_shape(recipe: Recipe, parts: Parts, x):
    """The prediction's type and shapes (``jax.eval_shape``: nothing compiles), through a jitted function kept in
    ``recipe.programs``, whose trace is cached: a repeated call does not trace the model again (2 ms)."""
    shapes = recipe.programs.get(("inference", "theta"), lambda: jax.jit(lambda p, x: recipe.predict(p.params(), x)))
    return shapes.eval_shape(parts, x)


def result(recipe, params, keep, columns, loglik, nobs, cov, v, matrix, variance, fit: _Fit) -> InferenceResult:
    """The ``InferenceResult`` of an in-memory or a stream inference."""
    title = f"Maximum-likelihood fit: {getattr(recipe.family, 'name', 'family')}"
    if fit.weight_kind == "analytic":
        title += " (analytic weights)"
    return InferenceResult(loglik, nobs, int(np.size(v)), cov, np.asarray(v, np.float64), variance, matrix,
                           tuple(parameter_names(params, columns, keep)), title, _numpy_unravel(params, keep),
                           recipe, fit)


def _keep(trained, params) -> list[bool] | None:
    """Per leaf of ``params``, whether ``trained=`` (a pytree of bools, a prefix of params, or a function
    of params) counts it; None: every leaf."""
    if trained is None:
        return None
    if callable(trained):
        trained = trained(params)

    def spread(flag, sub):
        if not isinstance(flag, (bool, np.bool_)):
            raise ValueError(f"inference: trained= must hold True / False leaves (an optax mask); got {flag!r}")
        return np.full(len(jax.tree_util.tree_leaves(sub)), bool(flag))
    try:
        spread_tree = jax.tree_util.tree_map(spread, trained, params)
    except (ValueError, TypeError) as error:
        if "trained=" in str(error):
            raise
        raise ValueError(f"inference: trained= must be a pytree of bools shaped like params (or a prefix of "
                         f"it, e.g. Params(model=True, family=False)): {error}") from None
    keep = [bool(flag) for flags in jax.tree_util.tree_leaves(spread_tree) for flag in flags]
    if len(keep) != len(jax.tree_util.tree_leaves(params)):
        raise ValueError("inference: trained= does not match params' leaves")
    return keep


def _partition(params, keep: list[bool] | None) -> Parts:
    """``partition(params)`` with the leaves ``keep`` holds fixed moved from trained to carried."""
    parts = partition(params)
    if keep is None:
        return parts
    leaves, treedef = jax.tree_util.tree_flatten(params)
    kinds, trained, carried = [], [], []
    for leaf, kind, counted in zip(leaves, parts.layout.kinds, keep):
        if kind is TRAINED and counted:
            kinds.append(TRAINED)
            trained.append(leaf)
            continue
        trained.append(None)
        if kind is TRAINED or kind is CARRIED:
            kinds.append(CARRIED)
            carried.append(leaf)
        else:
            kinds.append(kind)
    return Parts(jax.tree_util.tree_unflatten(treedef, trained), carried, Layout(treedef, tuple(kinds)))


def _owns_parameters(parts: Parts) -> bool:
    """Whether the family has trained parameters of its own."""
    return bool(jax.tree_util.tree_leaves(parts.trained.family))


def row_count(weights, mask, n: int) -> float:
    """The rows the NLL sees: unmasked, with a nonzero weight (analytic weights' nobs)."""
    rows = np.ones(n, bool) if weights is None else np.asarray(weights) != 0
    return float(np.sum(rows if mask is None else rows & (np.asarray(mask) != 0)))


class _Analytic:
    """The recipe's NLL with analytic (precision) weights: x is ``(x, a)`` with a the weights, and

        -log L = -sum_i m_i w_i [a_i s(f) k_i + b(f)]   (the family's density s(f) k_i + b(f), ``Density``)

    i.e. ``recipe.reduce`` at weights ``w a`` plus ``sum_i m_i w_i (a_i - 1) b(f)``: the shift b once per
    row. Kept in ``recipe.programs``, so its compiled programs live (and die) with the recipe."""

    def __init__(self, recipe: Recipe):
        self.recipe, self.family, self.programs = recipe, recipe.family, type(recipe.programs)()

    def reduce(self, params, xa, y, weights=None, mask=None):
        x, a = xa
        base = jnp.ones_like(a) if weights is None else jnp.asarray(weights, a.dtype)
        value = self.recipe.reduce(params, x, y, base * a, mask)
        m = jnp.ones(a.shape, bool) if mask is None else mask
        # the shift as the kernel read the family's parameters: against raw outputs of the terms' dtype
        dtype = jnp.result_type(value)
        shift = affine_as(self.recipe.family.density.affine_at(params.family, jnp.zeros((), dtype)), dtype)[1]
        return value + jnp.sum(jnp.where(m, base * (a - 1.0), 0.0)) * shift

    def predict(self, params, xa):
        return self.recipe.predict(params, xa[0])


def _refit(target: _Analytic, params, keep, data: Data, dense: bool):
    """``params`` re-fitted (L-BFGS, preconditioned by the Hessian) at ``target``'s NLL: the maximum of the
    analytic likelihood, from the frequency fit's."""
    from ._profile import _sqrt_psd, minimise
    v, at = ravel_trained(params, keep)
    parts = _partition(params, keep)
    sizes = _Sizes(int(data.m.shape[0]), int(v.size), 64, None)
    if dense:
        hess = np.asarray(_program(target, curvature.hessian, sizes)(v, parts, data, size=sizes.dense()), np.float64)
        root = _sqrt_psd(np.linalg.pinv(hess, hermitian=True))[0]
    else:
        root = np.diag(1.0 / np.sqrt(np.maximum(_diagonal(target, v, parts, data, sizes), 1e-300)))
    root = jnp.asarray(root)

    def nll(w):
        return target.reduce(at(v + root @ w), data.x, data.y, data.w, data.m)
    w, value, _ = jax.jit(lambda w0: minimise(nll, w0))(jnp.zeros(v.size))
    if not bool(jnp.isfinite(value)):
        raise ValueError("inference: the re-fit at the analytic weights' likelihood failed (a non-finite NLL)")
    return at(v + root @ w)


def _check_options(cov, max_params, batch_size, chunk_size, index) -> None:
    """The settings, before anything is computed."""
    if cov not in COV_TYPES:
        raise ValueError(f"inference: cov must be one of {COV_TYPES}; got {cov!r}")
    for name, value in (("max_params", max_params), ("batch_size", batch_size), ("chunk_size", chunk_size)):
        if value is None and name == "chunk_size":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"inference: {name} must be an integer >= 1; got {value!r}")
    if index is not None and cov != "hvp":
        raise ValueError(f"inference: index chooses the parameters of cov='hvp'; with cov={cov!r} every "
                         f"variance is computed (pass index=None)")


def _chosen(index, k: int) -> np.ndarray:
    """The flat indices of ``index`` (default all), checked: integers in [0, k), at least one."""
    if index is None:
        return np.arange(k)
    chosen = np.asarray(index).reshape(-1)
    if chosen.dtype == np.bool_ or not np.issubdtype(chosen.dtype, np.integer):
        raise ValueError(f"inference: index must hold integer flat indices in [0, {k}); got {index!r}")
    if chosen.size == 0 or np.any((chosen < 0) | (chosen >= k)):
        raise ValueError(f"inference: index must hold at least one flat index in [0, {k}) (the model has "
                         f"{k} trained parameters); got {index!r}")
    return np.unique(chosen)


def y_count(y, weights, mask) -> float:
    """``sum_i m_i w_i``: the number of examples the NLL counts."""
    n = np.shape(y)[0]
    w = np.ones(n) if weights is None else np.asarray(weights, np.float64)
    return float(np.sum(w if mask is None else np.where(np.asarray(mask) != 0, w, 0.0)))


# ----------------------------------------------------------------------------- compiled programs

ROWS_TIMES_LANES = 2**21  # a chunk's rows times the Hessian-vector products each row carries (batch_size)
QUICK_RUN = 2**28  # N k^2 below this (a run of ~10 ms): compile at XLA optimisation level 0 (~35% faster, runs slower)


class _Sizes(NamedTuple):
    n: int
    k: int
    batch: int
    chunk: int | None

    def rows(self, lanes: int) -> int:
        """Examples per chunk: ``chunk_size``, or as many as keep ``rows * lanes`` near 2^21."""
        return min(self.n, self.chunk or max(1, ROWS_TIMES_LANES // lanes))

    def dense(self) -> int:
        """Examples per chunk of the dense k x k sums: ``chunk_size``, or as many as keep ``rows * k`` near
        2^18 (the matrix products run from cache: 2-3x faster than over 2^21 elements on a CPU)."""
        return min(self.n, self.chunk or max(1, DENSE_ELEMENTS // self.k))

    @property
    def quick(self) -> bool:
        """Whether the run is short next to the compile (``N k^2 < QUICK_RUN``): then compile fast."""
        return self.n * self.k * self.k < QUICK_RUN


_STATIC = {"hessian": ("size",), "meat": ("size",), "sandwich": ("size",), "expected_information": ("size",),
           "hessian_diagonal": ("size", "batch"), "inverse_diagonal": ("size", "batch")}


def _program(recipe: Recipe | _Analytic, fn: Callable, sizes: _Sizes) -> Callable:
    """``fn(recipe, v, parts, data, ...)`` jitted once per recipe and kept in ``recipe.programs`` under
    ``("inference", fn name, quick)`` (bounded, and dying with the recipe). The params' structure and the
    chunk sizes are static arguments of the one jitted function, so a new shape, structure or size
    compiles once and the same ones never again. A quick run (``sizes.quick``: small N k^2) is compiled
    at XLA optimisation level 0, whose compile is ~35% shorter; a long one at the default level, whose
    program runs up to ~2x faster."""
    options = {"xla_backend_optimization_level": 0} if sizes.quick else None

    def build():
        return jax.jit(functools.partial(fn, recipe), static_argnames=_STATIC[fn.__name__], compiler_options=options)
    return recipe.programs.get(("inference", fn.__name__, sizes.quick), build)


def _covariance(cov, recipe, v, parts, data, chosen, labels: Labels | None, sizes, max_params):
    """``(cov matrix or None, variances)``; with a separation check where ``labels`` shows confidently
    fitted examples (``strong``: the data without them)."""
    strong = data._replace(m=data.m & ~labels.confident) if labels is not None and labels.quasi else None
    if cov == "hvp":
        if labels is not None and strong is not None:
            quasi_separation_diagonal(labels, _diagonal(recipe, v, parts, data, sizes),
                                      _diagonal(recipe, v, parts, strong, sizes))
        variance = _cg_variances(recipe, v, parts, data, chosen, sizes)
        return (np.diag(variance) if sizes.k <= max_params else None), variance
    terms = curvature_terms(cov, recipe, v, parts, data, sizes)
    hint = None
    if labels is not None and strong is not None:
        information = "diagonal" if cov == "diagonal" else "expected" if cov == "expected" else "observed"
        without = curvature_terms(information, recipe, v, parts, strong, sizes)[0]
        if cov == "diagonal":
            quasi_separation_diagonal(labels, terms[0], without)
        else:
            hint = quasi_separation(labels, terms[0], without)
    return assemble(cov, terms, sizes.k, max_params, hint)


def curvature_terms(cov, recipe, v, parts, data, sizes) -> tuple[np.ndarray, ...]:
    """The sums over examples that ``cov`` needs, in float64: ``(H,)`` (observed), ``(I,)`` (expected),
    ``(H, B)`` (robust: one pass computes both) or ``(diag H,)`` (diagonal). Over a stream of batches
    (``mle_jax._stream_inference``) each batch's terms add up to the data's."""
    if cov == "diagonal":
        return (_diagonal(recipe, v, parts, data, sizes),)
    fn = {"observed": curvature.hessian, "expected": curvature.expected_information,
          "robust": curvature.sandwich}[cov]
    out = _program(recipe, fn, sizes)(v, parts, data, size=sizes.dense())
    return tuple(np.asarray(a, np.float64) for a in (out if cov == "robust" else (out,)))


def assemble(cov, terms, k: int, max_params: int, hint: str | None = None):
    """``(cov matrix or None, variances)`` from ``curvature_terms``' sums: ``1 / H_jj`` (diagonal),
    ``I^-1``, ``H^-1`` or ``H^-1 B H^-1``; ``hint``, a sentence on separated classes, joins the warning."""
    if cov == "diagonal":
        variance = _reciprocal(terms[0])
        return (np.diag(variance) if k <= max_params else None), variance
    what = ("expected Fisher information" if cov == "expected"
            else "observed information (the Hessian of the NLL)")
    inv = _inverse(terms[0], what, hint)
    if cov == "robust":
        inv = inv @ terms[1] @ inv
    return inv, np.diag(inv).copy()


def check_dense(cov, k: int, max_params: int, keep=None) -> None:
    """``k`` trained parameters, and a dense k x k matrix only up to ``max_params``."""
    if k == 0:
        raise ValueError("inference: params hold no inexact-array leaves to infer"
                         + ("" if keep is None else " (trained= holds every one fixed)"))
    if cov in ("observed", "expected", "robust") and k > max_params:
        raise ValueError(
            f"inference: {k} parameters would need a dense {k} x {k} Hessian ({8 * k * k / 2**20:.0f} MiB "
            f"and {k} gradient evaluations), above max_params={max_params}; use cov='diagonal' "
            f"(1 / diag(H), k Hessian-vector products) or cov='hvp' with index=[...] (exact variances "
            f"of chosen parameters by conjugate gradients), or raise max_params")


def _reciprocal(diag) -> np.ndarray:
    """``1 / H_jj`` (``cov="diagonal"``), refused where ``H_jj`` is not > 0."""
    if not np.all(diag > 0) or not np.all(np.isfinite(diag)):
        bad = np.flatnonzero(~(diag > 0) | ~np.isfinite(diag))[:10].tolist()
        raise ValueError(f"inference: the Hessian has non-positive or non-finite diagonal entries at flat "
                         f"indices {bad}; params is not a strict minimum")
    return 1.0 / diag


def _diagonal(recipe, v, parts, data, sizes) -> np.ndarray:
    """``H_jj`` for every j, by Hessian-vector products."""
    fn = _program(recipe, curvature.hessian_diagonal, sizes)
    return np.asarray(fn(v, parts, data, size=sizes.rows(sizes.batch), batch=sizes.batch), np.float64)


def _cg_variances(recipe, v, parts, data, chosen, sizes) -> np.ndarray:
    """``(H^-1)_jj`` for the chosen j by conjugate gradients (NaN for the others); NaN, with a warning,
    where CG did not converge to a relative error below 1e-6 (H singular or indefinite along e_j) or
    gave a variance <= 0."""
    fn = _program(recipe, curvature.inverse_diagonal, sizes)
    var, error = (np.asarray(a, np.float64) for a in fn(v, parts, data, jnp.asarray(chosen),
                                                         size=sizes.rows(sizes.batch), batch=sizes.batch))
    failed = ~(error <= 1e-6 * np.abs(var)) | ~(var > 0)
    if failed.any():
        warnings.warn(
            f"inference: conjugate gradients did not solve H z = e_j for flat indices "
            f"{chosen[failed][:10].tolist()} (error bound {np.max(np.nan_to_num(error[failed], nan=np.inf)):.3g}, "
            f"variance {var[failed][:3].tolist()}): the Hessian is singular or not positive definite along "
            f"them (a parameter that is not identified, such as a collinear column or one logit per class "
            f"in a softmax) or params is not a minimum; their variances are NaN",
            RuntimeWarning, stacklevel=4)
    variance = np.full(sizes.k, np.nan)  # the parameters not chosen by index are NaN
    variance[chosen] = np.where(failed, np.nan, var)
    return variance


def _inverse(matrix, what, hint=None):
    """The inverse by a Cholesky solve; a warning and the pseudo-inverse when it is (near) singular.
    ``hint``, a sentence on separated classes, makes the warning a ``PerfectSeparationWarning``."""
    eig = np.linalg.eigvalsh(matrix)
    if eig[0] <= singular_tol(eig):
        warnings.warn(
            f"inference: the {what} is singular or not positive definite (smallest eigenvalue {eig[0]:.3g}, "
            f"largest {eig[-1]:.3g}): some parameters are not identified (a redundant parameter, such as "
            f"one logit per class in a softmax, or a constant column) or params is not a maximum; using "
            f"the pseudo-inverse, whose standard errors hold only for the identified directions"
            + ("" if hint is None else f". {hint}"),
            RuntimeWarning if hint is None else PerfectSeparationWarning, stacklevel=4)
        return np.linalg.pinv(matrix, rcond=1e-10, hermitian=True)
    if hint is not None:
        warnings.warn(f"inference: {hint}", PerfectSeparationWarning, stacklevel=4)
    inv_factor = np.linalg.solve(np.linalg.cholesky(matrix), np.eye(matrix.shape[0]))  # L^-1 with H = L L'
    return inv_factor.T @ inv_factor


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
