"""The DARTS family in the model zoo: the published cells by name, `random:SEED` and `genotype:TEXT`."""

from __future__ import annotations

import torch.nn as nn

from inborn.errors import InbornError
from inborn.models.darts.genotypes import GENOTYPES, Genotype, parse_genotype, sample_genotype
from inborn.models.darts.network import NetworkCIFAR, NetworkImageNet
from inborn.models.layers import scaled
from inborn.models.registry import ModelFn, register_model, register_model_pattern

FAMILY = "darts"
NETWORKS = {"cifar": (NetworkCIFAR, 36, 20), "imagenet": (NetworkImageNet, 48, 14)}
OPTIONS = ("init_channels", "layers", "auxiliary", "drop_path_prob", "network")

_SUMMARIES = {
    "darts_v1": "DARTS (first order) cell",
    "darts_v2": "DARTS (second order) cell, the paper's CIFAR-10 network",
    "pdarts": "P-DARTS cell (Chen et al., 2019)",
    "pcdarts": "PC-DARTS cell (Xu et al., 2020)",
    "nasnet": "NASNet-A cell (Zoph et al., 2018) in DARTS's network",
    "amoebanet": "AmoebaNet-A cell (Real et al., 2019) in DARTS's network",
    "enas": "ENAS cell (Pham et al., 2018) in DARTS's network",
}
_OPTIONS_HELP = "; options init_channels, layers, auxiliary, drop_path_prob, network"


def build_network(
    genotype: Genotype, *, num_classes: int, in_channels: int, width: float, image_size: int, affine_bn: bool,
    init_channels: int | None = None, layers: int | None = None, auxiliary: bool = False,
    drop_path_prob: float = 0.0, network: str = "cifar", **extra,
) -> nn.Module:
    """A DARTS evaluation network of `genotype`; `width` scales `init_channels`.

    `image_size` is not needed: the pools are adaptive, so any size from 16 up works.
    """
    if extra:
        raise InbornError(f"DARTS networks take {', '.join(OPTIONS)}; got {sorted(extra)}")
    if network not in NETWORKS:
        raise InbornError(f"unknown DARTS network {network!r}; known: {', '.join(NETWORKS)}")
    cls, default_c, default_layers = NETWORKS[network]
    init_channels = default_c if init_channels is None else init_channels
    layers = default_layers if layers is None else layers
    for name, value in (("init_channels", init_channels), ("layers", layers)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InbornError(f"DARTS {name} must be a positive integer, got {value!r}")
    if not 0.0 <= drop_path_prob < 1.0:
        raise InbornError(f"DARTS drop_path_prob must be in [0, 1), got {drop_path_prob}")
    return cls(genotype, num_classes, in_channels=in_channels, init_channels=scaled(init_channels, width),
               layers=layers, auxiliary=bool(auxiliary), drop_path_prob=float(drop_path_prob), affine_bn=affine_bn)


def genotype_of(name: str) -> Genotype:
    """The genotype behind a zoo name: a published one, `random:SEED` or `genotype:TEXT`."""
    if name in GENOTYPES:
        return GENOTYPES[name]
    prefix, sep, suffix = name.partition(":")
    if sep and prefix == "random":
        return sample_genotype(_seed(suffix))
    if sep and prefix == "genotype":
        return parse_genotype(suffix)
    raise InbornError(f"no genotype for {name!r}; known: {', '.join(GENOTYPES)}, random:SEED, genotype:TEXT")


def _seed(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InbornError(f"random:SEED needs an integer seed, got {text!r} (e.g. random:0)") from None


def _builder(genotype: Genotype) -> ModelFn:
    def build(**kw) -> nn.Module:
        return build_network(genotype, **kw)

    return build


for _name, _genotype in GENOTYPES.items():
    register_model(_name, family=FAMILY, summary=_SUMMARIES[_name] + _OPTIONS_HELP)(_builder(_genotype))


@register_model_pattern("random", "SEED", family=FAMILY,
                        summary="a cell drawn uniformly from the DARTS space with this integer seed" + _OPTIONS_HELP)
def _random(suffix: str) -> ModelFn:
    return _builder(sample_genotype(_seed(suffix)))


@register_model_pattern("genotype", "TEXT", family=FAMILY,
                        summary="any cell in text form: genotype:Genotype(normal=[...], ...)" + _OPTIONS_HELP)
def _from_text(suffix: str) -> ModelFn:
    return _builder(parse_genotype(suffix))
