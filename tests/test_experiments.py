"""Every lecture experiment runs in quick mode, its checks hold, and its figures are real PNGs."""

import json

import pytest
from conftest import release_compiled_programs

from experiments import ALL
from experiments.__main__ import main

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow  # the main job (README's first command, run by .ci/run) runs every experiment in full
@pytest.mark.parametrize("experiment", ALL, ids=[e.name for e in ALL])
def test_experiment_checks_hold_in_quick_mode(experiment, tmp_path):
    outcome = experiment.run(tmp_path, True)
    failed = [(c.name, c.value, c.reference) for c in outcome.checks if not c.passed]
    assert not failed, failed
    assert len(outcome.checks) >= 3
    assert outcome.figures
    for name in outcome.figures:
        data = (tmp_path / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 10_000
    release_compiled_programs()  # each experiment compiles its own fits: none is needed by the next


@pytest.mark.deep
def test_main_writes_report_and_metrics(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--quick", "--only", "entropy", "--only", "why_logs"]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics) == {"entropy", "why_logs"}
    assert all(c["status"] == "PASS" for m in metrics.values() for c in m["checks"])
    report = (tmp_path / "report.md").read_text()
    assert "![Entropy](entropy.png)" in report and "| PASS |" in report
    assert "passed, 0 failed" in capsys.readouterr().out


def test_main_exits_non_zero_on_a_failed_check(tmp_path, monkeypatch):
    import experiments.entropy as entropy_module

    real = entropy_module.stats.entropy
    monkeypatch.setattr(entropy_module.stats, "entropy", lambda *a, **k: real(*a, **k) + 1.0)
    assert main(["--out", str(tmp_path), "--quick", "--only", "entropy"]) == 1
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert any(c["status"] == "FAIL" for c in metrics["entropy"]["checks"])
