"""Evaluation, metrics and plots."""
