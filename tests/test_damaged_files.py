"""Files inborn wrote, once truncated, hand-edited or swapped for a foreign file, are read through
one validated reader each: one line naming the file and the field, exit status 2, and nothing
rewritten (a finished run or study whose files are damaged is reported, never redone). And a
termination that arrives while a figure is drawn is never swallowed."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
import yaml

from inborn.cli import main

TINY = ["--data", "digits", "--arch", "fc", "--width", "0.25", "--epochs", "2", "--quiet", "--adv", "pgd",
        "--adv-steps", "1", "--select-attack-steps", "1", "--test-attack-steps", "1", "--test-attacks", "pgd"]
SWEEP_BASE = {"kind": "train", "data": "digits", "arch": "fc", "width": 0.25, "epochs": 1, "adv": "none",
              "test_attack_steps": 1, "test_attacks": ["pgd"]}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished run with two epochs, an evaluation and its database; and a finished sweep cell."""
    root = tmp_path_factory.mktemp("damaged")
    db = root / "db.sqlite"
    assert main(["train", *TINY, "--out", str(root / "run"), "--db", str(db)]) == 0
    assert main(["eval", str(root / "run"), "--n", "8", "--steps", "1", "--quiet", "--db", str(db)]) == 0
    (root / "base.yaml").write_text(yaml.safe_dump(SWEEP_BASE))
    assert main(["sweep", str(root / "base.yaml"), "--grid", "lr=0.05", "--out", str(root / "sweep"),
                 "--db", str(db), "--quiet"]) == 0
    return root


def _files(root):
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def _refused(argv, root, capsys, *words) -> str:
    """Run `argv`; "refused" when it exits 2 with one line naming the damage (every word in it) and
    no file under `root` changed, else what went wrong (the assertion at the call site shows it)."""
    before = _files(root)
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    if code != 2:
        return f"exit {code}: {err}"
    if len(lines) != 1 or not lines[0].startswith("inborn: error:") or "Traceback" in err:
        return f"not one error line: {err}"
    missing = [word for word in words if word not in lines[0]]
    if missing:
        return f"{missing[0]!r} not named in: {lines[0]}"
    return "refused" if _files(root) == before else f"files changed: {lines[0]}"


def _copy(finished, tmp_path, name="run"):
    dst = tmp_path / name
    shutil.copytree(finished / name, dst)
    (dst / ".lock").unlink(missing_ok=True)
    return dst


METRICS = {
    "truncated": lambda text: text[: len(text) // 2 + 3],
    "a line that is a list": lambda text: "[1, 2]\n" + text,
    "binary": lambda text: "\udcff\udcfe",
    "an epoch missing": lambda text: "\n".join(text.splitlines()[1:]) + "\n",
}


@pytest.mark.parametrize("damage", list(METRICS))
def test_a_damaged_metrics_file_is_one_line_naming_it(finished, tmp_path, capsys, damage):
    run = _copy(finished, tmp_path)
    path = run / "metrics.jsonl"
    text = METRICS[damage](path.read_text())
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    argv = ["runs", "--plot", str(run), "--out", str(tmp_path / "plot.png"), "--db", str(finished / "db.sqlite")]
    assert _refused(argv, tmp_path, capsys, "metrics.jsonl") == "refused"


EVAL_JSON = {
    "a list": lambda doc: [doc],
    "n null": lambda doc: {**doc, "n": None},
    "a result without steps": lambda doc: {**doc, "results": [{k: v for k, v in r.items() if k != "steps"}
                                                              for r in doc["results"]]},
}


@pytest.mark.parametrize("damage", list(EVAL_JSON))
def test_a_damaged_eval_json_is_one_line_for_card(finished, tmp_path, capsys, damage):
    run = _copy(finished, tmp_path)
    doc = json.loads((run / "eval.json").read_text())
    (run / "eval.json").write_text(json.dumps(EVAL_JSON[damage](doc)))
    argv = ["card", str(run), "--partial", "--out", str(tmp_path / "card.json"), "--db", str(tmp_path / "x.db")]
    assert _refused(argv, tmp_path, capsys, "eval.json") == "refused"


@pytest.mark.parametrize(("key", "value"), [("eps", "0.1"), ("eps", 2.5), ("seed", "zero"), ("val_fraction", 1.5)])
def test_a_hand_edited_config_is_one_line_naming_the_field(finished, tmp_path, capsys, key, value):
    run = _copy(finished, tmp_path)
    doc = yaml.safe_load((run / "config.yaml").read_text())
    doc["config"][key] = value
    (run / "config.yaml").write_text(yaml.safe_dump(doc))
    assert _refused(["eval", str(run), "--n", "8", "--steps", "1", "--quiet", "--db", str(tmp_path / "x.db")], tmp_path,
             capsys, f"config.{key}") == "refused"


def test_a_truncated_summary_of_a_finished_cell_is_reported_not_rewritten(finished, tmp_path, capsys):
    sweep = tmp_path / "sweep"
    shutil.copytree(finished / "sweep", sweep)
    shutil.copy(finished / "db.sqlite", tmp_path / "db.sqlite")
    summary = next(sweep.glob("*/summary.json"))
    summary.write_text(summary.read_text()[:20])
    assert _refused(["sweep", str(finished / "base.yaml"), "--grid", "lr=0.05", "--out", str(sweep),
              "--db", str(tmp_path / "db.sqlite"), "--quiet"], tmp_path, capsys, "summary.json") == "refused"


def test_a_truncated_cell_json_is_one_line(finished, tmp_path, capsys):
    sweep = tmp_path / "sweep"
    shutil.copytree(finished / "sweep", sweep)
    cell = next(sweep.glob("*/cell.json"))
    cell.write_text(cell.read_text()[:15])
    assert _refused(["sweep", str(finished / "base.yaml"), "--grid", "lr=0.05", "--out", str(sweep),
              "--db", str(tmp_path / "db.sqlite"), "--quiet"], tmp_path, capsys, "cell.json") == "refused"


def test_a_truncated_study_record_is_reported_not_rewritten(tmp_path, capsys):
    study = tmp_path / "tour"
    study.mkdir()
    (study / ".inborn").write_text('{"kind": "study", "name": "tour (quick)"}')
    (study / "study.json").write_text('{"study": "to')
    assert _refused(["reproduce", "tour", "--out", str(study), "--db", str(tmp_path / "x.db")], tmp_path, capsys,
             "study.json") == "refused"


def test_a_finished_study_with_a_truncated_summary_is_reported_not_rewritten(finished, tmp_path, capsys):
    study = tmp_path / "tour"
    (study / "runs").mkdir(parents=True)
    (study / "study.json").write_text('{"study": "tour", "scale": "quick"}')  # an older study: no marker yet
    run = shutil.copytree(finished / "run", study / "runs" / "a")
    (run / "summary.json").write_text((run / "summary.json").read_text()[:30])
    assert _refused(["reproduce", "tour", "--out", str(study), "--db", str(tmp_path / "x.db")], tmp_path, capsys,
             "summary.json") == "refused"


def test_summaries_are_checked_field_by_field():
    from inborn.errors import InbornError
    from inborn.store.run_dir import check_summary_doc

    check_summary_doc({"best_epoch": 1, "test": {"n": 9, "clean_acc": 0.5, "robust_acc": 0.25}}, "s.json")
    for doc, field in (([], "an object"), ({"best_epoch": "1"}, "best_epoch"),
                       ({"test": {"clean_acc": 0.5, "robust_acc": 1.5}}, "test.robust_acc"),
                       ({"test": {"clean_acc": 0.5, "robust_acc": 0.4, "n": 0}}, "test.n")):
        with pytest.raises(InbornError, match=field):
            check_summary_doc(doc, "s.json")


def test_a_termination_while_the_curves_are_drawn_is_not_swallowed(tmp_path, monkeypatch):
    from inborn import interrupts
    from inborn.train import curves

    def broken(*args, **kwargs):  # the drawing fails as matplotlib's import did when SIGTERM hit it
        raise RuntimeError("import interrupted")

    monkeypatch.setattr(curves, "plot_training_curves", broken)
    with pytest.warns(UserWarning, match="curves.png not drawn"):  # no termination: the run goes on
        curves.write_curves(tmp_path, [], None, "t")
    monkeypatch.setattr(interrupts, "_requested", 143)  # what the SIGTERM handler records
    with pytest.raises(SystemExit) as stop:
        curves.write_curves(tmp_path, [], None, "t")
    assert stop.value.code == 143
    monkeypatch.setattr(curves, "plot_training_curves", lambda *a, **k: None)  # swallowed whole, no error
    with pytest.raises(SystemExit):
        curves.write_curves(tmp_path, [], None, "t")


def test_a_full_disk_under_safetensors_is_one_line_and_the_retry_succeeds(tmp_path, monkeypatch, capsys):
    # safetensors raises its own error type on a failed write, not OSError (seen on a full tmpfs).
    from safetensors import SafetensorError

    from inborn.store import run_dir

    def full(*args, **kwargs):
        raise SafetensorError("Error while serializing: IoError(No space left on device (os error 28))")

    room = run_dir.save_file
    monkeypatch.setattr(run_dir, "save_file", full)
    argv = ["train", *TINY, "--epochs", "1", "--out", str(tmp_path / "run"), "--db", str(tmp_path / "db.sqlite")]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "No space left on device" in err and "Traceback" not in err, err
    assert not list((tmp_path / "run").glob("*.safetensors*"))  # no half-written tensor file
    monkeypatch.setattr(run_dir, "save_file", room)  # room on the disk again: the same command succeeds
    assert main(argv) == 0 and (tmp_path / "run" / "model.safetensors").exists()
