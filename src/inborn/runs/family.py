"""A ticket family's run directory: finished ticket runs combined into one family file, and
loaded back (see inborn.masks.family for what a family is)."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from inborn.errors import InbornError
from inborn.io import atomic_write
from inborn.masks.family import TicketFamily, check_compatible, family_from_tensors, family_tensors, ticket_from_state
from inborn.masks.ticket import weights_digest
from inborn.spec import build_model
from inborn.store import RunDir
from inborn.store.guard import check_output
from inborn.store.run_dir import read_safetensors

FAMILY_FILE = "family.safetensors"


def build_family(ticket_dirs: list[str | Path], out: str | Path) -> TicketFamily:
    """Combine finished ticket runs (same network, same weight seed) into a family in `out`."""
    if not ticket_dirs:
        raise InbornError("a family needs at least one ticket")
    check_output(out, "family", allow=("tickets",))  # never over another run, e.g. a member ticket
    docs = [RunDir(d).read_config() for d in ticket_dirs]
    names = [str(d) for d in ticket_dirs]
    for doc, name in zip(docs, names, strict=True):
        if "supermask" not in doc["model"]:
            raise InbornError(f"{name!r} is not a ticket (made by inborn search)")
    check_compatible([d["model"] for d in docs], names)
    model = build_model(docs[0]["model"]).eval()
    tickets = []
    for doc, name, path in zip(docs, names, ticket_dirs, strict=True):
        tensors, meta = read_safetensors(RunDir(path).file(RunDir.MODEL))
        if meta.get("inborn_weights_digest") not in (None, weights_digest(model)):
            raise InbornError(f"ticket {name!r} was found on other weights than {names[0]!r}")
        tickets.append(ticket_from_state(Path(name).name, doc["model"]["supermask"]["keep_ratio"], model, tensors))
    order = sorted(range(len(tickets)), key=lambda i: tickets[i].keep_ratio)
    family = TicketFamily(model, [tickets[i] for i in order])
    run = RunDir(out)
    config = {**docs[0]["config"], "members": [str(ticket_dirs[i]) for i in order]}
    spec = dict(docs[0]["model"])
    run.write_config(config, spec, kind="family")
    tensors, meta = family_tensors(family)
    atomic_write(run.file(FAMILY_FILE), lambda p: save_file(tensors, str(p), metadata=meta))
    return family


def load_family(path: str | Path, device: str | torch.device = "cpu") -> TicketFamily:
    run = RunDir(path)
    doc = run.read_config()
    if doc.get("kind") != "family":
        raise InbornError(f"{str(path)!r} is not a ticket family (made by inborn family)")
    tensors, meta = read_safetensors(run.file(FAMILY_FILE))
    model = build_model(doc["model"]).eval()
    return family_from_tensors(model, tensors, meta, path).to(device).eval()
