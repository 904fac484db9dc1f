"""Runs: a run directory loaded as what it holds (a model, a ticket family, an ensemble), and its data."""

from inborn.runs.data import load_run_data, run_eps
from inborn.runs.family import FAMILY_FILE, build_family, load_family
from inborn.runs.load import build_ensemble, load, load_ensemble, load_weights, save_model

__all__ = [
    "FAMILY_FILE", "build_ensemble", "build_family", "load", "load_ensemble", "load_family", "load_run_data",
    "load_weights", "run_eps", "save_model",
]
