"""Nothing a user hands inborn destroys a file or ends in a traceback (issue 15).

One table of bad and hostile inputs, for every command: each gives exit status 2, exactly one
line on stderr starting `inborn: error:`, no traceback, no new directory, and every file that
existed before (the shared runs included) is byte-identical after. The commands run in this
process (`inborn.cli.main`), against one tiny trained run, ticket and family built once for the
module; every case fails in validation, before any training.

Then the destroyed-file cases one by one, the run status (a SIGKILLed train shows as
`interrupted`, a NaN loss as `failed`), OS errors (a read-only directory and a full disk, both
simulated: the tests run as root, which ignores permission bits), strict JSON and temp names.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file, save_file

from inborn.cli import main

TINY = ["--data", "digits", "--arch", "conv2", "--width", "0.25", "--epochs", "1", "--quiet"]
FAST = ["--adv", "none", "--test-attack-steps", "1"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A trained run, a ticket, a family of it, and their database (built once)."""
    root = tmp_path_factory.mktemp("world")
    db = root / "db.sqlite"
    w = {"root": root, "db": db, "run": root / "run", "ticket": root / "ticket", "family": root / "family"}
    assert main(["train", *TINY, *FAST, "--out", str(w["run"]), "--db", str(db)]) == 0
    assert main(["search", *TINY, *FAST, "--keep", "0.3", "--out", str(w["ticket"]), "--db", str(db)]) == 0
    assert main(["family", "--from-tickets", str(w["ticket"]), "--out", str(w["family"]), "--db", str(db)]) == 0
    # An AutoAttack evaluation of part of the run: `card --partial --db {db}` could write its card.
    assert main(["eval", str(w["run"]), "--attack", "autoattack", "--n", "8", "--quiet", "--db", str(db)]) == 0
    return w


def _snapshot(*roots: Path) -> tuple[dict[str, str], set[str]]:
    """(sha256 of every file, every directory) under the roots."""
    files, dirs = {}, set()
    for root in roots:
        for p in sorted(root.rglob("*")):
            if p.is_symlink():
                files[str(p)] = "link:" + os.readlink(p)
            elif p.is_file():
                files[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
            elif p.is_dir():
                dirs.add(str(p))
    return files, dirs


# -- setups: build what a case needs in its own tmp directory; return extra placeholders -----------
def _copy_run(w, tmp, name="run", src="run"):
    dst = tmp / name
    shutil.copytree(w[src], dst, symlinks=True)
    (dst / ".lock").unlink(missing_ok=True)
    return dst


def _edit_config(w, tmp, edit, src="run"):
    run = _copy_run(w, tmp, src=src)
    doc = yaml.safe_load((run / "config.yaml").read_text())
    edit(doc)
    (run / "config.yaml").write_text(yaml.safe_dump(doc))
    return {"x": str(run)}


def _rewrite_meta(path: Path, **meta):
    tensors = load_file(str(path))
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        old = f.metadata() or {}
    save_file(tensors, str(path), metadata={**old, **meta})


def user_files(*names):
    def setup(w, tmp, mp):
        d = tmp / "mine"
        d.mkdir()
        for n in names:
            (d / n).write_text(f"the user's own {n}\n")
        return {"x": str(d)}
    return setup


MODEL_PY = """
import torch.nn as nn


def make(classes=10):
    return nn.Sequential(nn.Flatten(), nn.Linear(16 * 16, classes))


def wide(classes=10):
    return nn.Sequential(nn.Flatten(), nn.Linear(16 * 16, 32), nn.Linear(32, classes))


def broken():
    raise ValueError("always fails")


def three():
    return nn.Sequential(nn.Flatten(), nn.Linear(16 * 16, 3))
"""


def user_model(w, tmp, mp):
    """A user's model file and its weights (safetensors, and a .pt holding a pickled object)."""
    import torch
    import torch.nn as nn

    (tmp / "net.py").write_text(MODEL_PY)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16 * 16, 10))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp / "w.safetensors"))
    torch.save({"model": model}, tmp / "pickled.pt")  # a whole module: weights_only refuses it
    return {"x": str(tmp / "net.py"), "w": str(tmp / "w.safetensors"), "pt": str(tmp / "pickled.pt")}


def user_model_over(*names):
    def setup(w, tmp, mp):
        values = user_model(w, tmp, mp)
        values["o"] = user_files(*names)(w, tmp, mp)["x"]
        return values
    return setup


def a_file(w, tmp, mp):
    (tmp / "afile").write_text("a user's file\n")
    return {"x": str(tmp / "afile")}


def not_sqlite(w, tmp, mp):
    (tmp / "notes.db").write_text("not a database\n")
    return {"x": str(tmp / "notes.db")}


def a_dir(w, tmp, mp):
    (tmp / "adir").mkdir()
    (tmp / "adir" / "keep.txt").write_text("x\n")
    return {"x": str(tmp / "adir")}


def missing_key(w, tmp, mp):
    return _edit_config(w, tmp, lambda d: d["config"].pop("data"))


def wrong_type(w, tmp, mp):
    return _edit_config(w, tmp, lambda d: d["config"].update(epochs="ten"))


def model_not_mapping(w, tmp, mp):
    return _edit_config(w, tmp, lambda d: d.update(model=["conv2"]))


def not_yaml(w, tmp, mp):
    run = _copy_run(w, tmp)
    (run / "config.yaml").write_text("config: [unclosed\n")
    return {"x": str(run)}


def ckpt_meta(value):
    def setup(w, tmp, mp):
        run = _copy_run(w, tmp)
        _rewrite_meta(run / "checkpoint.safetensors", inborn_state=value)
        return {"x": str(run)}
    return setup


def model_meta_not_json(w, tmp, mp):
    run = _copy_run(w, tmp)
    _rewrite_meta(run / "model.safetensors", inborn_model="{not json")
    return {"x": str(run)}


def truncated_model(w, tmp, mp):
    run = _copy_run(w, tmp)
    data = (run / "model.safetensors").read_bytes()
    (run / "model.safetensors").write_bytes(data[: len(data) // 3])
    return {"x": str(run)}


def other_arch_checkpoint(w, tmp, mp):
    """A run whose config says conv2 at width 0.5: the checkpoint (width 0.25) does not fit."""
    run = _copy_run(w, tmp)
    doc = yaml.safe_load((run / "config.yaml").read_text())
    doc["config"]["width"] = 0.5
    doc["model"]["width"] = 0.5
    doc["config"]["epochs"] = 2
    (run / "config.yaml").write_text(yaml.safe_dump(doc))
    return {"x": str(run)}


def symlinked_lock(w, tmp, mp):
    run = _copy_run(w, tmp)
    victim = tmp / "precious.txt"
    victim.write_text("a file the user cares about\n")
    (run / ".lock").symlink_to(victim)
    return {"x": str(run)}


def lock_is_a_dir(w, tmp, mp):
    run = _copy_run(w, tmp)
    (run / ".lock").mkdir()
    return {"x": str(run)}


def read_only_run(w, tmp, mp):
    """A run on read-only media, simulated: opening anything in it for writing gives EROFS."""
    run = _copy_run(w, tmp)
    real_open = os.open

    def fake_open(path, flags, *args, **kwargs):
        if str(path).startswith(str(run)) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kwargs)
    mp.setattr(os, "open", fake_open)
    return {"x": str(run)}


def read_only_parent(w, tmp, mp):
    """--out on a read-only file system, simulated: mkdir under `ro` gives EROFS."""
    ro = tmp / "ro"
    ro.mkdir()
    real_mkdir = os.mkdir

    def fake_mkdir(path, *args, **kwargs):
        if str(path).startswith(str(ro)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_mkdir(path, *args, **kwargs)
    mp.setattr(os, "mkdir", fake_mkdir)
    return {"x": str(ro / "new")}


def other_data_baseline(w, tmp, mp):
    return _edit_config(w, tmp, lambda d: d["config"].update(data="mnist5k"))


def corrupt_family(w, tmp, mp):
    fam = _copy_run(w, tmp, "fam", src="family")
    _rewrite_meta(fam / "family.safetensors", inborn_family="[{\"name\": 3}]")
    return {"x": str(fam)}


def yaml_file(doc):
    def setup(w, tmp, mp):
        (tmp / "cfg.yaml").write_text(yaml.safe_dump(doc) if not isinstance(doc, str) else doc)
        return {"x": str(tmp / "cfg.yaml")}
    return setup


def sweep_base(w, tmp, mp):
    (tmp / "base.yaml").write_text(yaml.safe_dump({"data": "digits", "arch": "conv2", "width": 0.25, "epochs": 1,
                                                   "adv": "none"}))
    return {"x": str(tmp / "base.yaml")}


def users_file(name, text="mine\n"):
    """A file of the user's own at {tmp}/NAME ({x})."""
    def setup(w, tmp, mp):
        (tmp / name).write_text(text)
        return {"x": str(tmp / name)}
    return setup


def plottable(w, tmp, mp):
    """A copy of the run with a validation robust accuracy per epoch ({x}): `runs --plot` can draw it."""
    run = _copy_run(w, tmp, name="plotted")
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    (run / "metrics.jsonl").write_text("".join(json.dumps({**m, "val_robust_acc": 0.5}) + "\n" for m in lines))
    return {"x": str(run)}


def run_with_users_card(w, tmp, mp):
    run = _copy_run(w, tmp)
    (run / "card.json").write_text('{"my": "own notes"}\n')
    return {"x": str(run)}


def users_png_in_cwd(w, tmp, mp):  # `runs --plot`'s default output, val_robust.png, is the user's
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1])
    fig.savefig(tmp / "val_robust.png")  # a PNG, but not one inborn drew
    plt.close(fig)
    mp.chdir(tmp)
    return {}


def users_dir_with(name):
    def setup(w, tmp, mp):
        (tmp / "mine").mkdir()
        (tmp / "mine" / name).write_text("# my notes\n")
        return {"x": str(tmp / "mine")}
    return setup


def another_study(w, tmp, mp):
    study = tmp / "existence-quick"
    study.mkdir()
    (study / ".inborn").write_text('{"kind": "study", "name": "existence (quick)"}')
    (study / "study.json").write_text('{"study": "existence", "scale": "quick"}')
    (study / "report.md").write_text("# existence\n")
    return {"x": str(study)}


def foreign_sqlite(w, tmp, mp):
    with sqlite3.connect(tmp / "photos.db") as c:
        c.execute("CREATE TABLE photos (path TEXT)")
    return {"x": str(tmp / "photos.db")}


def garbage_wal(w, tmp, mp):
    shutil.copy(w["db"], tmp / "copy.db")
    (tmp / "copy.db-wal").write_bytes(os.urandom(200))
    return {"x": str(tmp / "copy.db")}


def study_yaml(w, tmp, mp):
    from inborn.studies.presets import preset_path

    doc = yaml.safe_load(preset_path("overparam").read_text())
    for scale in doc["scales"].values():
        scale.setdefault("base", {})["lr"] = float("nan")
    (tmp / "study.yaml").write_text(yaml.safe_dump(doc))
    return {"x": str(tmp / "study.yaml")}


def smoke_yaml_bad_last_value(w, tmp, mp):
    """A study whose smoke keeps only the first value: the bad last one must still be refused, and
    before the smoke's temporary directory is made (here under tmp, so the snapshot sees it)."""
    import tempfile

    from inborn.studies.presets import preset_path

    doc = yaml.safe_load(preset_path("existence").read_text())
    doc["scales"]["quick"]["values"] = [0.05, 2.5]
    (tmp / "study.yaml").write_text(yaml.safe_dump(doc))
    mp.setattr(tempfile, "tempdir", str(tmp))
    return {"x": str(tmp / "study.yaml")}


NEW = "{tmp}/new"
T = ["train", *TINY, "--out", NEW]
S = ["search", *TINY, "--out", NEW]
F = ["finetune", "{ticket}", "--epochs", "1", "--quiet", "--out", NEW]
E = ["eval", "{run}", "--quiet", "--n", "8", "--steps", "1"]
FA = ["family", *TINY, "--out", "{tmp}/fam"]
TR = ["transfer", "{family}", "--quiet", "--n", "8", "--steps", "1"]
R2 = ["r2s", "{family}", "--quiet", "--n", "8", "--steps", "1"]
EN = ["ensemble", "{run}", "{run}", "--out", "{tmp}/ens", "--quiet", "--n", "8", "--steps", "1"]
NAS = ["nas", "--out", "{tmp}/nas", "--data", "digits", "--archs", "conv2", "--ensemble", "", "--epochs", "1",
       "--quiet", "--attacks", "pgd"]

IMP = ["import", "--model", "{x}:make", "--weights", "{w}", "--data", "digits", "--out", "{tmp}/m"]

# (case id, argv, setup or None). Placeholders: {tmp} (the case's own directory), {run}, {ticket},
# {family}, {db} (the shared ones), {x} (what the setup made).
CASES = [
    # -- train --------------------------------------------------------------------------------
    ("train-unknown-arch", [*T, "--arch", "nope"], None),
    ("train-unknown-data", [*T, "--data", "nope"], None),
    ("train-unknown-adv", [*T, "--adv", "magic"], None),
    ("train-eps-nan", [*T, "--eps", "nan"], None),
    ("train-eps-inf", [*T, "--eps", "inf"], None),
    ("train-eps-negative", [*T, "--eps", "-0.1"], None),
    ("train-lr-nan", [*T, "--lr", "nan"], None),
    ("train-lr-zero", [*T, "--lr", "0"], None),
    ("train-width-nan", [*T, "--width", "nan"], None),
    ("train-width-zero", [*T, "--width", "0"], None),
    ("train-epochs-zero", [*T, "--epochs", "0"], None),
    ("train-batch-size-zero", [*T, "--batch-size", "0"], None),
    ("train-free-replays-zero", [*T, "--adv", "free", "--free-replays", "0"], None),
    ("train-adv-steps-zero", [*T, "--adv", "pgd", "--adv-steps", "0"], None),
    ("train-momentum-inf", [*T, "--momentum", "inf"], None),
    ("train-weight-decay-negative", [*T, "--weight-decay", "-1"], None),
    ("train-val-fraction-one", [*T, "--val-fraction", "1"], None),
    ("train-drop-path-two", [*T, "--drop-path", "2"], None),
    ("train-grad-clip-zero", [*T, "--grad-clip", "0"], None),
    ("train-step-size-nan", [*T, "--adv", "pgd", "--adv-step-size", "nan"], None),
    ("train-milestones-not-ints", [*T, "--milestones", "1,x"], None),
    ("train-model-opt-not-key-value", [*T, "--model-opt", "=3"], None),
    ("train-config-missing", [*T, "--config", "{tmp}/nowhere.yaml"], None),
    ("train-config-wrong-type", [*T, "--config", "{x}"], yaml_file({"lr": "fast"})),
    ("train-config-nan", [*T, "--config", "{x}"], yaml_file({"lr": float("nan")})),
    ("train-config-not-mapping", [*T, "--config", "{x}"], yaml_file(["lr", 0.1])),
    ("train-config-unknown-key", [*T, "--config", "{x}"], yaml_file({"learning_rate": 0.1})),
    ("train-config-python-tag", [*T, "--config", "{x}"], yaml_file("lr: !!python/object/apply:os.system ['true']\n")),
    ("train-db-not-sqlite", [*T, "--db", "{x}"], not_sqlite),
    ("train-db-a-directory", [*T, "--db", "{x}"], a_dir),
    ("train-out-over-user-config", ["train", *TINY, "--out", "{x}"], user_files("config.yaml")),
    ("train-out-over-user-summary", ["train", *TINY, "--out", "{x}"], user_files("summary.json")),
    ("train-out-over-user-metrics", ["train", *TINY, "--out", "{x}"], user_files("metrics.jsonl")),
    ("train-out-an-existing-file", ["train", *TINY, "--out", "{x}"], a_file),
    ("train-out-under-a-file", ["train", *TINY, "--out", "{x}/run"], a_file),
    ("train-out-name-too-long", ["train", *TINY, "--out", "{tmp}/" + "r" * 300], None),
    ("train-out-a-ticket", ["train", *TINY, "--out", "{ticket}"], None),
    ("train-out-read-only", ["train", *TINY, "--out", "{x}"], read_only_parent),
    ("train-resume-nowhere", ["train", "--resume", "--out", "{tmp}/nowhere"], None),
    ("train-resume-config-missing-key", ["train", "--resume", "--out", "{x}"], missing_key),
    ("train-resume-config-wrong-type", ["train", "--resume", "--out", "{x}"], wrong_type),
    ("train-resume-config-not-yaml", ["train", "--resume", "--out", "{x}"], not_yaml),
    ("train-resume-checkpoint-meta-empty", ["train", "--resume", "--out", "{x}"], ckpt_meta("")),
    ("train-resume-checkpoint-meta-not-json", ["train", "--resume", "--out", "{x}"], ckpt_meta("{nope")),
    ("train-resume-other-arch-checkpoint", ["train", "--resume", "--out", "{x}", "--quiet"], other_arch_checkpoint),
    ("train-resume-symlinked-lock", ["train", "--resume", "--out", "{x}"], symlinked_lock),
    ("train-resume-lock-a-directory", ["train", "--resume", "--out", "{x}"], lock_is_a_dir),
    ("train-resume-a-family", ["train", "--resume", "--out", "{family}"], None),
    # -- search -------------------------------------------------------------------------------
    ("search-no-keep", S, None),
    ("search-keep-zero", [*S, "--keep", "0"], None),
    ("search-keep-above-one", [*S, "--keep", "1.5"], None),
    ("search-keep-nan", [*S, "--keep", "nan"], None),
    ("search-keep-not-a-number", [*S, "--keep", "abc"], None),
    ("search-keep-divide-by-zero", [*S, "--keep", "3/0"], None),
    ("search-unknown-pattern", [*S, "--keep", "0.3", "--pattern", "bogus"], None),
    ("search-unknown-init", [*S, "--keep", "0.3", "--init", "bogus"], None),
    ("search-weight-seed-not-int", [*S, "--keep", "0.3", "--weight-seed", "x"], None),
    ("search-from-run-nowhere", [*S, "--keep", "0.3", "--from-run", "{tmp}/nowhere"], None),
    ("search-out-over-user-config", ["search", *TINY, "--keep", "0.3", "--out", "{x}"], user_files("config.yaml")),
    ("search-out-a-train-run", ["search", *TINY, "--keep", "0.3", "--out", "{run}"], None),
    # -- finetune -----------------------------------------------------------------------------
    ("finetune-other-arch", [*F, "--arch", "fc"], None),
    ("finetune-other-width", [*F, "--width", "0.5"], None),
    ("finetune-other-data", [*F, "--data", "mnist5k"], None),
    ("finetune-a-family", ["finetune", "{family}", "--epochs", "1", "--out", NEW], None),
    ("finetune-a-dense-run", ["finetune", "{run}", "--epochs", "1", "--out", NEW], None),
    ("finetune-nowhere", ["finetune", "{tmp}/nowhere", "--out", NEW], None),
    ("finetune-unknown-weights", [*F, "--weights", "bogus"], None),
    ("finetune-lr-nan", [*F, "--lr", "nan"], None),
    ("finetune-out-the-ticket", ["finetune", "{ticket}", "--epochs", "1", "--out", "{ticket}"], None),
    # -- eval ---------------------------------------------------------------------------------
    ("eval-unknown-attack", [*E, "--attack", "nope"], None),
    ("eval-eps-nan", [*E, "--eps", "nan"], None),
    ("eval-eps-inf", [*E, "--eps", "inf"], None),
    ("eval-eps-negative", [*E, "--eps", "-1"], None),
    ("eval-eps-not-a-number", [*E, "--eps", "abc"], None),
    ("eval-eps-empty-list", [*E, "--eps", ","], None),
    ("eval-steps-zero", [*E, "--steps", "0"], None),
    ("eval-n-zero", [*E, "--n", "0"], None),
    ("eval-batch-size-zero", [*E, "--batch-size", "0"], None),
    ("eval-restarts-zero", [*E, "--restarts", "0"], None),
    ("eval-eot-zero", [*E, "--eot", "0"], None),
    ("eval-repeats-negative", [*E, "--repeats", "-1"], None),
    ("eval-step-size-nan", [*E, "--step-size", "nan"], None),
    ("eval-db-not-sqlite", [*E, "--db", "{x}"], not_sqlite),
    ("eval-db-a-directory", [*E, "--db", "{x}"], a_dir),
    ("eval-nowhere", ["eval", "{tmp}/nowhere"], None),
    ("eval-config-not-yaml", ["eval", "{x}"], not_yaml),
    ("eval-config-model-not-mapping", ["eval", "{x}"], model_not_mapping),
    ("eval-config-missing-key", ["eval", "{x}"], missing_key),
    ("eval-model-meta-not-json", ["eval", "{x}"], model_meta_not_json),
    ("eval-truncated-model", ["eval", "{x}"], truncated_model),
    ("eval-symlinked-lock", ["eval", "{x}", "--quiet", "--n", "8", "--steps", "1"], symlinked_lock),
    ("eval-read-only-run", ["eval", "{x}", "--quiet", "--n", "8", "--steps", "1"], read_only_run),
    # -- family -------------------------------------------------------------------------------
    ("family-keep-not-a-number", [*FA, "--keep", "0.3,abc"], None),
    ("family-keep-zero", [*FA, "--keep", "0.3,0"], None),
    ("family-keep-nan", [*FA, "--keep", "nan"], None),
    ("family-no-keep", FA, None),
    ("family-out-a-ticket", ["family", *TINY, "--keep", "0.3", "--out", "{ticket}"], None),
    ("family-out-its-member-ticket", ["family", "--from-tickets", "{ticket}", "--out", "{ticket}"], None),
    ("family-out-a-train-run", ["family", "--from-tickets", "{ticket}", "--out", "{run}"], None),
    ("family-out-over-user-config", ["family", "--from-tickets", "{ticket}", "--out", "{x}"],
     user_files("config.yaml")),
    ("family-from-a-dense-run", ["family", "--from-tickets", "{run}", "--out", "{tmp}/fam"], None),
    ("family-from-nowhere", ["family", "--from-tickets", "{tmp}/nowhere", "--out", "{tmp}/fam"], None),
    ("family-db-not-sqlite", [*FA, "--keep", "0.3", "--db", "{x}"], not_sqlite),
    # -- transfer and r2s ---------------------------------------------------------------------
    ("transfer-n-negative", [*TR, "--n", "-5"], None),
    ("transfer-steps-zero", [*TR, "--steps", "0"], None),
    ("transfer-eps-nan", [*TR, "--eps", "nan"], None),
    ("transfer-of-a-run", ["transfer", "{run}"], None),
    ("transfer-corrupt-family-file", ["transfer", "{x}", "--n", "8"], corrupt_family),
    ("r2s-probs-not-numbers", [*R2, "--probs", "a,b"], None),
    ("r2s-probs-nan", [*R2, "--probs", "nan"], None),
    ("r2s-probs-wrong-count", [*R2, "--probs", "0.5,0.5"], None),
    ("r2s-eot-zero", [*R2, "--eot", "0"], None),
    ("r2s-n-zero", [*R2, "--n", "0"], None),
    ("r2s-repeats-zero", [*R2, "--repeats", "0"], None),
    ("r2s-unknown-protocol", [*R2, "--protocol", "bogus"], None),
    ("r2s-baseline-other-data", [*R2, "--baseline", "{x}"], other_data_baseline),
    ("r2s-of-a-ticket", ["r2s", "{ticket}"], None),
    # -- ensemble -----------------------------------------------------------------------------
    ("ensemble-n-zero", [*EN, "--n", "0"], None),
    ("ensemble-steps-zero", [*EN, "--steps", "0"], None),
    ("ensemble-unknown-attack", [*EN, "--attack", "nope"], None),
    ("ensemble-eps-nan", [*EN, "--eps", "nan"], None),
    ("ensemble-out-a-member", ["ensemble", "{run}", "{ticket}", "--out", "{run}"], None),
    ("ensemble-out-another-run", ["ensemble", "{run}", "{run}", "--out", "{ticket}"], None),
    ("ensemble-out-over-user-config", ["ensemble", "{run}", "{run}", "--out", "{x}"], user_files("config.yaml")),
    ("ensemble-db-not-sqlite", [*EN, "--db", "{x}"], not_sqlite),
    ("ensemble-member-nowhere", ["ensemble", "{run}", "{tmp}/nowhere", "--out", "{tmp}/ens"], None),
    # -- export -------------------------------------------------------------------------------
    ("export-into-the-ticket", ["export", "{ticket}", "--out", "{ticket}/model.safetensors"], None),
    ("export-into-another-run", ["export", "{ticket}", "--out", "{run}/plain.safetensors"], None),
    ("export-out-a-directory", ["export", "{ticket}", "--out", "{x}"], a_dir),
    ("export-out-over-user-file", ["export", "{ticket}", "--out", "{x}"], a_file),
    ("export-out-under-a-file", ["export", "{ticket}", "--out", "{x}/plain.safetensors"], a_file),
    ("export-a-dense-run", ["export", "{run}", "--out", "{tmp}/plain.safetensors"], None),
    ("export-a-family", ["export", "{family}", "--out", "{tmp}/plain.safetensors"], None),
    ("export-nowhere", ["export", "{tmp}/nowhere", "--out", "{tmp}/plain.safetensors"], None),
    # -- runs ---------------------------------------------------------------------------------
    ("eval-save-adv-over-the-model", [*E, "--save-adv", "{run}/model.safetensors"], None),
    ("eval-save-adv-not-safetensors", [*E, "--save-adv", "{tmp}/adv.pt"], None),
    ("eval-save-adv-over-a-users-file", [*E, "--save-adv", "{x}"], users_file("mine.safetensors")),
    ("compare-not-a-run", ["compare", "{run}", "{tmp}"], None),
    ("compare-a-run-twice", ["compare", "{run}", "{run}/"], None),
    ("compare-out-not-png", ["compare", "{run}", "--out", "{tmp}/table.txt"], None),
    ("compare-out-a-runs-curves", ["compare", "{run}", "--out", "{run}/curves.png"], None),
    ("compare-out-a-users-png", ["compare", "{run}", "--out", "{tmp}/mine.png"],
     users_file("mine.png", "\x89PNG not inborn's\n")),
    ("compare-db-not-sqlite", ["compare", "{run}", "--db", "{x}"], not_sqlite),
    ("runs-db-not-sqlite", ["runs", "--db", "{x}"], not_sqlite),
    ("runs-db-a-directory", ["runs", "--db", "{x}"], a_dir),
    ("runs-db-missing", ["runs", "--db", "{tmp}/none.db"], None),
    # -- sweep --------------------------------------------------------------------------------
    ("sweep-lr-nan", ["sweep", "{x}", "--grid", "lr=0.1,nan", "--out", "{tmp}/sw"], sweep_base),
    ("sweep-lr-not-a-number", ["sweep", "{x}", "--grid", "lr=0.1,abc", "--out", "{tmp}/sw"], sweep_base),
    ("sweep-epochs-zero", ["sweep", "{x}", "--grid", "epochs=1,0", "--out", "{tmp}/sw"], sweep_base),
    ("sweep-unknown-arch", ["sweep", "{x}", "--grid", "arch=conv2,nope", "--out", "{tmp}/sw"], sweep_base),
    ("sweep-unknown-pattern", ["sweep", "{x}", "--grid", "keep=0.3", "--grid", "ticket.pattern=element,bogus",
                               "--out", "{tmp}/sw"], sweep_base),
    ("sweep-finetune-ticket-nowhere", ["sweep", "{x}", "--grid", "finetune.ticket={tmp}/nowhere",
                                       "--out", "{tmp}/sw"], sweep_base),
    ("sweep-base-missing", ["sweep", "{tmp}/nowhere.yaml", "--out", "{tmp}/sw"], None),
    ("sweep-max-parallel-zero", ["sweep", "{x}", "--out", "{tmp}/sw", "--max-parallel", "0"], sweep_base),
    ("sweep-gpus-per-run-nan", ["sweep", "{x}", "--out", "{tmp}/sw", "--gpus-per-run", "nan"], sweep_base),
    ("sweep-db-not-sqlite", ["sweep", "{x}", "--grid", "lr=0.1,0.05", "--out", "{tmp}/sw", "--db", "{x}"],
     sweep_base),
    ("sweep-out-a-run", ["sweep", "{x}", "--grid", "lr=0.1,0.05", "--out", "{run}"], sweep_base),
    ("sweep-no-grid", ["sweep", "{x}", "--out", "{tmp}/sw"], sweep_base),
    # -- nas ----------------------------------------------------------------------------------
    ("nas-epochs-zero", [*NAS, "--epochs", "0"], None),
    ("nas-n-zero", [*NAS, "--n", "0"], None),
    ("nas-eps-nan", [*NAS, "--eps", "0.1,nan"], None),
    ("nas-tickets-above-one", [*NAS, "--tickets", "2"], None),
    ("nas-width-nan", [*NAS, "--width", "nan"], None),
    ("nas-train-opt-lr-nan", [*NAS, "--train-opt", "lr=.nan"], None),
    ("nas-train-opt-bad-type", [*NAS, "--train-opt", "epochs=many"], None),
    ("nas-unknown-arch", [*NAS, "--archs", "nope"], None),
    ("nas-unknown-attack", [*NAS, "--attacks", "nope"], None),
    ("nas-out-a-run", ["nas", "--out", "{run}", "--data", "digits", "--archs", "conv2", "--ensemble", ""], None),
    ("nas-db-not-sqlite", [*NAS, "--db", "{x}"], not_sqlite),
    # -- reproduce and demo -------------------------------------------------------------------
    ("reproduce-unknown-study", ["reproduce", "nope", "--out", "{tmp}/rep"], None),
    ("reproduce-seeds-not-ints", ["reproduce", "tour", "--seeds", "1,x", "--out", "{tmp}/rep"], None),
    ("reproduce-max-parallel-zero", ["reproduce", "tour", "--max-parallel", "0", "--out", "{tmp}/rep"], None),
    ("reproduce-out-a-run", ["reproduce", "tour", "--out", "{run}"], None),
    ("reproduce-study-file-lr-nan", ["reproduce", "{x}", "--out", "{tmp}/rep"], study_yaml),
    ("reproduce-smoke-checks-every-value", ["reproduce", "{x}", "--smoke"], smoke_yaml_bad_last_value),
    ("reproduce-seeds-repeated", ["reproduce", "tour", "--seeds", "0,0", "--out", "{tmp}/rep"], None),
    ("reproduce-db-not-sqlite", ["reproduce", "tour", "--out", "{tmp}/rep", "--db", "{x}"], not_sqlite),
    ("demo-n-zero", ["demo", "--out", "{tmp}/demo", "--n", "0"], None),
    ("demo-epochs-zero", ["demo", "--out", "{tmp}/demo", "--epochs", "0"], None),
    ("demo-width-nan", ["demo", "--out", "{tmp}/demo", "--width", "nan"], None),
    ("demo-unknown-arch", ["demo", "--out", "{tmp}/demo", "--arch", "nope"], None),
    ("demo-out-a-run", ["demo", "--out", "{run}"], None),
    # -- import and card (flags given twice: the last one counts) --------------------------------
    ("import-unknown-data", [*IMP, "--data", "nope"], user_model),
    ("import-ref-without-factory", [*IMP, "--model", "{x}"], user_model),
    ("import-missing-file", [*IMP, "--model", "{tmp}/none.py:make"], user_model),
    ("import-no-such-factory", [*IMP, "--model", "{x}:nope"], user_model),
    ("import-factory-raises", [*IMP, "--model", "{x}:broken"], user_model),
    ("import-weights-mismatch", [*IMP, "--model", "{x}:wide"], user_model),
    ("import-wrong-output-shape", [*IMP, "--model", "{x}:three"], user_model),
    ("import-pickled-pt", [*IMP, "--weights", "{pt}"], user_model),
    ("import-eps-nan", [*IMP, "--eps", "nan"], user_model),
    ("import-bad-kwarg", [*IMP, "--kwargs", "classes"], user_model),
    ("import-out-over-user-config", [*IMP, "--out", "{o}"], user_model_over("config.yaml")),
    ("import-out-a-trained-run", [*IMP, "--out", "{run}"], user_model),
    ("import-db-not-sqlite", [*IMP, "--db", "{tmp}/notes.db"],
     lambda w, tmp, mp: {**not_sqlite(w, tmp, mp), **user_model(w, tmp, mp)}),  # x: the model file
    ("card-not-a-run", ["card", "{tmp}"], None),
    ("card-no-autoattack-evaluation", ["card", "{run}", "--out", "{tmp}/card.json"], None),
    ("card-reported-nan", ["card", "{run}", "--reported", "nan", "--out", "{tmp}/card.json"], None),
    ("card-out-a-directory", ["card", "{run}", "--partial", "--out", "{x}"], a_dir),
    # -- every output guarded: a user's file, another run's or the run's own files -----------------
    # (the card cases could write: the run has an AutoAttack evaluation of 8 images in {db})
    ("card-over-the-users-card-json", ["card", "{x}", "--partial", "--db", "{db}"], run_with_users_card),
    ("card-out-a-users-file", ["card", "{run}", "--partial", "--out", "{x}", "--db", "{db}"],
     users_file("notes.json")),
    ("card-out-another-runs-config", ["card", "{run}", "--partial", "--out", "{ticket}/config.yaml", "--db", "{db}"],
     None),
    ("card-out-the-runs-model", ["card", "{run}", "--partial", "--out", "{run}/model.safetensors", "--db", "{db}"],
     None),
    ("runs-plot-out-a-users-png", ["runs", "--plot", "{x}", "--out", "{tmp}/mine.png", "--db", "{db}"],
     lambda w, tmp, mp: {**users_file("mine.png", "\x89PNG not inborn's\n")(w, tmp, mp), **plottable(w, tmp, mp)}),
    ("runs-plot-out-a-runs-curves", ["runs", "--plot", "{x}", "--out", "{x}/curves.png", "--db", "{db}"],
     plottable),
    ("runs-plot-default-over-a-users-file", ["runs", "--plot", "{x}", "--db", "{db}"],
     lambda w, tmp, mp: {**plottable(w, tmp, mp), **users_png_in_cwd(w, tmp, mp)}),
    ("reproduce-out-a-users-report", ["reproduce", "tour", "--out", "{x}"], users_dir_with("report.md")),
    ("reproduce-out-another-study", ["reproduce", "tour", "--out", "{x}"], another_study),
    ("sweep-out-a-users-sweep-md", ["sweep", "{tmp}/base.yaml", "--grid", "lr=0.1,0.05", "--out", "{x}"],
     lambda w, tmp, mp: {**sweep_base(w, tmp, mp), **users_dir_with("sweep.md")(w, tmp, mp)}),
    ("nas-out-a-users-report", ["nas", "--out", "{x}", "--data", "digits", "--archs", "conv2", "--ensemble", ""],
     users_dir_with("report.md")),
    ("train-smoke-resume-an-existing-run", ["train", "--smoke", "--resume", "--out", "{run}"], None),
    ("eval-db-another-applications", [*E, "--db", "{x}"], foreign_sqlite),
    ("eval-db-garbage-wal", [*E, "--db", "{x}"], garbage_wal),
]


def _fill(argv, values):
    return [a.format(**values) for a in argv]


@pytest.mark.parametrize("case, argv, setup", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(world, tmp_path, monkeypatch, capsys, case, argv, setup):
    values = {"tmp": str(tmp_path), "run": str(world["run"]), "ticket": str(world["ticket"]),
              "family": str(world["family"]), "db": str(world["db"])}
    if setup is not None:
        values.update(setup(world, tmp_path, monkeypatch))
    argv = _fill(argv, values)
    if "--db" not in argv and argv[0] != "runs":
        argv += ["--db", str(tmp_path / "case.db")]
    before = _snapshot(tmp_path, world["root"])
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    monkeypatch.undo()
    assert code == 2, f"exit {code}: {err}"
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("inborn: error:"), err
    assert "Traceback" not in err
    after = _snapshot(tmp_path, world["root"])
    assert after[1] == before[1], f"directories changed: {sorted(after[1] ^ before[1])}"
    assert after[0] == before[0], f"files changed: {sorted(set(after[0].items()) ^ set(before[0].items()))}"


def test_the_table_covers_every_command_with_at_least_80_cases():
    from inborn.cli import build_parser

    per_command = Counter(case.split("-")[0] for case, _, _ in CASES)
    commands = set(build_parser()._subparsers._group_actions[0].choices) - {"data", "models", "attacks"}
    assert sum(per_command.values()) >= 80
    assert commands <= set(per_command), sorted(commands - set(per_command))


# -- the destroyed-file cases, one by one ------------------------------------------------------
def test_a_symlinked_lock_never_overwrites_its_target(tmp_path):
    from inborn.errors import InbornError
    from inborn.store import RunDir

    victim = tmp_path / "precious.txt"
    victim.write_text("the user's data\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock").symlink_to(victim)
    with pytest.raises(InbornError, match="symbolic link"), RunDir(run).lock():
        pass
    assert victim.read_text() == "the user's data\n"
    (run / ".lock").unlink()
    (run / ".lock").symlink_to(tmp_path / "dangling")  # a dangling link is not created through either
    with pytest.raises(InbornError, match="symbolic link"), RunDir(run).lock():
        pass
    assert not (tmp_path / "dangling").exists()


def test_family_out_over_its_member_ticket_leaves_the_ticket_byte_identical(world, capsys):
    before = _snapshot(world["ticket"])
    assert main(["family", "--from-tickets", str(world["ticket"]), "--out", str(world["ticket"])]) == 2
    assert "already holds a search run" in capsys.readouterr().err
    assert _snapshot(world["ticket"]) == before


def test_train_out_over_a_users_config_leaves_it_byte_identical(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    for name in ("config.yaml", "summary.json", "metrics.jsonl"):
        (mine / name).write_text(f"my own {name}\n")
    before = _snapshot(mine)
    assert main(["train", *TINY, "--out", str(mine)]) == 2
    assert "inborn did not write" in capsys.readouterr().err
    assert _snapshot(mine) == before


def test_export_into_the_ticket_leaves_it_byte_identical_and_elsewhere_works(world, tmp_path, capsys):
    before = _snapshot(world["ticket"])
    assert main(["export", str(world["ticket"]), "--out", str(world["ticket"] / "model.safetensors")]) == 2
    assert "inside the run directory" in capsys.readouterr().err
    assert _snapshot(world["ticket"]) == before
    out = tmp_path / "plain.safetensors"
    assert main(["export", str(world["ticket"]), "--out", str(out)]) == 0
    assert main(["export", str(world["ticket"]), "--out", str(out)]) == 0  # its own export may be replaced


def test_an_inborn_run_of_the_same_kind_may_be_written_again(tmp_path):
    from inborn.errors import InbornError
    from inborn.store import RunDir
    from inborn.store.guard import check_output

    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.write_config({"data": "digits"}, {"arch": "conv2"}, kind="train")
    check_output(run.path, "train")  # resume / re-run it
    with pytest.raises(InbornError, match="already holds a train run"):
        check_output(run.path, "family")
    check_output(tmp_path / "new" / "deeper", "train")  # a new directory
    (tmp_path / "empty").mkdir()
    check_output(tmp_path / "empty", "family")


# -- run status ------------------------------------------------------------------------------
def test_runs_shows_a_sigkilled_train_as_interrupted(tmp_path):
    out, db = tmp_path / "run", tmp_path / "db.sqlite"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "inborn", "train", "--data", "digits", "--arch", "conv2",
                             "--width", "0.25", "--epochs", "200", "--quiet", "--out", str(out), "--db", str(db)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 600  # generous: only a bound on a broken test, never a timing claim
        while _row_status(db, out) != "running":
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _row_status(db, out) == "running"  # nobody could say otherwise: SIGKILL is not caught
    result = subprocess.run([sys.executable, "-m", "inborn", "runs", "--db", str(db), "--csv"], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert ",interrupted," in result.stdout and ",running," not in result.stdout
    assert _row_status(db, out) == "interrupted"


def _row_status(db: Path, out: Path) -> str | None:
    if not db.exists():
        return None
    try:
        with sqlite3.connect(db, timeout=30) as c:
            row = c.execute("SELECT status FROM runs WHERE path = ?", (str(out.resolve()),)).fetchone()
    except sqlite3.OperationalError:  # the table is being created
        return None
    return row[0] if row else None


def test_runs_leaves_a_run_whose_lock_is_held_as_running(tmp_path):
    from inborn.store import ResultsDB, RunDir
    from inborn.store.status import repair_stale_runs

    db = ResultsDB(tmp_path / "db.sqlite")
    run = RunDir(tmp_path / "run")
    with run.lock():
        db.upsert_run(run.path, kind="train", status="running", config={"data": "digits"})
        assert repair_stale_runs(db) == []
        assert db.runs()[0]["status"] == "running"
    assert repair_stale_runs(db) == [str(run.path.resolve())]
    assert db.runs()[0]["status"] == "interrupted"


def test_a_nan_loss_stops_the_run_keeps_the_last_epoch_and_marks_it_failed(tmp_path, monkeypatch, capsys):
    import torch

    from inborn.train import loop

    real_step = loop._pgd_step
    calls = {"n": 0}

    def step(t, x, y, eps, share):
        loss, logits = real_step(t, x, y, eps, share)
        calls["n"] += 1
        if calls["n"] > per_epoch:  # a NaN loss in the second epoch
            loss = torch.full_like(loss, float("nan"))
        return loss, logits

    from inborn.data import load_data

    per_epoch = -(-len(load_data("digits", seed=0, val_fraction=0.1).train) // 32)
    monkeypatch.setattr(loop, "_pgd_step", step)
    out, db = tmp_path / "run", tmp_path / "db.sqlite"
    code = main(["train", "--data", "digits", "--arch", "conv2", "--width", "0.25", "--epochs", "2", "--quiet",
                 "--batch-size", "32", "--out", str(out), "--db", str(db)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "loss became nan" in err, err
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [0]  # the last good epoch is kept
    assert (out / "checkpoint.safetensors").exists() and not (out / "summary.json").exists()
    assert _row_status(db, out) == "failed"


# -- OS errors -------------------------------------------------------------------------------
def test_a_full_disk_is_one_line_and_leaves_no_partial_file(world, tmp_path, monkeypatch, capsys):
    import safetensors.torch

    def full(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filename)

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    out = tmp_path / "out" / "plain.safetensors"
    assert main(["export", str(world["ticket"]), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "No space left" in err and "Traceback" not in err, err
    assert list(tmp_path.iterdir()) == []  # the temporary file and the directory made for it are gone


def test_eval_of_a_read_only_run_says_what_to_do(world, tmp_path, monkeypatch, capsys):
    values = read_only_run(world, tmp_path, monkeypatch)
    assert main(["eval", values["x"], "--quiet", "--n", "8", "--steps", "1", "--db", str(tmp_path / "e.db")]) == 2
    err = capsys.readouterr().err
    assert "cannot be written" in err and "copy the run" in err, err


def test_temp_names_stay_within_the_file_name_limit(tmp_path):
    from inborn.io import atomic_write_text

    name = "x" * 250 + ".json"  # 255 bytes: the longest a name may be
    atomic_write_text(tmp_path / name, "{}\n")
    assert (tmp_path / name).read_text() == "{}\n"
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_inborn_writes_strict_json_only(tmp_path):
    from inborn.io import atomic_write_json

    atomic_write_json(tmp_path / "x.json", {"a": float("nan"), "b": [1.0, float("inf")], "c": 0.5})
    text = (tmp_path / "x.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict token {c}")) == {
        "a": None, "b": [1.0, None], "c": 0.5}


def test_ratios_may_be_fractions_and_messages_never_suggest_a_refused_value():
    from inborn.cli.common import parse_ratio_list
    from inborn.errors import InbornError
    from inborn.values import parse_ratio

    assert parse_ratio("3/7") == pytest.approx(3 / 7)
    assert parse_ratio_list("0.05,1/4,1") == [0.05, 0.25, 1.0]
    for bad in ("0", "1.5", "nan", "-inf", "1/0", "abc"):
        with pytest.raises(InbornError) as e:
            parse_ratio(bad)
        assert "(0, 1]" in str(e.value) or "number" in str(e.value)
