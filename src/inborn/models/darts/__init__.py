"""The DARTS search space: its operations, genotypes (published and random) and evaluation networks.

Importing this package registers the zoo names darts_v1, darts_v2, pdarts, pcdarts, nasnet,
amoebanet, enas, and the parametrised random:SEED and genotype:TEXT.
"""

from inborn.models.darts.genotypes import (
    GENOTYPES,
    PRIMITIVES,
    Genotype,
    genotype_to_text,
    get_genotype,
    parse_genotype,
    sample_genotype,
)
from inborn.models.darts.network import Cell, NetworkCIFAR, NetworkImageNet, drop_path
from inborn.models.darts.operations import OPS
from inborn.models.darts.zoo import build_network, genotype_of

__all__ = [
    "GENOTYPES", "OPS", "PRIMITIVES", "Cell", "Genotype", "NetworkCIFAR", "NetworkImageNet", "build_network",
    "drop_path", "genotype_of", "genotype_to_text", "get_genotype", "parse_genotype", "sample_genotype",
]
