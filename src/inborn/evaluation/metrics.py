"""Scores that combine clean and robust accuracy."""

from __future__ import annotations


def harmonic_robustness_score(clean: float, robust: float) -> float:
    """HRS = 2·C·R / (C + R) (Devaguptapu et al. 2021): high only when both are high."""
    if clean + robust <= 0:
        return 0.0
    return 2.0 * clean * robust / (clean + robust)
