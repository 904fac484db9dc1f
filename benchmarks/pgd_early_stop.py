"""PGD-20 evaluation throughput with per-sample early stop against without it.

Both variants run side by side in one process on the same model, data and seed, in
alternating order, and must agree on robust accuracy. Prints images/s and the ratio.

    python benchmarks/pgd_early_stop.py                 # trains a small conv4 on mnist5k first
    python benchmarks/pgd_early_stop.py --run runs/at   # or uses an existing run
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

import inborn
from inborn.attacks import PGD
from inborn.data import load_data
from inborn.device import resolve_device
from inborn.evaluation.evaluate import predict


def _model(args, device):
    if args.run:
        return inborn.load(args.run, device=device)
    from inborn.store import ResultsDB
    from inborn.train import TrainConfig, train

    out = tempfile.mkdtemp(prefix="inborn-bench-")
    cfg = TrainConfig(data="mnist5k", arch="conv4", width=0.5, epochs=args.epochs, adv=args.adv, eps=args.eps,
                      batch_size=64, lr=0.1, schedule="piecewise", eps_warmup_epochs=min(2.0, args.epochs),
                      device=str(device))
    train(cfg, out, db=ResultsDB(f"{out}/bench.db"), progress=False)
    return inborn.load(out, device=device)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", help="a run directory to benchmark (default: train one)")
    p.add_argument("--adv", default="pgd", help="how to train the default model (pgd or none)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--eps", type=float, default=0.3)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=250)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    device = resolve_device(args.device)
    torch.manual_seed(0)
    model = _model(args, device)
    x, y = load_data("mnist5k").test.head(args.n).tensors(device)

    def run(early_stop: bool) -> tuple[float, float]:
        attack = PGD(args.eps, steps=20, step_size=args.eps / 4, seed=0, early_stop=early_stop)
        correct = 0
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for s in range(0, len(x), args.batch_size):
            xb, yb = x[s : s + args.batch_size], y[s : s + args.batch_size]
            correct += predict(model, attack(model, xb, yb)).eq(yb).sum().item()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return len(x) / (time.perf_counter() - t0), correct / len(x)

    run(True)  # warm-up
    speeds = {True: [], False: []}
    robust = {}
    for _ in range(args.repeats):
        for es in (False, True):
            ips, acc = run(es)
            speeds[es].append(ips)
            robust[es] = acc
    full, early = statistics.median(speeds[False]), statistics.median(speeds[True])
    print(f"device: {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"PGD-20 at ε={args.eps} on {len(x)} mnist5k test images, batch {args.batch_size}, "
          f"median of {args.repeats}")
    print(f"  without early stop: {full:8.1f} images/s   robust acc {robust[False]:.4f}")
    print(f"  with early stop:    {early:8.1f} images/s   robust acc {robust[True]:.4f}")
    print(f"  speed-up: {early / full:.2f}x")
    if robust[True] != robust[False]:
        raise SystemExit("early stop changed the robust accuracy: this is a bug")


if __name__ == "__main__":
    main()
