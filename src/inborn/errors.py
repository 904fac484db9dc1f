"""User-facing errors: the CLI prints them as one line and exits non-zero."""


class InbornError(Exception):
    """A problem with what the user asked for (bad path, unknown name, bad value).

    Library code raises it with a message that names what was expected where; the
    CLI turns it into `inborn: error: <message>` and exit status 2, never a traceback.
    """


def one_line(exc: BaseException) -> str:
    """An exception as one short line (`OSError: ...`), for error messages that name their cause."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__
