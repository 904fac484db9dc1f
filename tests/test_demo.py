"""`inborn demo` end to end at a tiny budget (the full demo is the README's first command)."""

from __future__ import annotations

import csv

from inborn.cli import main


def test_demo_writes_the_tour_report(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--data", "digits", "--arch", "conv2", "--width", "0.25", "--epochs", "1",
            "--n", "24", "--quiet"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "report:" in text and "| RST |" in text
    report = (out / "report.md").read_text()
    for part in ("existence", "transfer", "r2s"):
        assert (out / part / "report.md").exists()
        assert (out / part / "table.csv").stat().st_size > 0
        assert f"({part}/report.md)" in report
    for figure in ("existence/figure.png", "transfer/figure.png", "r2s/figure.png"):
        assert (out / figure).read_bytes()[:4] == b"\x89PNG" and figure in report
    rows = list(csv.DictReader((out / "existence" / "table.csv").read_text().splitlines()))
    assert [float(r["ticket.keep_ratio"]) for r in rows] == [0.1, 0.3, 0.5]
    r2s = list(csv.DictReader((out / "r2s" / "table.csv").read_text().splitlines()))
    protocols = {r["protocol"] for r in r2s if r["model"] == "R2S"}
    assert protocols == {"paper", "eot", "expectation"}
    assert any(r["model"] == "dense PGD-AT" for r in r2s)
