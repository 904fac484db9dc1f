#!/usr/bin/env bash
# Deterministic figures through the CLI, to compare two versions of inborn bit for bit:
#   PYTHONPATH=<old checkout>/src bash benchmarks/same_figures.sh /tmp/before
#   bash benchmarks/same_figures.sh /tmp/after
# then compare the *.txt outputs, tensors.txt (SHA-256 of every model tensor: safetensors headers
# are written in a varying order, so file hashes differ), eval.json, fam/r2s.json,
# fam/transfer.json and the runs' summary.json (train_seconds aside). About a minute on 2 cores.
set -euo pipefail
O=$1
rm -rf "$O" && mkdir -p "$O"
export INBORN_DB=$O/inborn.db
inborn search --data digits --arch conv4 --width 0.25 --keep 0.1 --epochs 2 --out "$O/search" --quiet > "$O/search.txt"
inborn eval "$O/search" --attack pgd,fgsm --eps 0.1,0.2 --n 200 --json --quiet > "$O/eval.json"
inborn train --data digits --arch fc --width 0.5 --epochs 2 --adv pgd --eps 0.1 --out "$O/train" --quiet > "$O/train.txt"
inborn family --data digits --arch fc --width 0.25 --epochs 1 --adv-steps 2 --keep 0.2,0.5 --out "$O/fam" --quiet \
  > "$O/family.txt"
inborn transfer "$O/fam" --n 64 --steps 3 --quiet > "$O/transfer.txt"
inborn r2s "$O/fam" --n 64 --steps 3 --repeats 2 --eot 2 --protocol paper,eot,expectation --quiet > "$O/r2s.txt"
python - "$O/search/model.safetensors" "$O/train/model.safetensors" > "$O/tensors.txt" <<'PY'
import hashlib
import sys

from safetensors.torch import load_file

for path in sys.argv[1:]:
    tensors = sorted(load_file(path).items())
    print(path.rsplit("/", 2)[-2], hashlib.sha256(b"".join(t.numpy().tobytes() for _, t in tensors)).hexdigest())
PY
