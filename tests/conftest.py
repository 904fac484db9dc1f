"""Shared fixtures: tiny models and tiny data, so the suite stays fast on 2 CPU cores."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn


@pytest.fixture(autouse=True)
def _isolated_db(tmp_path, monkeypatch):
    """Every test writes to its own results database, never to ./runs."""
    monkeypatch.setenv("INBORN_DB", str(tmp_path / "inborn.db"))
    # ...and records the model code it trusts in its own file, never in ~/.config/inborn.
    monkeypatch.setenv("INBORN_TRUST_FILE", str(tmp_path / "trusted.json"))
    monkeypatch.delenv("INBORN_TRUST_CODE", raising=False)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def digits_model():
    """A small conv net trained naturally on `digits` for a few seconds: accurate but not robust."""
    from inborn.data import load_data
    from inborn.models import create_model

    torch.manual_seed(0)
    splits = load_data("digits", seed=0)
    info = splits.info
    model = create_model("conv2", num_classes=10, in_channels=1, image_size=info.image_size, width=0.25,
                         mean=info.mean, std=info.std)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    gen = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(4):
        for x, y in splits.train.batches(32, shuffle=True, generator=gen):
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    x, y = splits.test.tensors()
    return model, x[:128], y[:128]
