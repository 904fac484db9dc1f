"""`inborn import`: a user's own PyTorch model and weights become a run directory."""

from __future__ import annotations

import argparse
import json

from inborn.errors import InbornError
from inborn.values import parse_options, parse_real


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import", help="make a run directory from your own PyTorch model and weights",
        description="Import your own network (a function or class in a .py file or an installed module) with "
                    "its weights, so that eval, search --from-run, ensemble, family r2s --baseline and card "
                    "work on it. The run records the code's file and SHA-256 (or module and package version) "
                    "and refuses to load once the file has changed. The code is recorded as trusted on "
                    "this machine; elsewhere, loading the run needs INBORN_TRUST_CODE=1 (see docs/import.md).")
    p.add_argument("--model", required=True, metavar="FILE.py:FACTORY",
                   help="FILE.py:FACTORY or package.module:FACTORY; FACTORY(**kwargs) returns an nn.Module "
                        "whose logits are [batch, classes]")
    p.add_argument("--kwargs", nargs="+", action="extend", default=[], metavar="K=V",
                   help="keyword arguments of the factory, values read as YAML scalars (depth=28 -> int)")
    p.add_argument("--weights", required=True, help="a state dict: .safetensors, or .pt/.pth (read with "
                                                    "weights_only=True only)")
    p.add_argument("--data", required=True, help="the data set the model classifies (see `inborn data`)")
    p.add_argument("--data-dir", help="directory holding the data set's files (local data sets)")
    p.add_argument("--mean", nargs="+", metavar="M", help="if the model takes normalised inputs: the per-channel "
                   "mean it expects (pixels in [0,1]); the normalisation is put inside the run's model")
    p.add_argument("--std", nargs="+", metavar="S", help="the per-channel std, with --mean")
    p.add_argument("--eps", help="the run's ε in pixel units, e.g. 8/255 (default: the data set's usual one)")
    p.add_argument("--out", required=True, help="run directory to create")
    p.add_argument("--db", help="results database (default runs/inborn.db or $INBORN_DB)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_import)


def _floats(values: list[str] | None, flag: str) -> list[float] | None:
    if values is None:
        return None
    out = [parse_real(t, flag) for v in values for t in v.replace(",", " ").split()]
    if not out:
        raise InbornError(f"{flag} expects numbers, got {' '.join(values)!r}")
    return out


def cmd_import(args: argparse.Namespace) -> int:
    from inborn.runs.imported import import_model
    from inborn.store import ResultsDB
    from inborn.values import parse_eps

    kwargs = parse_options(args.kwargs)
    mean, std = _floats(args.mean, "--mean"), _floats(args.std, "--std")
    if (mean is None) != (std is None):
        raise InbornError("--mean and --std go together")
    eps = parse_eps(args.eps) if args.eps is not None else None
    summary = import_model(args.model, args.weights, args.data, args.out, kwargs=kwargs, data_dir=args.data_dir,
                           mean=mean, std=std, eps=eps, db=ResultsDB(args.db))
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    src = summary["source"]
    where = f"{src['file']} (sha256 {src['sha256'][:12]})" if "file" in src else \
        f"module {src['module']} (version {src.get('version')})"
    print(f"imported {summary['factory']} from {where}: {summary['parameters']:,} parameters, "
          f"{summary['data']}")
    print(f"clean accuracy on the {summary['n_test']:,} test images: {summary['clean_acc_test']:.4f} (far below what "
          f"the model should reach? check --mean/--std); ε recorded: {summary['eps']:.4g}")
    print(f"run: {args.out}")
    return 0
