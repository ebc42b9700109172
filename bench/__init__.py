"""Benchmarks, each `python -m bench.NAME [--quick] --json OUT [--doc]`.

Results and methods: docs/BENCHMARKS.md.
"""
