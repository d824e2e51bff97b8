"""The lecture's equivalences, proved numerically in value and gradient.

``verify_equivalences()`` returns one row per equivalence: its name, the
largest value difference, the largest gradient difference, and whether both
are within tolerance. ``python -m mle_jax.verify`` prints the table and exits
non-zero on any failure.

1. Normal with fixed sigma -> least squares: ``NLL = SSE / (2 sigma^2) + I log sigma + I/2 log 2 pi``,
   ``2 sigma^2 grad NLL = grad SSE``, and the NLL minimiser of a linear model is ``numpy.linalg.lstsq``'s.
2. Bernoulli o sigmoid -> binary cross-entropy, in float64 against the lecture's formula and against
   optax's ``sigmoid_binary_cross_entropy``; exact at logits +-1e4 and +-inf (value |z| or 0,
   gradient sig(z) - y).
3. Categorical o softmax -> cross-entropy, against ``-f_y + logsumexp f`` and optax's
   ``softmax_cross_entropy_with_integer_labels``.
4. Independent outputs -> the sum of per-output NLLs.
5. KL(empirical || model) = NLL / I - H(empirical), for discrete data; the gradients agree.

``verify_derivations()`` adds one row per built-in family: its symbolic derivation
(``mle_jax.derive``, sympy) against the stable implementation, in value and gradient.
"""

from __future__ import annotations

import sys
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import distributions as dist
from .families import bernoulli, independent, normal
from .information import empirical
from .recipe import Params, recipe


class Row(NamedTuple):
    name: str
    value_difference: float
    gradient_difference: float
    passed: bool


def _gap(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b))))


def _row(name, value_gap, grad_gap, tol):
    return Row(name, value_gap, grad_gap, bool(value_gap <= tol and grad_gap <= tol))


def _normal_least_squares(rng, tol):
    n, sigma = 50, 0.7
    x = jnp.asarray(rng.normal(size=(n, 2)))
    y = jnp.asarray(x @ np.array([1.5, -0.5]) + 0.2 + sigma * rng.normal(size=n))
    model = lambda p, x_i: p[:2] @ x_i + p[2]
    r = recipe(model, normal(sigma))
    phi = jnp.asarray(rng.normal(size=3))
    sse = lambda p: jnp.sum((y - jax.vmap(model, (None, 0))(p, x)) ** 2)
    nll = lambda p: r.nll(Params(p, {}), x, y)

    @jax.jit
    def sides(p):
        identity = sse(p) / (2 * sigma**2) + n * jnp.log(sigma) + 0.5 * n * jnp.log(2 * jnp.pi)
        # the NLL's stationarity condition is the normal equations: one Newton step from anywhere solves it
        minimiser = p - jnp.linalg.solve(jax.hessian(nll)(p), jax.grad(nll)(p))
        return nll(p), identity, minimiser, 2 * sigma**2 * jax.grad(nll)(p), jax.grad(sse)(p)

    value, identity, minimiser, scaled_grad, sse_grad = sides(phi)
    design = np.column_stack([np.asarray(x), np.ones(n)])
    lstsq = np.linalg.lstsq(design, np.asarray(y), rcond=None)[0]
    return _row("Normal(fixed sigma) -> least squares", max(_gap(value, identity), _gap(minimiser, lstsq)),
                _gap(scaled_grad, sse_grad), tol)


def _bernoulli_bce(rng, tol):
    z = jnp.asarray(rng.normal(scale=3.0, size=40))
    y = jnp.asarray(rng.integers(0, 2, size=40), jnp.int32)
    r = recipe(lambda p, x_i: p * x_i, bernoulli())
    per_example = lambda zi, yi: -dist.log_prob(dist.Bernoulli(zi), yi)  # noqa: E731

    @jax.jit
    def sides():  # z and y are closed over: the recipe checks their concrete values
        lib = lambda zz: jax.vmap(per_example)(zz, y)  # noqa: E731
        lecture = lambda zz: -(1 - y) * jnp.log(1 - jax.nn.sigmoid(zz)) - y * jnp.log(jax.nn.sigmoid(zz))
        values = (lib(z), lecture(z), optax.sigmoid_binary_cross_entropy(z, y),
                  r.nll(Params(jnp.float64(1.0), {}), z, y), jnp.sum(lecture(z)))
        grads = (jax.grad(lambda zz: lib(zz).sum())(z), jax.nn.sigmoid(z) - y,
                 jax.grad(lambda zz: lecture(zz).sum())(z))
        return values, grads

    @jax.jit
    def extremes(zz, yy):
        return jax.vmap(per_example)(zz, yy), jax.vmap(jax.grad(per_example))(zz, yy)

    (lib, lecture, optax_bce, recipe_nll, lecture_sum), (grad, closed_form, lecture_grad) = sides()
    value = max(_gap(lib, lecture), _gap(lib, optax_bce), _gap(recipe_nll, lecture_sum))
    grad_gap = max(_gap(grad, closed_form), _gap(grad, lecture_grad))
    extreme = jnp.array([-jnp.inf, -1e4, 1e4, jnp.inf])
    for label in (0, 1):
        values, grads = extremes(extreme, jnp.full(4, label, jnp.int32))
        exact = np.where((2 * label - 1) * np.asarray(extreme) > 0, 0.0, np.abs(np.asarray(extreme)))
        value = max(value, 0.0 if bool(np.all(np.asarray(values) == exact)) else np.inf)
        grad_gap = max(grad_gap, _gap(grads, jax.nn.sigmoid(extreme) - label))
    return _row("Bernoulli o sigmoid -> binary cross-entropy (incl. logits +-1e4, +-inf)", value, grad_gap, tol)


def _categorical_ce(rng, tol):
    k = 6
    logits = jnp.asarray(rng.normal(scale=2.0, size=(30, k)))
    y = jnp.asarray(rng.integers(0, k, size=30), jnp.int32)

    @jax.jit
    def sides(z):
        lib = lambda z: -jax.vmap(lambda zi, yi: dist.log_prob(dist.Categorical(zi), yi))(z, y)  # noqa: E731
        lecture = lambda z: -(jnp.take_along_axis(z, y[:, None], axis=1)[:, 0]  # noqa: E731
                              - jax.scipy.special.logsumexp(z, axis=1))
        return ((lib(z), lecture(z), optax.softmax_cross_entropy_with_integer_labels(z, y)),
                (jax.grad(lambda z: lib(z).sum())(z), jax.grad(lambda z: lecture(z).sum())(z)))

    (lib, lecture, optax_ce), (grad, lecture_grad) = sides(logits)
    return _row("Categorical o softmax -> cross-entropy", max(_gap(lib, lecture), _gap(lib, optax_ce)),
                _gap(grad, lecture_grad), tol)


def _independent_sum(rng, tol):
    d, n = 3, 20
    x = jnp.asarray(rng.normal(size=(n, d)))
    y = jnp.asarray(rng.normal(size=(n, d)))
    model = lambda p, x_i: p * x_i
    joint = recipe(model, independent(normal(0.8), d))
    parts = [recipe(lambda p, x_i, j=j: p[j] * x_i[j], normal(0.8)) for j in range(d)]
    phi = jnp.asarray(rng.normal(size=d))
    total = lambda p: joint.nll(Params(p, {}), x, y)
    columns = [y[:, j] for j in range(d)]  # concrete, so that each recipe checks its values
    summed = lambda p: sum(r.nll(Params(p, {}), x, column) for r, column in zip(parts, columns))
    sides = jax.jit(lambda p: ((total(p), summed(p)), (jax.grad(total)(p), jax.grad(summed)(p))))
    (joint_value, summed_value), (joint_grad, summed_grad) = sides(phi)
    return _row("independent outputs -> sum of per-output NLLs", _gap(joint_value, summed_value),
                _gap(joint_grad, summed_grad), tol)


def _kl_nll(rng, tol):
    k, n = 5, 200
    y = jnp.asarray(rng.integers(0, k, size=n), jnp.int32)
    q = empirical(y, k)
    logits = jnp.asarray(rng.normal(size=k))
    nll_over_n = lambda z: -jnp.mean(jax.vmap(dist.log_prob, (None, 0))(dist.Categorical(z), y))
    kl_plus_h = lambda z: dist.kl(q, dist.Categorical(z)) + dist.entropy(q)
    sides = jax.jit(lambda z: ((nll_over_n(z), kl_plus_h(z)), (jax.grad(nll_over_n)(z), jax.grad(kl_plus_h)(z))))
    (nll, kl_h), (nll_grad, kl_grad) = sides(logits)
    return _row("KL(empirical || model) -> NLL / I - H(empirical)", _gap(nll, kl_h), _gap(nll_grad, kl_grad), tol)


def verify_equivalences(seed: int = 0, tol: float = 1e-9) -> list[Row]:
    """Check the lecture's equivalences in float64; one ``Row`` each (see the module docstring)."""
    rng = np.random.default_rng(seed)
    with jax.enable_x64(True):
        return [check(rng, tol) for check in (_normal_least_squares, _bernoulli_bce, _categorical_ce,
                                             _independent_sum, _kl_nll)]


def format_table(rows: list[Row], title: str = "equivalence") -> str:
    width = max(len(r.name) for r in rows + [Row(title, 0.0, 0.0, True)])
    lines = [f"{title:<{width}}  {'value diff':>10}  {'grad diff':>10}  status",
             "-" * (width + 36)]
    lines += [f"{r.name:<{width}}  {r.value_difference:>10.2e}  {r.gradient_difference:>10.2e}  "
              f"{'PASS' if r.passed else 'FAIL'}" for r in rows]
    return "\n".join(lines)


def verify_derivations(families=None, num: int = 6, seed: int = 0, tol: float = 1e-9) -> list[Row]:
    """One ``Row`` per family: its symbolic derivation (``mle_jax.derive``, needs sympy) against the stable
    implementation on ``num`` random examples, in value (dropped constants restored) and raw-output
    gradient, float64. ``families`` defaults to one configuration of every built-in kind
    (``mle_jax.derive.all_families``)."""
    from .derive import all_families, derive

    rows = []
    for family in all_families() if families is None else families:
        result = derive(family).check(num=num, seed=seed, rtol=tol)
        rows.append(Row(f"derive {family.name}", result.value_difference, result.gradient_difference,
                        result.passed))
    return rows


def main() -> int:
    rows = verify_equivalences()
    print(format_table(rows))
    ok = all(r.passed for r in rows)
    try:
        import sympy  # noqa: F401
    except ImportError:
        print("\n(sympy is not installed: the symbolic derivations were skipped; pip install 'mle_jax[derive]')")
        return 0 if ok else 1
    print("\nsymbolic derivations (sympy) against the stable implementation, float64, one row per family:")
    derived = verify_derivations()
    print(format_table(derived, "family"))
    return 0 if ok and all(r.passed for r in derived) else 1


if __name__ == "__main__":
    sys.exit(main())
