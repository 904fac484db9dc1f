"""`inborn data`, `inborn models`, `inborn attacks`: what the registries hold."""

from __future__ import annotations

import argparse

from inborn.tables import text_table


def cmd_data(args: argparse.Namespace) -> int:
    from inborn.data import list_datasets

    rows = [{"name": n, "source": "local files (--data-dir)" if needs else "built in", "summary": s}
            for n, s, needs in list_datasets()]
    print(text_table(rows))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from inborn.models import list_models

    print(text_table([{"name": n, "family": f, "summary": s} for n, f, s in list_models()]))
    return 0


def cmd_attacks(args: argparse.Namespace) -> int:
    from inborn.attacks import ATTACKS

    print(text_table([{"name": n, "summary": s} for n, (_, _, s) in ATTACKS.items()]))
    return 0
