"""Versioned configuration shipped with the package (workload rules, mappings)."""
