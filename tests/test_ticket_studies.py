"""Ticket studies read their runs right: seeds repeat every cell and reports give mean ± std, the
best ticket is chosen on validation (never test), and size-matched baselines have the ticket's
number of non-zero weights.

The cells run through a stand-in for the sweep that writes finished run directories with
figures chosen here, so the reading of the runs is tested exactly and fast."""

from __future__ import annotations

import csv
import statistics

import pytest

from inborn.errors import InbornError
from inborn.store import RunDir
from inborn.studies.presets import resolve_preset
from inborn.studies.seeds import beyond_spread, ordering_sentence
from inborn.studies.sizes import run_nonzero, size_matched, weight_count
from inborn.studies.tickets import run_ticket_study

SPEC = {"arch": "conv2", "num_classes": 10, "in_channels": 1, "image_size": 16, "width": 0.5, "affine_bn": False,
        "mean": [0.19], "std": [0.33], "kwargs": {}}


def preset(**extra):
    base = {"data": "digits", "arch": "conv2", "width": 0.5, "eps": 0.1, "epochs": 1, "adv": "pgd",
            "ticket": {"keep_ratio": 0.3, "pattern": "element", "init": "signed_constant"}}
    return {"study": "t", "scale": "quick", "vary": "ticket.init", "base": base, "baselines": ["dense-at"],
            "values": ["signed_constant", "kaiming_normal"], **extra}


class FakeSweep:
    """Runs nothing: writes each cell's run directory with test and validation figures from
    `figures(cell) -> (test robust, val robust)`, and records the cells it was given."""

    def __init__(self, figures, pgd_gap=None):
        # pgd_gap: summaries as written now, the worst case over PGD-20 and CW-20, a ticket's
        # cross-entropy PGD-20 that much above it (a dense network's equal to it)
        self.figures, self.cells, self.pgd_gap = figures, [], pgd_gap

    def __call__(self, cells):
        for cell in cells:
            self.cells.append(cell)
            config = cell.config
            spec = {**SPEC, "width": config.get("width", SPEC["width"])}
            ticket = config.get("ticket")
            if cell.kind == "finetune":
                ticket = RunDir(config["finetune"]["ticket"]).read_config()["model"]["supermask"]
            if ticket:
                spec["supermask"] = ticket
            run = RunDir(cell.out)
            cell.out.mkdir(parents=True, exist_ok=True)
            run.write_config(config, spec, cell.kind)
            robust, val = self.figures(cell)
            run.write_metrics([{"epoch": 0, "val_robust_acc": val}])
            summary = {"best_epoch": 0, "test": {"clean_acc": 0.9, "robust_acc": robust}}
            if self.pgd_gap is not None:
                pgd = robust + (self.pgd_gap if ticket else 0.0)
                summary["test"].update(attack="pgd-20+cw-20", per_attack={"pgd-20": pgd, "cw-20": robust})
            if ticket:
                total = weight_count(spec)
                summary["ticket"] = {"kept": round(ticket["keep_ratio"] * total), "maskable": total}
            run.write_summary(summary)


def robust_by(cell):
    """Test robust accuracy: signed constant 0.6, Kaiming normal 0.5, dense PGD-AT 0.8, natural 0.3,
    plus 0.01 per seed."""
    seed = cell.config.get("seed", 0)
    init = (cell.config.get("ticket") or {}).get("init")
    base = {"signed_constant": 0.6, "kaiming_normal": 0.5}.get(init, 0.3 if cell.config.get("adv") == "none" else 0.8)
    return base + 0.01 * seed, base + 0.01 * seed


def test_a_preset_with_seeds_runs_each_cell_per_seed_and_aggregates_mean_and_std(tmp_path):
    sweep = FakeSweep(robust_by)
    result = run_ticket_study(preset(seeds=[0, 1, 2]), tmp_path, run=sweep)
    searches = [c for c in sweep.cells if c.kind == "search"]
    assert sorted((c.config["ticket"]["init"], c.config["seed"], c.config["ticket"]["weight_seed"]) for c in searches) \
        == sorted((i, s, s) for i in ("signed_constant", "kaiming_normal") for s in (0, 1, 2))
    # and one dense PGD-AT and one natural run per seed
    assert len({c.out for c in sweep.cells}) == len(sweep.cells) == 6 + 3 + 3
    rows = {r["ticket.init"]: r for r in csv.DictReader((tmp_path / "table.csv").read_text().splitlines())}
    for init, base in (("signed_constant", 0.6), ("kaiming_normal", 0.5)):
        values = [base, base + 0.01, base + 0.02]
        assert float(rows[init]["RST robust"]) == pytest.approx(statistics.mean(values))
        assert float(rows[init]["RST robust std"]) == pytest.approx(statistics.stdev(values))
        assert rows[init]["seeds"] == "3"
    report = result["report"]
    assert "0.610 ± 0.010" in report and "0.510 ± 0.010" in report
    # 0.61 ± 0.01 against 0.51 ± 0.01: the paper's ordering holds beyond the spread, and says so.
    assert "RST ticket.init=signed_constant > RST ticket.init=kaiming_normal" in report
    assert "beyond the spread" in report


def test_without_seeds_a_study_keeps_its_run_directories_and_claims_no_ordering(tmp_path):
    sweep = FakeSweep(robust_by)
    result = run_ticket_study(preset(), tmp_path, run=sweep)
    assert sorted(c.out.name for c in sweep.cells) == ["dense-at", "natural", "rst-kaiming_normal",
                                                            "rst-signed_constant"]
    assert "not established" in result["report"] and "±" not in result["main_table"]


def test_every_table_has_the_natural_floor_and_the_ratio_above_it_and_pgd_beside_the_worst_case(tmp_path):
    sweep = FakeSweep(robust_by, pgd_gap=0.05)
    result = run_ticket_study(preset(seeds=[0, 1], paper={"signed_constant": 50.0}), tmp_path, run=sweep)
    naturals = [c for c in sweep.cells if c.out.name.startswith("natural")]
    dense = next(c for c in sweep.cells if c.out.name == "dense-at-s0")
    assert len(naturals) == 2  # natural training runs though the preset lists dense-at only
    for cell in naturals:  # the same network, epochs and ε as dense PGD-AT; natural training
        assert cell.kind == "train" and cell.config["adv"] == "none" and "ticket" not in cell.config
        assert {k: v for k, v in cell.config.items() if k != "adv"} == \
            {k: v for k, v in dense.config.items() if k != "adv"} | {"seed": cell.config["seed"]}
    sel = result.selection
    # ticket 0.605, dense PGD-AT 0.805, natural 0.305: (0.605 − 0.305) / (0.805 − 0.305) = 0.6
    assert (sel.robust, sel.dense, sel.natural) == pytest.approx((0.605, 0.805, 0.305))
    assert sel.ratio == pytest.approx(0.605 / 0.805) and sel.gain == pytest.approx(0.6)
    report = result.report
    assert "(0.605 − 0.305) / (0.805 − 0.305) = 0.60 of what PGD-AT adds" in report
    assert "| natural training |" in report and "worst of PGD-20, CW-20" in report
    # The ticket's cross-entropy PGD-20 sits beside its worst case; the table reads the worst case.
    row = next(r for r in result.main_table.splitlines() if r.startswith("| signed_constant | RST |"))
    assert "0.655 ± 0.007" in row and "0.605 ± 0.007" in row
    # The paper reports cross-entropy PGD-20: compared like for like.
    csv_row = next(r for r in result.rows if r["ticket.init"] == "signed_constant")
    assert csv_row["ours - paper"] == pytest.approx(65.5 - 50.0)
    assert csv_row["RST pgd"] == pytest.approx(0.655) and csv_row["RST robust"] == pytest.approx(0.605)
    baselines = list(csv.DictReader((tmp_path / "baselines.csv").read_text().splitlines()))
    assert [b["model"] for b in baselines] == ["natural training", "dense PGD-AT"]


def test_the_best_ticket_is_chosen_on_validation_not_test(tmp_path):
    def figures(cell):  # Kaiming normal is best on test, signed constant on validation
        init = (cell.config.get("ticket") or {}).get("init")
        return {"signed_constant": (0.60, 0.70), "kaiming_normal": (0.66, 0.50)}.get(init, (0.80, 0.80))

    result = run_ticket_study(preset(), tmp_path, run=FakeSweep(figures))
    assert result["selection"]["value"] == "signed_constant"
    report = result["report"]
    assert "0.600 / 0.800 = 0.75" in report  # the val-chosen ticket's test figure
    line = next(x for x in report.splitlines() if "0.660 / 0.800" in x)
    assert line.startswith("Selected on test (optimistic): ticket.init = kaiming_normal")


@pytest.mark.parametrize(("arch", "width", "keep"), [("conv4", 0.5, 0.05), ("conv4", 0.5, 0.3), ("fc", 1.0, 0.1),
                                                      ("resnet18", 0.25, 0.1)])
def test_the_size_matched_network_has_the_tickets_non_zero_weights(arch, width, keep):
    spec = {**SPEC, "arch": arch, "width": width, "image_size": 28}
    target = round(keep * weight_count(spec))
    key, value, count = size_matched(spec, target)
    assert key == "width" and value < width
    assert abs(count - target) <= 0.05 * target
    assert weight_count({**spec, "width": value}) == count


def test_size_matched_and_random_mask_baselines_sit_beside_each_ticket(tmp_path):
    sweep = FakeSweep(robust_by)
    result = run_ticket_study(preset(baselines=["dense-at", "size-matched", "random-mask"], seeds=[0, 1]),
                              tmp_path, run=sweep)
    matched = [c for c in sweep.cells if c.out.name.startswith("matched-dense")]
    randoms = [c for c in sweep.cells if c.out.name.startswith("random-mask")]
    # Both inits keep the same structure, so they share one baseline of each kind per seed.
    assert len(matched) == len(randoms) == 2
    ticket_nonzero = run_nonzero(tmp_path / "runs" / "rst-signed_constant-s0")
    for cell in matched:
        assert cell.kind == "train" and cell.config["adv"] == "pgd" and "ticket" not in cell.config
        assert abs(run_nonzero(cell.out) - ticket_nonzero) <= 0.05 * ticket_nonzero
    for cell in randoms:
        assert cell.config["finetune"]["mask"] == "random" and cell.config["finetune"]["weights"] == "reinit"
        assert run_nonzero(cell.out) == ticket_nonzero
    for row in result["rows"]:
        assert row["RST non-zero"] == ticket_nonzero
        assert abs(row["size-matched dense non-zero"] - ticket_nonzero) <= 0.05 * ticket_nonzero
        assert row["random mask non-zero"] == ticket_nonzero
    shown = result["main_table"]
    assert f"| signed_constant | size-matched dense | {row['size-matched dense non-zero']:,} |" in shown
    assert f"| kaiming_normal | random mask | {ticket_nonzero:,} |" in shown


def test_bad_seeds_fail_before_anything_runs():
    with pytest.raises(InbornError, match="seeds"):
        resolve_preset("inits", "quick", overrides={"seeds": [0, "x"]})
    with pytest.raises(InbornError, match="seeds apply"):
        resolve_preset("r2s", "quick", overrides={"seeds": [0, 1]})


def test_an_ordering_needs_a_spread_to_go_beyond():
    assert beyond_spread([0.6, 0.62, 0.61], [0.5, 0.52, 0.51])
    assert not beyond_spread([0.6, 0.5, 0.55], [0.52, 0.56, 0.54])
    assert not beyond_spread([0.9], [0.1])
    assert "within the spread" in ordering_sentence("a", [0.6, 0.5, 0.55], "b", [0.52, 0.56, 0.54])
    assert ordering_sentence("a", [0.5], "b", [0.6]).startswith("b > a")


def test_overparam_reads_the_ratio_per_width_over_seeds_and_says_whether_it_rises(tmp_path):
    from inborn.studies.overparam import run_overparam_study

    def figures(cell):  # dense 0.8 and natural 0.4 at every width; the keep-0.5 ticket climbs with width
        seed, width = cell.config.get("seed", 0), cell.config.get("width", 1)
        ticket = cell.config.get("ticket")
        if cell.config.get("adv") == "none":
            return 0.4, 0.4
        if not ticket:
            return 0.8 + 0.001 * seed, 0.8
        value = {0.25: 0.56, 1: 0.72}[width] if ticket["keep_ratio"] == 0.5 else 0.4
        return value + 0.002 * seed, value

    study = preset(vary="ticket.keep_ratio", values=[0.1, 0.5], widths=[0.25, 1], seeds=[0, 1, 2])
    result = run_overparam_study(study, tmp_path, run=FakeSweep(figures))
    rows = {row["width"]: row for row in result["rows"]}
    assert set(rows) == {0.25, 1} and all(row["seeds"] == 3 for row in rows.values())
    assert all(row["best keep (val)"] == 0.5 for row in rows.values())
    expected = statistics.mean(0.72 + 0.002 * s for s in range(3)) / statistics.mean(0.8 + 0.001 * s for s in range(3))
    assert rows[1]["ratio"] == pytest.approx(expected, rel=1e-3)
    # Above the floor: (0.722 − 0.4) / (0.801 − 0.4), the mean ticket and dense over the seeds.
    assert rows[1]["gain ratio"] == pytest.approx((0.722 - 0.4) / (0.801 - 0.4), rel=1e-3)
    assert rows[1]["natural robust"] == pytest.approx(0.4)
    assert f"{rows[0.25]['gain ratio']:.2f} at width 0.25" in result["report"]
    assert rows[0.25]["weights"] < rows[1]["weights"]
    assert "rises" in result["report"] and "beyond the spread" in result["report"]
    assert (tmp_path / "figure.png").stat().st_size > 0
    assert [r["width"] for r in csv.DictReader((tmp_path / "table.csv").read_text().splitlines())] == ["0.25", "1"]
