"""The overparameterisation study: is the best ticket closer to dense PGD-AT of the same network
when the network is wider? The paper's existence figure reads so (ResNet-18 0.95, WRN-34-10 0.98
of dense PGD-AT); this study measures the ratio across a range of widths.

For every width (the preset's `widths`, set at the dotted key `widen`, default `width`) it runs a
ticket study over the keep ratios (`values`) with dense PGD-AT and natural training of the same
network at the same epochs, each width's report in its own directory; then the best ticket (chosen
on validation) over dense PGD-AT is drawn against the width and the parameter count, beside the
share of PGD-AT's gain over natural training that it recovers, (ticket − natural) / (dense − natural).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inborn.errors import InbornError
from inborn.io import atomic_write_text, save_figure
from inborn.settings import with_dotted
from inborn.studies.seeds import beyond_spread, fmt_spread, mean_std
from inborn.studies.tickets import TicketStudy, gain_over_floor, run_ticket_study, study_attack
from inborn.sweep.grid import safe_name
from inborn.tables import markdown_table, write_csv


def width_preset(preset: dict[str, Any], width: Any) -> dict[str, Any]:
    """The ticket study at one width (dense PGD-AT is its baseline whatever the preset lists)."""
    return {**preset, "base": with_dotted(preset["base"], preset.get("widen", "width"), width),
            "baselines": list(dict.fromkeys(["dense-at", *preset.get("baselines", [])])),
            "title": f"{preset.get('title', preset['study'])}: {preset.get('widen', 'width')} = {width}"}


def run_overparam_study(preset: dict[str, Any], out: Path, *, run: Any) -> dict[str, Any]:
    widths = preset.get("widths")
    if not widths:
        raise InbornError(f"study {preset['study']!r} needs a list of `widths`")
    widen = preset.get("widen", "width")
    rows = []
    for width in widths:
        part = out / f"{widen.rsplit('.', 1)[-1]}-{safe_name(width)}"
        result = run_ticket_study(width_preset(preset, width), part, run=run)
        atomic_write_text(part / "report.md", result.report)
        rows.append(_row(widen, width, result))
    columns = [widen, "weights", "best keep (val)", "ticket robust", "dense robust", "natural robust", "ratio",
               "ratio std", "gain ratio", "gain ratio std", "seeds", "best keep (test, optimistic)",
               "ratio (test-selected, optimistic)"]
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "table.csv", [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows], columns)
    plot_overparam(rows, widen, out / "figure.png", preset.get("title", ""))
    shown = [{widen: r[widen], "weights": r["weights"], "best keep (val)": r["best keep (val)"],
              "ticket": fmt_spread(r["_ticket"]), "dense PGD-AT": fmt_spread(r["_dense"]),
              "natural": fmt_spread(r["_natural"]) if r["_natural"] else "-",
              "ticket / dense": fmt_spread(r["_ratios"]),
              "(ticket − natural) / (dense − natural)": fmt_spread(r["_gains"]) if r["_gains"] else "-",
              "ratio selected on test (optimistic)": r["ratio (test-selected, optimistic)"]} for r in rows]
    main_table = markdown_table(shown, list(shown[0]))
    report = _report(preset, rows, widen, main_table, rows[0]["_attack"])
    return {"rows": rows, "report": report, "main_table": main_table}


def _row(widen: str, width: Any, result: TicketStudy) -> dict[str, Any]:
    sel = result.selection
    # Runs are in seed order in both series, so the per-seed ratios pair each seed's ticket with
    # the same seed's dense network.
    tickets = result.table[sel.value]["RST"].values("robust")
    denses = result.dense.values("robust")
    naturals = result.natural.values("robust")
    ratios = [t / d for t, d in zip(tickets, denses, strict=True) if d > 0]
    gains = [g for g in (gain_over_floor(t, d, n) for t, d, n in zip(tickets, denses, naturals, strict=False))
             if g is not None] if len(naturals) == len(tickets) else []
    return {widen: width, "weights": round(result.dense.mean("nonzero")), "best keep (val)": sel.value,
            "ticket robust": sel.robust, "dense robust": sel.dense, "natural robust": sel.natural,
            "ratio": sel.ratio, "ratio std": mean_std(ratios)[1], "gain ratio": sel.gain,
            "gain ratio std": mean_std(gains)[1] if gains else None, "seeds": len(tickets),
            "best keep (test, optimistic)": sel.test_value, "ratio (test-selected, optimistic)": sel.test_ratio,
            "_ticket": tickets, "_dense": denses, "_natural": naturals, "_ratios": ratios, "_gains": gains,
            "_attack": study_attack(result.table, result.dense, result.natural)}


def _report(preset: dict[str, Any], rows: list[dict[str, Any]], widen: str, main_table: str, attack: str) -> str:
    base = preset["base"]
    first, last = rows[0], rows[-1]
    rises = all(b["ratio"] > a["ratio"] for a, b in zip(rows, rows[1:], strict=False))
    beyond = beyond_spread(last["_ratios"], first["_ratios"])
    if last["ratio"] > first["ratio"]:
        verdict = (f"The ratio rises from {first['ratio']:.2f} at {widen} {first[widen]} to {last['ratio']:.2f} at "
                   f"{last[widen]} ({'at every step' if rises else 'not at every step'}); "
                   + ("beyond the spread over seeds." if beyond else
                      "not beyond the spread over seeds (or one seed only): not established."))
    else:
        verdict = (f"The ratio does not rise with {widen}: {first['ratio']:.2f} at {first[widen]}, "
                   f"{last['ratio']:.2f} at {last[widen]}.")
    parts = [
        f"# {preset.get('title', preset['study'])}",
        "",
        f"Study `{preset['study']}` at `{preset['scale']}` scale: `{base['arch']}` on `{base['data']}`, "
        f"ε = {base.get('eps'):.4g}, {base['epochs']} epochs per run, keep ratios "
        f"{', '.join(str(v) for v in preset['values'])} at each {widen} "
        f"{', '.join(str(w) for w in preset['widths'])}. The best ticket of each width is chosen on validation "
        "robust accuracy (PGD-10, mean over seeds) and compared with dense PGD-AT of the same network at the "
        f"same epochs on the test split ({attack}), by two ratios: ticket / dense PGD-AT, and above natural "
        "training of the same network (the robustness it gets for free), (ticket − natural) / (dense − natural). "
        "`weights`: the dense network's conv and linear weights.",
        "",
        "![figure](figure.png)",
        "",
        main_table,
        "",
        f"**Does the ratio rise with {widen}?** {verdict}",
        "",
        _gain_line(rows, widen),
        "",
        "Each width's own report (every keep ratio, the baselines): "
        + ", ".join(f"[{widen} {r[widen]}]({widen.rsplit('.', 1)[-1]}-{safe_name(r[widen])}/report.md)" for r in rows)
        + ".",
        "",
        "Files: `table.csv`, `figure.png`.",
        "",
    ]
    return "\n".join(parts)


def _gain_line(rows: list[dict[str, Any]], widen: str) -> str:
    """What the ratio above the floor says at each width."""
    gains = [f"{r['gain ratio']:.2f} at {widen} {r[widen]}" + (f" (per seed {fmt_spread(r['_gains'], 2)})"
                                                                if len(r["_gains"]) > 1 else "")
             for r in rows if r["gain ratio"] is not None]
    if not gains:
        return "**Above natural training:** not measured (no natural-training run, or PGD-AT gains nothing over it)."
    return ("**Above natural training** (the share of what PGD-AT adds over natural training that the ticket "
            "recovers, from the means over seeds): " + ", ".join(gains) + ".")


def plot_overparam(rows: list[dict[str, Any]], widen: str, path: Path, title: str) -> None:
    """Ticket / dense robust accuracy against the width and the parameter count (error bars: std
    of the per-seed ratios), parity dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    ratios = [r["ratio"] for r in rows]
    errs = [r["ratio std"] for r in rows]
    with_gain = [r for r in rows if r["gain ratio"] is not None]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), sharey=True)
    for ax, xs, label in ((axes[0], [float(r[widen]) for r in rows], widen),
                          (axes[1], [r["weights"] for r in rows], "conv and linear weights (dense network)")):
        ax.errorbar(xs, ratios, yerr=errs, marker="o", capsize=3, color="C0", label="best ticket / dense PGD-AT")
        gx = [x for x, r in zip(xs, rows, strict=True) if r["gain ratio"] is not None]
        if with_gain:
            ax.errorbar(gx, [r["gain ratio"] for r in with_gain], yerr=[r["gain ratio std"] or 0 for r in with_gain],
                        marker="s", capsize=3, color="C1", linestyle="--",
                        label="(ticket − natural) / (dense − natural)")
        for x, r in zip(xs, rows, strict=True):
            ax.annotate(f"keep {r['best keep (val)']}", (x, r["ratio"]), textcoords="offset points", xytext=(4, -12),
                        fontsize=7)
        ax.axhline(1.0, color="black", linestyle="--", linewidth=1, label="parity")
        ax.axhline(0.9, color="gray", linestyle=":", linewidth=1, label="0.9")
        ax.set_xscale("log")
        ax.set_xticks(xs, [f"{x:g}" if x < 1000 else f"{x:,.0f}" for x in xs])  # the measured points only
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("robust accuracy ratio (test)")
    low = min([0.0, *(r["gain ratio"] - (r["gain ratio std"] or 0) for r in with_gain)])
    axes[0].set_ylim(low - (0.05 if low < 0 else 0), 1.1)  # a ticket below the floor has a negative gain
    axes[1].legend(fontsize=7, loc="lower right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=120, tight=True)
    plt.close(fig)
