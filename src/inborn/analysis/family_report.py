"""The reports of a ticket family, its transfer matrix and its Random RST Switch, written the same
way by `inborn transfer` / `inborn r2s` and by the studies: JSON, the CSV behind the table, the
figure and a markdown report, atomically, into one directory."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from inborn.analysis.plots import plot_r2s, plot_transfer_heatmap
from inborn.analysis.r2s import best_ticket, evaluate_r2s, single_ticket_robustness
from inborn.analysis.r2s_config import R2SSettings
from inborn.evaluation.evaluate import evaluate
from inborn.evaluation.metrics import harmonic_robustness_score
from inborn.evaluation.results import result_row
from inborn.io import atomic_write_json
from inborn.masks.family import TicketFamily
from inborn.tables import markdown_table, write_csv


def write_transfer_report(result: dict[str, Any], out: Path, *, figure: str = "transfer.png",
                          title: str = "Transferability between tickets", context: str = "",
                          paper: dict[str, Any] | None = None) -> dict[str, Any]:
    """transfer.json, the heatmap, table.csv and the report's markdown (returned, not written)."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "transfer.json", result)
    plot_transfer_heatmap(result, out / figure)
    keeps = [f"{k:g}" for k in result["keep_ratios"]]
    rows = [{"source \\ target": keeps[i], **{keeps[j]: result["matrix"][i][j] for j in range(len(keeps))}}
            for i in range(len(keeps))]
    columns = ["source \\ target", *keeps]
    write_csv(out / "table.csv", rows, columns)
    paper = paper or {}
    diag, off = result["diagonal_mean"], result["off_diagonal_mean"]
    summary = [{"figure": "diagonal mean (white-box)", "ours %": 100 * diag,
                "paper %": "–".join(map(str, paper["diagonal"])) if "diagonal" in paper else None},
               {"figure": "off-diagonal mean (transferred)", "ours %": None if off is None else 100 * off,
                "paper %": "–".join(map(str, paper["off_diagonal"])) if "off_diagonal" in paper else None}]
    main = markdown_table(rows, columns)
    report = "\n".join([
        f"# {title}", "",
        f"{context}Rows: the ticket PGD-{result['steps']} examples (ε = {result['eps']:.4g}) were made on; columns: "
        f"the ticket they were fed to; cells: robust accuracy on {result['n']} test images. A low diagonal and a "
        "high off-diagonal mean that examples transfer poorly.", "",
        f"![transfer matrix]({figure})", "", main, "",
        markdown_table(summary, ["figure", "ours %", "paper %"], digits=1), "",
        f"Files: `table.csv`, `transfer.json`, `{figure}`.", "",
    ])
    return {"rows": rows, "report": report, "main_table": main}


def r2s_evaluation(family: TicketFamily, test: tuple[torch.Tensor, torch.Tensor],
                   val: tuple[torch.Tensor, torch.Tensor] | None, *, eps: float, settings: R2SSettings,
                   references: Sequence[tuple[str, nn.Module]] = (), progress: bool = False,
                   ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """What `inborn r2s` and the studies report: the switch under every protocol of `settings`, each
    ticket alone (the best chosen on `val`), and reference models under white-box PGD, on the same
    test images. Returns the R2S result (with its `tickets`) and the reference rows."""
    x, y = test
    result = evaluate_r2s(family, x, y, settings, eps=eps, progress=progress)
    result["tickets"] = single_ticket_robustness(family, x, y, eps=eps, steps=settings.steps,
                                                 batch_size=settings.batch_size, val=val)
    rows = [white_box_reference(name, model, x, y, eps=eps, steps=settings.steps, batch_size=settings.batch_size)
            for name, model in references]
    return result, rows


def white_box_reference(name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
                        steps: int, batch_size: int = 256) -> dict[str, Any]:
    """A single model (dense PGD-AT, say) under white-box PGD on the same images, for the table."""
    res = evaluate(model, (x, y), attacks=["pgd"], eps=[eps], steps=steps, batch_size=batch_size)
    return {"model": name, "protocol": "white-box PGD", "clean": res["clean_acc"],
            "robust": res["results"][0]["robust_acc"]}


def r2s_rows(result: dict[str, Any], references: list[dict[str, Any]],
             paper: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The switch under every protocol, the best single ticket (chosen on validation) and the references."""
    protos = result["protocols"]
    rows = [{"model": "R2S", "protocol": p, "clean": protos["clean"]["mean"], "clean std": protos["clean"]["std"],
             "robust": e["mean"], "robust std": e["std"]} for p, e in protos.items() if p != "clean"]
    tickets = result["tickets"]
    if all("val_robust" in t for t in tickets):
        best = best_ticket(tickets)
        rows.append({"model": f"best single ticket (keep {best['keep_ratio']:g}, selected on validation)",
                     "protocol": "white-box PGD", "clean": best["clean"], "robust": best["robust"]})
        optimistic = best["test_selected"]
    else:  # no validation split: nothing can be chosen honestly
        optimistic = max(tickets, key=lambda t: t["robust"])
    if optimistic is not None:
        rows.append({"model": f"best single ticket on test (keep {optimistic['keep_ratio']:g}, selected on test: "
                              "optimistic)", "protocol": "white-box PGD", "clean": optimistic["clean"],
                     "robust": optimistic["robust"]})
    rows += references
    paper = paper or {}
    for r in rows:
        if r["model"] == "R2S" and r["protocol"] == "paper" and "r2s_robust" in paper:
            r["paper robust %"] = paper["r2s_robust"]
        if r["model"] == "dense PGD-AT" and "dense_robust" in paper:
            r["paper robust %"] = paper["dense_robust"]
    return rows


def write_r2s_report(result: dict[str, Any], out: Path, *, references: list[dict[str, Any]],
                     figure: str = "r2s.png", title: str = "Random RST Switch", context: str = "",
                     paper: dict[str, Any] | None = None, extra_figures: tuple[str, ...] = ()) -> dict[str, Any]:
    """r2s.json, table.csv, the figure and the report's markdown (returned, not written)."""
    rows = r2s_rows(result, references, paper)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "table.csv", rows, columns)
    atomic_write_json(out / "r2s.json", result)
    plot_r2s(result, out / figure, references=[{"name": r["model"], "clean": r["clean"], "robust": r["robust"]}
                                               for r in rows if r["model"] != "R2S"])
    main = markdown_table(_as_percent(rows), [_percent_column(c) for c in columns])
    cite = result.get("cite")
    resolution = 100 / result["n"]
    lines = [
        f"# {title}", "",
        f"{context}A switch over {len(result['keep_ratios'])} tickets (keep ratios "
        f"{', '.join(f'{k:g}' for k in result['keep_ratios'])}, one weight tensor), {result['granularity']}-wise, "
        f"ε = {result['eps']:.4g} (pixel units), PGD-{result['steps']} with step ε/4, {result['n']} test images "
        f"(one image is {resolution:.2f} %), {result['repeats']} repeats (mean and std). The paper's protocol attacks "
        "one ticket and evaluates the switch (non-adaptive); EOT, the expectation attack and AutoAttack-rand attack "
        "the randomised defence itself. The best single ticket is chosen on validation images; its test figures "
        "are shown. Every figure is a percentage.", "",
        main, "",
        (f"**Robust accuracy to cite: {_pm(cite['mean'], cite['std'], result['n'])} %** (`{cite['protocol']}`, "
         "the minimum over the adaptive protocols).") if cite else
        "No adaptive protocol was run: the paper's protocol alone overstates a randomised defence.",
    ]
    lines += [f"- {line}" for line in r2s_verdict(result, rows)]
    if result.get("autoattack_warnings"):
        lines += ["", "AutoAttack warned: " + "; ".join(result["autoattack_warnings"])]
    lines += ["", f"![robust accuracy per protocol]({figure})"]
    lines += [f"\n![{name}]({name})" for name in extra_figures if (out / name).exists()]
    lines += ["", f"Files: `table.csv`, `r2s.json`, `{figure}`.", ""]
    return {"rows": rows, "report": "\n".join(lines), "main_table": main}


def _percent_column(column: str) -> str:
    return f"{column} %" if column in _FRACTION_COLUMNS else column


_FRACTION_COLUMNS = ("clean", "clean std", "robust", "robust std")


def _as_percent(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The report's table in one unit: percentages with two decimals (table.csv keeps fractions)."""
    return [{_percent_column(k): (f"{100 * v:.2f}" if k in _FRACTION_COLUMNS and isinstance(v, int | float) else v)
             for k, v in r.items()} for r in rows]


def _pm(mean: float, std: float, n: int) -> str:
    """mean ± std in percent; a spread below one image's worth says so rather than print ± 0.00."""
    if std * n < 0.5:
        return f"{100 * mean:.2f} (every repeat alike to one image in {n})"
    return f"{100 * mean:.2f} ± {100 * std:.2f}"


def r2s_verdict(result: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    """What the figures say, in sentences: an adaptive protocol that does not reach the paper's
    (too little attack budget), and the switch's cited figure against the best single ticket and
    each reference, with the spread and one image's worth as the resolution."""
    protos, cite, n = result["protocols"], result.get("cite"), result["n"]
    one = 1 / n
    said = []
    paper = protos.get("paper")
    if paper is not None:
        for name, e in protos.items():
            if name in ("clean", "paper"):
                continue
            if e["mean"] > paper["mean"] + max(one, e["std"] + paper["std"]):
                said.append(f"**Check the attack budget**: `{name}` leaves {100 * e['mean']:.2f} %, above the "
                            f"non-adaptive paper protocol's {100 * paper['mean']:.2f} %. An attack on the defence "
                            "itself should be at least as strong; more steps, EOT samples or restarts are needed "
                            "before its figure can be trusted.")
    if cite is None:
        return said
    best = [r for r in rows if r["model"].startswith("best single ticket (")]
    for ref in best + [r for r in rows if r["model"] not in ("R2S",) and not r["model"].startswith("best single")]:
        gap = cite["mean"] - ref["robust"]
        margin = max(one, 2 * cite["std"])
        verdict = ("above" if gap > margin else "below" if gap < -margin else "within the spread of")
        said.append(f"The switch ({cite['protocol']}, {100 * cite['mean']:.2f} %) is {verdict} {ref['model']} "
                    f"({100 * ref['robust']:.2f} %): a difference of {100 * gap:+.2f} points against a margin of "
                    f"{100 * margin:.2f} (twice the spread over repeats, at least one image).")
    return said


def r2s_result_rows(result: dict[str, Any], family_path: str | Path, seed: int) -> list[dict[str, Any]]:
    """The switch's figure under each protocol as rows of the results database (attack
    `r2s:<protocol>`, the family's run path, the test split): means over the repeats, their
    spread in `extra`."""
    protos, clean = result["protocols"], result["protocols"]["clean"]
    settings = {"steps": result["steps"], "eot_samples": result["eot_samples"], "repeats": result["repeats"],
                "randomised": True, "seed": seed}
    return [result_row(family_path, "test", f"r2s:{p}", result["eps"], n=result["n"], clean_acc=clean["mean"],
                       robust_acc=e["mean"], hrs=harmonic_robustness_score(clean["mean"], e["mean"]), settings=settings,
                       extra={"robust_acc_std": e["std"], "clean_acc_std": clean["std"],
                              "granularity": result["granularity"], "probs": result["probs"]})
            for p, e in protos.items() if p != "clean"]


def transfer_result_rows(result: dict[str, Any], family_path: str | Path, seed: int) -> list[dict[str, Any]]:
    """The transfer matrix as rows (attack `transfer:<source>-><target>`, by keep ratio): the
    target's accuracy on PGD examples made against the source, beside the target's clean accuracy."""
    keeps, natural = result["keep_ratios"], result["natural_acc"]
    return [result_row(family_path, "test", f"transfer:{keeps[i]:g}->{keeps[j]:g}", result["eps"], n=result["n"],
                       clean_acc=natural[j], robust_acc=acc, hrs=harmonic_robustness_score(natural[j], acc),
                       settings={"steps": result["steps"], "seed": seed},
                       extra={"source": result["names"][i], "target": result["names"][j]})
            for i, row in enumerate(result["matrix"]) for j, acc in enumerate(row)]
