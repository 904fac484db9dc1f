"""A study file (a copied and edited preset, `inborn reproduce mine.yaml`) is checked as strictly as
the flags, whole, before anything is written (issue 25).

One table of bad study files, one per kind of mistake: each gives exit status 2, exactly one line on
stderr starting `inborn: error:` and naming what is wrong, no traceback, and no file or directory
made (the report directory and the database included). Every built-in preset passes at every scale,
as written and as `--smoke` trims it.
"""

from __future__ import annotations

import copy
import os

import pytest
import yaml

from inborn.cli import main
from inborn.cli.reproduce import smoke_overrides
from inborn.errors import InbornError
from inborn.studies.presets import _CHECKS, STUDY_KEYS, load_preset, preset_names, resolve_preset

BASE = {"data": "digits", "arch": "fc", "width": 1, "eps": 0.1, "epochs": 1, "adv": "pgd",
        "ticket": {"keep_ratio": 0.1, "pattern": "element", "init": "signed_constant"}}
# A valid ticket study; each case below breaks one thing of it.
GOOD = {"study": "mine", "runner": "tickets", "title": "mine", "vary": "ticket.keep_ratio",
        "baselines": ["dense-at", "size-matched", "random-mask"], "finetune": ["inherit", "reinit"],
        "scales": {"quick": {"seeds": [0, 1], "base": BASE, "values": [0.1, 0.3]}}}
FAMILY = {**{k: v for k, v in GOOD.items() if k != "finetune"}, "runner": "family", "baselines": ["dense-at"],
          "protocols": ["paper", "eot"],
          "scales": {"quick": {"base": BASE, "values": [0.1, 0.3], "evaluate": {"n": 20, "steps": 2}}}}
OVERPARAM = {**GOOD, "runner": "overparam", "widen": "width",
             "scales": {"quick": {**GOOD["scales"]["quick"], "widths": [0.5, 1]}}}
NAS = {"study": "mine", "runner": "nas",
       "scales": {"quick": {"settings": {"data": "digits", "archs": ["conv2", "fc"], "ensemble": [], "epochs": 1}}}}


def _edit(doc, **changes):
    """A copy of `doc` with keys set, `__` between the parts of a nested key (`scales__quick__values`);
    _DELETE removes the key."""
    doc = copy.deepcopy(doc)
    for dotted, value in changes.items():
        *parents, leaf = dotted.replace("__", ".").split(".")
        node = doc
        for part in parents:
            node = node[part]
        if value is _DELETE:
            node.pop(leaf)
        else:
            node[leaf] = value
    return doc


_DELETE = object()
Q = "scales__quick__"  # a key of the quick scale

# (case, study file, what the error line must say)
CASES = [
    # Shapes that ended in tracebacks.
    ("scale-null", _edit(GOOD, scales__quick=None),
     "scale 'quick' of {file} must be a mapping of settings, got null"),
    ("scale-a-list", _edit(GOOD, scales__quick=[0.1]), "scale 'quick' of {file} must be a mapping"),
    ("values-not-a-list", _edit(GOOD, **{Q + "values": 0.1}),
     "'values' in scale 'quick' of {file} must be a non-empty list"),
    ("values-empty", _edit(GOOD, **{Q + "values": []}), "'values' in scale 'quick' of {file} must be a non-empty"),
    ("values-a-mapping", _edit(GOOD, **{Q + "values": [{"a": 1}]}), "must hold numbers, names or true/false"),
    ("vary-not-text", _edit(GOOD, vary=3), "'vary' in {file} (scale 'quick') must be text, got 3"),
    ("vary-unknown", _edit(GOOD, vary="ticket.keep"), "did you mean 'keep_ratio'?"),
    ("scales-missing", _edit(GOOD, scales=_DELETE), "{file} needs `scales`"),
    ("runner-unknown", _edit(GOOD, runner="ticket"), "{file} needs a runner"),
    ("base-missing", _edit(GOOD, **{Q + "base": _DELETE}), "{file}, scale 'quick' needs 'base'"),
    ("base-not-a-mapping", _edit(GOOD, **{Q + "base": "digits"}),
     "'base' in scale 'quick' of {file} must be a mapping"),
    # Unknown keys: at the top, in a scale, in base, in evaluate, in a nas study's settings.
    ("unknown-top-key", _edit(GOOD, baseline=["dense-at"]),
     "unknown key 'baseline' in {file}; did you mean 'baselines'?"),
    ("unknown-scale-key", _edit(GOOD, **{Q + "seed": [0]}),
     "unknown key 'seed' in scale 'quick' of {file}; did you mean 'seeds'?"),
    ("top-key-in-a-scale", _edit(GOOD, **{Q + "runner": "tickets"}),
     "'runner' in scale 'quick' of {file} belongs at the top"),
    ("another-runners-key", _edit(GOOD, **{Q + "widths": [1, 2]}),
     "widths apply only to the overparam runner, not 'tickets' (in scale 'quick' of {file})"),
    ("base-unknown-key", _edit(GOOD, **{Q + "base": {**BASE, "lr_rate": 0.1}}),
     "'base' in scale 'quick' of {file} has an unknown key 'lr_rate'; did you mean 'lr'?"),
    ("evaluate-unknown-key", _edit(FAMILY, **{Q + "evaluate": {"n": 20, "step": 2}}),
     "has an unknown key 'step'; did you mean 'steps'?"),
    ("nas-settings-unknown-key", _edit(NAS, **{Q + "settings": {"arch": ["fc"]}}), "did you mean 'archs'?"),
    # Repeats, and run directories that collide.
    ("values-repeat", _edit(GOOD, **{Q + "values": [0.1, 0.3, 0.1]}),
     "'values' in scale 'quick' of {file} repeats 0.1"),
    ("values-equal-numbers", _edit(GOOD, **{Q + "values": [1, 1.0]}), "repeats 1 (as 1 and 1.0)"),
    ("values-same-directory", _edit(GOOD, **{Q + "values": [0.1, "0.1"]}),
     "holds 0.1 and '0.1', which make the same run directory name '0.1'"),
    ("values-same-safe-name", _edit(GOOD, vary="arch", **{Q + "values": ["random:0", "random_0"]}),
     "holds 'random:0' and 'random_0', which make the same run directory name 'random_0'"),
    ("widths-repeat", _edit(OVERPARAM, **{Q + "widths": [0.5, 1, 0.5]}),
     "'widths' in scale 'quick' of {file} repeats 0.5"),
    ("widths-not-positive", _edit(OVERPARAM, **{Q + "widths": [0, 1]}), "must hold numbers > 0, got 0"),
    ("widths-not-numbers", _edit(OVERPARAM, **{Q + "widths": ["wide"]}), "must hold numbers > 0"),
    ("widths-missing", _edit(OVERPARAM, **{Q + "widths": _DELETE}), "needs 'widths'"),
    ("seeds-repeat", _edit(GOOD, **{Q + "seeds": [0, 1, 0]}), "'seeds' in scale 'quick' of {file}: seeds repeat"),
    ("seeds-not-integers", _edit(GOOD, **{Q + "seeds": [0, 1.5]}), "seeds must be a non-empty list of integers"),
    ("finetune-repeat", _edit(GOOD, finetune=["inherit", "inherit"]), "'finetune' in {file} (scale 'quick') repeats"),
    # Names, bounds and the rules between settings, some of which failed only after runs had started.
    ("baseline-unknown", _edit(GOOD, baselines=["dense"]),
     "'baselines' in {file} (scale 'quick') names 'dense'; did you mean 'dense-at'?"),
    ("baselines-not-a-list", _edit(GOOD, baselines="dense-at"), "must be a list of natural, dense-at"),
    ("finetune-unknown", _edit(GOOD, finetune=["inherit", "reint"]), "names 'reint'; did you mean 'reinit'?"),
    ("natural-ticket-study", _edit(GOOD, **{Q + "base": {**BASE, "adv": "none"}}), "searches with adv none"),
    ("a-natural-value-of-vary", _edit(GOOD, vary="adv", **{Q + "values": ["pgd", "none"]}),
     "cell 'RST adv=none seed=0' searches with adv none"),
    ("no-validation-split", _edit(GOOD, **{Q + "base": {**BASE, "val_fraction": 0}}), "val_fraction 0"),
    ("dense-at-without-adv", _edit(GOOD, **{Q + "base": {k: v for k, v in BASE.items() if k != "adv"}}),
     "a dense run of `base` trains naturally"),
    ("a-value-out-of-bounds", _edit(GOOD, **{Q + "values": [0.1, 1.5]}), "cell 'RST ticket.keep_ratio=1.5 seed=0'"),
    ("base-lr-negative", _edit(GOOD, **{Q + "base": {**BASE, "lr": -1}}), "{file}, scale 'quick': cell"),
    ("base-unknown-model", _edit(GOOD, **{Q + "base": {**BASE, "arch": "nonet"}}), "nonet"),
    ("seeds-and-vary-seed", _edit(GOOD, vary="seed", **{Q + "values": [1, 2]}), "which `seeds` sets in every cell"),
    ("widen-is-vary", _edit(OVERPARAM, widen="ticket.keep_ratio"), "the setting `vary` varies"),
    ("order-null", _edit(GOOD, order=None), "'order' in {file} (scale 'quick') must be a list"),
    ("title-not-text", _edit(GOOD, title=["a"]), "'title' in {file} (scale 'quick') must be text"),
    ("family-with-seeds", _edit(FAMILY, **{Q + "seeds": [0, 1]}),
     "seeds apply only to the tickets and overparam runners, not 'family'"),
    ("family-size-matched", _edit(FAMILY, baselines=["dense-at", "size-matched"]),
     "the family runner runs only dense-at"),
    ("family-protocol-unknown", _edit(FAMILY, protocols=["paper", "eat"]),
     "'protocols' in {file} (scale 'quick') names 'eat'; did you mean 'eot'?"),
    ("family-probs-per-ticket", _edit(FAMILY, **{Q + "evaluate": {"probs": [0.5, 0.25, 0.25]}}),
     "gives 3 switch probabilities for 2 tickets"),
    ("nas-unknown-arch", _edit(NAS, **{Q + "settings": {"archs": ["fc", "nonet"]}}), "nonet"),
    ("nas-ensemble-of-one", _edit(NAS, **{Q + "settings": {"archs": ["fc", "conv2"], "ensemble": ["fc"]}}),
     "an ensemble needs at least two members"),
]


@pytest.mark.parametrize("case, doc, said", CASES, ids=[c[0] for c in CASES])
def test_a_bad_study_file_is_one_line_before_anything_is_written(tmp_path, capsys, monkeypatch, case, doc, said):
    def let_through(preset):  # what follows resolve_preset: a case it missed fails here, before any training
        raise AssertionError(f"resolve_preset let {case} through")

    monkeypatch.setattr("inborn.studies.reproduce.check_data", let_through)
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    out, db = tmp_path / "out", tmp_path / "db.sqlite"
    capsys.readouterr()
    code = main(["reproduce", str(path), "--out", str(out), "--db", str(db), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2, f"exit {code}: {err}"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("inborn: error:"), err
    assert "Traceback" not in err
    assert said.format(file=path) in lines[0], lines[0]
    assert sorted(os.listdir(tmp_path)) == ["mine.yaml"]  # no report directory, no database, nothing


@pytest.mark.parametrize("doc", [GOOD, FAMILY, OVERPARAM, NAS], ids=["tickets", "family", "overparam", "nas"])
def test_the_studies_the_cases_break_are_valid(tmp_path, doc):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert resolve_preset(str(path), "quick")["scale"] == "quick"


def test_the_nearest_key_is_suggested_and_the_others_are_listed(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(_edit(GOOD, **{Q + "valeus": [0.1]})))
    with pytest.raises(InbornError) as e:
        resolve_preset(str(path), "quick")
    assert str(e.value) == f"unknown key 'valeus' in scale 'quick' of {path}; did you mean 'values'?"
    path.write_text(yaml.safe_dump(_edit(GOOD, **{Q + "zzz": 1})))
    with pytest.raises(InbornError, match=r"unknown key 'zzz' in scale 'quick' of .*; known: title, base, vary"):
        resolve_preset(str(path), "quick")


def test_every_key_a_runner_reads_has_its_check():
    assert set(_CHECKS) == {key for keys in STUDY_KEYS.values() for key in keys}


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_passes_at_every_scale_as_written_copied_and_smoked(tmp_path, capsys, name):
    for scale in load_preset(name)["scales"]:
        resolve_preset(name, scale, data_dir=str(tmp_path))
        resolve_preset(name, scale, data_dir=str(tmp_path), overrides=smoke_overrides(load_preset(name), scale))
    assert main(["reproduce", name, "--print-config"]) == 0  # what a user copies and edits
    mine = tmp_path / "mine.yaml"
    mine.write_text(capsys.readouterr().out)
    for scale in load_preset(str(mine))["scales"]:
        assert resolve_preset(str(mine), scale, data_dir=str(tmp_path))["study"] == name


def test_an_override_is_checked_like_the_file():
    with pytest.raises(InbornError, match=r"'values' \(overridden\) for scale 'quick' of preset 'existence' "
                                          r"repeats 0.5"):
        resolve_preset("existence", "quick", overrides={"values": [0.5, 0.5]})
    with pytest.raises(InbornError, match=r"unknown key 'seed' overridden for preset 'existence', scale 'quick'; "
                                          r"did you mean 'seeds'\?"):
        resolve_preset("existence", "quick", overrides={"seed": [0]})
