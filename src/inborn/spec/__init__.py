"""The model spec: how a network is rebuilt from the dict stored with every run (config.yaml's
`model`, the checkpoint's `inborn_model`), and how a ticket is exported as a plain network."""

from inborn.spec.build import build_model, plain_spec

__all__ = ["build_model", "plain_spec"]
