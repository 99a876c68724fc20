"""The ``stream-detector`` command line (typer)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Real-time anomaly detection for live Kafka feeds.", no_args_is_help=True)


def main() -> None:
    """Console-script entry point."""
    app()
