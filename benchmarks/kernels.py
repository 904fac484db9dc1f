"""inborn's CPU kernels (inborn.models.kernels) against PyTorch's stock ones, side by side.

For each shape: the median time of the stock op and of inborn's, alternating call by call,
forward alone and forward + backward (the attack's input gradient, and the update's input and
weight gradients), and whether the results agree (pooling: bit for bit; convolution: within
float32 rounding).

    python benchmarks/kernels.py
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from inborn.models import kernels


def _median_ms(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():
        fn()
    for i in range(repeats):
        for name in list(fns) if i % 2 == 0 else list(fns)[::-1]:
            t0 = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t0)
    return {k: 1e3 * statistics.median(v) for k, v in times.items()}


def _grad_call(op: Callable[..., torch.Tensor], inputs: list[torch.Tensor]) -> Callable[[], object]:
    def call():
        out = op()
        return torch.autograd.grad(out, inputs, torch.ones_like(out))
    return call


def pool_rows(batch: int, repeats: int) -> list[str]:
    rows = []
    for c, hw, k, s, p in [(32, 28, 2, 2, 0), (64, 14, 2, 2, 0), (64, 32, 3, 2, 1), (16, 32, 3, 1, 1)]:
        x = torch.relu(torch.randn(batch, c, hw, hw)).requires_grad_(True)

        def stock(x=x, k=k, s=s, p=p):
            return F.max_pool2d(x, k, s, p)

        def ours(x=x, k=k, s=s, p=p):
            return kernels.max_pool2d(x, k, s, p)
        fwd = _median_ms({"stock": lambda x=x: stock(x.detach()), "inborn": lambda x=x: ours(x.detach())}, repeats)
        both = _median_ms({"stock": _grad_call(stock, [x]), "inborn": _grad_call(ours, [x])}, repeats)
        same = torch.equal(stock(), ours()) and torch.equal(_grad_call(stock, [x])()[0], _grad_call(ours, [x])()[0])
        rows.append(f"| max-pool {k}x{k}/{s} | {batch}x{c}x{hw}x{hw} | {fwd['stock']:.2f} / {fwd['inborn']:.2f} "
                    f"({fwd['stock'] / fwd['inborn']:.1f}x) | {both['stock']:.2f} / {both['inborn']:.2f} "
                    f"({both['stock'] / both['inborn']:.1f}x) | bit-equal {same} |")
    return rows


def conv_rows(batch: int, repeats: int) -> list[str]:
    rows = []
    for cin, cout, hw in [(1, 32, 28), (1, 64, 28), (3, 32, 32), (3, 64, 32), (4, 32, 28)]:
        x = torch.randn(batch, cin, hw, hw).requires_grad_(True)
        w = torch.randn(cout, cin, 3, 3).requires_grad_(True)

        def stock(x=x, w=w):
            return F.conv2d(x, w, None, 1, 1)

        def ours(x=x, w=w):
            return kernels.conv2d(x, w, None, 1, 1, 1, 1)
        fwd = _median_ms({"stock": lambda x=x, w=w: stock(x.detach(), w.detach()),
                          "inborn": lambda x=x, w=w: ours(x.detach(), w.detach())}, repeats)
        grad_x = _median_ms({"stock": _grad_call(stock, [x]), "inborn": _grad_call(ours, [x])}, repeats)
        grad_xw = _median_ms({"stock": _grad_call(stock, [x, w]), "inborn": _grad_call(ours, [x, w])}, repeats)
        err = float((stock() - ours()).abs().max() / stock().abs().max())
        rows.append(f"| conv 3x3, {cin}->{cout} | {batch}x{cin}x{hw}x{hw} | {fwd['stock']:.2f} / {fwd['inborn']:.2f} "
                    f"({fwd['stock'] / fwd['inborn']:.1f}x) | {grad_x['stock']:.2f} / {grad_x['inborn']:.2f} "
                    f"({grad_x['stock'] / grad_x['inborn']:.1f}x); with weight grad {grad_xw['stock']:.2f} / "
                    f"{grad_xw['inborn']:.2f} ({grad_xw['stock'] / grad_xw['inborn']:.1f}x) | "
                    f"max diff {err:.1e} of the output |")
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}; times in ms, stock / inborn, "
          f"medians of {args.repeats} alternating calls")
    print("| op | input | forward | forward + backward | result |")
    print("|---|---|---|---|---|")
    for row in pool_rows(args.batch, args.repeats) + conv_rows(args.batch, args.repeats):
        print(row)


if __name__ == "__main__":
    main()
