"""Ingest: landing files -> canonical lake tables, every row accounted for."""
