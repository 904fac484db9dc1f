"""`inborn family`, `inborn transfer`, `inborn r2s`: ticket families and the Random RST Switch."""

from __future__ import annotations

import argparse
from pathlib import Path

from inborn.cli.common import parse_names
from inborn.errors import InbornError
from inborn.tables import text_table
from inborn.values import parse_eps


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from inborn.cli.search import add_search_arguments

    p = sub.add_parser("family", help="draw several tickets from one random weight tensor",
                       description="Search one ticket per keep ratio over the SAME random weights (one seed), "
                                   "or combine finished tickets with --from-tickets.")
    p.add_argument("--from-tickets", help="comma-separated ticket runs to combine instead of searching")
    add_search_arguments(p, keep_help="comma-separated keep ratios, e.g. 0.03,0.05,0.1,0.2,0.4")
    p.set_defaults(func=cmd_family)

    p = sub.add_parser("transfer", help="the k×k transferability matrix of a family")
    p.add_argument("family", help="a family directory made by inborn family")
    _eval_arguments(p)
    p.set_defaults(func=cmd_transfer)

    p = sub.add_parser("r2s", help="evaluate the Random RST Switch under every protocol")
    p.add_argument("family", help="a family directory made by inborn family")
    p.add_argument("--protocol", default="paper,eot,expectation,autoattack-rand",
                   help="comma-separated: paper, eot, expectation, autoattack-rand")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--eot", type=int, default=10, help="samples per step for the eot protocol")
    p.add_argument("--granularity", choices=["batch", "sample"], default="batch")
    p.add_argument("--probs", help="comma-separated switch probabilities, one per ticket (default uniform)")
    p.add_argument("--baseline", help="a run (e.g. dense PGD-AT of the same architecture) to report beside")
    _eval_arguments(p)
    p.set_defaults(func=cmd_r2s)


def _eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--eps", help="ε in pixel units (default: the family's)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--n", type=int, default=500, help="test images to use (default 500)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--quiet", action="store_true")


def cmd_family(args: argparse.Namespace) -> int:
    from inborn.cli.search import search_config
    from inborn.cli.train import run_training
    from inborn.runs import build_family
    from inborn.store import RunDir

    out = Path(args.out)
    if args.from_tickets:
        members = parse_names(args.from_tickets)
    else:
        if not args.keep:
            raise InbornError("--keep is required: comma-separated keep ratios, e.g. --keep 0.05,0.1,0.2,0.4")
        keeps = [float(k) for k in parse_names(args.keep)]
        members = []
        for keep in keeps:
            member = out / "tickets" / f"keep-{keep:g}"
            members.append(str(member))
            run = RunDir(member)
            if run.read_summary():
                print(f"ticket keep={keep:g}: complete, reused")
                continue
            print(f"ticket keep={keep:g}: searching into {member}")
            sub = argparse.Namespace(**{**vars(args), "ticket.keep_ratio": keep, "out": str(member),
                                        "resume": run.file(RunDir.CHECKPOINT).exists()})
            run_training(sub, None if sub.resume else search_config(sub))
    family = build_family(members, out)
    print(f"family of {len(family)} tickets over one weight tensor: keep ratios "
          f"{', '.join(f'{k:g}' for k in family.keep_ratios)} -> {out}")
    return 0


def _family_and_data(args: argparse.Namespace):
    from inborn.device import resolve_device
    from inborn.runs import load_family, load_run_data
    from inborn.store import RunDir

    doc = RunDir(args.family).read_config()
    device = resolve_device(args.device)
    family = load_family(args.family, device)
    cfg = doc["config"]
    eps = parse_eps(args.eps) if args.eps else cfg.get("eps")
    if args.steps < 1:
        raise InbornError(f"--steps must be >= 1, got {args.steps}")
    splits = load_run_data(doc)
    x, y = splits.test.head(args.n).tensors(device)
    return family, x, y, eps, doc


def cmd_transfer(args: argparse.Namespace) -> int:
    from inborn.analysis.plots import plot_transfer_heatmap
    from inborn.analysis.transfer import transfer_matrix
    from inborn.io import atomic_write_json

    family, x, y, eps, _ = _family_and_data(args)
    result = transfer_matrix(family, x, y, eps=eps, steps=args.steps, batch_size=args.batch_size, seed=args.seed,
                             progress=not args.quiet)
    out = Path(args.family)
    atomic_write_json(out / "transfer.json", result)
    plot_transfer_heatmap(result, out / "transfer.png")
    print(render_transfer(result))
    print(f"saved: {out / 'transfer.json'}, {out / 'transfer.png'}")
    return 0


def render_transfer(result: dict) -> str:
    keeps = [f"{k:g}" for k in result["keep_ratios"]]
    rows = [{"source \\ target": keeps[i], **{keeps[j]: result["matrix"][i][j] for j in range(len(keeps))}}
            for i in range(len(keeps))]
    rows.append({"source \\ target": "natural", **{keeps[j]: result["natural_acc"][j] for j in range(len(keeps))}})
    off = result["off_diagonal_mean"]
    return (f"transfer of PGD-{result['steps']} examples at ε={result['eps']:.4g} on {result['n']} test images\n"
            f"{text_table(rows)}\ndiagonal (white-box) mean {result['diagonal_mean']:.4f}, "
            f"off-diagonal mean {'-' if off is None else f'{off:.4f}'}")


def cmd_r2s(args: argparse.Namespace) -> int:
    from inborn.analysis.plots import plot_r2s
    from inborn.analysis.r2s import PROTOCOLS, evaluate_r2s, single_ticket_robustness
    from inborn.io import atomic_write_json, atomic_write_text

    protocols = parse_names(args.protocol)
    for p in protocols:
        if p not in PROTOCOLS:
            raise InbornError(f"unknown protocol {p!r}; known: {', '.join(PROTOCOLS)}")
    probs = [float(v) for v in parse_names(args.probs)] if args.probs else None
    family, x, y, eps, doc = _family_and_data(args)
    result = evaluate_r2s(family, x, y, eps=eps, protocols=protocols, repeats=args.repeats, steps=args.steps,
                          eot_samples=args.eot, granularity=args.granularity, probs=probs,
                          batch_size=args.batch_size, seed=args.seed, progress=not args.quiet)
    result["tickets"] = single_ticket_robustness(family, x, y, eps=eps, steps=args.steps, batch_size=args.batch_size)
    if args.baseline:
        result["baseline"] = _baseline(args, x, y, eps)
    out = Path(args.family)
    atomic_write_json(out / "r2s.json", result)
    plot_r2s(result, out / "r2s.png", references=_r2s_references(result))
    report = render_r2s(result, doc, out)
    atomic_write_text(out / "r2s.md", report)
    print(report)
    print(f"saved: {out / 'r2s.json'}, {out / 'r2s.md'}, {out / 'r2s.png'}")
    return 0


def _baseline(args, x, y, eps) -> dict:
    import inborn

    model = inborn.load(args.baseline, device=x.device)
    res = inborn.evaluate(model, (x, y), attacks=["pgd"], eps=[eps], steps=args.steps, batch_size=args.batch_size)
    return {"run": args.baseline, "clean": res["clean_acc"], "robust": res["results"][0]["robust_acc"]}


def _r2s_references(result: dict) -> list[dict]:
    best = max(result["tickets"], key=lambda t: t["robust"])
    refs = [{"name": f"best single ticket (keep {best['keep_ratio']:g})", "clean": best["clean"],
             "robust": best["robust"]}]
    if "baseline" in result:
        refs.append({"name": f"baseline {Path(result['baseline']['run']).name}", **result["baseline"]})
    return refs


def render_r2s(result: dict, doc: dict, out: Path) -> str:
    def pm(entry: dict) -> str:
        return f"{100 * entry['mean']:.2f} ± {100 * entry['std']:.2f}"

    protos = result["protocols"]
    lines = [
        f"# Random RST Switch: {doc['model']['arch']} on {doc['config']['data']}",
        "",
        f"ε = {result['eps']:.4g} (pixel units), PGD-{result['steps']} with step ε/4, {result['n']} test images, "
        f"{result['repeats']} repeats, {result['granularity']}-wise switching over keep ratios "
        f"{', '.join(f'{k:g}' for k in result['keep_ratios'])}.",
        "",
        "| model | protocol | clean % | robust % |",
        "| --- | --- | --- | --- |",
    ]
    for p, entry in protos.items():
        if p != "clean":
            kind = "adaptive" if p != "paper" else "non-adaptive (the paper's)"
            lines.append(f"| R2S | {p} — {kind} | {pm(protos['clean'])} | {pm(entry)} |")
    best = max(result["tickets"], key=lambda t: t["robust"])
    lines.append(f"| best single ticket (keep {best['keep_ratio']:g}) | white-box PGD | {100 * best['clean']:.2f} | "
                 f"{100 * best['robust']:.2f} |")
    if "baseline" in result:
        b = result["baseline"]
        lines.append(f"| baseline `{b['run']}` | white-box PGD | {100 * b['clean']:.2f} | {100 * b['robust']:.2f} |")
    lines.append("")
    if result["cite"]:
        c = result["cite"]
        lines.append(f"**Robust accuracy to cite: {pm(c)} %** (the minimum over the adaptive protocols, here "
                     f"`{c['protocol']}`).")
    else:
        lines.append("No adaptive protocol was run: the paper's protocol alone overstates a randomised defence.")
    if result["autoattack_warnings"]:
        lines += ["", "AutoAttack warned: " + "; ".join(result["autoattack_warnings"])]
    if (out / "r2s.png").exists():
        lines += ["", "![robust accuracy per protocol](r2s.png)"]
    if (out / "transfer.png").exists():
        lines += ["", "![transfer matrix](transfer.png)"]
    return "\n".join(lines) + "\n"
