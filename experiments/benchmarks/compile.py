"""Compile time: the censored families (incomplete gamma and beta functions) against a hand-written jit
of the same loss, compile plus first step, each measured in a fresh process.

Each workload is the value and gradient of the summed censored NLL of a bias-only model (float32,
N = 1,000 targets, a quarter observed, a quarter left- and half right-censored); both contenders are
timed from ``jax.jit(...).lower`` through ``.compile()`` to the first step's result, in a new Python
process each (JAX's caches are per process: a second compile in the same process would be free).
The clock starts after the contender's imports (TFP's ``tfp.math`` loads lazily, in ~0.5 s, on first use: it is
loaded before, not inside the hand-written Beta's trace) and after one full garbage collection: the objects the
imports leave behind trigger a full collection of the interpreter's heap (~0.16 s here) inside whichever trace
first crosses Python's threshold, which depends on the import history rather than on the loss (it fell inside
mle_jax's censored Gamma trace and outside the hand-written one's). ``timeit`` turns the collector off for the
same reason; here it is paid before the clock, for both contenders alike.
The hand-written losses use the same maths in plain jnp: ``jax.scipy.special.gammainc`` /
``gammaincc`` for the Gamma, ``betainc`` for the Student t with a fixed df (differentiated in its
``x`` only), TFP-on-JAX's ``tfp.math.betainc`` for the Beta (JAX's ``betainc`` has no gradient in
``a`` and ``b``), ``log_ndtr`` and closed forms for the Normal, log-normal and Weibull.

The hand-written losses are what a user would write, not the library's full maths: JAX's ``gammainc`` has
the same series and continued fraction (and its own loop for the derivative in ``a``) but neither log space
(its ``log P`` is ``-inf`` once ``P`` underflows, about 1e-38 in float32) nor Temme's expansion near
``x = a`` (its loops take O(sqrt a) terms there); the hand-written Student t tail has no large-df branch.
Part of a ratio above 1 pays for that accuracy.

    python -m experiments.benchmarks --only compile [--quick]
    python -m experiments.benchmarks.compile --one censored_gamma mle_jax   # one measurement, as JSON
    python -m experiments.benchmarks.compile --sizes censored_gamma mle_jax # the program's sizes, as JSON

``--sizes`` counts what tracing and XLA's CPU compile work through (deterministic, unlike their times on a
shared machine): the jaxpr's equations (inner jaxprs included), the StableHLO's lines, the compiled HLO's
lines, its fusions and the five largest (lines, name): XLA duplicates a chain of cheap elementwise operations
into every fusion that consumes it, and LLVM's time on a fusion grows faster than its size.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np

N = 1_000
SIDES = (0.0, -1.0, 1.0, 1.0)


def _data(value, jnp):
    side = np.tile(np.asarray(SIDES, np.float32), N // len(SIDES))
    return jnp.stack([jnp.full(N, value, jnp.float32), jnp.asarray(side)], axis=1)


def _mle_jax(workload):
    """``(loss, params)``: the recipe's summed NLL of a bias-only model of the censored family."""
    import jax.numpy as jnp

    import mle_jax as mj
    family, value = {
        "censored_gamma": (lambda: mj.censored(mj.gamma()), 1.5),
        "censored_beta": (lambda: mj.censored(mj.beta()), 0.3),
        "censored_student_t": (lambda: mj.censored(mj.student_t(4.0)), 0.5),
        "censored_normal": (lambda: mj.censored(mj.normal()), 0.5),
        "censored_log_normal": (lambda: mj.censored(mj.log_normal()), 1.5),
        "censored_weibull": (lambda: mj.censored(mj.weibull()), 1.5),
    }[workload]
    family = family()
    r = mj.recipe(lambda b, x_i: b, family, validate=False)
    x, y = jnp.zeros((N, 1), jnp.float32), _data(value, jnp)
    params = r.init(jnp.full(family.raw_shape, 0.3, jnp.float32))
    return (lambda p: r.nll(p, x, y)), params


def _hand(workload):
    """``(loss, params)``: the same censored NLL written by hand in jnp, raw ``p`` through softplus."""
    import jax
    import jax.numpy as jnp
    from jax.scipy.special import betainc, betaln, gammainc, gammaincc, gammaln, log_ndtr

    softplus = jax.nn.softplus
    value = {"censored_gamma": 1.5, "censored_beta": 0.3, "censored_student_t": 0.5, "censored_normal": 0.5,
             "censored_log_normal": 1.5, "censored_weibull": 1.5}[workload]
    y = _data(value, jnp)

    def censored(log_pdf, log_cdf, log_sf):
        def loss(p):
            v, side = y[:, 0], y[:, 1]
            return -jnp.sum(jnp.where(side == 0, log_pdf(p, v), jnp.where(side < 0, log_cdf(p, v), log_sf(p, v))))
        return loss

    def gamma_pdf(p, v):
        a, b = softplus(p[0]), softplus(p[1])
        return a * jnp.log(b) + (a - 1) * jnp.log(v) - b * v - gammaln(a)

    def beta_pdf(p, v):
        a, b = softplus(p[0]), softplus(p[1])
        return (a - 1) * jnp.log(v) + (b - 1) * jnp.log1p(-v) - betaln(a, b)

    tfp_math = None
    if workload == "censored_beta":  # imported here, not inside the timed trace (tfp.math loads in ~0.5 s)
        from tensorflow_probability.substrates import jax as tfp
        tfp_math = tfp.math

    def tfp_betainc(a, b, v):
        return tfp_math.betainc(a, b, v)

    df = 4.0

    def t_pdf(p, v):
        z, s = (v - p[0]) / softplus(p[1]), softplus(p[1])
        return (gammaln((df + 1) / 2) - gammaln(df / 2) - 0.5 * jnp.log(df * jnp.pi) - jnp.log(s)
                - (df + 1) / 2 * jnp.log1p(z * z / df))

    def t_tail(p, v, upper):
        z = (v - p[0]) / softplus(p[1])
        half = 0.5 * betainc(df / 2, 0.5, df / (df + z * z))  # the smaller tail
        far = jnp.where(upper, z < 0, z > 0)
        return jnp.where(far, jnp.log1p(-half), jnp.log(half))

    def normal_pdf(p, v):
        s = softplus(p[1])
        return -0.5 * jnp.square((v - p[0]) / s) - jnp.log(s) - 0.5 * jnp.log(2 * jnp.pi)

    def log_normal_pdf(p, v):
        return normal_pdf(p, jnp.log(v)) - jnp.log(v)

    def weibull_pdf(p, v):
        k, s = softplus(p["k"]), jnp.exp(p["b"])
        return jnp.log(k) - jnp.log(s) + (k - 1) * (jnp.log(v) - jnp.log(s)) - (v / s) ** k

    def weibull_cum(p, v):
        return (v / jnp.exp(p["b"])) ** softplus(p["k"])

    losses = {
        "censored_gamma": censored(gamma_pdf, lambda p, v: jnp.log(gammainc(softplus(p[0]), softplus(p[1]) * v)),
                                   lambda p, v: jnp.log(gammaincc(softplus(p[0]), softplus(p[1]) * v))),
        "censored_beta": censored(beta_pdf, lambda p, v: jnp.log(tfp_betainc(softplus(p[0]), softplus(p[1]), v)),
                                  lambda p, v: jnp.log(tfp_betainc(softplus(p[1]), softplus(p[0]), 1 - v))),
        "censored_student_t": censored(t_pdf, lambda p, v: t_tail(p, v, False), lambda p, v: t_tail(p, v, True)),
        "censored_normal": censored(normal_pdf, lambda p, v: log_ndtr((v - p[0]) / softplus(p[1])),
                                    lambda p, v: log_ndtr((p[0] - v) / softplus(p[1]))),
        "censored_log_normal": censored(log_normal_pdf, lambda p, v: log_ndtr((jnp.log(v) - p[0]) / softplus(p[1])),
                                        lambda p, v: log_ndtr((p[0] - jnp.log(v)) / softplus(p[1]))),
        "censored_weibull": censored(weibull_pdf, lambda p, v: jnp.log(-jnp.expm1(-weibull_cum(p, v))),
                                     lambda p, v: -weibull_cum(p, v)),
    }
    params = ({"b": jnp.float32(0.3), "k": jnp.float32(0.5)} if workload == "censored_weibull"
              else jnp.full(2, 0.3, jnp.float32))
    return losses[workload], params


WORKLOADS = ("censored_gamma", "censored_beta", "censored_student_t", "censored_normal", "censored_log_normal",
             "censored_weibull")
CONTENDERS = {"mle_jax": _mle_jax, "hand": _hand}


def measure_one(workload: str, contender: str) -> dict:
    """Trace, lower, compile and run once the value and gradient of ``contender``'s loss (this process)."""
    import gc

    import jax
    loss, params = CONTENDERS[contender](workload)
    gc.collect()  # the imports' garbage-collector debt paid before the clock starts (below)
    cpu0, t0 = time.process_time(), time.perf_counter()
    lowered = jax.jit(jax.value_and_grad(loss)).lower(params)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    value, _ = jax.block_until_ready(compiled(params))
    t3 = time.perf_counter()
    return {"lower_s": t1 - t0, "compile_s": t2 - t1, "first_step_s": t3 - t2, "total_s": t3 - t0,
            "cpu_s": time.process_time() - cpu0, "value": float(value)}


def _equations(jaxpr) -> int:
    """The number of equations in ``jaxpr``, those of its inner jaxprs (loops, calls, custom rules) included."""
    total = 0
    for eqn in jaxpr.eqns:
        total += 1
        for param in eqn.params.values():
            for sub in param if isinstance(param, (list, tuple)) else (param,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    total += _equations(inner)
    return total


def sizes(workload: str, contender: str) -> dict:
    """The sizes of ``contender``'s value-and-gradient program (this process): jaxpr equations, StableHLO and
    compiled HLO lines, the number of fusions and the five largest, by lines."""
    import re

    import jax
    loss, params = CONTENDERS[contender](workload)
    step = jax.value_and_grad(loss)
    lowered = jax.jit(step).lower(params)
    hlo = lowered.compile().as_text()
    bodies = {m.group(1): m.group(2).count("\n") + 1
              for m in re.finditer(r"\n(%[\w.\-]+) \([^\n]*\{\n(.*?)\n\}", hlo, re.S)}
    fusions = sorted(((bodies.get(m.group(2), 0), m.group(1))
                      for m in re.finditer(r"(%[\w.\-]+) = \S+ fusion\(.*?calls=(%[\w.\-]+)", hlo)), reverse=True)
    return {"jaxpr_equations": _equations(jax.make_jaxpr(step)(params).jaxpr),
            "stablehlo_lines": lowered.as_text().count("\n"), "hlo_lines": hlo.count("\n"),
            "fusions": len(fusions), "largest_fusions": fusions[:5]}


def _fresh(workload: str, contender: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "experiments.benchmarks.compile", "--one", workload, contender],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(reps: int = 3, workloads=WORKLOADS) -> dict:
    """Median over ``reps`` fresh processes per contender (in a fresh random order each repetition) of the
    compile + first-step wall time and CPU time; ratio = mle_jax / hand-written."""
    order = np.random.default_rng(0)
    results = {}
    for workload in workloads:
        runs = {name: [] for name in CONTENDERS}
        for _ in range(reps):
            for name in order.permutation(list(CONTENDERS)):
                runs[name].append(_fresh(workload, str(name)))
        med = {name: {key: float(np.median([r[key] for r in rs])) for key in ("lower_s", "compile_s", "total_s", "cpu_s")}
               for name, rs in runs.items()}
        values = {name: rs[0]["value"] for name, rs in runs.items()}
        results[workload] = {**med, "reps": reps, "values": values,
                             "ratio_total": med["mle_jax"]["total_s"] / med["hand"]["total_s"],
                             "ratio_cpu": med["mle_jax"]["cpu_s"] / med["hand"]["cpu_s"]}
    return results


def show(res: dict) -> None:
    print(f"\ncompile + first step of value-and-grad, fresh process each (median s; N = {N:,}, float32)")
    print(f"{'workload':<22}{'mle_jax':>9}{'hand':>9}{'ratio':>8}{'cpu ratio':>10}  mle_jax lower / compile")
    for workload, row in res.items():
        m, h = row["mle_jax"], row["hand"]
        print(f"{workload:<22}{m['total_s']:>9.2f}{h['total_s']:>9.2f}{row['ratio_total']:>8.2f}"
              f"{row['ratio_cpu']:>10.2f}  {m['lower_s']:.2f} / {m['compile_s']:.2f}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--one":
        print(json.dumps(measure_one(sys.argv[2], sys.argv[3])))
    elif len(sys.argv) == 4 and sys.argv[1] == "--sizes":
        print(json.dumps(sizes(sys.argv[2], sys.argv[3])))
    else:
        show(run(reps=int(sys.argv[1]) if len(sys.argv) > 1 else 3))
