"""The architecture robustness study (Devaguptapu et al., 2021) as one command.

Every architecture is trained naturally (complete runs are reused, interrupted ones resumed),
attacked with each attack over an ε grid in pixel units (the authors' code attacked normalised
tensors, which shrank its ε by the data's std), scored with the HRS, and the random DARTS
architectures are ensembled. Everything lands in one report directory.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from inborn.analysis.flops import count_flops, count_parameters
from inborn.analysis.plots import plot_study_curves
from inborn.data import load_data
from inborn.device import resolve_device
from inborn.errors import InbornError
from inborn.evaluation.evaluate import evaluate, worst_case_over
from inborn.evaluation.journal import model_fingerprint
from inborn.evaluation.results import Evaluation, evaluation_rows
from inborn.io import atomic_write_json, atomic_write_text
from inborn.models.ensemble import Ensemble
from inborn.models.registry import model_entry
from inborn.runs import load
from inborn.store import ResultsDB
from inborn.store.guard import claim_study
from inborn.studies.execute import run_or_fail
from inborn.studies.nas_config import NasStudyConfig
from inborn.sweep import Cell
from inborn.sweep.cells import check_settings
from inborn.sweep.grid import safe_name
from inborn.tables import markdown_table, result_column, write_csv

HAND_CRAFTED, PUBLISHED_NAS, RANDOM_NAS, ENSEMBLE, TICKET = "hand-crafted", "NAS", "random NAS", "ensemble", "ticket"
_RANGE = re.compile(r"^random:(\d+)-(\d+)$")


def expand_archs(items: list[str]) -> list[str]:
    """`random:0-4` stands for random:0 ... random:4; everything else is a model name."""
    names: list[str] = []
    for item in items:
        item = item.strip()
        if m := _RANGE.match(item):
            lo, hi = int(m.group(1)), int(m.group(2))
            if hi < lo:
                raise InbornError(f"empty range {item!r}")
            names += [f"random:{s}" for s in range(lo, hi + 1)]
        elif item:
            names.append(item)
    return list(dict.fromkeys(names))


def arch_family(arch: str) -> str:
    if arch.startswith("random:"):
        return RANDOM_NAS
    return PUBLISHED_NAS if model_entry(arch).family == "darts" else HAND_CRAFTED


def eps_grid(cfg: NasStudyConfig, default_eps: float) -> list[float]:
    grid = cfg.eps if cfg.eps is not None else [default_eps * f for f in (1 / 8, 1 / 4, 1 / 2, 1)]
    if not grid or any(e < 0 for e in grid):
        raise InbornError(f"the ε grid must be non-empty and >= 0, got {grid}")
    return sorted(grid)



def study_cells(cfg: NasStudyConfig, out: Path, device: str = "auto") -> list[Any]:
    """One training run per architecture (and one ticket search each, if asked). A cell holds the
    study's settings only; its run resolves the rest (the data set's recipe) as any run does, so
    `--train-opt` reaches every cell, ticket searches included (a `device` there wins over `device`)."""
    cells = []
    for arch in expand_archs(cfg.archs):
        nas = arch_family(arch) != HAND_CRAFTED
        config: dict[str, Any] = {
            "data": cfg.data, "data_dir": cfg.data_dir, "arch": arch, "epochs": cfg.epochs, "adv": "none",
            "seed": cfg.seed, "device": device,
            **({"model_kwargs": dict(cfg.nas_options)} if nas else {"width": cfg.width}),
            **cfg.train, **(cfg.nas_train if nas else {}),
        }
        cells.append(Cell(name=arch, kind="train", config=config, out=out / "runs" / safe_name(arch)))
        if cfg.tickets is not None:
            search = {**config, "adv": "pgd", "ticket": {"keep_ratio": cfg.tickets}, "aux_weight": 0.0,
                      "drop_path": 0.0}
            cells.append(Cell(name=f"{arch} RST {cfg.tickets:g}", kind="search", config=search,
                              out=out / "runs" / safe_name(f"{arch}-rst{cfg.tickets:g}")))
    return cells  # run_nas_study checks each (sweep.cells.check_settings) before any runs


def _eval_key(cfg: NasStudyConfig, grid: list[float], model_hash: str) -> str:
    """The cache key: the attack settings and the model itself (a retrained cell is re-evaluated)."""
    settings = {"attacks": cfg.attacks, "eps": grid, "steps": cfg.steps, "n": cfg.n, "aa_n": cfg.aa_n,
                "aa_eps": cfg.aa_eps, "seed": cfg.seed, "model": model_hash}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def evaluate_model(model: torch.nn.Module, splits, cfg: NasStudyConfig, grid: list[float], cache: Path,
                   device: torch.device) -> dict[str, Any]:
    """Clean and robust accuracy for every attack and ε, and the per-sample worst case over the
    attacks on the images every attack ran on; cached in `cache` for re-runs of the same model.

    AutoAttack runs on the first `aa_n` images only (it is the slow one); the others on `n`.
    The result is the cache's JSON: plain dicts, as `to_dict()` gives the evaluations.
    """
    key = _eval_key(cfg, grid, model_fingerprint(model))
    if cache.exists():
        stored = json.loads(cache.read_text())
        if stored.get("key") == key:
            return stored["result"]
    parts: list[Evaluation] = []
    fast = [a for a in cfg.attacks if a != "autoattack"]
    if fast:
        parts.append(evaluate(model, splits.test, attacks=fast, eps=grid, steps=cfg.steps, n=cfg.n, seed=cfg.seed,
                              device=device, per_sample=True))
    if "autoattack" in cfg.attacks:
        aa_grid = grid if cfg.aa_eps is None else sorted(cfg.aa_eps)
        parts.append(evaluate(model, splits.test, attacks=["autoattack"], eps=aa_grid, n=cfg.aa_n, seed=cfg.seed,
                              device=device, per_sample=True))
    result = {"n": parts[0].n, "clean_acc": parts[0].clean_acc,
              "results": [{**r.to_dict(), "n": p.n} for p in parts for r in p.results],
              "worst_case": _worst_case(parts, grid)}
    result["parts"] = [{k: v for k, v in p.to_dict().items() if k != "per_sample"} for p in parts]
    atomic_write_json(cache, {"key": key, "result": result})
    return result


def _worst_case(parts: list[Evaluation], grid: list[float]) -> list[dict[str, Any]]:
    """Per ε, the share of images that are correct clean and survive every attack run at that ε,
    over the images all those attacks ran on (every evaluation takes the head of the test split):
    evaluate's own worst case, over the fast attacks' evaluation and AutoAttack's."""
    out = []
    for e in grid:
        w = worst_case_over(parts, e)
        if w is not None:
            out.append({"eps": w.eps, "n": w.n, "attacks": w.attacks, "robust_acc": w.robust_acc})
    return out


def _row(name: str, family: str, model: torch.nn.Module, shape: tuple[int, ...], result: dict[str, Any],
         ) -> dict[str, Any]:

    params = count_parameters(model)  # as DARTS counts: without the auxiliary head
    row: dict[str, Any] = {"model": name, "family": family, "params": params,
                           "aux params": count_parameters(model, include_auxiliary=True) - params,
                           "macs": count_flops(model, shape), "clean": result["clean_acc"]}
    for r in result["results"]:
        row[result_column(r["attack"], r["eps"])] = r["robust_acc"]
        row[result_column(r["attack"], r["eps"], metric="hrs")] = r["hrs"]
    for w in result.get("worst_case", []):
        row[result_column("worst", w["eps"])] = w["robust_acc"]
    return row


def check_study(cfg: NasStudyConfig) -> tuple[list[str], list[str]]:
    """The study's architectures and ensemble members, every cell's settings checked: what must hold
    before anything is written (`inborn nas` and a NAS preset under `inborn reproduce` alike)."""
    if cfg.combine not in ("logits", "softmax"):
        raise InbornError(f"--combine must be logits or softmax, got {cfg.combine!r}")
    archs = expand_archs(cfg.archs)
    for arch in archs:
        arch_family(arch)  # an unknown name fails here
    members = expand_archs(cfg.ensemble)
    if missing := [m for m in members if m not in archs]:
        raise InbornError(f"ensemble members must be among the architectures; not there: {', '.join(missing)}")
    if len(members) == 1:
        raise InbornError("an ensemble needs at least two members")
    if cfg.eps is not None and not cfg.eps:
        raise InbornError("the ε grid (eps) must not be empty")
    for cell in study_cells(cfg, Path("nowhere")):  # paths do not matter to the check
        check_settings(cell.config, cell.name)
    return archs, members


def run_nas_study(cfg: NasStudyConfig, out: str | Path, *, executor: str = "local", max_parallel: int = 1,
                  address: str | None = None, device: str = "auto", progress: bool = True,
                  db: str | Path | None = None, study: str = "nas") -> dict[str, Any]:
    """Train, evaluate and ensemble as `cfg` says; write the report into `out`; return its tables.
    `study`: the name the output directory's marker holds (a preset's, under `inborn reproduce`)."""

    out = Path(out)
    archs, members = check_study(cfg)
    splits = load_data(cfg.data, cfg.data_dir, seed=cfg.seed)  # fail on a missing data set before any run starts
    grid = eps_grid(cfg, splits.info.default_eps)
    cells = study_cells(cfg, out, device)
    if db is not None:
        ResultsDB(db).check()
    claim_study(out, "study", name=study)
    atomic_write_json(out / "study.json", {"study": "nas", "config": cfg.to_dict(), "eps": grid})
    run_or_fail(cells, executor=executor, max_parallel=max_parallel, address=address, db=db, progress=progress)

    dev = resolve_device(device)
    info = splits.info
    shape = (info.in_channels, info.image_size, info.image_size)
    rows: list[dict[str, Any]] = []
    models: dict[str, torch.nn.Module] = {}
    results: dict[str, dict[str, Any]] = {}
    bar = tqdm(cells, desc="attacking", disable=not progress)
    for cell in bar:
        bar.set_postfix(model=cell.name)
        model = load(cell.out, device=dev)
        family = TICKET if cell.kind == "search" else arch_family(cell.config["arch"])
        cache = out / "evals" / f"{safe_name(cell.name)}.json"
        results[cell.name] = evaluate_model(model, splits, cfg, grid, cache, dev)
        rows.append(_row(cell.name, family, model, shape, results[cell.name]))
        models[cell.name] = model
    ensemble_rows: list[dict[str, Any]] = []
    if members:
        ens = Ensemble([models[m] for m in members], combine=cfg.combine).eval()
        name = f"ensemble of {len(members)} ({cfg.combine})"
        results[name] = evaluate_model(ens, splits, cfg, grid, out / "evals" / "ensemble.json", dev)
        rows.append(_row(name, ENSEMBLE, ens, shape, results[name]))
        ensemble_rows = _ensemble_table(rows, members, name)

    attack_cols = [result_column(a, e) for a in cfg.attacks for e in grid]
    attack_cols += [result_column("worst", e) for e in grid] if len(cfg.attacks) > 1 else []
    columns = ["model", "family", "params", "aux params", "macs", "clean", *attack_cols,
               *[result_column(a, e, metric="hrs") for a in cfg.attacks for e in grid]]
    write_csv(out / "table.csv", rows, columns)
    if ensemble_rows:
        write_csv(out / "ensemble.csv", ensemble_rows, list(ensemble_rows[0]))

    plot_study_curves(rows, cfg.attacks, grid, out / "robust_vs_eps.png")
    findings = _findings(rows, grid, ensemble_rows, cfg.attacks)
    atomic_write_text(out / "report.md", _report(cfg, grid, rows, attack_cols, ensemble_rows, findings))
    atomic_write_json(out / "study.json", {"study": "nas", "config": cfg.to_dict(), "eps": grid,
                                           "rows": rows, "ensemble": ensemble_rows, "findings": findings})
    _record(cells, results, db)
    main = _main_attack(cfg.attacks)
    main_table = markdown_table(rows, ["model", "family", "clean", *[result_column(main, e) for e in grid]])
    return {"rows": rows, "ensemble": ensemble_rows, "findings": findings, "eps": grid, "main_table": main_table}


def _main_attack(attacks: list[str]) -> str:
    return "pgd" if "pgd" in attacks else attacks[0]


def _ensemble_table(rows: list[dict[str, Any]], members: list[str], name: str) -> list[dict[str, Any]]:
    """The ensemble against each member and against the mean member, for every column."""
    by_name = {r["model"]: r for r in rows}
    keys = [k for k in by_name[name] if k == "clean" or "@" in k and not k.startswith("hrs")]
    table = [{"model": m, **{k: by_name[m].get(k) for k in keys}} for m in members]
    mean = {"model": "mean member", **{k: sum(by_name[m][k] for m in members) / len(members) for k in keys}}
    ens = {"model": name, **{k: by_name[name][k] for k in keys}}
    gain = {"model": "gain over mean member", **{k: ens[k] - mean[k] for k in keys}}
    return [*table, mean, ens, gain]


def _family_mean(rows: list[dict[str, Any]], families: tuple[str, ...], column: str) -> float | None:
    values = [r[column] for r in rows if r["family"] in families and r.get(column) is not None]
    return sum(values) / len(values) if values else None


def _findings(rows: list[dict[str, Any]], grid: list[float], ensemble_rows: list[dict[str, Any]],
              attacks: list[str]) -> list[str]:
    """Plain sentences: which family is more robust at the smallest and largest ε, and the ensemble gain."""
    attack = _main_attack(attacks)
    lines = []
    for label, e in (("smallest", grid[0]), ("largest", grid[-1])):
        col = result_column(attack, e)
        hand = _family_mean(rows, (HAND_CRAFTED,), col)
        nas = _family_mean(rows, (PUBLISHED_NAS, RANDOM_NAS), col)
        if hand is None or nas is None:
            continue
        if abs(nas - hand) < 0.005:
            verdict = "neither family is more robust"
        else:
            winner = "NAS (published and random)" if nas > hand else "hand-crafted"
            verdict = f"{winner} networks are more robust (by {abs(nas - hand):.3f})"
        lines.append(f"At the {label} ε ({e:.4g}), {attack.upper()}: hand-crafted mean {hand:.3f}, NAS mean {nas:.3f}"
                     f" → {verdict}.")
    if ensemble_rows:
        gain = ensemble_rows[-1]
        cols = [(e, result_column(attack, e)) for e in grid]
        parts = [f"ε={e:.4g}: {gain[col]:+.3f}" for e, col in cols if col in gain]
        lines.append(f"Ensemble gain over its mean member under {attack.upper()}: " + ", ".join(parts)
                     + f"; clean {gain['clean']:+.3f}.")
    return lines


def _report(cfg: NasStudyConfig, grid: list[float], rows: list[dict[str, Any]], attack_cols: list[str],
            ensemble_rows: list[dict[str, Any]], findings: list[str]) -> str:
    main = _main_attack(cfg.attacks)
    hrs_cols = [result_column(main, e, metric="hrs") for e in grid]
    parts = [
        "# Architecture robustness study",
        "",
        f"Data `{cfg.data}`, {cfg.epochs} epochs of natural training per network (no adversarial training), "
        f"ε grid {', '.join(f'{e:.4g}' for e in grid)} in pixel units (L∞). "
        f"Attacks on the first {cfg.n} test images (AutoAttack on the first {cfg.aa_n}"
        + (f", at ε {', '.join(f'{e:.4g}' for e in cfg.aa_eps)} only" if cfg.aa_eps is not None else "")
        + f"); PGD-{cfg.steps}. "
        "A sample counts as robust only if it is classified correctly both clean and under attack. "
        "MACs: multiply-accumulates of one forward pass of one image; params as DARTS counts them, without "
        "the auxiliary head. `worst@ε`: the share of images that survive every attack at that ε, on the "
        f"images every attack ran on (the first {min(cfg.n, cfg.aa_n) if 'autoattack' in cfg.attacks else cfg.n}).",
        "",
        "## Findings",
        "",
        *[f"- {line}" for line in findings],
        "",
        "## Robust accuracy",
        "",
        markdown_table(rows, ["model", "family", "params", "macs", "clean", *attack_cols]),
        "",
        "![robust accuracy against ε](robust_vs_eps.png)",
        "",
        f"## Harmonic robustness score (HRS = 2CR/(C+R)), {main.upper()}",
        "",
        markdown_table(rows, ["model", "family", "clean", *hrs_cols]),
    ]
    if ensemble_rows:
        cols = [k for k in ensemble_rows[0] if k != "model"]
        parts += ["", f"## The ensemble against its members ({cfg.combine} averaging, attacked white-box as one model)",
                  "", markdown_table(ensemble_rows, ["model", *cols])]
    parts += ["", "Files: `table.csv` (every attack, ε and HRS), `ensemble.csv`, `robust_vs_eps.png`, "
              "`study.json`; runs in `runs/`, cached evaluations in `evals/`.", ""]
    return "\n".join(parts)


def _record(cells: list[Any], results: dict[str, dict[str, Any]], db: str | Path | None) -> None:
    rows = []
    for cell in cells:
        for part in results[cell.name]["parts"]:
            rows += evaluation_rows(part, cell.out, "test")
    ResultsDB(db).add_results(rows)
