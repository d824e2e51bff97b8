"""Run the benchmark suite; print medians and ratios; write results.json and benchmarks.png.

    pip install -e '.[bench]'
    python -m experiments.benchmarks --out runs/bench            # the full suite (~10 minutes on 2 cores)
    python -m experiments.benchmarks --out runs/bench --quick    # smaller N, fewer repetitions
    python -m experiments.benchmarks --only losses --only fits

Ratios are medians of mle_jax over medians of the fastest anchor on the same inputs, in
one process, contenders interleaved rep by rep; below 1.0 mle_jax is faster. "paired" is the
median of the per-repetition ratio (the two ran back to back), which drift disturbs less.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import traceback
from pathlib import Path

SUITES = ("losses", "fits", "scaling", "glm", "streams", "families", "compile")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/bench"))
    parser.add_argument("--only", action="append", choices=SUITES)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    import jax
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    from . import compile as compile_times
    from . import families, fits, glm, losses, scaling, streams

    chosen = args.only or list(SUITES)
    quick = args.quick
    devices = jax.devices()
    results = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                           "jax": jax.__version__, "torch": torch.__version__, "devices": [str(d) for d in devices],
                           "device_kind": devices[0].device_kind, "torch_device": losses._torch_device(),
                           "gpu": "none in this run" if jax.default_backend() == "cpu" else devices[0].device_kind}}
    runs = {
        "losses": (lambda: losses.run(n=200_000 if quick else 2_000_000, reps=30 if quick else 40), _print_losses),
        "fits": (lambda: fits.run(reps=5 if quick else 11, quick=quick), _print_fits),
        "scaling": (lambda: scaling.run(sizes=(10_000, 100_000, 1_000_000) if quick else
                                        (10_000, 100_000, 1_000_000, 10_000_000), reps=5 if quick else 15),
                    _print_scaling),
        "glm": (lambda: glm.run(quick=quick), _print_glm),
        "streams": (lambda: streams.run(reps=5 if quick else 11, quick=quick), _print_streams),
        "families": (lambda: families.run(sizes=(1_000, 100_000) if quick else (100, 10_000, 1_000_000, 10_000_000),
                                          reps=7 if quick else 20), families.show),
        "compile": (lambda: compile_times.run(reps=1 if quick else 3), compile_times.show),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    failed = []
    for name in SUITES:
        if name not in chosen:
            continue
        measure, show = runs[name]
        try:
            results[name] = measure()
        except Exception:  # one broken suite (a missing anchor on a new machine) must not lose the others
            results[name] = {"error": traceback.format_exc()}
            failed.append(name)
            print(f"\n{name} failed:\n{results[name]['error']}", file=sys.stderr)
        else:
            show(results[name])
        # written after every suite, so that a run cut short keeps what it measured
        (args.out / "results.json").write_text(json.dumps(results, indent=2))
    _plot({k: v for k, v in results.items() if k not in failed}, args.out / "benchmarks.png")
    print(f"wrote {args.out}/results.json and {args.out}/benchmarks.png")
    return 1 if failed else 0


def _print_losses(res):
    print("\nvalue-and-grad of the summed NLL (median ms; ratio = mle_jax / fastest anchor)")
    names = ["mle_jax", "jnp", "optax", "distrax", "tfp", "torch"]
    print(f"{'workload':<20}" + "".join(f"{n:>10}" for n in names) + f"{'ratio':>8}{'paired':>8}  fastest anchor")
    for workload, row in res.items():
        cells = "".join(f"{row['timings'][n]['median_s'] * 1e3:>10.2f}" if n in row["timings"] else f"{'-':>10}"
                        for n in names)
        print(f"{workload:<20}{cells}{row['ratio_to_fastest_anchor']:>8.3f}"
              f"{row['paired_ratio_to_fastest_anchor']:>8.3f}  {row['fastest_anchor']}")


def _print_fits(res):
    print("\nfit per step (median us)")
    for name, row in res.items():
        cells = ", ".join(f"{k} {v * 1e6:.2f}" for k, v in row["per_step_s"].items())
        print(f"{name:<20} {cells}; fit / scan = {row['ratio_fit_to_scan']:.3f}; "
              f"Python loop / fit = {row['speedup_fit_over_python_loop']:.1f}")


def _print_scaling(res):
    print("\ncost as N grows (heteroscedastic Normal, value and gradient)")
    for row in res["rows"]:
        print(f"N = {row['n']:>10,}: {row['median_s'] * 1e3:9.3f} ms, {row['ns_per_example']:6.2f} ns/example, "
              f"temp {row['temp_bytes_per_example']} bytes/example")


def _print_glm(res):
    print(f"\ntime to the GLM MLE (median s, warm; ratio to the fastest contender within {res['rel_tol']:g} "
          f"relative of the best log-likelihood; BLAS threads {res['blas_threads']})")
    from .glm import format_row
    for row in res["rows"]:
        print(format_row(row))
    inf = res["inference"]
    print(f"covariance at the MLE, {inf['n']:,} x {inf['d']} logistic (median s): " + "; ".join(
        f"{name} {c['median_s']:.3g} (cold {c['cold_s']:.3g})" for name, c in inf["contenders"].items()))


def _print_streams(res):
    print(f"\nfit on a stream of {res['steps']} batches of {res['batch']} rows from a memmap, per step (median ms)")
    print(", ".join(f"{k} {v * 1e3:.3f}" for k, v in res["per_step_s"].items()))
    print(f"stream / hand-written jit loop = {res['ratio_stream_to_jit_loop']:.3f} (paired "
          f"{res['paired_stream_to_jit_loop']:.3f}); stream / in memory = {res['ratio_stream_to_in_memory']:.3f}; "
          f"fit per batch / stream = {res['speedup_stream_over_fit_per_batch']:.1f}")


def _plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [k for k in ("losses", "fits", "scaling") if k in results]
    if not panels:
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for ax, key in zip(axes[0], panels):
        if key == "losses":
            names = list(results["losses"])
            ratios = [results["losses"][n]["ratio_to_fastest_anchor"] for n in names]
            ax.barh(names, ratios, color=["C2" if r <= 1 else "C3" for r in ratios])
            ax.axvline(1.0, color="k", lw=1)
            ax.set(xlabel="mle_jax / fastest anchor (median)", title="NLL value and gradient")
        elif key == "fits":
            names = list(results["fits"])
            ratios = [results["fits"][n]["ratio_fit_to_scan"] for n in names]
            ax.barh(names, ratios, color="C0")
            ax.axvline(1.0, color="k", lw=1)
            ax.set(xlabel="fit / hand-written lax.scan (per step)", title="fit")
        else:
            rows = results["scaling"]["rows"]
            ax.loglog([r["n"] for r in rows], [r["median_s"] for r in rows], "o-", label="time (s)")
            ax.loglog([r["n"] for r in rows], [r["temp_bytes"] / 1e9 for r in rows], "s--", label="temp memory (GB)")
            ax.set(xlabel="N", title="cost as N grows")
            ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
