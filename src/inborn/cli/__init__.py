"""The `inborn` command line. Every user mistake ends as one line on stderr and exit status 2."""

from __future__ import annotations

import sys

from inborn.cli import (
    card,
    demo,
    ensemble,
    evaluate,
    export,
    family,
    finetune,
    import_,
    listing,
    nas,
    reproduce,
    runs,
    search,
    sweep,
    train,
)
from inborn.cli.common import OneLineParser
from inborn.errors import InbornError


def build_parser() -> OneLineParser:
    from inborn import __version__

    parser = OneLineParser(prog="inborn", description="Adversarial robustness from a network's structure.")
    parser.add_argument("--version", action="version", version=f"inborn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True
    sub.add_parser("data", help="list data sets").set_defaults(func=listing.cmd_data)
    sub.add_parser("models", help="list models").set_defaults(func=listing.cmd_models)
    sub.add_parser("attacks", help="list attacks").set_defaults(func=listing.cmd_attacks)
    train.add_parser(sub)
    evaluate.add_parser(sub)
    search.add_parser(sub)
    finetune.add_parser(sub)
    family.add_parsers(sub)
    ensemble.add_parser(sub)
    export.add_parser(sub)
    import_.add_parser(sub)
    card.add_parser(sub)
    runs.add_parser(sub)
    demo.add_parser(sub)
    sweep.add_parser(sub)
    nas.add_parser(sub)
    reproduce.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    code = _run(argv)
    from inborn import distributed  # torch: imported once a command has run, so `--help` stays fast

    distributed.exit_now(code)  # under torchrun only: see there
    return code


def _run(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except InbornError as e:
        print(f"inborn: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `inborn models | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("inborn: interrupted (the last complete epoch is kept; --resume continues)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
