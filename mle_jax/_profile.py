"""Profile-likelihood intervals for ``InferenceResult.conf_int(level, method="profile")``.

The profile log-likelihood of the flat parameter j is ``l_p(t) = max_{v: v_j = t} l(v)``; its interval
at ``level`` is ``{t : 2 (l(v_hat) - l_p(t)) <= chi2_1(level)}`` (Wilks), found as the two roots of
the signed root ``r(t) = sign(t - v_hat_j) sqrt(2 (l(v_hat) - l_p(t))) = -+ z_{(1+level)/2}``.
``r`` is nearly linear in t, which makes the root search short:

1. bracket: r at ``v_hat_j -+ c z se_j`` for c = 1, 2, 4, 8, 16 until it passes z; a side that never reaches z (a flat profile: separated classes, a parameter at a boundary) is
   unbounded (inf, with a warning);
2. refine: false position with the Illinois modification (Dowell and Jarratt 1971) inside the
   bracket, every (j, side) at once, until ``|r - z| < 1e-10``.

Each evaluation of l_p is a constrained re-fit, every (j, side) of one round in ONE vmapped program
(compiled once per recipe and shapes, kept in the recipe's ``programs``):
``v = m_j(t) + S_j w`` over free w, where ``m_j(t) = v_hat + C e_j (t - v_hat_j) / C_jj`` is the
quadratic approximation's conditional maximiser and ``S_j`` the symmetric square root of the
conditional covariance ``C - C e_j e_j' C / C_jj`` (whose row j is 0, so ``v_j = t`` exactly): in
w the problem is close to the unit sphere, and L-BFGS (``optax.lbfgs``) converges in a few steps.
Reference: Venzon and Moolgavkar (1988), Applied Statistics 37, profile-likelihood intervals;
Pawitan, *In All Likelihood* (2001), 3.4 and 9.5.
"""

from __future__ import annotations

import functools
import warnings
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

GRAD_TOL = 1e-8  # L-BFGS stops at max |d nll / d w| below this (w in standard-error units)
MAX_STEPS = 500
ROOT_TOL = 1e-10  # |r(t) - z| at which a bound is accepted
MAX_ROUNDS = 40
BRACKET = (1.0, 2.0, 4.0, 8.0, 16.0)  # multiples of the Wald half-width tried for the bracket


def minimise(g: Callable, w0: jax.Array):
    """``(w, g(w), steps)``: L-BFGS (``optax.lbfgs``, its zoom line search) from w0 until the largest
    gradient entry is below ``GRAD_TOL`` or ``MAX_STEPS``; a pure function (jit, vmap)."""
    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(g)

    def cond(carry):
        _, _, step, norm = carry
        return (step < MAX_STEPS) & (norm > GRAD_TOL)

    def body(carry):
        w, state, step, _ = carry
        value, grad = value_and_grad(w, state=state)
        updates, state = opt.update(grad, state, w, value=value, grad=grad, value_fn=g)
        norm = jnp.where(jnp.isfinite(value), jnp.max(jnp.abs(jnp.asarray(grad))), 0.0)  # NaN: stop, reported as NaN
        return optax.apply_updates(w, updates), state, step + 1, norm

    w, _, steps, _ = jax.lax.while_loop(cond, body, (w0, opt.init(w0), 0, jnp.inf))
    return w, g(w), steps


def _sqrt_psd(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The symmetric square root of a PSD matrix and its pseudo-inverse."""
    eig, vec = np.linalg.eigh((matrix + matrix.T) / 2)
    keep = eig > 1e-12 * max(eig[-1], 1e-300)
    safe = np.sqrt(np.where(keep, eig, 1.0))
    root, inv = np.where(keep, safe, 0.0), np.where(keep, 1.0 / safe, 0.0)
    return (vec * root) @ vec.T, (vec * inv) @ vec.T


def _solve_many(target, parts, data, js, ts, means, roots, pinvs, starts, constrained):
    """For each problem p: ``(v, nll)`` at the maximum over ``v = means_p + roots_p w`` (with
    ``v_j = ts_p`` where ``constrained_p``), warm-started at ``starts_p``; one vmapped program."""
    unravel = ravel_pytree(parts.trained)[1]

    def nll(v):
        return target.reduce(parts.replace(trained=unravel(v)).params(), data.x, data.y, data.w, data.m)

    def one(j, t, mean, root, pinv, start, fixed):
        def at(w):  # mean_j = t and root's row j is 0 when fixed: the .set only guards rounding
            v = mean + root @ w
            return jnp.where(fixed, v.at[j].set(t), v)
        w, value, _ = minimise(lambda w: nll(at(w)), pinv @ (start - mean))
        return at(w), value
    return jax.vmap(one)(js, ts, means, roots, pinvs, starts, constrained)


class Profile:
    """The constrained re-fits of one fit (a ``mle_jax.inference._Fit``; ``nll_hat`` its NLL at ``v_hat``),
    one compiled program per recipe and shapes (kept in the recipe's ``programs``)."""

    def __init__(self, fit, parts, v_hat, nll_hat: float, cov: np.ndarray | None, variance: np.ndarray,
                 problems: int):
        cov = np.diag(variance) if cov is None else np.asarray(cov, np.float64)
        if not np.all(np.isfinite(cov)):  # cov="hvp": NaN for the variances not solved for; unit scales there
            diag = np.diag(cov)
            cov = np.diag(np.where(np.isfinite(diag) & (diag > 0), diag, 1.0))
        self.cov = cov  # preconditions the re-fits (whatever the cov_type: the profile is of the likelihood)
        program = fit.recipe.programs.get(("inference", "profile"),
                                          lambda: jax.jit(functools.partial(_solve_many, fit.recipe)))
        self.solve = functools.partial(program, parts, fit.data)
        self.problems = problems
        v_hat = np.asarray(v_hat, np.float64)
        k = v_hat.size
        # the MLE polished once (the same program, unconstrained), so that every profile starts at one maximum
        root, pinv = _sqrt_psd(self.cov)
        many = lambda a: np.repeat(a[None], problems, 0)  # noqa: E731
        v, value = self.solve(jnp.zeros(problems, int), jnp.asarray(many(v_hat[0])), jnp.asarray(many(v_hat)),
                              jnp.asarray(many(root)), jnp.asarray(many(pinv)), jnp.asarray(many(v_hat)),
                              jnp.zeros(problems, bool))
        value = np.asarray(value, np.float64)
        start = float(nll_hat)  # the NLL at v_hat, as inference computed it
        best = int(np.argmin(value))
        if value[best] < start:
            self.v_hat, self.nll_min = np.asarray(v[best], np.float64), float(value[best])
        else:
            self.v_hat, self.nll_min = v_hat, start
        assert self.v_hat.size == k

    def _setup(self, js: np.ndarray):
        """Per problem: the conditional covariance's square root and pseudo-inverse."""
        roots, pinvs = [], []
        for j in js:
            c = self.cov[:, j]
            root, pinv = _sqrt_psd(self.cov - np.outer(c, c) / self.cov[j, j])
            roots.append(root)
            pinvs.append(pinv)
        return np.stack(roots), np.stack(pinvs)

    def signed_roots(self, js, ts, starts, roots, pinvs):
        """``(r(t), v)`` for each problem (j, t), all in one vmapped re-fit."""
        js, ts = np.asarray(js), np.asarray(ts, np.float64)
        c = self.cov[:, js].T  # (P, k)
        means = self.v_hat[None] + c * ((ts - self.v_hat[js]) / self.cov[js, js])[:, None]
        means[np.arange(js.size), js] = ts
        v, value = self.solve(jnp.asarray(js), jnp.asarray(ts), jnp.asarray(means), jnp.asarray(roots),
                              jnp.asarray(pinvs), jnp.asarray(starts), jnp.ones(js.size, bool))
        drop = np.maximum(2.0 * (np.asarray(value, np.float64) - self.nll_min), 0.0)
        return np.sign(ts - self.v_hat[js]) * np.sqrt(drop), np.asarray(v, np.float64)

    def bounds(self, chosen: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper profile bounds for the flat indices ``chosen`` (NaN elsewhere)."""
        k = self.v_hat.size
        lower, upper = np.full(k, np.nan), np.full(k, np.nan)
        js = np.repeat(chosen, 2)
        sides = np.tile([-1.0, 1.0], chosen.size)
        p = js.size
        se = np.sqrt(self.cov[js, js])
        center = self.v_hat[js]
        roots, pinvs = self._setup(js)
        # 1. the bracket: r at growing multiples of the Wald half-width until it passes z
        a, fa = center.copy(), np.full(p, -z)
        b, fb = np.full(p, np.nan), np.full(p, np.nan)
        last = np.repeat(self.v_hat[None], p, 0)
        found = np.zeros(p, bool)
        for c in BRACKET:
            t = np.where(found, b, center + sides * z * se * c)
            r, v = self.signed_roots(js, t, last, roots, pinvs)
            f = sides * r - z  # < 0 inside the interval
            new = ~found & (f >= 0)
            b, fb = np.where(new, t, b), np.where(new, f, fb)
            inside = ~found & (f < 0)
            a, fa = np.where(inside, t, a), np.where(inside, f, fa)
            last = np.where(found[:, None], last, v)
            found |= new
            if found.all():
                break
        result = np.where(found, np.nan, sides * np.inf)
        # 2. false position (Illinois) inside each bracket, every unfinished problem at once
        done = ~found | (np.abs(fb) < ROOT_TOL)
        result = np.where(found & done, b, result)
        side = np.zeros(p)
        for _ in range(MAX_ROUNDS):
            if done.all():
                break
            t = np.where(done, b, b - fb * (b - a) / np.where(done, 1.0, fb - fa))
            r, v = self.signed_roots(js, t, last, roots, pinvs)
            ft = sides * r - z
            last = np.where(done[:, None], last, v)
            left, right = (ft < 0) & ~done, (ft >= 0) & ~done
            fa = np.where(right & (side == 1), fa / 2, fa)  # b replaced twice running: halve f(a)
            fb = np.where(left & (side == -1), fb / 2, fb)  # a replaced twice running: halve f(b)
            a, fa = np.where(left, t, a), np.where(left, ft, fa)
            b, fb = np.where(right, t, b), np.where(right, ft, fb)
            side = np.where(left, -1, np.where(right, 1, side))
            finished = ~done & ((np.abs(ft) < ROOT_TOL) | (np.abs(b - a) < 1e-12 * se))
            result = np.where(finished, t, result)
            done = done | finished
        if not done.all():
            result = np.where(done, result, np.where(np.abs(fa) < np.abs(fb), a, b))
            warnings.warn(f"conf_int(method='profile'): the root search stopped after {MAX_ROUNDS} rounds for "
                          f"flat indices {js[~done][:10].tolist()} (|r - z| up to "
                          f"{np.max(np.minimum(np.abs(fa), np.abs(fb))[~done]):.2g}); those bounds are the "
                          f"best found", RuntimeWarning, stacklevel=4)
        if not found.all():
            warnings.warn(f"conf_int(method='profile'): the profile log-likelihood of flat indices "
                          f"{sorted(set(js[~found].tolist()))[:10]} stays within chi2_1(level) / 2 of its "
                          f"maximum out to {BRACKET[-1]:g} Wald half-widths on one side: that bound is "
                          f"reported as infinite (a flat profile: separated classes, or a parameter at the "
                          f"edge of its range)", RuntimeWarning, stacklevel=4)
        lower[chosen], upper[chosen] = result[0::2], result[1::2]
        return lower, upper
