"""`inborn nas` end to end on tiny data: every report file, reuse on re-run, bad input."""

from __future__ import annotations

import csv

import pytest

from inborn.cli import main
from inborn.studies.nas import expand_archs

TINY = ["nas", "--data", "digits", "--epochs", "1", "--archs", "conv2,fc,random:0-1", "--ensemble", "random:0-1",
        "--attacks", "fgsm,pgd", "--eps", "0.05,0.2", "--steps", "3", "--n", "60", "--width", "0.25",
        "--nas-opt", "init_channels=4", "--nas-opt", "layers=3", "--quiet"]


def test_expand_archs_ranges_and_duplicates():
    assert expand_archs(["resnet18", "random:2-4", "random:3"]) == ["resnet18", "random:2", "random:3", "random:4"]


def test_nas_study_writes_its_report_and_reuses_runs(tmp_path, capsys):
    out = tmp_path / "study"
    assert main([*TINY, "--out", str(out)]) == 0
    assert "sweep" not in capsys.readouterr().err  # --quiet: no progress bar of the runs either
    for name in ("report.md", "table.csv", "ensemble.csv", "robust_vs_eps.png", "study.json"):
        assert (out / name).stat().st_size > 0, name
    rows = list(csv.DictReader((out / "table.csv").read_text().splitlines()))
    assert [r["model"] for r in rows][:4] == ["conv2", "fc", "random:0", "random:1"]
    assert rows[-1]["family"] == "ensemble"
    for r in rows:
        assert 0 <= float(r["pgd@0.2"]) <= float(r["pgd@0.05"]) + 0.05 <= 1.05  # a larger ε hurts (noise aside)
        assert float(r["pgd@0.2"]) <= float(r["clean"])
        assert int(r["params"]) > 0 and int(r["macs"]) > 0
    ens = list(csv.DictReader((out / "ensemble.csv").read_text().splitlines()))
    assert [r["model"] for r in ens][-1] == "gain over mean member"
    report = (out / "report.md").read_text()
    assert "robust_vs_eps.png" in report and "Findings" in report

    stamp = (out / "runs" / "conv2" / "summary.json").stat().st_mtime_ns
    capsys.readouterr()
    assert main([*TINY, "--out", str(out)]) == 0
    assert (out / "runs" / "conv2" / "summary.json").stat().st_mtime_ns == stamp  # reused, not retrained


@pytest.mark.parametrize("extra, message", [
    (["--archs", "conv2,nosuchnet"], "unknown model"),
    (["--archs", "conv2,random:x"], "random"),
    (["--eps", "-0.1"], "ε"),
    (["--ensemble", "random:5"], "ensemble members"),
])
def test_nas_study_bad_input_is_one_line(tmp_path, capsys, extra, message):
    out = tmp_path / "bad"
    assert main([*TINY, *extra, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not (out / "runs").exists()
