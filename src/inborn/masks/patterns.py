"""Which weights a mask keeps: top-k of |scores| per group, for each sparsity pattern.

A pattern groups the weights (one element, one kernel row, one k×k kernel, one filter, or
N of every M along the input), scores a group by the sum of its |scores|, and keeps the
best `kept_groups(groups, keep_ratio, count)` groups: `round(keep_ratio × groups)` by default,
or the authors' `groups − int((1 − keep_ratio) × groups)` with count "reference". The
threshold is the k-th largest group score (`kth_largest`: no full sort), and ties at the threshold
are broken by index, so the count is exact and the mask deterministic; nothing is read back to
the host, so a masked forward never waits for the device.
"""

from __future__ import annotations

import torch

from inborn.errors import InbornError
from inborn.masks.config import KEEP_COUNTS, parse_nm


def group_scores(scores: torch.Tensor, pattern: str) -> torch.Tensor:
    """|scores| summed within each group: shape (groups,), ordered like the weight."""
    s = scores.abs()
    if pattern == "element":
        return s.flatten()
    if s.dim() != 4:  # Linear layers: rows and kernels are single elements, filters are rows
        return s.sum(1) if pattern == "filter" else s.flatten()
    if pattern == "row":
        return s.sum(3).flatten()
    if pattern == "kernel":
        return s.sum((2, 3)).flatten()
    if pattern == "filter":
        return s.sum((1, 2, 3))
    raise InbornError(f"unknown mask pattern {pattern!r}")


def expand_groups(keep: torch.Tensor, shape: torch.Size, pattern: str) -> torch.Tensor:
    """Turn a per-group 0/1 vector back into a mask of the weight's shape."""
    if pattern == "element" or (len(shape) != 4 and pattern != "filter"):
        return keep.view(shape)
    if pattern == "filter":
        return keep.view(shape[0], *[1] * (len(shape) - 1)).expand(shape)
    if pattern == "row":
        return keep.view(*shape[:3], 1).expand(shape)
    return keep.view(*shape[:2], 1, 1).expand(shape)  # kernel


def kth_largest(values: torch.Tensor, k: int, use_topk: bool | None = None) -> torch.Tensor:
    """The k-th largest of a flat tensor (0 < k <= n), as a 0-dim tensor on its device: exact.

    On CUDA `kthvalue` runs one thread block per slice (a flat tensor: one block for the whole
    layer), so the value is the least of `topk`'s (multi-block radix select), taken from the
    shorter side: the n − k + 1 smallest when k is more than half. On the CPU `kthvalue` is the
    faster of the two (benchmarks/mask_selection.py). Either way nothing is read back.
    `use_topk` forces one way (None: by device), for the tests.
    """
    n = values.numel()
    if not (values.device.type != "cpu" if use_topk is None else use_topk):
        return values.kthvalue(n - k + 1).values
    if 2 * k <= n:
        return values.topk(k, sorted=False).values.min()
    return values.topk(n - k + 1, largest=False, sorted=False).values.max()


def top_k_mask(values: torch.Tensor, k: int) -> torch.Tensor:
    """A float 0/1 vector keeping exactly the k largest values; ties go to the lower index.

    No host sync: k is a Python int from the shapes, and the number of ties to keep stays a
    tensor (it was read back with int() once, which made every masked forward wait on CUDA).
    """
    n = values.numel()
    if k >= n:
        return torch.ones_like(values)
    if k <= 0:
        return torch.zeros_like(values)
    threshold = kth_largest(values, k)
    above = values > threshold
    at = values == threshold
    missing = k - above.sum()  # how many of the ties at the threshold to keep, lowest index first
    rank = torch.cumsum(at, 0, dtype=torch.int32 if n < 2**31 else torch.int64)
    keep = above | (at & (rank <= missing))
    return keep.to(values.dtype)


def kept_groups(n_groups: int, keep_ratio: float, count: str = "round") -> int:
    """How many of `n_groups` groups a layer keeps, at least one (and at most all).

    round: round(keep_ratio × n), half to even (Python's round); inborn's rule.
    reference: n − int((1 − keep_ratio) × n), as the authors' GetSubnet (Ramanujan et al.'s
    hidden-networks, kept by the RST code): it zeroes the int((1 − k)·n) lowest and keeps the
    rest, which is about ceil(k·n). The two differ by one in about half the layer sizes (conv4
    width 0.5's first layer, n = 288 at k = 0.05: 14 against 15).
    """
    if count == "round":
        k = int(round(keep_ratio * n_groups))
    elif count == "reference":
        k = n_groups - int((1 - keep_ratio) * n_groups)
    else:
        raise InbornError(f"unknown keep count {count!r}; known: {', '.join(KEEP_COUNTS)}")
    return max(1, min(n_groups, k))


def nm_mask(scores: torch.Tensor, n: int, m: int, layer: str = "layer") -> torch.Tensor:
    """Keep the N largest |scores| in every run of M consecutive inputs (per output, per tap)."""
    in_dim = scores.shape[1]
    if in_dim % m:
        raise InbornError(f"{n}:{m} sparsity needs the input size of {layer} ({in_dim}) to be divisible by {m}")
    s = scores.abs()
    if s.dim() == 4:  # (out, in, kh, kw) -> groups of M input channels at every tap
        s = s.permute(0, 2, 3, 1)
    groups = s.reshape(-1, m)
    # Stable ranking inside each group: ties go to the lower index.
    order = torch.sort(groups, dim=1, descending=True, stable=True).indices
    keep = torch.zeros_like(groups)
    keep.scatter_(1, order[:, :n], 1.0)
    keep = keep.view(s.shape)
    if scores.dim() == 4:
        keep = keep.permute(0, 3, 1, 2)
    return keep.contiguous()


def layer_mask(scores: torch.Tensor, keep_ratio: float, pattern: str, layer: str = "layer",
               count: str = "round") -> torch.Tensor:
    """The 0/1 mask of one layer (no gradient). `count` is kept_groups' rule; an N:M pattern
    keeps N of every M whatever it says."""
    with torch.no_grad():
        nm = parse_nm(pattern)
        if nm is not None:
            return nm_mask(scores, *nm, layer=layer)
        g = group_scores(scores, pattern)
        keep = top_k_mask(g, kept_groups(g.numel(), keep_ratio, count))
        return expand_groups(keep, scores.shape, pattern).contiguous()
