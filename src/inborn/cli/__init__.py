"""The `inborn` command line. Every user mistake ends as one line on stderr and exit status 2."""

from __future__ import annotations

import errno
import os
import signal
import sys
import warnings
from typing import Any

from safetensors import SafetensorError

from inborn.cli import (
    card,
    compare,
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
from inborn.interrupts import clear_stop, request_stop


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
    compare.add_parser(sub)
    demo.add_parser(sub)
    sweep.add_parser(sub)
    nas.add_parser(sub)
    reproduce.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help, --version, or a usage mistake (one line, exit 2): returned, not raised
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    code = _run(args)
    from inborn import distributed  # torch: imported once a command has run, so `--help` stays fast

    distributed.exit_now(code)  # under torchrun only: see there
    return code


def _one_line_warning(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> str:
    """A warning as the command line shows it: `inborn: warning: ...`, without the source line."""
    return f"inborn: warning: {message}\n" if issubclass(category, UserWarning) else _python_format(
        message, category, *args, **kwargs)


_python_format = warnings.formatwarning


def _run(args: Any) -> int:
    clear_stop()
    previous = _on_sigterm()
    warnings.formatwarning = _one_line_warning
    consent = os.environ.get("INBORN_TRUST_CODE")
    if getattr(args, "trust_code", False):  # for this command only: the model loader and sweep cells read it
        os.environ["INBORN_TRUST_CODE"] = "1"
    try:
        return int(args.func(args) or 0)
    except SafetensorError as e:  # safetensors' own error on a failed write (a full disk), not an OSError
        print(f"inborn: error: cannot write the model file: {_first_line(str(e))}", file=sys.stderr)
        return 2
    except InbornError as e:
        print(f"inborn: error: {_first_line(str(e))}", file=sys.stderr)
        return 2
    except OSError as e:  # a read-only or full file system, a name too long, a file where a directory goes
        if isinstance(e, BrokenPipeError):  # e.g. `inborn models | head`
            sys.stderr.close()
            return 0
        print(f"inborn: error: {_os_error(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("inborn: interrupted (the last complete epoch is kept; --resume continues)", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = _python_format
        clear_stop()  # the request ended this command; a later in-process command starts afresh
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if getattr(args, "trust_code", False):
            os.environ.pop("INBORN_TRUST_CODE", None)
            if consent is not None:
                os.environ["INBORN_TRUST_CODE"] = consent


def _on_sigterm() -> Any:
    """SIGTERM ends a command as an exception (exit 143), so that its `finally` blocks run and a
    run's database row says `interrupted`. Returns the handler it replaced (None off the main thread)."""
    def terminate(signum: int, frame: Any) -> None:
        request_stop(128 + signum)  # remembered, in case code that must not fail swallows the exit below
        raise SystemExit(128 + signum)

    try:
        return signal.signal(signal.SIGTERM, terminate)
    except ValueError:  # not the main thread
        return None


def _first_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"


def _os_error(e: OSError) -> str:
    """An OSError as one line: what failed, where, and (for the usual ones) what to do."""
    reason = e.strerror or type(e).__name__
    where = f": {e.filename!r}" if e.filename else ""
    hints = {errno.ENOSPC: "free some space and run the same command again",
             errno.EROFS: "choose a writable --out",
             errno.EACCES: "choose a directory you can write",
             errno.ENAMETOOLONG: "choose a shorter name",
             errno.EDQUOT: "free some space and run the same command again"}
    hint = hints.get(e.errno)
    return f"{reason}{where}" + (f" ({hint})" if hint else "")


if __name__ == "__main__":
    sys.exit(main())
