"""Model cards (`inborn card RUN`): a RobustBench `model_info` entry, field for field (percent
strings, ε as "8/255", `unreliable` when partial), from a run's AutoAttack evaluation on the full
test split; inborn's own figures (fractions), the ticket's keep ratio and sparsity and what
identifies the measurement under its `inborn` key.

The figures come from the results database (and the run's eval.json), only from evaluations of
the model as it is now (same fingerprint). Without an AutoAttack evaluation of the whole test
split the card is refused, or written with `partial: true` and its n when asked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inborn import __version__
from inborn.errors import InbornError
from inborn.evaluation.journal import model_fingerprint
from inborn.evaluation.results import check_evaluation_doc, evaluation_rows
from inborn.io import read_json
from inborn.runs import load, load_run_data, run_eps
from inborn.store import ResultsDB, RunDir

AUTOATTACKS = {"autoattack": "standard", "autoattack-rand": "rand"}
RANDOMISED_PROTOCOL = ("{attack} (AutoAttack version {version}): gradients averaged over {eot} forwards (EOT), "
                       "no early stop, last iterate scored; every classification repeated {repeats} times and "
                       "reported as the mean; a point counts as robust only if AutoAttack did not fool it and "
                       "the model classifies the returned point correctly")


def _candidates(run: RunDir, db: ResultsDB | None) -> list[dict[str, Any]]:
    """AutoAttack rows on the test split, from the database and the run's eval.json."""
    rows: list[dict[str, Any]] = []
    if db is not None and db.path.exists():
        rows += [dict(r) for r in db.results(run_path=str(run.path.resolve()), split="test")]
    eval_json = run.file("eval.json")
    if eval_json.exists():
        result = read_json(eval_json, "evaluation")
        check_evaluation_doc(result, eval_json)
        if result.get("split") == "test":
            for r in evaluation_rows(result, run.path, "test"):
                rows.append({**r, "created": eval_json.stat().st_mtime})
    return [r for r in rows if r["attack"] in AUTOATTACKS]


def _architecture(doc: dict[str, Any]) -> tuple[str, int, dict[str, Any]]:
    """(architecture, forward passes per prediction, what the card adds for this kind of run)."""
    kind, spec = doc.get("kind"), doc["model"]
    if kind == "ensemble":
        members = list(doc["config"].get("members") or [])
        return (f"ensemble of {len(members)} ({doc['config'].get('combine', 'logits')}): "
                f"{', '.join(str(m) for m in spec.get('members', []))}", len(members),
                {"ensemble_members": len(members)})
    if kind == "family":
        tickets = list(doc["config"].get("members") or [])
        return (f"Random RST Switch over {len(tickets)} tickets of {spec['arch']}", 1,
                {"random_switch_tickets": len(tickets)})
    return str(spec["arch"]), 1, {}


def model_card(run_dir: str | Path, *, db: ResultsDB | None = None, data_dir: str | None = None,
               partial: bool = False, reported: float | None = None, name: str | None = None,
               link: str | None = None, authors: str | None = None, venue: str | None = None,
               device: str = "cpu") -> dict[str, Any]:
    """The card of the run in `run_dir` (see the module's docstring)."""
    run = RunDir(run_dir)
    doc = run.read_config()
    splits = load_run_data(doc, data_dir)
    full = len(splits.test)
    fingerprint = model_fingerprint(load(run.path, device=device))
    rows = _candidates(run, db)
    if not rows:
        raise InbornError(f"no AutoAttack evaluation of {str(run.path)!r} on the test split: run "
                          f"`inborn eval {run.path} --attack autoattack` first (on the whole test split)")
    current = [r for r in rows if not r.get("fingerprint") or r["fingerprint"] == fingerprint]
    if not current:
        raise InbornError(f"the AutoAttack evaluations of {str(run.path)!r} are of another model (fingerprint "
                          "differs): evaluate it again")
    eps = run_eps(doc, splits)
    at_eps = [r for r in current if abs(float(r["eps"]) - eps) < 1e-9] or current
    whole = [r for r in at_eps if int(r["n"]) >= full]
    if not whole and not partial:
        best_n = max(int(r["n"]) for r in at_eps)
        raise InbornError(f"no AutoAttack evaluation of the full test split ({full} images) of {str(run.path)!r}, "
                          f"only of {best_n}: evaluate without --n, or pass --partial")
    pool = whole or at_eps
    row = max(pool, key=lambda r: (int(r["n"]), float(r.get("created") or 0)))
    architecture, passes, extra = _architecture(doc)
    randomised = bool(row.get("randomised"))
    version = AUTOATTACKS[row["attack"]]
    evaluation = {"attack": row["attack"], "autoattack_version": version, "split": "test", "n": int(row["n"]),
                  "test_split_size": full, "seed": row.get("seed", 0), "precision": row.get("precision", "float32"),
                  "randomised": randomised, "repeats": row.get("repeats") or 1,
                  "eot_samples": row.get("eot_samples") or 1}
    inborn_part: dict[str, Any] = {
        "kind": doc.get("kind"),
        "width": doc["model"].get("width"),
        "threat_model": "Linf",
        "eps": float(row["eps"]),
        "clean_acc": float(row["clean_acc"]),
        "autoattack_acc": float(row["robust_acc"]),
        "reported": reported,
        "partial": int(row["n"]) < full,
        "n": int(row["n"]),
        "evaluation": evaluation,
        "fingerprint": fingerprint,
        "version": __version__,
        "run": str(run.path.resolve()),
        **extra,
        **_ticket_fields(run),
    }
    if randomised:
        inborn_part["adaptive_protocol"] = RANDOMISED_PROTOCOL.format(attack=row["attack"], version=version,
                                                                      eot=evaluation["eot_samples"],
                                                                      repeats=evaluation["repeats"])
    partial_note = (f"Evaluated on {inborn_part['n']} of the {full} test images (partial): not a full "
                    "RobustBench evaluation." if inborn_part["partial"] else "")
    footnote = " ".join(t for t in (partial_note, inborn_part.get("adaptive_protocol", ""),
                                     _ticket_note(inborn_part)) if t)
    # RobustBench's model_info/<dataset>/<threat>/<name>.json, field for field (percent strings, ε as
    # text), then inborn's own figures as fractions and the measurement's provenance.
    card: dict[str, Any] = {
        "link": link or "",
        "name": name or run.path.resolve().name,
        "authors": authors or "",
        "additional_data": False,
        "number_forward_passes": passes,
        "dataset": doc["config"]["data"],
        "venue": venue or "",
        "architecture": architecture,
        "eps": eps_text(float(row["eps"])),
        "clean_acc": _percent(float(row["clean_acc"])),
        "reported": _percent(reported) if reported is not None else "",
        "autoattack_acc": _percent(float(row["robust_acc"])),
        **({"footnote": footnote} if footnote else {}),
        "unreliable": bool(inborn_part["partial"]),
        "inborn": inborn_part,
    }
    return card


def _percent(share: float) -> str:
    return f"{100 * share:.2f}"


def eps_text(eps: float) -> str:
    """ε as RobustBench writes it: "8/255" for a multiple of 1/255 that has no short decimal, else
    the decimal ("0.1", "0.3")."""
    short = f"{eps:.4g}"
    if float(short) == eps:
        return short
    steps = round(eps * 255)
    return f"{steps}/255" if abs(eps - steps / 255) < 1e-12 else repr(eps)


def _ticket_fields(run: RunDir) -> dict[str, Any]:
    """A ticket's keep ratio and sparsity (of its maskable weights), from its summary."""
    if not run.file(RunDir.SUMMARY).exists():
        return {}
    ticket = run.read_summary().get("ticket")
    if not isinstance(ticket, dict) or not ticket.get("maskable"):
        return {}
    return {"keep_ratio": ticket.get("keep_ratio"), "kept_weights": ticket["kept"],
            "maskable_weights": ticket["maskable"], "sparsity": 1 - ticket["kept"] / ticket["maskable"],
            "weights": ticket.get("weights", "random")}


def _ticket_note(part: dict[str, Any]) -> str:
    if "sparsity" not in part:
        return ""
    over = "trained" if str(part.get("weights", "random")).startswith("trained") else "random, never trained"
    return (f"A robust scratch ticket: a mask keeping {part['kept_weights']:,} of {part['maskable_weights']:,} "
            f"weights ({100 * (1 - part['sparsity']):.1f} %) over {over} weights.")
