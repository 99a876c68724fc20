"""``stream-detector demo`` and ``stream-detector bench``: the whole pipeline, and its
benchmarks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from schemas.kinds import RecordKind
from stream_detector.cli.common import app, err_console, fail, one_line_errors, require_given, say

__all__ = ["bench", "demo"]


@app.command(
    help=(
        "Run the whole pipeline end to end: local Kafka and redis-server (or --kafka/--redis),"
        " data with labelled anomalies, a trained model (cached under --out), thresholds in"
        " Redis, the worker, a replay paced over --duration, live anomalies, a summary and an"
        " HTML report (its path is the last line).\n\n"
        "Examples:\n\n\b\n"
        "  stream-detector demo\n"
        "  stream-detector demo --kind sales --duration 30\n"
        "  stream-detector demo --kind events --kafka kafka://127.0.0.1:9092 "
        "--redis redis://127.0.0.1:6379/0"
    ),
)
def demo(
    kind: Annotated[
        RecordKind, typer.Option(help="record kind to demonstrate")
    ] = "series",
    duration: Annotated[
        float, typer.Option(min=1.0, help="seconds the replay should last (sets the pace)")
    ] = 60.0,
    data: Annotated[
        Path | None, typer.Option(help="replay this file instead (no labels: no precision)")
    ] = None,
    kafka: Annotated[str | None, typer.Option(help="use this Kafka, kafka://HOST:PORT")] = None,
    redis: Annotated[str | None, typer.Option(help="use this Redis, redis://HOST:PORT/DB")] = None,
    rate: Annotated[
        float | None, typer.Option(min=0.001, help="records/s (default: records / duration)")
    ] = None,
    out: Annotated[Path, typer.Option(help="data, model cache and report")] = Path("runs/demo"),
    live: Annotated[bool, typer.Option(help="live progress and anomaly table")] = True,
    ui: Annotated[bool, typer.Option(help="the live explorer in the browser (its URL is shown)")
                  ] = True,
    stay: Annotated[bool, typer.Option(help="after the replay keep the explorer, worker and "
                                       "services up until Ctrl-C")] = False,
) -> None:
    with one_line_errors():
        require_given(kafka, redis)  # before the data and the training, not 30 s later
    from stream_detector.demo.data import DemoOptions
    from stream_detector.demo.report import write_report
    from stream_detector.demo.run import run_demo, stopping_line
    from stream_detector.demo.summary import summary_lines

    opts = DemoOptions(kind=kind, duration=duration, data=data, kafka=kafka, redis=redis,
                       rate=rate, out=out, live=live, ui=ui, stay=stay)
    with one_line_errors():
        try:
            run = run_demo(opts, err_console)
            report = write_report(run, out / f"report-{run.data.kind}.html")
        except KeyboardInterrupt:
            err_console.print(f"[yellow]interrupted:[/] {stopping_line(opts, done=True)}")
            raise typer.Exit(130) from None
    for line in summary_lines(run.summary):
        say(line)
    say(f"report: {report}")


@app.command()
def bench(
    full: Annotated[bool, typer.Option("--full", help="longer runs, more repetitions")] = False,
) -> None:
    """Run the benchmarks (scoring ceiling, worker end to end, latency); results go to
    benchmarks/results/ as JSON and Markdown, each figure a ratio to a baseline of the same run.

    Example:

    \b
      stream-detector bench
    """
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    if not (root / "benchmarks" / "__main__.py").is_file():
        fail("the benchmarks ship with the source tree; run this from a checkout")
    args = [sys.executable, "-m", "benchmarks", *(["--full"] if full else [])]
    raise typer.Exit(subprocess.call(args, cwd=root))  # noqa: S603 - fixed argv

