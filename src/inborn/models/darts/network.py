"""Networks stacked from a genotype's cells: DARTS's CIFAR and ImageNet evaluation networks.

Both follow quark0/darts `cnn/model.py`, made size-agnostic: any number of input channels,
adaptive pooling instead of fixed windows (the global pool and the auxiliary heads), so small
images (MNIST's 28, 16, ImageNet's network at 64) work. `forward` returns the logits only;
in training mode with the auxiliary head on, the head's logits are kept in `aux_logits`.
"""

from __future__ import annotations

import abc
from typing import Any

import torch
import torch.nn as nn

from inborn.models.darts.genotypes import Genotype
from inborn.models.darts.operations import FactorizedReduce, ReLUConvBN, make_op
from inborn.models.layers import batch_norm


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero each sample's path with probability `drop_prob`, scaling the kept ones by 1 / (1 - drop_prob).

    The mask is made on `x`'s own device and dtype (CPU, CUDA, half precision alike).
    """
    if drop_prob <= 0.0:
        return x
    keep = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x / keep * mask


class Cell(nn.Module):
    """One normal or reduction cell of `genotype`, on `c` channels per node."""

    def __init__(self, genotype: Genotype, c_prev_prev: int, c_prev: int, c: int, reduction: bool,
                 reduction_prev: bool, affine: bool = True) -> None:
        super().__init__()
        self.reduction = reduction
        # After a reduction cell, the older input is still at twice the resolution.
        self.preprocess0: nn.Module = (FactorizedReduce(c_prev_prev, c, affine) if reduction_prev
                                       else ReLUConvBN(c_prev_prev, c, 1, 1, 0, affine))
        self.preprocess1 = ReLUConvBN(c_prev, c, 1, 1, 0, affine)
        edges = genotype.reduce if reduction else genotype.normal
        self.concat = (genotype.reduce_concat if reduction else genotype.normal_concat)
        self.inputs = tuple(src for _, src in edges)
        self.steps = len(edges) // 2
        self.multiplier = len(self.concat)
        # In a reduction cell only the edges leaving the two inputs are strided.
        self.ops = nn.ModuleList(
            make_op(op, c, 2 if reduction and src < 2 else 1, affine) for op, src in edges
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for i in range(self.steps):
            node = 0
            for k in (2 * i, 2 * i + 1):
                op = self.ops[k]
                h = op(states[self.inputs[k]])
                # As in DARTS: identities are never dropped, every other op is.
                if self.training and drop_prob > 0.0 and not isinstance(op, nn.Identity):
                    h = drop_path(h, drop_prob)
                node = node + h
            states.append(node)
        return torch.cat([states[i] for i in self.concat], dim=1)


class AuxiliaryHead(nn.Module):
    """The auxiliary classifier on the 2/3-depth features, pooled to 2x2 whatever their size.

    DARTS pools a fixed window (5, stride 3 on CIFAR's 8x8; 5, stride 2 on ImageNet's 7x7) down to 2x2;
    adaptive pooling gives 2x2 at any size. The ImageNet head has no BN after its second conv, as in DARTS.
    """

    def __init__(self, c: int, num_classes: int, affine: bool = True, imagenet: bool = False) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Conv2d(c, 128, 1, bias=False),
            batch_norm(128, affine),
            nn.ReLU(),
            nn.Conv2d(128, 768, 2, bias=False),
            *(() if imagenet else (batch_norm(768, affine),)),
            nn.ReLU(),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class _CellNetwork(nn.Module, abc.ABC):
    """Cells after a stem, reductions at 1/3 and 2/3 of the depth, global pool, linear classifier.

    `drop_path_prob` is read at every forward (the training loop raises it epoch by epoch).
    Subclasses make their stem first and then call `_build`, so that the stem is the first
    module and the classifier the last (to_supermask's dense_first / dense_last go by that order).
    """

    aux_logits: torch.Tensor | None

    def _build(self, genotype: Genotype, num_classes: int, *, c: int, layers: int, c_stem: int,
               reduction_prev: bool, auxiliary: bool, drop_path_prob: float, affine: bool, imagenet: bool) -> None:
        self.genotype = genotype
        self.drop_path_prob = drop_path_prob
        self.aux_logits = None
        self._aux_at = 2 * layers // 3
        c_prev_prev = c_prev = c_aux = c_stem
        c_curr = c
        self.cells = nn.ModuleList()
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            cell = Cell(genotype, c_prev_prev, c_prev, c_curr, reduction, reduction_prev, affine)
            self.cells.append(cell)
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, cell.multiplier * c_curr
            if i == self._aux_at:
                c_aux = c_prev
        self.auxiliary_head = AuxiliaryHead(c_aux, num_classes, affine, imagenet) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    @abc.abstractmethod
    def stem(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two first cell inputs (s0, s1): the CIFAR and ImageNet networks differ only here."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.aux_logits = None
        s0, s1 = self.stem(x)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self._aux_at and self.auxiliary_head is not None and self.training:
                self.aux_logits = self.auxiliary_head(s1)
        return self.classifier(torch.flatten(self.global_pooling(s1), 1))

    def __getstate__(self) -> dict[str, Any]:
        # The last aux logits are part of a graph: a deep copy or pickle of the network must not carry them.
        return {**super().__getstate__(), "aux_logits": None}


class NetworkCIFAR(_CellNetwork):
    """DARTS's CIFAR network: a 3x3 conv stem (3 x `init_channels`), then `layers` cells."""

    def __init__(self, genotype: Genotype, num_classes: int, *, in_channels: int = 3, init_channels: int = 36,
                 layers: int = 20, auxiliary: bool = False, drop_path_prob: float = 0.0,
                 affine_bn: bool = True) -> None:
        super().__init__()
        c_stem = 3 * init_channels  # DARTS's stem multiplier
        self.stem_conv = nn.Sequential(
            nn.Conv2d(in_channels, c_stem, 3, padding=1, bias=False),
            batch_norm(c_stem, affine_bn),
        )
        self._build(genotype, num_classes, c=init_channels, layers=layers, c_stem=c_stem, reduction_prev=False,
                    auxiliary=auxiliary, drop_path_prob=drop_path_prob, affine=affine_bn, imagenet=False)

    def stem(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.stem_conv(x)
        return s, s


class NetworkImageNet(_CellNetwork):
    """DARTS's ImageNet network: two strided stems (1/4 and 1/8 of the input size), then `layers` cells."""

    def __init__(self, genotype: Genotype, num_classes: int, *, in_channels: int = 3, init_channels: int = 48,
                 layers: int = 14, auxiliary: bool = False, drop_path_prob: float = 0.0,
                 affine_bn: bool = True) -> None:
        super().__init__()
        c = init_channels
        half = max(1, c // 2)
        self.stem0 = nn.Sequential(
            nn.Conv2d(in_channels, half, 3, stride=2, padding=1, bias=False),
            batch_norm(half, affine_bn),
            nn.ReLU(),
            nn.Conv2d(half, c, 3, stride=2, padding=1, bias=False),
            batch_norm(c, affine_bn),
        )
        self.stem1 = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(c, c, 3, stride=2, padding=1, bias=False),
            batch_norm(c, affine_bn),
        )
        self._build(genotype, num_classes, c=c, layers=layers, c_stem=c, reduction_prev=True, auxiliary=auxiliary,
                    drop_path_prob=drop_path_prob, affine=affine_bn, imagenet=True)

    def stem(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s0 = self.stem0(x)
        return s0, self.stem1(s0)
