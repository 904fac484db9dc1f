"""`inborn demo` end to end at a tiny budget (the full demo is the README's first command)."""

from __future__ import annotations

import json

from inborn.cli import main


def test_demo_trains_and_evaluates(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--epochs", "1", "--aa-n", "4", "--quiet", "--db", str(tmp_path / "db")]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "autoattack" in text and "worst case" in text and str(out.resolve()) in text
    result = json.loads((out / "eval.json").read_text())
    pgd, aa = result["results"]
    assert result["n"] == 4 and aa["robust_acc"] <= pgd["robust_acc"] + 1e-9
    assert json.loads((out / "summary.json").read_text())["epochs"] == 1
