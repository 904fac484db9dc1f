"""A termination asked for by a signal, remembered: code that must swallow errors (drawing a figure
must never stop a run) can tell a swallowed termination from an ordinary failure and stop anyway."""

from __future__ import annotations

_requested: int | None = None


def request_stop(code: int) -> None:
    """Remember that the process was asked to end with exit status `code` (a signal handler calls it)."""
    global _requested
    _requested = code


def clear_stop() -> None:
    """Forget a request: a command run in-process (`inborn.cli.main`) starts and ends without one."""
    global _requested
    _requested = None


def stop_requested() -> int | None:
    """The exit status a signal asked for, or None."""
    return _requested


def raise_if_stop_requested() -> None:
    """End the process as the signal asked, if one did (after code that may have swallowed it)."""
    if _requested is not None:
        raise SystemExit(_requested)
