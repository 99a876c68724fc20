"""Throughput, latency and detection-quality benchmarks (run from a checkout).

Every benchmark reports ratios against a baseline measured in the same run, and writes
JSON plus a Markdown table to ``benchmarks/results/``. Entry point: :func:`benchmarks.run.run_all`
(``python -m benchmarks [--full]``).
"""
