"""BatchNorm folded into the convolution before it, for evaluation.

In eval mode a BatchNorm is a per-channel affine map, so conv -> BN is one convolution with
scaled weights and a bias; an attack's every forward and backward then skips the BatchNorm
(a PGD-20 evaluation of conv4 on CPU runs 1.33x faster, `python benchmarks/ablation.py`). The
folded network computes the same function up to float rounding.

Only pairs inside an `nn.Sequential` are folded (the Frankle conv nets, VGG, the DARTS
operations); a pair a module's own `forward` wires (ResNet blocks) is left as it is. Masked
convolutions fold their current mask in (`effective_weight`), so the masks must not change
while the folded copy is used: evaluation, whose masks are fixed.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn

from inborn.models import kernels


class FoldedConv2d(nn.Conv2d):
    """A convolution with a BatchNorm folded in (through inborn's CPU kernels)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return kernels.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class EvalFolded(nn.Module):
    """The folded copy in eval mode; in train mode (an attack that asks for it) the original, in
    train mode for that forward.

    The original is held outside the module tree, so that switching this wrapper's mode (every
    attack does) never switches the caller's model.
    """

    def __init__(self, original: nn.Module, folded: nn.Module) -> None:
        super().__init__()
        self.folded = folded
        self._original = [original]  # a list: not registered as a submodule

    @property
    def original(self) -> nn.Module:
        return self._original[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return self.folded(x)
        was = self.original.training
        self.original.train()
        try:
            return self.original(x)
        finally:
            self.original.train(was)


def _foldable(conv: nn.Module, bn: nn.Module) -> bool:
    return (isinstance(conv, nn.Conv2d) and conv.padding_mode == "zeros" and type(bn) is nn.BatchNorm2d
            and bn.track_running_stats and bn.running_mean is not None and bn.num_features == conv.out_channels)


def _masks_may_change(model: nn.Module) -> bool:
    """A hook on a forward (global-scope masks) or masks a ticket family swaps in (the Random RST
    Switch and its attacker's views): a folded copy would freeze one of them."""
    return any(m._forward_hooks or m._forward_pre_hooks or getattr(m, "packed_mask", None) is not None
               or hasattr(getattr(m, "family", None), "select") for m in model.modules())


@torch.no_grad()
def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> FoldedConv2d:
    weight = conv.effective_weight() if hasattr(conv, "effective_weight") else conv.weight
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.affine:
        scale = scale * bn.weight
    shift = -bn.running_mean * scale + (bn.bias if bn.affine else 0.0)
    if conv.bias is not None:
        shift = shift + conv.bias * scale
    folded = FoldedConv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                          conv.dilation, conv.groups, bias=True, device=weight.device, dtype=weight.dtype)
    folded.weight.copy_(weight * scale.view(-1, 1, 1, 1))
    folded.bias.copy_(shift)
    if kernels.is_channels_last(conv.weight):
        folded = folded.to(memory_format=torch.channels_last)
    return folded.requires_grad_(False)


def fold_batch_norm(model: nn.Module) -> nn.Module:
    """An eval-mode copy of `model` with every conv -> BatchNorm pair of an nn.Sequential folded,
    wrapped so that train mode still runs the original; `model` itself if nothing folds, if its
    masks may change between forwards (`_masks_may_change`), or under `kernels.stock()`."""
    if not kernels.fast_enabled("fold") or _masks_may_change(model):
        return model
    folded = copy.deepcopy(model).eval()
    count = 0
    for seq in [m for m in folded.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for a, b in zip(names, names[1:], strict=False):
            conv, bn = seq._modules[a], seq._modules[b]
            if _foldable(conv, bn):
                seq._modules[a] = _fold(conv, bn)
                seq._modules[b] = nn.Identity()
                count += 1
    if count == 0:
        return model
    return EvalFolded(model, folded).eval()
