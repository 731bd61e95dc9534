"""Floors `benchmarks/api_latency.py` measures `/recommend` against. They live here, never in the production app."""
