"""Ticket families, the Random RST Switch and its evaluation protocols."""

from __future__ import annotations

import pytest
import torch

import inborn
from inborn.analysis.r2s import evaluate_r2s
from inborn.analysis.transfer import transfer_matrix
from inborn.cli import main
from inborn.data import load_data
from inborn.defenses import ExpectedTickets, RandomSwitch, SingleTicket
from inborn.errors import InbornError
from inborn.runs import build_family, load_family

BASE = ["--data", "digits", "--arch", "fc", "--width", "0.25", "--eps", "0.1", "--epochs", "1", "--adv-steps", "2",
        "--quiet"]


@pytest.fixture(scope="module")
def fam(tmp_path_factory):
    root = tmp_path_factory.mktemp("family")
    db = str(root / "db")
    assert main(["family", *BASE, "--keep", "0.1,0.3,0.6", "--out", str(root / "fam"), "--db", db]) == 0
    x, y = load_data("digits").test.head(64).tensors()
    return root, load_family(root / "fam"), x, y, db


def test_family_shares_one_weight_tensor_and_orders_by_keep(fam):
    root, family, _, _, _ = fam
    assert family.keep_ratios == [0.1, 0.3, 0.6]
    assert all(p.data_ptr() for p in family.model.parameters())
    stored = (root / "fam/family.safetensors").stat().st_size
    weights = sum(p.numel() * 4 for n, p in family.model.named_parameters() if n.endswith("weight"))
    assert stored < weights / 2  # three tickets cost far less than one copy of the weights


def test_switch_switches_per_batch_and_per_sample(fam):
    _, family, x, _, _ = fam
    singles = [SingleTicket(family, i)(x).detach() for i in range(len(family))]
    assert not torch.allclose(singles[0], singles[2])
    batch = RandomSwitch(family, "batch", generator=torch.Generator().manual_seed(0)).eval()
    seen = set()
    for _ in range(30):
        out = batch(x)
        i = int(batch.last_choice[0])
        assert (batch.last_choice == i).all()
        torch.testing.assert_close(out, singles[i])
        seen.add(i)
    assert seen == {0, 1, 2}
    sample = RandomSwitch(family, "sample", generator=torch.Generator().manual_seed(1)).eval()
    out = sample(x)
    choice = sample.last_choice
    assert len(choice.unique()) == 3
    for row in range(len(x)):
        torch.testing.assert_close(out[row], singles[int(choice[row])][row])


def test_one_candidate_equals_that_ticket_exactly(fam, tmp_path):
    root, _, x, _, _ = fam
    member = root / "fam/tickets/keep-0.3"
    build_family([member], tmp_path / "one")
    switch = inborn.load(tmp_path / "one")
    assert isinstance(switch, RandomSwitch)
    assert torch.equal(switch(x), inborn.load(member)(x))
    expected = ExpectedTickets(switch.family)
    torch.testing.assert_close(expected(x), torch.log_softmax(inborn.load(member)(x), 1))


def test_expectation_attack_is_at_least_as_strong_as_the_paper_protocol(fam):
    _, family, x, y, _ = fam
    res = evaluate_r2s(family, x, y, eps=0.1, protocols=["paper", "expectation", "eot"], repeats=2, steps=10,
                       eot_samples=3, seed=0)
    p = res["protocols"]
    assert p["expectation"]["mean"] <= p["paper"]["mean"]
    assert res["cite"]["mean"] == min(p["expectation"]["mean"], p["eot"]["mean"])
    assert len(p["paper"]["runs"]) == 2


def test_transfer_matrix_diagonal_is_white_box(fam):
    _, family, x, y, _ = fam
    res = transfer_matrix(family, x, y, eps=0.1, steps=5)
    assert len(res["matrix"]) == 3 and all(len(r) == 3 for r in res["matrix"])
    for i in range(3):
        white_box = min(res["matrix"][i][j] for j in range(3))
        assert res["matrix"][i][i] == white_box or res["matrix"][i][i] <= res["natural_acc"][i]


def test_probabilities_must_sum_to_one(fam):
    _, family, _, _, _ = fam
    with pytest.raises(InbornError, match="sum to 1"):
        RandomSwitch(family, probs=[0.5, 0.4, 0.3])
    with pytest.raises(InbornError, match="3 tickets"):
        RandomSwitch(family, probs=[0.5, 0.5])


def test_tickets_of_other_weights_or_architectures_cannot_share_a_family(fam, tmp_path, capsys):
    root, _, _, _, db = fam
    other_seed = tmp_path / "seed1"
    assert main(["search", *BASE, "--keep", "0.2", "--weight-seed", "1", "--out", str(other_seed), "--db", db]) == 0
    out = tmp_path / "mixed"
    args = ["family", "--from-tickets", f"{root / 'fam/tickets/keep-0.1'},{other_seed}", "--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "weight_seed" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    other_arch = tmp_path / "conv"
    assert main(["search", *BASE, "--arch", "conv2", "--keep", "0.2", "--out", str(other_arch), "--db", db]) == 0
    assert main(["family", "--from-tickets", f"{root / 'fam/tickets/keep-0.1'},{other_arch}", "--out", str(out)]) == 2
    assert "arch" in capsys.readouterr().err and not out.exists()


def test_r2s_command_writes_its_report(fam, capsys):
    root, _, _, _, _ = fam
    assert main(["r2s", str(root / "fam"), "--protocol", "paper,expectation", "--repeats", "2", "--steps", "3",
                 "--n", "32", "--quiet"]) == 0
    report = (root / "fam/r2s.md").read_text()
    assert "Robust accuracy to cite" in report and "expectation" in report
    assert "(r2s.png)" in report and (root / "fam/r2s.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["transfer", str(root / "fam"), "--steps", "3", "--n", "32", "--quiet"]) == 0
    assert (root / "fam/transfer.png").exists()
    # Both land in the results database, under the family's path, beside its member tickets' runs.
    from inborn.store import ResultsDB

    rows = ResultsDB().results(run_path=str((root / "fam").resolve()))
    attacks = {r["attack"] for r in rows}
    assert {"r2s:paper", "r2s:expectation"} <= attacks
    assert {f"transfer:{a:g}->{b:g}" for a in (0.1, 0.3, 0.6) for b in (0.1, 0.3, 0.6)} <= attacks
    paper = next(r for r in rows if r["attack"] == "r2s:paper")
    assert paper["n"] == 32 and paper["repeats"] == 2 and paper["randomised"] == 1


def test_a_family_is_listed_and_its_database_found_from_anywhere(fam, tmp_path, monkeypatch, capsys):
    """The family's run is in the database its tickets recorded, and `inborn runs --run PATH/`
    finds it from another directory with no --db and no $INBORN_DB."""
    root, _, _, _, db = fam
    monkeypatch.delenv("INBORN_DB")
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["runs", "--run", f"{root / 'fam'}/", "--csv"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 2 and ",family," in listed[1]
    assert main(["runs", "--run", str(root / "fam/tickets/keep-0.1"), "--results", "--csv"]) == 0
    import csv

    results = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert results  # found through the path as typed
    for r in results:  # float32 figures rounded (no 0.9700000286102295); times in ISO 8601
        assert all(len(r[k].partition(".")[2]) <= 6 for k in ("clean_acc", "robust_acc", "hrs"))
        assert r["created"][4] == "-" and "T" in r["created"]


def test_smoke_projects_the_time_and_writes_nothing(fam, capsys, tmp_path, monkeypatch):
    """`--smoke` on r2s, transfer and eval: one line with the projected time; no file changed and
    no database row added."""
    import hashlib

    from inborn.store import ResultsDB

    root, _, _, _, _ = fam
    monkeypatch.setenv("INBORN_DB", str(tmp_path / "smoke.db"))

    def snapshot():
        return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}

    before = snapshot()
    capsys.readouterr()
    for argv in (["r2s", str(root / "fam"), "--repeats", "3", "--steps", "2", "--n", "64", "--smoke"],
                 ["transfer", str(root / "fam"), "--steps", "2", "--n", "64", "--smoke"],
                 ["eval", str(root / "fam/tickets/keep-0.3"), "--attack", "pgd,fgsm", "--steps", "2", "--n", "64",
                  "--smoke"]):
        assert main(argv) == 0
        said = capsys.readouterr().out.strip().splitlines()
        assert len(said) == 1 and said[0].startswith("smoke: ") and "would take about" in said[0], said
    assert snapshot() == before
    assert not (tmp_path / "smoke.db").exists() or not ResultsDB().results()
