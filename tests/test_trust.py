"""An imported run's own code runs only with consent (issue 25, item 6), and bad imports are one line.

A run's config.yaml names the model's code (a file or module, and a factory). A hand-made config
naming anything else (`os:system`) is refused before anything is imported; code this machine's
user did not import runs only with consent (`inborn.load(run, trust_code=True)`, or
`INBORN_TRUST_CODE=1` for every command), and code changed since is refused. Each test has its own
approvals file ($INBORN_TRUST_FILE); "another machine" is another, empty, one.

Then what `inborn import` refuses in one line, exit 2, writing nothing: a factory or a module that
calls sys.exit(), NaN or infinite weights, a config lacking a field, a full disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import yaml
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

import inborn
from inborn.cli import main
from inborn.errors import InbornError

# A user's model file: importing it leaves a marker, so a test sees whether it ran at all.
NET_PY = '''
import pathlib
import sys

import torch.nn as nn

pathlib.Path(__file__).with_name("net.imported").touch()


def make(classes=10):
    return nn.Sequential(nn.Flatten(), nn.Linear(16 * 16, classes))


def cleanup(**kwargs):
    pathlib.Path(__file__).with_name("cleanup.ran").touch()
    return make()


def quits(code=0):
    sys.exit(code)


def interrupted():
    raise KeyboardInterrupt


class Exits(nn.Sequential):
    def __init__(self):
        super().__init__(nn.Flatten(), nn.Linear(16 * 16, 10))

    def forward(self, x):
        sys.exit(0)


def exits_in_forward():
    return Exits()
'''


@pytest.fixture(autouse=True)
def approvals(tmp_path, monkeypatch):
    """This test's approvals file; no consent in the environment; no user code imported yet."""
    _forget_imported_modules(monkeypatch)
    path = tmp_path / "approvals" / "trusted.json"
    monkeypatch.setenv("INBORN_TRUST_FILE", str(path))
    monkeypatch.delenv("INBORN_TRUST_CODE", raising=False)
    return path


@pytest.fixture
def user(tmp_path):
    """The user's model file and its weights."""
    d = tmp_path / "user"
    d.mkdir()
    (d / "net.py").write_text(NET_PY)
    weights = nn.Sequential(nn.Flatten(), nn.Linear(16 * 16, 10)).state_dict()
    save_file({k: v.contiguous() for k, v in weights.items()}, str(d / "w.safetensors"))
    return d


def _import(user, out, ref="net.py:make", weights="w.safetensors", db=None):
    return main(["import", "--model", f"{user / ref.split(':')[0]}:{ref.split(':')[1]}", "--weights",
                 str(user / weights), "--data", "digits", "--out", str(out),
                 "--db", str(db or user.parent / "db.sqlite")])


def _eval(run, db):
    return main(["eval", str(run), "--n", "8", "--steps", "1", "--quiet", "--db", str(db)])


def _forget_imported_modules(monkeypatch):
    """As in a new process: the user's code, imported in this one, is not in sys.modules."""
    for name in [n for n in sys.modules if n.startswith("inborn_imported_")]:
        monkeypatch.delitem(sys.modules, name)


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("inborn: error:") and "Traceback" not in err, err
    return lines[0]


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def _edit_model_spec(run: Path, **changes) -> None:
    """Change the model spec in config.yaml and in the checkpoint's header alike (as an attacker can)."""
    doc = yaml.safe_load((run / "config.yaml").read_text())
    doc["model"].update(changes)
    (run / "config.yaml").write_text(yaml.safe_dump(doc))
    path = run / "model.safetensors"
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    stored = json.loads(meta["inborn_model"])
    stored.update(changes)
    save_file(load_file(str(path)), str(path), metadata={**meta, "inborn_model": json.dumps(stored)})


# -- a config naming other code -------------------------------------------------------------------
@pytest.mark.parametrize("consent", [False, True])
def test_a_config_naming_os_system_is_refused_before_anything_runs(user, tmp_path, monkeypatch, capsys, consent):
    run = tmp_path / "run"
    assert _import(user, run) == 0
    victim = tmp_path / "pwned"
    _edit_model_spec(run, source={"module": "os", "version": None}, factory="system",
                     kwargs={"command": f"touch {victim}"})
    if consent:  # consent trusts a model's code, never Python's own
        monkeypatch.setenv("INBORN_TRUST_CODE", "1")
    capsys.readouterr()
    before = _snapshot(tmp_path)
    assert _eval(run, tmp_path / "db.sqlite") == 2
    assert "'os' is part of Python's standard library" in _one_error_line(capsys)
    with pytest.raises(InbornError, match="standard library"):
        inborn.load(run, trust_code=True)
    assert not victim.exists()
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("ref, kwargs", [("os:system", ["command=touch {}"]),
                                         ("subprocess:run", ["args=touch {}", "shell=true"])])
def test_import_refuses_python_own_modules(user, tmp_path, capsys, ref, kwargs):
    victim = tmp_path / "pwned"
    assert main(["import", "--model", ref, "--kwargs", *[k.format(victim) for k in kwargs],
                 "--weights", str(user / "w.safetensors"), "--data", "digits", "--out", str(tmp_path / "run"),
                 "--db", str(tmp_path / "db.sqlite")]) == 2
    assert "part of Python's standard library" in _one_error_line(capsys)
    assert not victim.exists() and not (tmp_path / "run").exists()


def test_a_config_edited_alone_disagrees_with_its_checkpoint(user, tmp_path, capsys):
    run = tmp_path / "run"
    assert _import(user, run) == 0
    doc = yaml.safe_load((run / "config.yaml").read_text())
    doc["model"].update(source={"module": "os", "version": None}, factory="system", kwargs={"command": "true"})
    (run / "config.yaml").write_text(yaml.safe_dump(doc))
    capsys.readouterr()
    assert _eval(run, tmp_path / "db.sqlite") == 2
    assert "names other model code than its checkpoint" in _one_error_line(capsys)


def test_another_factory_of_a_trusted_file_needs_consent(user, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    assert _import(user, run) == 0
    _forget_imported_modules(monkeypatch)
    (user / "net.imported").unlink()
    _edit_model_spec(run, factory="cleanup")  # the import trusted `make`, not every function of the file
    capsys.readouterr()
    assert _eval(run, tmp_path / "db.sqlite") == 2
    line = _one_error_line(capsys)
    assert "factory 'cleanup'" in line and "was not imported on this machine" in line, line
    assert not (user / "net.imported").exists() and not (user / "cleanup.ran").exists()


@pytest.mark.parametrize("edit, expect", [
    (lambda s: s.update(factory="__class__"), "factory must be a Python name"),
    (lambda s: s.update(source={"file": "net.py", "sha256": "0" * 64}), "must be an absolute path"),
    (lambda s: s.update(source={"file": "/x/net.py", "sha256": "; rm -rf"}), "64 hex digits"),
    (lambda s: s.update(source={"module": "os; import sys"}), "must be a dotted name"),
    (lambda s: s.update(source={"module": "a", "file": "/b.py"}), "source must be"),
    (lambda s: s.update(kwargs=["x"]), "kwargs must map names"),
])
def test_a_config_with_malformed_code_fields_is_one_line(user, tmp_path, capsys, edit, expect):
    run = tmp_path / "run"
    assert _import(user, run) == 0
    doc = yaml.safe_load((run / "config.yaml").read_text())
    edit(doc["model"])
    (run / "config.yaml").write_text(yaml.safe_dump(doc))
    with safe_open(str(run / "model.safetensors"), framework="pt") as f:
        meta = f.metadata()
    save_file(load_file(str(run / "model.safetensors")), str(run / "model.safetensors"),
              metadata={**meta, "inborn_model": json.dumps(doc["model"])})  # the header agrees
    capsys.readouterr()
    assert _eval(run, tmp_path / "db.sqlite") == 2
    assert expect in _one_error_line(capsys)


# -- a run from another machine ---------------------------------------------------------------------
def test_a_run_imported_elsewhere_needs_consent_then_is_remembered(user, tmp_path, monkeypatch, capsys, approvals):
    run, db = tmp_path / "run", tmp_path / "db.sqlite"
    assert _import(user, run) == 0
    trusted = json.loads(approvals.read_text())["trusted"]
    assert [(e["factory"], e["how"], e["code"]) for e in trusted] == [("make", "import", str(user / "net.py"))]
    assert trusted[0]["sha256"] == hashlib.sha256((user / "net.py").read_bytes()).hexdigest()
    assert inborn.load(run)(torch.rand(2, 1, 16, 16)).shape == (2, 10)  # its importer needs no consent

    elsewhere = tmp_path / "elsewhere" / "trusted.json"
    monkeypatch.setenv("INBORN_TRUST_FILE", str(elsewhere))
    _forget_imported_modules(monkeypatch)
    (user / "net.imported").unlink()
    before = _snapshot(tmp_path)
    capsys.readouterr()
    assert _eval(run, db) == 2
    line = _one_error_line(capsys)
    assert str(user / "net.py") in line and "INBORN_TRUST_CODE=1" in line and "trust_code=True" in line, line
    with pytest.raises(InbornError, match="was not imported on this machine"):
        inborn.load(run)
    assert not (user / "net.imported").exists()  # refused before the file was imported
    assert _snapshot(tmp_path) == before

    model = inborn.load(run, trust_code=True)
    assert model(torch.rand(2, 1, 16, 16)).shape == (2, 10) and (user / "net.imported").exists()
    assert [e["how"] for e in json.loads(elsewhere.read_text())["trusted"]] == ["consent"]
    assert inborn.load(run)(torch.rand(1, 1, 16, 16)).shape == (1, 10)  # recorded: no consent needed now


@pytest.mark.parametrize("how", ["INBORN_TRUST_CODE=1", "--trust-code"])
def test_the_command_line_consents_with_inborn_trust_code(user, tmp_path, monkeypatch, capsys, how):
    run, db = tmp_path / "run", tmp_path / "db.sqlite"
    assert _import(user, run) == 0
    elsewhere = tmp_path / "elsewhere.json"
    monkeypatch.setenv("INBORN_TRUST_FILE", str(elsewhere))
    capsys.readouterr()
    assert _eval(run, db) == 2
    assert "was not imported on this machine" in _one_error_line(capsys)
    if how == "--trust-code":
        assert main(["eval", str(run), "--n", "8", "--steps", "1", "--quiet", "--db", str(db), "--trust-code"]) == 0
        assert "INBORN_TRUST_CODE" not in os.environ  # the flag's consent ended with its command
    else:
        monkeypatch.setenv("INBORN_TRUST_CODE", "1")
        assert _eval(run, db) == 0
        monkeypatch.delenv("INBORN_TRUST_CODE")
    assert _eval(run, db) == 0  # the consent was recorded
    assert [e["factory"] for e in json.loads(elsewhere.read_text())["trusted"]] == ["make"]


def test_a_module_source_is_checked_without_importing_its_package(tmp_path, monkeypatch, capsys):
    pkgs = tmp_path / "pkgs"
    (pkgs / "userpkg").mkdir(parents=True)
    (pkgs / "userpkg" / "__init__.py").write_text(
        "import pathlib\npathlib.Path(__file__).with_name('init.ran').touch()\n")
    (pkgs / "userpkg" / "nets.py").write_text(NET_PY)
    monkeypatch.syspath_prepend(str(pkgs))
    save_file({k: v.contiguous() for k, v in nn.Sequential(nn.Flatten(), nn.Linear(256, 10)).state_dict().items()},
              str(tmp_path / "w.safetensors"))
    run, db = tmp_path / "run", tmp_path / "db.sqlite"
    assert main(["import", "--model", "userpkg.nets:make", "--weights", str(tmp_path / "w.safetensors"),
                 "--data", "digits", "--out", str(run), "--db", str(db)]) == 0
    monkeypatch.setenv("INBORN_TRUST_FILE", str(tmp_path / "elsewhere.json"))
    for name in ("userpkg", "userpkg.nets"):
        monkeypatch.delitem(sys.modules, name)
    (pkgs / "userpkg" / "init.ran").unlink()
    capsys.readouterr()
    assert _eval(run, db) == 2
    assert "userpkg.nets" in _one_error_line(capsys)
    assert "userpkg" not in sys.modules and not (pkgs / "userpkg" / "init.ran").exists()
    assert inborn.load(run, trust_code=True)(torch.rand(1, 1, 16, 16)).shape == (1, 10)


def test_a_file_changed_after_approval_is_refused(user, tmp_path, monkeypatch, capsys):
    run, db = tmp_path / "run", tmp_path / "db.sqlite"
    assert _import(user, run) == 0
    _forget_imported_modules(monkeypatch)
    (user / "net.imported").unlink()
    (user / "net.py").write_text(NET_PY + "\n# changed after the import\n")
    capsys.readouterr()
    assert _eval(run, db) == 2
    assert "has changed since it was imported" in _one_error_line(capsys)
    # A config made to record the new hash is not enough: that content was never approved.
    _edit_model_spec(run, source={"file": str(user / "net.py"),
                                  "sha256": hashlib.sha256((user / "net.py").read_bytes()).hexdigest()})
    assert _eval(run, db) == 2
    assert "was not imported on this machine" in _one_error_line(capsys)
    assert not (user / "net.imported").exists()


def test_a_corrupt_approvals_file_is_one_line(user, tmp_path, approvals, capsys):
    approvals.parent.mkdir(parents=True)
    approvals.write_text("{not json")
    assert _import(user, tmp_path / "run") == 2
    line = _one_error_line(capsys)
    assert str(approvals) in line and "fix or remove it" in line
    assert not (tmp_path / "run").exists()


# -- what import refuses -------------------------------------------------------------------------
@pytest.mark.parametrize("ref, expect", [
    ("net.py:quits", "model factory 'quits' failed: it called sys.exit(0)"),
    ("exits.py:make", "it called sys.exit(1)"),
    ("net.py:exits_in_forward", "the model called sys.exit(0)"),
])
def test_user_code_that_exits_is_an_error_and_writes_nothing(user, tmp_path, approvals, capsys, ref, expect):
    (user / "exits.py").write_text("import sys\nsys.exit(1)\n")
    before = _snapshot(tmp_path)
    assert _import(user, tmp_path / "run", ref=ref) == 2
    assert expect in _one_error_line(capsys)
    (user / "net.imported").unlink(missing_ok=True)  # the user's code ran: its own doing
    assert _snapshot(tmp_path) == before  # no run, no database, no approval
    assert not (tmp_path / "run").exists() and not approvals.exists()


def test_a_module_that_exits_at_import_is_an_error(tmp_path, monkeypatch, capsys):
    (tmp_path / "exitmod.py").write_text("raise SystemExit('bye')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    save_file({"w": torch.zeros(1)}, str(tmp_path / "w.safetensors"))
    assert main(["import", "--model", "exitmod:make", "--weights", str(tmp_path / "w.safetensors"), "--data",
                 "digits", "--out", str(tmp_path / "run"), "--db", str(tmp_path / "db.sqlite")]) == 2
    assert "cannot import module 'exitmod': it called sys.exit('bye')" in _one_error_line(capsys)
    assert not (tmp_path / "run").exists()


def test_ctrl_c_in_user_code_still_stops_the_command(user, tmp_path):
    from inborn.runs.imported import import_model

    with pytest.raises(KeyboardInterrupt):
        import_model(f"{user / 'net.py'}:interrupted", user / "w.safetensors", "digits", tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("bad, what", [(float("nan"), "NaN"), (float("inf"), "infinite")])
def test_non_finite_weights_are_refused(user, tmp_path, capsys, bad, what):
    tensors = load_file(str(user / "w.safetensors"))
    tensors["1.bias"][3] = bad
    save_file(tensors, str(user / "bad.safetensors"))
    assert _import(user, tmp_path / "run", weights="bad.safetensors") == 2
    line = _one_error_line(capsys)
    assert f"tensor '1.bias' holds {what} values" in line and "bad.safetensors" in line, line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("registered", [False, True])
def test_a_config_lacking_num_classes_is_one_line(user, tmp_path, capsys, registered):
    run = tmp_path / "run"
    assert _import(user, run) == 0
    doc = yaml.safe_load((run / "config.yaml").read_text())
    if registered:  # a registered model's spec (no checkpoint needed: the spec is checked first)
        doc["kind"] = "train"
        doc["model"] = {"arch": "conv2", "in_channels": 1, "image_size": 16, "width": 0.25, "affine_bn": True,
                        "mean": [0.0], "std": [1.0], "kwargs": {}}
        (run / "model.safetensors").unlink()
    else:
        del doc["model"]["num_classes"]
    (run / "config.yaml").write_text(yaml.safe_dump(doc))
    capsys.readouterr()
    assert _eval(run, tmp_path / "db.sqlite") == 2
    assert _one_error_line(capsys) == f"inborn: error: {str(run / 'config.yaml')!r} lacks model.num_classes"


def test_build_model_names_a_missing_field():
    from inborn.spec import build_model

    with pytest.raises(InbornError, match="lacks 'num_classes'"):
        build_model({"arch": "conv2", "in_channels": 1, "image_size": 16, "width": 0.25, "affine_bn": True,
                     "mean": [0.0], "std": [1.0]})


def test_a_full_disk_leaves_no_half_run_and_the_retry_works(user, tmp_path, monkeypatch, capsys):
    import inborn.store.run_dir as run_dir

    def full(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"partial")
        raise SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: '
                              '"No space left on device" })')

    run, db = tmp_path / "run", tmp_path / "db.sqlite"
    with monkeypatch.context() as m:
        m.setattr(run_dir, "save_file", full)
        assert _import(user, run, db=db) == 2
    line = _one_error_line(capsys)
    assert "No space left on device" in line and "model.safetensors" in line, line
    assert not run.exists() and not db.exists()
    assert _import(user, run, db=db) == 0 and inborn.load(run) is not None


def test_a_failed_config_write_removes_the_model_it_follows(user, tmp_path, monkeypatch, capsys):
    import inborn.store.run_dir as run_dir

    real = run_dir.atomic_write_text

    def config_fails(path, text):
        if Path(path).name == "config.yaml":
            raise OSError(28, os.strerror(28), str(path))
        real(path, text)

    run = tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr(run_dir, "atomic_write_text", config_fails)
        assert _import(user, run) == 2
    assert "No space left" in _one_error_line(capsys)
    assert not run.exists()
    assert _import(user, run) == 0
