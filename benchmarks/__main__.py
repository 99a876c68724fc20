"""``python -m benchmarks [--full] [--only NAME ...]``: see :mod:`benchmarks.run`."""

from benchmarks.run import main

main()
