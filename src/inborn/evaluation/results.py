"""What an evaluation returns, as typed results (`Evaluation`, `AttackResult`, `WorstCase`), and
the rows of the results database, built in one place for every writer (train, eval, ensemble,
the studies), so that every row carries every setting that changes its number.

A result's `to_dict()` is the JSON users see (`eval.json`, `inborn eval --json`). Every result
can also be read as that dict (`res["clean_acc"]`, `res["results"][0]["robust_acc"]`): the
compatibility view, for callers written against the dict results. New code reads attributes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from functools import partial
from pathlib import Path
from typing import Any

from inborn.errors import InbornError
from inborn.values import is_real, is_share, is_whole


class ResultView(Mapping[str, Any]):
    """The compatibility view of a result dataclass: read-only, the dict `to_dict()` gives
    (`r["hrs"]`, `r.get("warnings", [])`, `{**r}`, `r == {...}`)."""

    def to_dict(self) -> dict[str, Any]:
        """The dataclass's fields by name; a result whose file nests or omits fields overrides it."""
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())


@dataclass(frozen=True, eq=False)  # equality is the view's: the same dict, the same result
class AttackResult(ResultView):
    """One attack at one ε. `warnings` and `robust_acc_after` (the share still robust after each
    sub-attack) come from an attack that reports on itself (AutoAttack); None for the others."""

    attack: str
    eps: float
    steps: int
    step_size: float | None
    restarts: int
    eot_samples: int
    robust_acc: float
    robust_acc_std: float
    hrs: float
    attack_repr: str
    warnings: list[str] | None = None
    robust_acc_after: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)[:10]}
        if self.warnings is not None:
            out["warnings"] = list(self.warnings)
        if self.robust_acc_after is not None:
            out["robust_acc_after"] = dict(self.robust_acc_after)
        return out


@dataclass(frozen=True, eq=False)
class WorstCase(ResultView):
    """At one ε, the share of points correct clean and under every attack in `attacks` (mean and
    spread over repeats). `n`: the points it covers, set for a worst case over several
    evaluations (`evaluate.worst_case_over`), which covers the points all of them ran on."""

    eps: float
    attacks: list[str]
    robust_acc: float
    robust_acc_std: float
    hrs: float
    n: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"eps": self.eps, "attacks": list(self.attacks), "robust_acc": self.robust_acc,
               "robust_acc_std": self.robust_acc_std, "hrs": self.hrs}
        return out if self.n is None else {**out, "n": self.n}


@dataclass(frozen=True, eq=False)
class Evaluation(dict):
    """What `evaluate` returns: clean accuracy, one `AttackResult` per attack and ε, one
    `WorstCase` per ε, and the settings that made them. `per_sample` (None unless asked): every
    sample's flags, packed, keyed by `clean` and `tables.result_column(attack, ε, digits=SAMPLE_DIGITS)`.

    Its compatibility view is a real dict holding `to_dict()` (json.dumps writes it as it is). A
    caller may annotate it with keys of its own (`inborn eval` adds run, split, seconds, ...:
    `result.update(...)`), which the view then holds after the result's; the result's own keys
    are read-only there, as its attributes are.
    """

    n: int
    clean_acc: float
    clean_acc_std: float
    results: list[AttackResult]
    worst_case: list[WorstCase]
    randomised: bool
    repeats: int
    precision: str
    seed: int
    warnings: list[str]
    per_sample: dict[str, Any] | None = None
    fingerprint: str = ""

    def __post_init__(self) -> None:
        dict.update(self, self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """The result's own keys, as `eval.json` and `inborn eval --json` write them (not the caller's annotations)."""
        out = {"n": self.n, "clean_acc": self.clean_acc, "clean_acc_std": self.clean_acc_std,
               "results": [r.to_dict() for r in self.results], "worst_case": [w.to_dict() for w in self.worst_case],
               "randomised": self.randomised, "repeats": self.repeats, "precision": self.precision,
               "seed": self.seed, "warnings": list(self.warnings)}
        if self.per_sample is not None:
            out["per_sample"] = dict(self.per_sample)
        return {**out, "fingerprint": self.fingerprint}

    # -- the view's own keys are read-only; a caller's annotations are not ---
    def _check_key(self, key: Any) -> None:
        if key in _EVALUATION_KEYS:
            raise InbornError(f"an evaluation's {key!r} is read-only; annotate it under a key of your own")

    def __setitem__(self, key: str, value: Any) -> None:
        self._check_key(key)
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: str) -> None:
        self._check_key(key)
        dict.__delitem__(self, key)

    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __ior__(self, other: Any) -> Evaluation:  # type: ignore[override,misc]
        self.update(other)
        return self

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def pop(self, key: str, *default: Any) -> Any:  # type: ignore[override]
        self._check_key(key)
        return dict.pop(self, key, *default)

    def popitem(self) -> tuple[str, Any]:
        raise InbornError("an evaluation's own keys are read-only")

    def clear(self) -> None:
        raise InbornError("an evaluation's own keys are read-only")

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its fields (pickle and deepcopy would otherwise set the view's keys one by one).
        own = {f.name: getattr(self, f.name) for f in fields(self)}
        return _rebuild, (type(self), own, {k: v for k, v in self.items() if k not in _EVALUATION_KEYS})


_EVALUATION_KEYS = frozenset(f.name for f in fields(Evaluation))


def _rebuild(cls: type[Evaluation], own: dict[str, Any], annotations: dict[str, Any]) -> Evaluation:
    result = cls(**own)
    result.update(annotations)
    return result


def result_row(run_path: str | Path, split: str, attack: str, eps: float, *, n: int, clean_acc: float,
               robust_acc: float, hrs: float, settings: dict[str, Any] | None = None,
               extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """One row. `settings` holds the identity fields (steps, step_size, restarts, eot_samples,
    repeats, seed, precision, fingerprint, randomised); what it lacks takes the database's default."""
    return {"run_path": run_path, "split": split, "attack": attack, "eps": eps, "n": n, "clean_acc": clean_acc,
            "robust_acc": robust_acc, "hrs": hrs, **(settings or {}), "extra": extra or {}}


def check_evaluation_doc(doc: Any, path: str | Path) -> None:
    """The shape of an evaluation as `eval.json` holds it (what `evaluation_rows` reads): one line
    naming the file and the field when it is truncated, edited or foreign."""
    where = repr(str(path))

    share = is_share
    radius = partial(is_real, low=0.0)  # an ε: L-inf in [0, 1], an L2 radius may be larger
    count = is_whole
    if not isinstance(doc, dict):
        raise InbornError(f"{where} is not an evaluation (an object)")
    if not count(doc.get("n"), 1):
        raise InbornError(f"{where}: n must be a positive integer, got {doc.get('n')!r}")
    if not share(doc.get("clean_acc")):
        raise InbornError(f"{where}: clean_acc must be an accuracy in [0, 1], got {doc.get('clean_acc')!r}")
    for key in ("results", "worst_case"):
        if not isinstance(doc.get(key), list) or not all(isinstance(r, dict) for r in doc[key]):
            raise InbornError(f"{where}: {key} must be a list of objects")
    for i, r in enumerate(doc["results"]):
        problems = [f"attack {r.get('attack')!r}" if not isinstance(r.get("attack"), str) else "",
                    f"eps {r.get('eps')!r}" if not radius(r.get("eps")) else "",
                    f"steps {r.get('steps')!r}" if not count(r.get("steps"), 0) else "",
                    f"robust_acc {r.get('robust_acc')!r}" if not share(r.get("robust_acc")) else "",
                    f"hrs {r.get('hrs')!r}" if not share(r.get("hrs")) else ""]
        bad = [p for p in problems if p]
        if bad:
            raise InbornError(f"{where}: results[{i}] has a bad or missing {bad[0]}")
    for i, w in enumerate(doc["worst_case"]):
        if not (radius(w.get("eps")) and share(w.get("robust_acc")) and share(w.get("hrs"))
                and isinstance(w.get("attacks"), list)):
            raise InbornError(f"{where}: worst_case[{i}] needs eps, attacks, robust_acc and hrs")


def evaluation_rows(result: Mapping[str, Any], run_path: str | Path, split: str) -> list[dict[str, Any]]:
    """The rows of an `evaluate` result (an `Evaluation`, or its dict as read back from `eval.json`):
    one per attack and ε, and the worst case over several attacks."""
    common = {k: result.get(k) for k in ("repeats", "seed", "precision", "fingerprint", "randomised")}
    # The evaluation's own warnings (a randomised model, PGD overstating it) travel with every row.
    noted = {"evaluation_warnings": list(result["warnings"])} if result.get("warnings") else {}
    rows = []
    for r in result["results"]:
        settings = {**common, "steps": r["steps"], "step_size": r.get("step_size"), "restarts": r.get("restarts"),
                    "eot_samples": r.get("eot_samples")}
        extra = {"warnings": r.get("warnings", []), "robust_acc_std": r.get("robust_acc_std"), **noted}
        rows.append(result_row(run_path, split, r["attack"], r["eps"], n=result["n"], clean_acc=result["clean_acc"],
                               robust_acc=r["robust_acc"], hrs=r["hrs"], settings=settings, extra=extra))
    attacks = sorted({r["attack"] for r in result["results"]})
    if len(attacks) > 1:
        for w in result["worst_case"]:
            same_eps = [r for r in result["results"] if r["eps"] == w["eps"]]
            settings = {**common, "steps": max(r["steps"] for r in same_eps),
                        "restarts": max(r.get("restarts") or 1 for r in same_eps),
                        "eot_samples": max(r.get("eot_samples") or 1 for r in same_eps)}
            rows.append(result_row(run_path, split, "worst:" + "+".join(w["attacks"]), w["eps"], n=result["n"],
                                   clean_acc=result["clean_acc"], robust_acc=w["robust_acc"], hrs=w["hrs"],
                                   settings=settings, extra={"robust_acc_std": w.get("robust_acc_std"), **noted}))
    return rows
