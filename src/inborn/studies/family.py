"""The family studies: tickets at several keep ratios over ONE random weight tensor, gathered
into a family, then the transfer matrix between them (`transfer`) or the Random RST Switch under
every protocol beside dense PGD-AT (`r2s`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inborn.studies.tickets import baseline_cells, search_cells


def _test_and_val(base: dict[str, Any], n: int, device):
    from inborn.data import load_data

    splits = load_data(base["data"], base.get("data_dir"), val_fraction=base.get("val_fraction", 0.1),
                       seed=base.get("seed", 0))
    val = splits.val.head(n).tensors(device) if len(splits.val) else None
    return (*splits.test.head(n).tensors(device), val)


def prepare_family(preset: dict[str, Any], runs: Path, *, run: Any, device: str = "auto") -> dict[str, Any]:
    """Search the tickets (and baselines), gather the family, and load the test and validation images."""
    from inborn.device import resolve_device
    from inborn.runs import build_family, load_family

    tickets = search_cells(preset, runs)
    baselines = baseline_cells(preset, runs)
    run([*baselines, *tickets])
    build_family([str(c.out) for c in tickets], runs / "family")
    dev = resolve_device(device)
    settings = {"n": 500, "steps": 20, **(preset.get("evaluate") or {})}
    x, y, val = _test_and_val(preset["base"], settings["n"], dev)
    return {"family": load_family(runs / "family", dev), "x": x, "y": y, "val": val, "eps": preset["base"]["eps"],
            "settings": settings, "baselines": baselines}


def run_family_study(preset: dict[str, Any], out: Path, *, run: Any, device: str = "auto",
                     progress: bool = True) -> dict[str, Any]:
    f = prepare_family(preset, out / "runs", run=run, device=device)
    if preset.get("protocols") is None:
        return transfer_report(preset, f, out, progress)
    return r2s_report(preset, f, out, progress)


def transfer_report(preset: dict[str, Any], f: dict[str, Any], out: Path, progress: bool) -> dict[str, Any]:
    from inborn.analysis.family_report import write_transfer_report
    from inborn.analysis.transfer import transfer_matrix

    result = transfer_matrix(f["family"], f["x"], f["y"], eps=f["eps"], steps=f["settings"]["steps"],
                             progress=progress)
    context = (f"Study `transfer` at `{preset['scale']}` scale: {len(f['family'])} tickets of "
               f"`{preset['base']['arch']}` on `{preset['base']['data']}` over one random weight tensor. ")
    return write_transfer_report(result, out, figure="figure.png", context=context, paper=preset.get("paper"),
                                 title=preset.get("title", "Transferability between tickets"))


def r2s_report(preset: dict[str, Any], f: dict[str, Any], out: Path, progress: bool) -> dict[str, Any]:
    import inborn
    from inborn.analysis.family_report import white_box_reference, write_r2s_report
    from inborn.analysis.r2s import evaluate_r2s, single_ticket_robustness

    family, x, y, eps, settings = f["family"], f["x"], f["y"], f["eps"], f["settings"]
    result = evaluate_r2s(family, x, y, eps=eps, protocols=preset["protocols"], repeats=settings.get("repeats", 3),
                          steps=settings["steps"], eot_samples=settings.get("eot", 5), progress=progress)
    result["tickets"] = single_ticket_robustness(family, x, y, eps=eps, steps=settings["steps"], val=f["val"])
    references = [white_box_reference(cell.name, inborn.load(cell.out, device=x.device), x, y, eps=eps,
                                      steps=settings["steps"]) for cell in f["baselines"]]
    context = f"Study `r2s` at `{preset['scale']}` scale: `{preset['base']['arch']}` on `{preset['base']['data']}`. "
    return write_r2s_report(result, out, references=references, figure="figure.png", context=context,
                            paper=preset.get("paper"), title=preset.get("title", "Random RST Switch"))
