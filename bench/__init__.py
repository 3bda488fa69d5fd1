"""Benchmarks of DESIGN.md's "Performance targets" (`make bench`; see __main__.py)."""
