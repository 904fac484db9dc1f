"""`inborn eval RUN_DIR`: clean and robust accuracy per attack and ε, worst case, HRS."""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from pathlib import Path

from inborn.cli.common import add_trust_flag, count_arg, seed_arg
from inborn.errors import InbornError
from inborn.settings import settings_of
from inborn.tables import text_table
from inborn.train.config import TrainConfig
from inborn.values import parse_eps, parse_eps_list, parse_names, refuse_duplicates


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a run under attack",
                       description="Evaluate a run's selected model on clean and adversarial examples.")
    p.add_argument("run_dir", help="a run directory made by inborn train")
    p.add_argument("--attack", default="pgd", help="comma-separated attacks (see `inborn attacks`), default pgd")
    p.add_argument("--eps", help="comma-separated ε in pixel units, e.g. 0.1,0.2,0.3 or 8/255 (default: the run's ε)")
    p.add_argument("--steps", type=count_arg, default=20, help="iterations of iterative attacks (default 20)")
    p.add_argument("--step-size", help="step in pixel units (default ε/4)")
    p.add_argument("--restarts", type=count_arg, default=1)
    p.add_argument("--eot", type=count_arg, help="gradient samples per step for eot-pgd, and for every gradient attack "
                   "on a randomised model (default 10)")
    p.add_argument("--repeats", type=count_arg, help="classifications of every point of a randomised model, "
                   "reported as mean ± std (default 5)")
    p.add_argument("--amp", action="store_true", help="bf16 autocast on CUDA (default: float32 everywhere)")
    # The training setting's flag and help: one definition (TrainConfig.compile) for train, search and eval.
    compile_setting = next(s for s in settings_of(TrainConfig) if s.name == "compile")
    p.add_argument(compile_setting.flag, dest="compile", action="store_true", help=compile_setting.help)
    # --num-examples: under torchrun, whose own parser takes `--n` for an abbreviation of its options.
    p.add_argument("--n", "--num-examples", dest="n", type=count_arg, help="evaluate the first N images of the split")
    p.add_argument("--split", choices=["test", "val"], default="test")
    p.add_argument("--batch-size", type=count_arg, default=256)
    p.add_argument("--no-early-stop", action="store_true", help="keep attacking samples already misclassified")
    p.add_argument("--seed", type=seed_arg, default=0, help="seed of the attacks' noise, in [0, 2**32-1] (default 0)")
    p.add_argument("--device", default="auto")
    p.add_argument("--data-dir", help="override the data directory stored in the run")
    p.add_argument("--db", help="results database (default runs/inborn.db or $INBORN_DB)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--smoke", action="store_true", help="attack one small batch, print the time the whole "
                   "evaluation would take here, and write nothing")
    p.add_argument("--save-adv", metavar="FILE", help="also save every attack's points as safetensors (per attack "
                   "and ε: x_adv and the index of each image in the split); the evaluation then runs whole, "
                   "without resuming")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_trust_flag(p)
    p.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    from inborn import distributed
    from inborn.analysis.plots import plot_robustness_curve
    from inborn.attacks import ATTACKS, attack_norm
    from inborn.device import resolve_device
    from inborn.evaluation.evaluate import evaluate
    from inborn.evaluation.results import evaluation_rows
    from inborn.io import atomic_write_json, strict_json
    from inborn.runs import load, load_run_data, run_eps
    from inborn.store import ResultsDB, RunDir

    # Check everything the user typed before touching the run or the database.
    attacks = parse_names(args.attack)
    if not attacks:
        raise InbornError(f"--attack names no attack; known: {', '.join(ATTACKS)}")
    for name in attacks:
        if name not in ATTACKS:
            raise InbornError(f"unknown attack {name!r}; known: {', '.join(ATTACKS)}")
    refuse_duplicates(attacks, "--attack")
    # An L-inf ε beyond 1 reaches every image; an L2 radius (pgd-l2 alone) has no such bound.
    linf = any(attack_norm(name) == "linf" for name in attacks)
    eps_list = parse_eps_list(args.eps, high=1.0 if linf else None) if args.eps is not None else None
    step_size = parse_eps(args.step_size, "--step-size", high=None) if args.step_size is not None else None
    if step_size == 0:
        raise InbornError("--step-size must be > 0, got 0")
    if args.save_adv is not None:
        from inborn.store.guard import check_output_file

        if Path(args.save_adv).suffix != ".safetensors":
            raise InbornError(f"--save-adv {args.save_adv!r}: the file is safetensors, name it .safetensors")
        check_output_file(args.save_adv, "adversarial", what="--save-adv")  # never a run's file or a user's
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # torchrun sets it before any process group exists
            raise InbornError("--save-adv keeps every batch's points in one process: run it without torchrun")
    run = RunDir(args.run_dir)
    doc = run.read_config()
    db = ResultsDB.for_runs(args.db, [args.run_dir])
    db.check()  # a bad --db fails before the evaluation runs and eval.json is written
    device = distributed.init_from_env(resolve_device(args.device))  # under torchrun: batches split over ranks
    model = load(run.path, device=device)
    cfg = doc["config"]
    splits = load_run_data(doc, args.data_dir)
    if eps_list is None:
        eps_list = [run_eps(doc, splits)]

    if args.smoke:  # one small batch, timed and projected; no journal, no eval.json, no database row
        from inborn.train.smoke import projection_line

        split = getattr(splits, args.split)
        full = min(args.n or len(split), len(split))
        done = min(full, args.batch_size, 32)
        t0 = time.time()
        evaluate(model, split, attacks=attacks, eps=eps_list, steps=args.steps, step_size=step_size,
                 restarts=args.restarts, n=done, batch_size=done, device=device, seed=args.seed,
                 early_stop=not args.no_early_stop, eot_samples=args.eot, repeats=args.repeats, amp=args.amp,
                 progress=False)
        print(projection_line(f"evaluation of {full} images ({', '.join(attacks)} at {len(eps_list)} ε)",
                              time.time() - t0, done, full))
        return 0
    adversarial: dict | None = {} if args.save_adv else None
    t0 = time.time()
    # The lock: one writer per run, since an evaluation journals its batches into the run directory.
    with run.lock() if distributed.is_main() else contextlib.nullcontext():
        result = evaluate(
            model, getattr(splits, args.split), attacks=attacks, eps=eps_list, steps=args.steps,
            step_size=step_size, restarts=args.restarts, n=args.n, batch_size=args.batch_size, device=device,
            seed=args.seed, early_stop=not args.no_early_stop, eot_samples=args.eot, repeats=args.repeats,
            amp=args.amp, progress=not args.quiet,
            journal=None if args.save_adv else run.file(f"eval-{args.split}.journal.json"),
            split_over_ranks=args.save_adv is None, compile=args.compile, adversarial=adversarial,
        )
    if not distributed.is_main():
        return 0  # rank 0 writes and prints
    result.update({"run": str(run.path), "split": args.split, "seconds": time.time() - t0,
                   "data": cfg["data"], "arch": doc["model"]["arch"]})
    if len(eps_list) > 1:
        png = run.file("eval_robust_vs_eps.png")
        plot_robustness_curve(result, png, title=f"{doc['model']['arch']} on {cfg['data']} ({args.split})")
        result["plot"] = str(png)
    atomic_write_json(run.file("eval.json"), result)
    if adversarial is not None:
        _save_adversarial(args.save_adv, adversarial, result)
    db.add_results(evaluation_rows(result, run.path, args.split))
    if args.json:
        print(strict_json(result, indent=2))
    else:
        print(render(result))
    return 0


def _save_adversarial(path: str, points: dict, result: dict) -> None:
    """Per attack and ε, `KEY/x_adv` and `KEY/index` (int64, the image's index in the split), with
    what identifies the evaluation in the file's metadata."""
    import torch
    from safetensors.torch import save_file

    from inborn.io import atomic_write, strict_json

    tensors = {}
    for key, got in points.items():
        tensors[f"{key}/x_adv"] = torch.cat(got["x_adv"]).contiguous() if got["x_adv"] else torch.empty(0)
        tensors[f"{key}/index"] = torch.cat(got["index"]).to(torch.int64) if got["index"] else \
            torch.empty(0, dtype=torch.int64)
    meta = {"inborn_adversarial": "1", "run": str(result["run"]), "split": str(result["split"]),
            "fingerprint": str(result.get("fingerprint") or ""), "settings": strict_json(
                {k: result.get(k) for k in ("n", "seed", "repeats", "precision", "randomised")})}
    atomic_write(path, lambda p: save_file(tensors, str(p), metadata=meta))
    print(f"adversarial examples: {path} ({', '.join(points)})")


def render(result: dict) -> str:
    spread = result.get("randomised", False)  # a randomised model's figures are means over repeats

    def acc(value: float, std: float | None) -> str | float:
        return f"{value:.4f} ± {std or 0:.4f}" if spread else value

    clean = acc(result["clean_acc"], result.get("clean_acc_std"))
    rows = [{"attack": r["attack"], "eps": r["eps"], "steps": r["steps"] or "-", "clean": clean,
             "robust": acc(r["robust_acc"], r.get("robust_acc_std")), "HRS": r["hrs"]} for r in result["results"]]
    if len({r["attack"] for r in result["results"]}) > 1:
        rows += [{"attack": "worst case", "eps": w["eps"], "steps": "-", "clean": clean,
                  "robust": acc(w["robust_acc"], w.get("robust_acc_std")), "HRS": w["hrs"]}
                 for w in result["worst_case"]]
    lines = [f"{result['arch']} on {result['data']} ({result['split']}, {result['n']} images, "
             f"{result.get('precision', 'float32')}, {result['seconds']:.0f}s)", text_table(rows)]
    lines += [f"warning: {w}" for w in result.get("warnings", [])]
    for r in result["results"]:
        for w in r.get("warnings", []):
            lines.append(f"warning ({r['attack']} at ε={r['eps']:.4g}): {w}")
    if "plot" in result:
        lines.append(f"plot: {result['plot']}")
    lines.append(f"saved: {Path(result['run']) / 'eval.json'}")
    return "\n".join(lines)
