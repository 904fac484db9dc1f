"""`inborn reproduce STUDY`: run a named study from its preset, at quick or paper scale."""

from __future__ import annotations

import argparse

from inborn.cli.common import count_arg, throwaway


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reproduce", help="run a paper's study from a preset (quick on a CPU, or at the paper's scale)",
        description="Run a named study (see --list) at quick scale (mnist5k on a CPU) or at the paper's scale "
                    "(local CIFAR files via --data-dir), picking up complete and interrupted runs, and write "
                    "a report directory: report.md with its figures and the CSV behind every table.")
    p.add_argument("study", nargs="?", help="a study name (see --list) or a YAML file copied from a preset")
    p.add_argument("--list", action="store_true", help="list the studies")
    p.add_argument("--print-config", action="store_true",
                   help="print the study's preset (YAML, both scales) to copy and edit, and exit")
    p.add_argument("--scale", default="quick", choices=["quick", "paper"])
    p.add_argument("--out", help="report directory (default runs/reproduce/STUDY-SCALE)")
    p.add_argument("--data-dir", help="directory holding the data set's files (paper scale)")
    p.add_argument("--device", default="auto")
    p.add_argument("--executor", default="local", choices=["local", "ray"])
    p.add_argument("--address", help="Ray cluster address (with --executor ray)")
    p.add_argument("--max-parallel", type=count_arg, default=1, help="runs at once (default 1)")
    p.add_argument("--seeds", help="repeat every run of the study over these seeds, e.g. 0,1,2 (reports give "
                                   "mean ± std); overrides the preset's seeds")
    p.add_argument("--db", help="results database (default runs/inborn.db or $INBORN_DB)")
    p.add_argument("--smoke", action="store_true",
                   help="every run of the study for 1 epoch of 2 batches and one evaluation batch, the report "
                        "too, into a throwaway directory; prints the projected time of the full study")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_reproduce)


def cmd_reproduce(args: argparse.Namespace) -> int:
    from pathlib import Path

    from inborn.errors import InbornError
    from inborn.studies.presets import load_preset, preset_names, print_config

    if args.list:
        for name in preset_names():
            doc = load_preset(name)
            print(f"{name:15s} {doc.get('title', '')}  [{', '.join(doc['scales'])}]")
        return 0
    if not args.study:
        raise InbornError("name a study (see `inborn reproduce --list`)")
    if args.print_config:
        print(print_config(args.study), end="")
        return 0
    from inborn.studies.presets import resolve_preset
    from inborn.studies.reproduce import run_study
    from inborn.values import check_seed, parse_int_list, refuse_duplicates

    overrides = {}
    if args.seeds is not None:
        seeds = [check_seed(s, "--seeds") for s in parse_int_list(args.seeds)]
        refuse_duplicates(seeds, "--seeds")
        overrides["seeds"] = seeds
    name = Path(args.study).stem
    out = Path(args.out or f"runs/reproduce/{name}-{args.scale}")
    db = args.db
    if args.smoke:
        preset = load_preset(args.study)
        smoke = smoke_overrides(preset, args.scale)
        section = preset["scales"].get(args.scale) or {}
        trimmed = {key: len(section[key]) for key in ("values", "widths", "seeds") if key in smoke}
        # The whole study is checked, not only the cells the smoke keeps, and before the temp dir.
        resolve_preset(args.study, args.scale, data_dir=args.data_dir, overrides=overrides)
        overrides.update(smoke)
        out, smoke_db = throwaway(f"{name}-{args.scale}")
        db = str(smoke_db)
        print(f"smoke: {name} at {args.scale} scale in a throwaway directory, {out}")
    result = run_study(args.study, args.scale, out, data_dir=args.data_dir, device=args.device,
                       executor=args.executor, max_parallel=args.max_parallel, address=args.address,
                       progress=not args.quiet, overrides=overrides, db=db)
    print(result["main_table"])
    print(f"report: {result['report']}")
    if args.smoke:
        print(smoke_report(out, trimmed))
    return 0


SMOKE_EVAL = 8  # images of a smoke run's study-level evaluations (transfer, R2S, the NAS attacks)


def smoke_overrides(preset: dict, scale: str) -> dict:
    """The preset's keys that make every run and evaluation of the study a smoke one."""
    section = preset["scales"].get(scale) or {}
    if preset.get("runner") == "nas":
        train = dict((section.get("settings") or {}).get("train") or {})
        return {"settings.train": {**train, "smoke": True}, "settings.n": SMOKE_EVAL, "settings.aa_n": SMOKE_EVAL}
    out: dict = {"base.smoke": True}
    if "evaluate" in section:
        out["evaluate.n"] = SMOKE_EVAL
    if preset.get("runner") in ("tickets", "overparam"):
        # One cell of each kind (the first value, width and seed) walks the whole path; the others
        # repeat it with another number. Transfer, R2S and NAS keep theirs: they need several.
        for key in ("values", "widths", "seeds"):
            if isinstance(section.get(key), list) and len(section[key]) > 1:
                out[key] = section[key][:1]
    return out


def smoke_report(out, trimmed: dict[str, int] | None = None) -> str:
    """The runs' measured batch times and the projected time of the whole study, run after run."""
    import json

    from inborn.train.smoke import _duration

    smokes = []
    for path in sorted(out.glob("**/summary.json")):
        smoke = json.loads(path.read_text()).get("smoke")
        if smoke:
            smokes.append((path.parent.name, smoke))
    if not smokes:
        return "smoke: no run reported a measurement"
    lines = [f"smoke: {name}: {s['batch_seconds']:.2f}s per batch of {s['smoke_batch_size']}, projected "
             f"{_duration(s['projected_epoch_seconds'])} per epoch, {_duration(s['projected_run_seconds'])} "
             f"for {s['epochs']} epochs" for name, s in smokes]
    total = sum(s["projected_run_seconds"] for _, s in smokes)
    lines.append(f"smoke: projected here for the {len(smokes)} runs of the study, one after another: "
                 f"{_duration(total)} (training and selection; the study's own evaluations come on top)")
    if trimmed:
        lines.append("smoke: ran the first " + ", ".join(f"of {n} {key}" for key, n in trimmed.items())
                     + "; the full study repeats those runs for each")
    return "\n".join(lines)
