"""Inference Ledger: inference spend and two-way revenue-share reconciliation."""

__version__ = "0.1.0"
