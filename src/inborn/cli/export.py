"""`inborn export TICKET --out FILE`: a ticket as a plain sparse model, with its real size."""

from __future__ import annotations

import argparse
import json

from inborn.cli.common import add_trust_flag


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a ticket as a plain sparse model (safetensors)")
    p.add_argument("ticket", help="a run directory made by inborn search")
    p.add_argument("--out", required=True, help="the .safetensors file to write")
    p.add_argument("--json", action="store_true", help="print the size report as JSON")
    add_trust_flag(p)
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from safetensors.torch import save_file

    from inborn.errors import InbornError
    from inborn.io import atomic_write
    from inborn.runs import load
    from inborn.spec.export import export_metadata, export_plain
    from inborn.store import RunDir
    from inborn.store.guard import check_output_file

    doc = RunDir(args.ticket).read_config()
    spec = doc["model"]
    if doc.get("kind") == "family":
        raise InbornError(f"{args.ticket!r} is a ticket family; export one of its tickets (its tickets/ runs)")
    if "supermask" not in spec:
        raise InbornError(f"{args.ticket!r} is not a ticket (made by inborn search); its model is dense already")
    check_output_file(args.out)  # never a directory, a run's own file, or a file inborn did not write
    tensors, report = export_plain(load(args.ticket), spec)
    atomic_write(args.out, lambda p: save_file(tensors, str(p), metadata=export_metadata(spec, report)))
    if args.json:
        print(json.dumps({"out": args.out, **report}, indent=2))
        return 0
    print(f"wrote {args.out}: {spec['arch']} as a plain state dict (dropped weights are zeros)")
    print(f"  parameters {report['parameters']:,}, non-zero {report['nonzero']:,} (exact zeros left out: dropped "
          f"weights, zero biases; {report['kept']:,} of {report['maskable']:,} maskable weights kept, "
          f"{report['keep_ratio']:.4f})")
    print(f"  dense float32 {report['dense_bytes'] / 1e6:.3f} MB; sparse (non-zero values + 1-bit maps) "
          f"{report['sparse_bytes'] / 1e6:.3f} MB; compression {report['compression']:.1f}x")
    if spec.get("weights") == "stored":  # a ticket over trained weights: they ship with it, no seed rebuilds them
        print(f"  the ticket's mask bits: {report['mask_bits_bytes'] / 1e3:.1f} kB, over trained weights that must "
              "ship with it (no seed rebuilds them)")
    else:
        print(f"  the ticket itself, given the weights' seed: {report['mask_bits_bytes'] / 1e3:.1f} kB of mask bits")
    return 0
