"""metrics.json and report.md from the experiments' outcomes."""

from __future__ import annotations

import json
from pathlib import Path


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(a) for a in v[:6]) + (", ..." if len(v) > 6 else "") + "]"
    return str(v)


def write_outputs(out: Path, outcomes) -> None:
    (out / "metrics.json").write_text(json.dumps({o.name: o.as_json() for o in outcomes}, indent=2))
    lines = ["# mle_jax: the lecture's experiments", "",
             "Every number below was computed by `python -m experiments` and compared with an independent "
             "reference (scipy.stats, numpy, statsmodels, closed forms or numerical integration).", "",
             "| experiment | checks | status |", "| --- | --- | --- |"]
    for o in outcomes:
        lines.append(f"| [{o.title}](#{o.name}) | {sum(c.passed for c in o.checks)}/{len(o.checks)} | "
                     f"{'PASS' if o.passed else 'FAIL'} |")
    for o in outcomes:
        lines += ["", f"## {o.title}", f'<a id="{o.name}"></a>', "", f"**The lecture's claim.** {o.claim}", "",
                  f"**What was fitted.** {o.fitted}", ""]
        lines += [f"![{o.title}]({name})" for name in o.figures]
        lines += ["", "| check | value | reference | tolerance | status |", "| --- | --- | --- | --- | --- |"]
        for c in o.checks:
            lines.append(f"| {c.name} | {_fmt(c.value)} | {_fmt(c.reference)} | {c.tolerance} | "
                         f"{'PASS' if c.passed else 'FAIL'} |")
        if o.metrics:
            lines += ["", "Metrics: " + ", ".join(f"{k} = {_fmt(v)}" for k, v in o.metrics.items())]
    (out / "report.md").write_text("\n".join(lines) + "\n")
