"""The checks ``mj.register(T, example=T(...), ...)`` runs on what a user registers (``check_registration``).

At one example theta with scalar targets, in NumPy/SciPy over the registered JAX functions, each run over its
points as one compiled program (as given where it does not trace: a function that reads a JAX value into NumPy);
never at import: built-ins register without ``example``. Seconds for a closed form, 5-15 s of CPU for a built-in
whose tails are incomplete gamma or beta functions (three programs: ``log_cdf``, ``log_sf``, ``quantile``):

    normalisation  the density integrates (sums, on an integer or finite support) to 1 over the support
                   within ``TOL`` (``scipy.integrate.quad`` over the real line, a half line or an interval,
                   in ``u = (y - m) / s`` with m, s the example's location and scale, split at u = 0, +-1,
                   +-3, +-10, +-30; integers summed outwards until the mass left is below 1e-12)
    sample         the Kolmogorov distance of ``N_DRAWS`` draws (fixed key) from the CDF integrated from
                   ``exp(log_prob)`` is below the DKW bound ``sqrt(log(2 / ALPHA) / (2 n))`` at false-alarm
                   rate ``ALPHA`` (valid for discrete supports too)
    mean, variance, entropy   equal the numeric moments within ``TOL`` relative to ``|value| + scale``
    mode           no draw (nor the location) has a log density above ``log_prob(mode) + TOL``
    log_cdf, log_sf, quantile  agree with the numeric CDF at the draws' 5/25/50/75/95% points (probability
                   scale, ``TOL``); a discrete quantile is the smallest k with ``F(k) >= q``

An integer or finite support needs ``discrete=True`` (or ``unordered=True``: classes). Each failure is a
ValueError naming the type, the entry and the numbers. Location and scale come from
the draws' median and interquartile range where ``sample`` is given, else from ``mean`` or ``mode`` and
``variance`` (else 0 and 1). Vector targets (``event_ndims > 0``) and structured supports are not
integrated: only that ``log_prob`` is finite at a draw is checked there. On the ``angle`` support the density
is integrated over one period around the mode, and ``mean`` / ``variance`` (circular, not linear moments) are
not compared.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy import special

TOL = 1e-3
ALPHA = 1e-6
N_DRAWS = 1 << 14
_CUTS = (-30.0, -10.0, -3.0, -1.0, 0.0, 1.0, 3.0, 10.0, 30.0)
_GL_X, _GL_W = np.polynomial.legendre.leggauss(8)
_PROBES = (0.05, 0.25, 0.5, 0.75, 0.95)


# a registered function that reads a value of its argument as a Python number compiles in none of these forms
_UNTRACEABLE = (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError,
                jax.errors.TracerIntegerConversionError)


def _compiled(fn, *args):
    """``fn(*args)`` compiled as one program (run eagerly, every primitive of ``fn`` dispatches and compiles on its
    own: an incomplete gamma's tail, hundreds of compiles); as given where ``fn`` does not trace."""
    try:
        return jax.jit(fn)(*args)
    except _UNTRACEABLE:
        return fn(*args)


def _over(fn, values):
    """``vmap(fn)(values)``, compiled as one program where ``fn`` traces (``_compiled``)."""
    return _compiled(jax.vmap(fn), values)


def _fail(kind: type, entry: str, message: str) -> ValueError:
    return ValueError(f"register({kind.__name__}): {entry} {message} (checked at the example; "
                      f"pass check=False to register without the checks)")


def check(kind: type, table: Any, example: Any) -> None:
    """Check ``table`` (an ``Ops``) at ``example`` (one theta of type ``kind``), in float64; see the module docstring."""
    from . import registry

    if type(example) is not kind:
        raise TypeError(f"register({kind.__name__}): example must be a {kind.__name__}; got {type(example).__name__}")
    if registry.batch_shape(example):
        raise ValueError(f"register({kind.__name__}): example must hold ONE example; its fields have batch "
                         f"shape {registry.batch_shape(example)}")
    with jax.enable_x64(True):
        theta = jax.tree.map(lambda f: jnp.asarray(np.asarray(f, np.float64)), example)
        draws = None
        if table.sample is not None:
            keys = jax.random.split(jax.random.PRNGKey(20260421), N_DRAWS)
            draws = np.asarray(_over(lambda key: table.sample(key, theta), keys), np.float64)
        if registry.event_ndims(theta) or registry.support(theta).columns:
            if draws is not None and not np.isfinite(np.asarray(table.log_prob(theta, draws[0]))):
                raise _fail(kind, "log_prob", "is not finite at a draw of sample")
            return
        support = registry.support(theta)
        if (support.integer or support.values is not None) and not (table.discrete or table.unordered):
            raise _fail(kind, "support", f"{support.name} holds whole numbers only, but discrete=False: register "
                        f"discrete=True (the PIT of integer targets is randomised)")
        numeric = _Numeric(kind, table, theta, support, draws)
        numeric.normalisation()
        if draws is not None:
            numeric.sample_agrees()
        numeric.moments()
        numeric.mode()
        numeric.tails()


_CHUNK = 1 << 13


class _Numeric:
    """The example's distribution as NumPy sees it: its support, location and scale, and its mass on a mesh
    of panels (8-point Gauss-Legendre each) in ``u = (y - m) / s``: width 1/4 on [-30, 30], growing by 15%
    out to 1e8, graded by halves down to 2^-40 at a finite end of the support (where densities may be
    singular); or, on an integer or finite support, its probabilities."""

    def __init__(self, kind, table, theta, support, draws):
        self.kind, self.table, self.theta, self.draws, self.support = kind, table, theta, draws, support
        self._log_prob = jax.jit(jax.vmap(lambda y: table.log_prob(theta, y)))
        self.discrete = support.integer or support.values is not None
        self.circular = support.name == "angle"
        if self.circular:  # one period around the mode, the draws wrapped into it
            self.centre = self._value("mode", 0.0)
            if draws is not None:
                self.draws = draws = np.mod(draws - self.centre + math.pi, 2 * math.pi) + self.centre - math.pi
        if draws is not None and np.isfinite(draws).all():
            q1, self.m, q3 = np.quantile(draws, [0.25, 0.5, 0.75])
            self.s = (q3 - q1) / 1.349
        else:
            self.m = self._value("mean", self._value("mode", 0.0))
            self.s = math.sqrt(self._value("variance", 1.0))
        if not (math.isfinite(self.m) and math.isfinite(self.s)):
            raise _fail(kind, "sample", f"gives non-finite draws (location {self.m}, scale {self.s})")
        if not self.s > 0:
            self.s = 1.0 if self.discrete else max(abs(self.m), 1.0) * 1e-3
        if self.discrete:
            self.k, self.pmf = self._masses()
        else:
            self.edges = self._edges()
            a, b = self.edges[:-1], self.edges[1:]
            nodes = self._nodes(a, b)
            self.y, self.w = nodes.ravel(), (0.5 * (b - a)[:, None] * _GL_W).ravel()
            self.f = np.exp(self.lp(self.y))
            self.panel = np.concatenate([[0.0], np.cumsum((self.f * self.w).reshape(-1, len(_GL_W)).sum(1))])

    def _value(self, name, default):
        fn = getattr(self.table, name)
        return float(np.asarray(_compiled(lambda: fn(self.theta)))) if fn is not None else default

    def lp(self, y):
        """``log_prob`` at the points ``y``, in chunks of one shape (one compile)."""
        y = np.atleast_1d(np.asarray(y, np.float64))
        flat = y.ravel()
        pad = np.resize(flat, -(-max(flat.size, 1) // _CHUNK) * _CHUNK) if flat.size else flat
        out = np.concatenate([np.asarray(self._log_prob(jnp.asarray(c)), np.float64)
                              for c in pad.reshape(-1, _CHUNK)]) if flat.size else flat
        return out[:flat.size].reshape(y.shape)

    # ---------------------------------------------------------------- continuous: the mesh
    def _edges(self):
        sup, m, s = self.support, self.m, self.s
        lower, upper = (self.centre - math.pi, self.centre + math.pi) if self.circular else (sup.lower, sup.upper)
        lo, hi = (lower - m) / s, (upper - m) / s
        outer = 30.0 * 1.15 ** np.arange(1, 1 + math.ceil(math.log(1e8 / 30) / math.log(1.15)))
        u = np.concatenate([-outer[::-1], np.linspace(-30.0, 30.0, 241), outer])
        graded = 0.25 * 2.0 ** -np.arange(1, 41)
        if math.isfinite(lo):
            u = np.concatenate([u, [lo], lo + graded])
        if math.isfinite(hi):
            u = np.concatenate([u, [hi], hi - graded])
        u = np.unique(u[(u >= lo) & (u <= hi)])
        return m + s * u

    @staticmethod
    def _nodes(a, b):
        return 0.5 * (b - a)[:, None] * _GL_X + 0.5 * (a + b)[:, None]

    def _integral(self, fn):
        """``int fn(y) f(y) dy`` over the mesh (0 where f is 0)."""
        mass = self.f > 0
        return float(np.sum(fn(self.y[mass]) * self.f[mass] * self.w[mass]))

    # ---------------------------------------------------------------- discrete: sums over the support
    def _masses(self):
        sup = self.support
        if sup.values is not None:
            k = np.asarray(sup.values, np.float64)
            return k, np.exp(self.lp(k))
        centre = float(np.floor(self.m))
        width = max(256, int(40 * self.s))
        while True:
            lo, hi = max(sup.lower, centre - width), min(sup.upper, centre + width)
            k = np.arange(math.ceil(lo), math.floor(hi) + 1, dtype=np.float64)
            k = k[~sup.off(k)]
            pmf = np.exp(self.lp(k))
            edge = max(pmf[: len(pmf) // 8].sum() if lo > sup.lower else 0.0,
                       pmf[-(len(pmf) // 8):].sum() if hi < sup.upper else 0.0)
            if edge < 1e-12 or width > 1 << 22:
                return k, pmf
            width *= 4

    def cdf(self, y):
        """``Pr(Y <= y)`` at the points ``y``: whole panels plus Gauss-Legendre over the last part."""
        y = np.asarray(y, np.float64)
        if self.discrete:
            return np.cumsum(self.pmf)[np.searchsorted(self.k, y, side="right") - 1] * (y >= self.k[0])
        inside = np.clip(y, self.edges[0], self.edges[-1])
        j = np.clip(np.searchsorted(self.edges, inside, side="right") - 1, 0, len(self.edges) - 2)
        a = self.edges[j]
        part = 0.5 * (inside - a) * (np.exp(self.lp(self._nodes(a, inside))) @ _GL_W)
        return self.panel[j] + part

    # ---------------------------------------------------------------- the checks
    def normalisation(self):
        total = float(self.pmf.sum()) if self.discrete else float(self.panel[-1])
        where = "sums" if self.discrete else "integrates"
        if not (abs(total - 1.0) <= TOL):
            raise _fail(self.kind, "log_prob", f"{where} to {total:.6g} over the support {self.support.name}, "
                        f"not 1 (tolerance {TOL:g})")

    def sample_agrees(self):
        n = len(self.draws)
        ys = np.sort(self.draws)
        if self.support.off(ys).any():
            bad = ys[self.support.off(ys)][0]
            raise _fail(self.kind, "sample", f"draws {bad!r}, off the support {self.support.name}")
        bound = math.sqrt(math.log(2 / ALPHA) / (2 * n))
        if self.discrete:
            distance = float(np.max(np.abs(np.searchsorted(ys, self.k, side="right") / n - np.cumsum(self.pmf))))
        else:
            model = self.cdf(ys)
            i = np.arange(1, n + 1)
            distance = float(max(np.max(i / n - model), np.max(model - (i - 1) / n)))
        if distance > bound:
            raise _fail(self.kind, "sample", f"disagrees with log_prob: the Kolmogorov distance of {n} draws from "
                        f"the CDF of exp(log_prob) is {distance:.4g} > {bound:.4g} (false-alarm rate {ALPHA:g})")

    def _moment(self, fn):
        if self.discrete:
            mass = self.pmf > 0
            return float(np.sum(fn(self.k[mass]) * self.pmf[mass]))
        return self._integral(fn)

    def moments(self):
        mean = self._moment(lambda y: y)
        checks = {"mean": lambda: mean,
                  "variance": lambda: self._moment(lambda y: (y - mean) ** 2),
                  "entropy": lambda: self._moment(lambda y: -self.lp(y))}
        scales = {"mean": self.s, "variance": self.s ** 2, "entropy": 1.0}
        for name, numeric in checks.items():
            if getattr(self.table, name) is None or (self.circular and name != "entropy"):
                continue
            value = self._value(name, 0.0)
            if not math.isfinite(value):  # an infinite variance (Student t, df <= 2) is not integrated
                continue
            reference = numeric()
            if not abs(value - reference) <= TOL * (abs(reference) + scales[name]):
                raise _fail(self.kind, name, f"is {value:.6g}; integrating exp(log_prob) gives {reference:.6g}")

    def mode(self):
        if self.table.mode is None:
            return
        at = self._value("mode", 0.0)
        grid = np.concatenate([[self.m], self.draws[:4096] if self.draws is not None else
                               self.m + self.s * np.linspace(-5, 5, 201)])
        grid = grid[~self.support.off(grid)]
        values = self.lp(grid)
        best = float(np.max(values)) if grid.size else -math.inf
        own = float(self.lp(at)[0])
        if not own >= best - TOL:
            raise _fail(self.kind, "mode", f"is {at:.6g} with log_prob {own:.6g}, but log_prob at "
                        f"{grid[np.argmax(values)]:.6g} is {best:.6g}")

    def tails(self):
        table = self.table
        if table.log_cdf is None and table.log_sf is None and table.quantile is None:
            return
        ys = (np.quantile(self.draws, _PROBES) if self.draws is not None
              else self.m + self.s * special.ndtri(np.asarray(_PROBES)))
        if self.discrete:
            ys = np.round(ys)
        cdf = self.cdf(ys)
        theta, y = self.theta, jnp.asarray(ys)
        for name, want in (("log_cdf", cdf), ("log_sf", 1.0 - cdf)):
            fn = getattr(table, name)
            if fn is not None:
                got = np.exp(np.asarray(_over(lambda v: fn(theta, v), y), np.float64))
                if not np.all(np.abs(got - want) <= TOL):
                    j = int(np.argmax(np.abs(got - want)))
                    raise _fail(self.kind, name, f"at y = {ys[j]:.6g} gives probability {got[j]:.6g}; integrating "
                                f"exp(log_prob) gives {want[j]:.6g}")
        if table.quantile is not None:
            q = np.asarray(_PROBES)
            at = np.asarray(_over(lambda p: table.quantile(theta, p), jnp.asarray(q)), np.float64)
            got = self.cdf(at)
            bad = ((got < q - TOL) | (self.cdf(at - 1) > q + TOL)) if self.discrete else np.abs(got - q) > TOL
            if bad.any():
                j = int(np.argmax(bad))
                raise _fail(self.kind, "quantile", f"at q = {q[j]:g} is {at[j]:.6g}, where the CDF of "
                            f"exp(log_prob) is {got[j]:.6g}")
