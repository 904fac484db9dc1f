"""The family studies: tickets at several keep ratios over ONE random weight tensor, gathered
into a family, then the transfer matrix between them (`transfer`) or the Random RST Switch under
every protocol beside dense PGD-AT (`r2s`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import inborn
from inborn.analysis.plots import plot_r2s, plot_transfer_heatmap
from inborn.analysis.r2s import evaluate_r2s, single_ticket_robustness
from inborn.analysis.transfer import transfer_matrix
from inborn.data import load_data
from inborn.device import resolve_device
from inborn.io import atomic_write_json
from inborn.runs import build_family, load_family
from inborn.studies.tickets import baseline_cells, search_cells
from inborn.tables import markdown_table, write_csv


def _test_data(base: dict[str, Any], n: int, device):
    splits = load_data(base["data"], base.get("data_dir"), seed=base.get("seed", 0))
    return splits.test.head(n).tensors(device)


def prepare_family(preset: dict[str, Any], runs: Path, *, run: Any, device: str = "auto") -> dict[str, Any]:
    """Search the tickets (and baselines), gather the family, and load the test images."""

    tickets = search_cells(preset, runs)
    baselines = baseline_cells(preset, runs)
    run([*baselines, *tickets])
    build_family([str(c.out) for c in tickets], runs / "family")
    dev = resolve_device(device)
    settings = {"n": 500, "steps": 20, **(preset.get("evaluate") or {})}
    x, y = _test_data(preset["base"], settings["n"], dev)
    return {"family": load_family(runs / "family", dev), "x": x, "y": y, "eps": preset["base"]["eps"],
            "settings": settings, "baselines": baselines}


def run_family_study(preset: dict[str, Any], out: Path, *, run: Any, device: str = "auto",
                     progress: bool = True) -> dict[str, Any]:
    f = prepare_family(preset, out / "runs", run=run, device=device)
    if preset.get("protocols") is None:
        return transfer_report(preset, f, out, progress)
    return r2s_report(preset, f, out, progress)


def transfer_report(preset: dict[str, Any], f: dict[str, Any], out: Path, progress: bool) -> dict[str, Any]:
    return _transfer(preset, f["family"], f["x"], f["y"], f["eps"], f["settings"], out, progress)


def r2s_report(preset: dict[str, Any], f: dict[str, Any], out: Path, progress: bool) -> dict[str, Any]:
    return _r2s(preset, f["family"], f["x"], f["y"], f["eps"], f["settings"], out, f["baselines"], progress)


def _transfer(preset, family, x, y, eps, settings, out: Path, progress: bool) -> dict[str, Any]:
    result = transfer_matrix(family, x, y, eps=eps, steps=settings["steps"], progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "transfer.json", result)
    plot_transfer_heatmap(result, out / "figure.png")
    keeps = [f"{k:g}" for k in result["keep_ratios"]]
    rows = [{"source \\ target": keeps[i], **{keeps[j]: result["matrix"][i][j] for j in range(len(keeps))}}
            for i in range(len(keeps))]
    columns = ["source \\ target", *keeps]
    write_csv(out / "table.csv", rows, columns)
    paper = preset.get("paper") or {}
    diag, off = result["diagonal_mean"], result["off_diagonal_mean"]
    summary = [{"figure": "diagonal mean (white-box)", "ours %": 100 * diag,
                "paper %": "–".join(map(str, paper["diagonal"])) if "diagonal" in paper else None},
               {"figure": "off-diagonal mean (transferred)", "ours %": None if off is None else 100 * off,
                "paper %": "–".join(map(str, paper["off_diagonal"])) if "off_diagonal" in paper else None}]
    main = markdown_table(rows, columns)
    report = "\n".join([
        f"# {preset.get('title', 'Transferability between tickets')}",
        "",
        f"Study `transfer` at `{preset['scale']}` scale: {len(keeps)} tickets of `{preset['base']['arch']}` on "
        f"`{preset['base']['data']}` over one random weight tensor. Rows: the ticket PGD-{settings['steps']} "
        f"examples (ε = {eps:.4g}) were made on; columns: the ticket they were fed to; cells: robust accuracy "
        f"on {result['n']} test images. A low diagonal and a high off-diagonal mean that examples transfer poorly.",
        "",
        "![transfer matrix](figure.png)",
        "",
        main,
        "",
        markdown_table(summary, ["figure", "ours %", "paper %"], digits=1),
        "",
        "Files: `table.csv`, `transfer.json`, `figure.png`.",
        "",
    ])
    return {"rows": rows, "report": report, "main_table": main}


def _r2s(preset, family, x, y, eps, settings, out: Path, baselines: list[Any], progress: bool) -> dict[str, Any]:
    result = evaluate_r2s(family, x, y, eps=eps, protocols=preset["protocols"], repeats=settings.get("repeats", 3),
                          steps=settings["steps"], eot_samples=settings.get("eot", 5), progress=progress)
    tickets = single_ticket_robustness(family, x, y, eps=eps, steps=settings["steps"])
    rows = [{"model": "R2S", "protocol": p, "clean": result["protocols"]["clean"]["mean"],
             "robust": e["mean"], "robust std": e["std"]}
            for p, e in result["protocols"].items() if p != "clean"]
    best = max(tickets, key=lambda t: t["robust"])
    rows.append({"model": f"best single ticket (keep {best['keep_ratio']:g})", "protocol": "white-box PGD",
                 "clean": best["clean"], "robust": best["robust"]})

    for cell in baselines:
        model = inborn.load(cell.out, device=x.device)
        res = inborn.evaluate(model, (x, y), attacks=["pgd"], eps=[eps], steps=settings["steps"])
        rows.append({"model": cell.name, "protocol": "white-box PGD", "clean": res["clean_acc"],
                     "robust": res["results"][0]["robust_acc"]})
    paper = preset.get("paper") or {}
    for r in rows:
        if r["model"] == "R2S" and r["protocol"] == "paper" and "r2s_robust" in paper:
            r["paper robust %"] = paper["r2s_robust"]
        if r["model"] == "dense PGD-AT" and "dense_robust" in paper:
            r["paper robust %"] = paper["dense_robust"]
    columns = list(dict.fromkeys(k for r in rows for k in r))
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "table.csv", rows, columns)
    atomic_write_json(out / "r2s.json", {**result, "tickets": tickets})
    plot_r2s(result, out / "figure.png", references=[{"name": r["model"], "clean": r["clean"], "robust": r["robust"]}
                                                     for r in rows if r["model"] != "R2S"])
    main = markdown_table(rows, columns)
    cite = result.get("cite")
    report = "\n".join([
        f"# {preset.get('title', 'Random RST Switch')}",
        "",
        f"Study `r2s` at `{preset['scale']}` scale: a switch over {len(family)} tickets of "
        f"`{preset['base']['arch']}` on `{preset['base']['data']}` (one weight tensor), ε = {eps:.4g}, "
        f"PGD-{settings['steps']}, {result['n']} test images, {result['repeats']} repeats. The paper's protocol "
        "attacks one ticket and evaluates the switch (non-adaptive); EOT, the expectation attack and "
        "AutoAttack-rand attack the randomised defence itself.",
        "",
        main,
        "",
        (f"**Robust accuracy to cite: {100 * cite['mean']:.1f} % (`{cite['protocol']}`, the minimum over the "
         "adaptive protocols).**") if cite else "No adaptive protocol was run.",
        "",
        "![robust accuracy per protocol](figure.png)",
        "",
        "Files: `table.csv`, `r2s.json`, `figure.png`.",
        "",
    ])
    return {"rows": rows, "report": report, "main_table": main}
