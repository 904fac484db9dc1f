"""`inborn reproduce`: every preset resolves, a tiny quick-scale study writes every file its
report names, a re-run reuses complete runs, and paper scale without CIFAR says what is missing."""

from __future__ import annotations

import re

import pytest

from inborn.cli import main
from inborn.studies.presets import load_preset, preset_names, resolve_preset
from inborn.studies.reproduce import run_study

TINY = {"base.data": "digits", "base.arch": "conv2", "base.width": 0.25, "base.epochs": 1, "base.eps": None,
        "seeds": None}  # one run per cell


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_resolves_at_every_scale(name):
    doc = load_preset(name)
    for scale in doc["scales"]:
        resolved = resolve_preset(name, scale, data_dir="/somewhere")
        assert resolved["scale"] == scale and resolved["study"] == name
    if name == "existence-wrn":  # the paper's second network; its quick scale is existence's
        assert set(doc["scales"]) == {"paper"}
    elif name != "tour":
        assert set(doc["scales"]) == {"quick", "paper"}


def test_quick_study_writes_what_its_report_names_and_reuses_runs(tmp_path):
    out = tmp_path / "existence"
    result = run_study("existence", "quick", out, progress=False, overrides={**TINY, "values": [0.5]})
    report = result["report"].read_text()
    named = set(re.findall(r"`([\w.-]+\.(?:csv|png|json))`", report)) | set(re.findall(r"\]\(([\w./-]+)\)", report))
    assert {"table.csv", "figure.png"} <= named
    for name in named:
        assert (out / name).stat().st_size > 0, name
    assert "Best ticket / dense PGD-AT" in report

    stamps = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/summary.json")}
    # the ticket, natural training, dense PGD-AT, the size-matched dense network, the random mask
    assert len(stamps) == 5
    row = result["rows"][0]
    assert abs(row["size-matched dense non-zero"] - row["RST non-zero"]) <= 0.05 * row["RST non-zero"]
    assert row["random mask non-zero"] == row["RST non-zero"]
    run_study("existence", "quick", out, progress=False, overrides={**TINY, "values": [0.5, 0.3]})
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())  # complete runs were not redone
    assert (out / "runs" / "rst-0.3" / "summary.json").exists()
    assert "0.3" in (out / "table.csv").read_text()


def test_paper_scale_without_cifar_is_one_clear_line(tmp_path, capsys):
    assert main(["reproduce", "existence", "--scale", "paper", "--data-dir", str(tmp_path),
                 "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cifar-10-batches-py" in err and "--data-dir" in err
    assert not (tmp_path / "out").exists()


def test_list_and_print_config(capsys):
    assert main(["reproduce", "--list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in ("existence", "patterns", "inits", "search-attacks", "finetune",
                                           "transfer", "r2s", "nas", "nas-tickets"))
    assert main(["reproduce", "inits", "--print-config"]) == 0
    assert "kaiming_normal" in capsys.readouterr().out
    assert main(["reproduce", "nosuchstudy"]) == 2
