"""Search, export and fine-tune from the command line, and their one-line errors."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn
from safetensors.torch import load_file

import inborn
from inborn.cli import main
from inborn.masks import masked_layers

FAST = ["--epochs", "1", "--adv-steps", "2", "--quiet"]


@pytest.fixture(scope="module")
def ticket(tmp_path_factory):
    root = tmp_path_factory.mktemp("tickets")
    out, db = root / "ticket", root / "db.sqlite"
    code = main(["search", "--data", "digits", "--arch", "fc", "--width", "0.25", "--keep", "0.2",
                 "--eps", "0.1", "--out", str(out), "--db", str(db), *FAST])
    assert code == 0
    return out, db


class PlainFC(nn.Module):
    """The `fc` architecture written in plain PyTorch, with the same parameter names."""

    def __init__(self):
        super().__init__()
        self.normalize = nn.Module()
        self.normalize.register_buffer("mean", torch.zeros(1, 1, 1, 1))
        self.normalize.register_buffer("std", torch.ones(1, 1, 1, 1))
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(256, 75), nn.ReLU(), nn.Linear(75, 25), nn.ReLU(),
                                  nn.Linear(25, 10))

    def forward(self, x):
        return self.body((x - self.normalize.mean) / self.normalize.std)


def test_export_loads_into_a_plain_pytorch_module(ticket, tmp_path, capsys):
    out, _ = ticket
    assert main(["export", str(out), "--out", str(tmp_path / "plain.safetensors"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    tensors = load_file(tmp_path / "plain.safetensors")
    plain = PlainFC().eval()
    plain.load_state_dict(tensors)  # strict: every name and shape matches
    model = inborn.load(out)
    x = torch.rand(6, 1, 16, 16)
    torch.testing.assert_close(plain(x), model(x), rtol=1e-5, atol=1e-5)
    nonzero = sum(int((t != 0).sum()) for k, t in tensors.items() if k.startswith("body"))
    assert report["kept"] == sum(int(m.current_mask().sum()) for m in masked_layers(model))
    assert report["nonzero"] >= nonzero  # a kept weight can never be exactly zero under signed-constant init
    assert report["kept"] == nonzero
    assert report["compression"] > 1


@pytest.mark.parametrize("weights, mask", [("inherit", "ticket"), ("reinit", "ticket"), ("reinit", "random"),
                                           ("dense", "ticket")])
def test_finetune_keeps_the_mask_and_trains_weights(ticket, tmp_path, weights, mask):
    out, db = ticket
    ft = tmp_path / f"ft-{weights}-{mask}"
    assert main(["finetune", str(out), "--weights", weights, "--mask", mask, "--out", str(ft), "--db", str(db),
                 *FAST]) == 0
    tuned, source = inborn.load(ft), inborn.load(out)
    if weights == "dense":
        assert not masked_layers(tuned)
        return
    t_masks = [m.current_mask() for m in masked_layers(tuned)]
    s_masks = [m.current_mask() for m in masked_layers(source)]
    same = all(torch.equal(a, b) for a, b in zip(t_masks, s_masks, strict=True))
    assert same == (mask == "ticket")
    assert [int(a.sum()) for a in t_masks] == [int(b.sum()) for b in s_masks]  # same size either way
    moved = [not torch.equal(a.weight, b.weight) for a, b in zip(masked_layers(tuned), masked_layers(source),
                                                                  strict=True)]
    assert all(moved)


def _one_line_error(args, capsys, expect):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and expect in err, err


@pytest.mark.parametrize("extra, expect", [
    (["--keep", "0"], "keep ratio must be in (0, 1]"),
    (["--keep", "1.01"], "keep ratio must be in (0, 1]"),
    (["--keep", "0.1", "--pattern", "zigzag"], "unknown mask pattern"),
    (["--keep", "0.5", "--pattern", "2:4", "--arch", "conv2"], "divisible by 4"),
    ([], "--keep is required"),
])
def test_search_bad_input(tmp_path, capsys, extra, expect):
    out, db = tmp_path / "t", tmp_path / "db"
    _one_line_error(["search", "--data", "digits", "--arch", "fc", "--out", str(out), "--db", str(db), *extra],
                    capsys, expect)
    assert not out.exists() and not db.exists()


def test_search_from_a_run_of_another_architecture(ticket, tmp_path, capsys):
    _, db = ticket
    trained = tmp_path / "trained"
    assert main(["train", "--data", "digits", "--arch", "conv2", "--width", "0.25", "--out", str(trained),
                 "--db", str(db), *FAST]) == 0
    out = tmp_path / "rtt"
    _one_line_error(["search", "--data", "digits", "--arch", "fc", "--width", "0.25", "--keep", "0.1",
                     "--from-run", str(trained), "--out", str(out), "--db", str(db)],
                    capsys, "use the same architecture")
    assert not out.exists()
    # The same architecture works: a robust trained ticket on trained weights, which it stores.
    assert main(["search", "--data", "digits", "--arch", "conv2", "--width", "0.25", "--keep", "0.3",
                 "--from-run", str(trained), "--out", str(out), "--db", str(db), *FAST]) == 0
    rtt, dense = inborn.load(out), inborn.load(trained)
    conv = masked_layers(rtt)[0]
    assert torch.equal(conv.weight, dense.body[0].weight)


def test_eval_works_on_a_ticket_unchanged(ticket, capsys):
    out, db = ticket
    assert main(["eval", str(out), "--attack", "pgd", "--eps", "0.1", "--steps", "3", "--n", "32", "--json",
                 "--db", str(db), "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 32
