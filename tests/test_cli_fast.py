"""`inborn --help` and `inborn CMD --help` import no torch: the parsers are built from torch-free
modules (the config dataclasses among them), and `import inborn` loads its public names lazily."""

from __future__ import annotations

import json
import subprocess
import sys

_PROBE = """
import contextlib, io, json, sys
from inborn.cli import build_parser, main

commands = sorted(build_parser()._subparsers._group_actions[0].choices)
for argv in ([], *([c] for c in commands)):
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            main([*argv, "--help"])
        except SystemExit as e:
            assert e.code == 0, (argv, e.code)
print(json.dumps({"commands": commands,
                  "torch": sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))}))
"""


def test_help_of_every_command_imports_no_torch():
    proc = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"train", "search", "finetune", "eval", "family", "nas", "sweep"} <= set(out["commands"])
    assert out["torch"] == []


def test_import_inborn_is_lazy_but_its_public_names_work():
    probe = ("import sys, inborn; light = 'torch' not in sys.modules; "
             "print(light, callable(inborn.load), callable(inborn.evaluate), callable(inborn.create_model), "
             "'torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True", "True", "True", "True"]
