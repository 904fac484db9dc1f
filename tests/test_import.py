"""`inborn import`: a model defined in a file the test writes becomes a run every command works on."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

import inborn
from inborn.cli import main
from inborn.masks import masked_layers
from inborn.store import RunDir

MODEL_PY = '''
import torch.nn as nn


class TinyNet(nn.Module):
    def __init__(self, hidden=16, classes=10):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten())
        self.head = nn.Sequential(nn.Linear(4 * 16 * 16, hidden), nn.ReLU(), nn.Linear(hidden, classes))

    def forward(self, x):
        return self.head(self.features(x))


def make(hidden=16, classes=10):
    return TinyNet(hidden, classes)


def broken(**kwargs):
    raise ValueError("this factory always fails")
'''
FAST = ["--epochs", "1", "--adv-steps", "2", "--quiet"]


def _user_model(tmp_path, hidden=16):
    """The user's module, imported the way the user would, with its weights written as .pt and .safetensors."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("user_tinynet", tmp_path / "mynet.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    return module.make(hidden).eval()


@pytest.fixture
def user_files(tmp_path):
    (tmp_path / "mynet.py").write_text(MODEL_PY)
    model = _user_model(tmp_path)
    torch.save({"state_dict": model.state_dict()}, tmp_path / "w.pt")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "w.safetensors"))
    return tmp_path, model


def _import(tmp, out, *extra, weights="w.pt", model="mynet.py:make"):
    return main(["import", "--model", str(tmp / model.split(":")[0]) + ":" + model.split(":")[1],
                 "--kwargs", "hidden=16", "--weights", str(tmp / weights), "--data", "digits",
                 "--out", str(out), "--db", str(tmp / "db.sqlite"), *extra])


def test_an_import_without_eps_records_the_data_sets(user_files):
    tmp, _ = user_files
    assert _import(tmp, tmp / "no-eps", "--mean", "0.5", "--std", "0.25") == 0
    assert RunDir(tmp / "no-eps").read_config()["config"]["eps"] == pytest.approx(0.1)  # digits' default ε


def test_import_eval_robust_trained_ticket_and_card(user_files, capsys):
    tmp, user = user_files
    run = tmp / "imported"
    assert _import(tmp, run, "--mean", "0.5", "--std", "0.25", "--eps", "0.1") == 0
    doc = RunDir(run).read_config()
    assert doc["kind"] == "imported" and doc["model"]["source"]["file"] == str((tmp / "mynet.py").resolve())
    assert len(doc["model"]["source"]["sha256"]) == 64 and doc["model"]["kwargs"] == {"hidden": 16}
    # The run's model is the user's, with the normalisation inside: pixels in [0,1] in.
    loaded = inborn.load(run)
    x = torch.rand(5, 1, 16, 16)
    torch.testing.assert_close(loaded(x), user((x - 0.5) / 0.25))
    # The import says how accurate the model is (a wrong --mean/--std shows at once): the user's own figure.
    from inborn.data import load_data

    xt, yt = load_data("digits").test.tensors()
    expected = (user((xt - 0.5) / 0.25).argmax(1) == yt).float().mean().item()
    assert f"clean accuracy on the {len(yt):,} test images: {expected:.4f}" in capsys.readouterr().out

    db = str(tmp / "db.sqlite")
    assert main(["eval", str(run), "--attack", "pgd", "--steps", "2", "--n", "32", "--json", "--db", db,
                 "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 32 and result["results"][0]["eps"] == pytest.approx(0.1)

    # A robust trained ticket on the imported network: its data, model and ε come from the import.
    rtt = tmp / "rtt"
    assert main(["search", "--from-run", str(run), "--keep", "0.5", "--out", str(rtt), "--db", db, *FAST]) == 0
    ticket = inborn.load(rtt)
    conv = masked_layers(ticket)[0]
    assert torch.equal(conv.weight, user.features[0].weight)  # the imported weights, frozen under the mask
    assert 0.45 < float(conv.current_mask().float().mean()) < 0.55
    # It says it lies over trained weights, nowhere an init or a weight seed that describe nothing kept.
    said = capsys.readouterr().out
    assert f"over the trained ({run}) weights" in said and "weight seed" not in said
    assert RunDir(rtt).read_summary()["ticket"]["weights"] == f"trained ({run})"
    assert main(["export", str(rtt), "--out", str(tmp / "rtt.safetensors")]) == 0
    assert "over trained weights that must ship with it" in capsys.readouterr().out

    # A card from an AutoAttack evaluation of the whole test split.
    assert main(["eval", str(run), "--attack", "autoattack", "--db", db, "--quiet"]) == 0
    card = tmp / "card.json"
    assert main(["card", str(run), "--out", str(card), "--db", db]) == 0
    entry = json.loads(card.read_text())
    c = entry["inborn"]
    assert entry["architecture"] == "imported:make" and entry["dataset"] == "digits" and c["threat_model"] == "Linf"
    assert c["eps"] == pytest.approx(0.1) and c["partial"] is False and entry["number_forward_passes"] == 1
    assert 0 <= c["autoattack_acc"] <= c["clean_acc"] <= 1 and c["n"] == c["evaluation"]["test_split_size"] == 359
    # The robust trained ticket's card gives its keep ratio and sparsity, and says its weights are trained.
    assert main(["eval", str(rtt), "--attack", "autoattack", "--db", db, "--quiet"]) == 0
    assert main(["card", str(rtt), "--out", str(tmp / "rtt-card.json"), "--db", db]) == 0
    t = json.loads((tmp / "rtt-card.json").read_text())
    assert t["inborn"]["keep_ratio"] == 0.5 and 0.45 < t["inborn"]["sparsity"] < 0.55
    assert "over trained weights" in t["footnote"]


def test_a_changed_model_file_is_refused(user_files, capsys):
    tmp, _ = user_files
    run = tmp / "imported"
    assert _import(tmp, run, weights="w.safetensors") == 0
    (tmp / "mynet.py").write_text(MODEL_PY + "\n# edited\n")
    capsys.readouterr()
    assert main(["eval", str(run), "--n", "8", "--db", str(tmp / "db.sqlite"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "has changed since it was imported" in err


@pytest.mark.parametrize("change, expect", [
    ({"kwargs": "hidden=32"}, "do not fit the model: other shape (3): head.0.weight"),
    ({"model": "mynet.py:broken"}, "model factory 'broken' raised ValueError: this factory always fails"),
    ({"model": "mynet.py:missing"}, "has no callable 'missing'"),
    ({"model": "nothere.py:make"}, "does not exist"),
    ({"model": "mynet.py"}, "--model must be FILE.py:FACTORY"),
    ({"kwargs": "classes=3"}, "is (2, 3), not (2, 10) logits"),
    ({"weights": "code.pt"}, "weights_only=True"),
    ({"weights": "w.txt"}, "must be .safetensors, .pt or .pth"),
    ({"extra": ["--mean", "0.5"]}, "--mean and --std go together"),
    ({"extra": ["--mean", "0.5", "0.5", "--std", "1", "1"]}, "--mean needs 1 values"),
])
def test_bad_imports_are_one_line_and_write_nothing(user_files, capsys, change, expect):
    tmp, _ = user_files
    torch.save({"model": _user_model(tmp).state_dict(), "opt": object}, tmp / "code.pt")  # a pickled class
    (tmp / "w.txt").write_text("no")
    if change.get("kwargs") == "classes=3":  # weights of a 3-class head, so only the shape check fails
        save_file({k: v.contiguous() for k, v in _load_module(tmp).make(16, 3).state_dict().items()},
                  str(tmp / "w3.safetensors"))
        change = {**change, "weights": "w3.safetensors"}
    capsys.readouterr()
    out = tmp / "bad"
    args = ["import", "--model", str(tmp / change.get("model", "mynet.py:make")), "--kwargs",
            *change.get("kwargs", "hidden=16").split(), "--weights", str(tmp / change.get("weights", "w.pt")),
            "--data", "digits", "--out", str(out), "--db", str(tmp / "db.sqlite"), *change.get("extra", [])]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and expect in err, err
    assert not out.exists() and not (tmp / "db.sqlite").exists()


def _load_module(tmp):
    import importlib.util

    spec = importlib.util.spec_from_file_location("user_tinynet2", tmp / "mynet.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
