"""``train``, ``score`` and ``evaluate``: the model commands of the CLI.

``train`` and ``evaluate`` reach into ``offline_training`` (and torch) lazily, so the worker
image, which has neither, still runs every other command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.markup import escape

from schemas.kinds import CalibrationMethod, ModelFamily, RecordKind
from stream_detector.cli.checks import existing_input, fraction, model_path, new_file, new_folder
from stream_detector.cli.common import app, err_console, one_line_errors, records_progress, say
from stream_detector.constants import ProviderPreference
from stream_detector.logs import printable

__all__ = ["evaluate_command", "score_command", "train_command"]

# Options that several model commands share, declared once so their help and checks agree.
ModelOption = Annotated[
    Path, typer.Option(help="model dir or registry entry (newest version)", callback=model_path)
]
ScoredDataOption = Annotated[Path, typer.Option(help="file to score", callback=existing_input)]
KeyOption = Annotated[str | None, typer.Option(help="series id (default: file stem)")]
MissingOption = Annotated[Literal["reject", "impute"], typer.Option(
    help="empty, NaN or infinite values: refuse the file (naming the row), or fill each in "
         "from the value before it (its record flagged imputed, as producers mark them)")]
StrictTimeOption = Annotated[bool, typer.Option(
    help="refuse repeated or out-of-order timestamps instead of keeping them in file order "
         "with the worker's flags")]


@app.command(
    "train",
    help=(
        "Train a model offline (PyTorch), export it to ONNX and register it with its card.\n\n"
        "Examples:\n\n\b\n"
        "  stream-detector train --data Twitter_volume_AAPL.csv --train-fraction 0.15 "
        "--out registry\n"
        "  stream-detector train --data sales.csv --model lstm --window 28 --out registry\n"
        "  stream-detector train --data events.h5 --model events --config events.yaml\n"
        "  stream-detector train --data events.h5 --model hybrid  # AE + NPLM p-values, NPLM "
        "options under nplm: in --config"
    ),
)
def train_command(
    ctx: typer.Context,
    data: Annotated[Path, typer.Option(help="CSV, Parquet, HDF5, JSON or JSON lines history",
                                       callback=existing_input)],
    out: Annotated[Path, typer.Option(help="registry root: OUT/<name>/<version>/",
                                      callback=new_folder)] = Path("registry"),
    model: Annotated[ModelFamily, typer.Option("--model", help="model family")] = "dense",
    config: Annotated[Path | None, typer.Option(help="YAML/JSON file of options",
                                                callback=existing_input)] = None,
    kind: Annotated[RecordKind | None, typer.Option(help="record kind (default: inferred)")] = None,
    key: KeyOption = None,
    name: Annotated[str | None, typer.Option(help="model name (default: file stem)")] = None,
    version: Annotated[str | None, typer.Option(help="version (default: next number)")] = None,
    window: Annotated[int | None, typer.Option(min=1, help="window length")] = None,
    train_fraction: Annotated[
        float | None,
        typer.Option(callback=fraction, help="train on the first fraction of each key (causal)"),
    ] = None,
    train_until: Annotated[
        str | None, typer.Option(help="train on records up to this time")
    ] = None,
    threshold_method: Annotated[
        CalibrationMethod | None,
        typer.Option(help="calibration method [default: sigma for z-scored detection, "
                          "else percentile]"),
    ] = None,
    threshold_value: Annotated[
        float | None,
        typer.Option(help="e.g. 4.5 (sigma), 99.5 (percentile), 0.005 (contamination or fpr) "
                          "[default: those]"),
    ] = None,
    per_key_thresholds: Annotated[bool, typer.Option(help="one threshold per key")] = False,
    serves: Annotated[
        str | None,
        typer.Option(help="keys a worker routes to this model: trained (the keys in --data), "
                          "all (every key of its kind) or pattern:REGEX [default: trained for "
                          "series, all for sales and events]"),
    ] = None,
    epochs: Annotated[int, typer.Option(min=1, help="most epochs")] = 30,
    device: Annotated[Literal["auto", "cpu", "cuda"], typer.Option(help="torch device")] = "auto",
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    strict_time: StrictTimeOption = False,
    missing: MissingOption = "reject",
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON summary instead")] = False,
) -> None:
    from offline_training.train import train
    from offline_training.train_config import checked_options, read_config
    from offline_training.train_options import TrainOptions
    from offline_training.train_summary import dumps, summary_lines
    from offline_training.trainer import TrainConfig

    with one_line_errors():
        in_file, train_in_file = (checked_options(read_config(config), config)
                                  if config is not None else ({}, {}))
        # a flag given on the command line, then the config file, then the flag's default
        flags: dict[str, tuple[str, Any]] = {
            "family": ("model", model), "kind": ("kind", kind), "key": ("key", key),
            "name": ("name", name), "version": ("version", version),
            "window": ("window", window), "train_fraction": ("train_fraction", train_fraction),
            "train_until": ("train_until", train_until),
            "threshold_method": ("threshold_method", threshold_method),
            "threshold_value": ("threshold_value", threshold_value),
            "per_key_thresholds": ("per_key_thresholds", per_key_thresholds),
            "serves": ("serves", serves), "seed": ("seed", seed),
            "strict_time": ("strict_time", strict_time), "missing": ("missing", missing)}
        chosen = _merged(ctx, flags, in_file)
        train_flags = {"max_epochs": ("epochs", epochs), "device": ("device", device),
                       "seed": ("seed", chosen["seed"]), "progress": ("progress", progress)}
        train_config = TrainConfig(**_merged(ctx, train_flags, train_in_file))
        opts = TrainOptions(data=data, out=out, train=train_config,
                            step=_step if progress else lambda _: None, **chosen)
        report = train(opts)
    for line in [dumps(report)] if as_json else summary_lines(report, data):
        say(line)


def _merged(ctx: typer.Context, flags: dict[str, tuple[str, Any]],
            in_file: dict[str, Any]) -> dict[str, Any]:
    """Each field's flag value, unless the flag was left at its default and ``in_file``
    (the config file) sets the field."""
    merged = {field: value for field, (_, value) in flags.items()}
    for field, value in in_file.items():
        flag = flags.get(field)
        source = ctx.get_parameter_source(flag[0]) if flag is not None else None
        if source is None or source.name in ("DEFAULT", "DEFAULT_MAP"):  # not given: the file's
            merged[field] = value
    return merged


def _step(text: str) -> None:
    err_console.print(f"[dim]{escape(text)}...[/]", highlight=False, soft_wrap=True)


@app.command(
    "score",
    help=(
        "Score a file offline through ONNX Runtime, with the worker's own pipeline: the "
        "`alert` column is the worker's alerting decision.\n\n"
        "Example:\n\n\b\n"
        "  stream-detector score --model registry/Twitter_volume_AAPL --data "
        "Twitter_volume_AAPL.csv --out scores.csv"
    ),
)
def score_command(
    model: ModelOption,
    data: ScoredDataOption,
    out: Annotated[Path, typer.Option(help="every window's score: CSV, or Parquet when it "
                                           "ends .parquet (its folder must exist)",
                                      callback=new_file)] = Path("scores.csv"),
    kind: Annotated[
        RecordKind | None, typer.Option(help="record kind (default: the model's)")
    ] = None,
    key: KeyOption = None,
    provider: Annotated[
        ProviderPreference, typer.Option(help="ONNX Runtime provider")
    ] = "auto",
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    strict_time: StrictTimeOption = False,
    missing: MissingOption = "reject",
) -> None:
    import pandas as pd

    from offline_training.load_tables import PARQUET_SUFFIXES
    from stream_detector.files.batch import (
        COLUMNS,
        load_runtime,
        require_kind,
        require_memory,
        score_records,
    )
    from stream_detector.files.history import load_source
    from stream_detector.files.time_report import time_report

    if out.exists() and out.samefile(data):
        raise typer.BadParameter(f"{out} is the --data file: the scores would overwrite it; "
                                 "give another file name", param_hint="'--out'")
    parquet = out.suffix.lower() in PARQUET_SUFFIXES
    if not parquet and out.suffix.lower() not in {".csv", ".txt", ""}:
        raise typer.BadParameter(f"{out.name}: the scores are written as CSV (.csv) or "
                                 "Parquet (.parquet), not as its suffix says",
                                 param_hint="'--out'")
    with one_line_errors():
        runtime = load_runtime(model, provider)
        source = load_source(data, kind=require_kind(runtime, data, kind), key=key,
                             strict_time=strict_time, missing=missing,
                             features=runtime.card.features)
        require_memory(source.total, str(data))
        records = list(source.records)
        with records_progress(f"scoring {data.name}", len(records), progress) as advance:
            rows = [r.as_tuple() for _, r in score_records(runtime, records, advance,
                                                               name=str(data))]
        frame = pd.DataFrame(rows, columns=COLUMNS)
        if parquet:
            frame.to_parquet(out, index=False)
        else:
            frame.to_csv(out, index=False)
        timing = time_report(records, runtime.time, source.ignored).lines()
    filled = (f" ({source.imputed:,} missing value{'' if source.imputed == 1 else 's'} "
              "filled in)") if source.imputed else ""
    scored = int(frame["key"].nunique())
    short = ""
    if scored < source.keys:  # they were counted as scored keys, silently
        keys = sorted({r.key for r in records} - set(frame["key"].astype(str)))
        shown = ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")
        short = (f"; {len(keys):,} key(s) had fewer records than the window "
                 f"({runtime.card.window}) and no window: {printable(shown)}")
    say(f"scored {len(frame):,} windows{filled} of {scored:,} key(s) with "
        f"{runtime.card.name} v{runtime.card.version} on {runtime.loaded.scorer.provider}: "
        f"{int(frame['alert'].sum()):,} alerts -> {out}{short}")
    if timing:
        say(timing)


@app.command(
    "evaluate",
    help=(
        "Score a labelled file and report detection quality (metrics, NAB score, plots).\n\n"
        "Example:\n\n\b\n"
        "  stream-detector evaluate --model registry/Twitter_volume_AAPL --data "
        "Twitter_volume_AAPL.csv --labels combined_windows.json --out reports/aapl"
    ),
)
def evaluate_command(
    model: ModelOption,
    data: ScoredDataOption,
    labels: Annotated[
        Path | None, typer.Option(help="anomaly windows JSON: NAB's combined_windows.json, "
                                  '{"KEY": [[start, end], ...]} per series of the file, '
                                  "or the demo's labels.json",
                                  callback=existing_input)
    ] = None,
    out: Annotated[Path, typer.Option(help="folder for report.json and plots",
                                      callback=new_folder)] = Path("reports/evaluation"),
    key: KeyOption = None,
    strict_time: StrictTimeOption = False,
    missing: MissingOption = "reject",
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    import functools

    with one_line_errors():
        if labels is not None:
            from offline_training.labels import read_labels

            read_labels(labels)  # unreadable labels fail here, in < 1 s, before any work
        from offline_training.evaluate import evaluate

        bar = functools.partial(records_progress, f"scoring {data.name}", enabled=progress)
        result = evaluate(model, data, out, labels=labels, key=key, strict_time=strict_time,
                          missing=missing, progress=lambda total: bar(total=total))
    for line in _evaluation_lines(result.metrics) + [result.time_line]:
        if line:
            say(line)
    say(f"report: {result.report}")


def _evaluation_lines(metrics: dict[str, object]) -> list[str]:
    """The summary on the console; every number is also in report.json and index.html."""
    lines = [f"{metrics['model']}: {metrics['windows']:,} windows scored, "
             f"{metrics['alerts']} alerts"]
    alert, nab, window = (metrics.get(k) for k in ("alert_level", "nab", "window_level"))
    if isinstance(alert, dict):
        missed = alert["missed_windows"]
        lines.append(f"alert level: {alert['true_alerts']} true, {alert['false_alerts']} false; "
                     f"{alert['windows_detected']}/{alert['labelled_windows']} labelled windows "
                     f"detected" + (f", missed: {'; '.join(missed)}" if missed else ""))
    if isinstance(nab, dict) and nab["perfect"] == nab["null"]:
        lines.append("NAB standard score: not defined (no labelled window: NAB normalises "
                     "between no alerts and a perfect detector, here the same)")
    elif isinstance(nab, dict):
        lines.append(f"NAB standard score: {nab['standard_normalised']:.1f} (normalised, 100 = "
                     "perfect, 0 = no alerts)")
    unlabelled = metrics.get("unlabelled_keys")
    if isinstance(unlabelled, dict):
        names = unlabelled["names"]
        more = ", ..." if unlabelled["keys"] > len(names) else ""
        lines.append(f"not judged: {unlabelled['keys']:,} key(s) the labels do not name "
                     f"({', '.join(printable(str(n)) for n in names)}{more}), with "
                     f"{unlabelled['alerts']:,} alert(s)")
    if isinstance(window, dict):
        lines.append(f"window level (every window above the threshold): precision "
                     f"{window['precision']:.3g}, recall {window['recall']:.3g}, ROC AUC "
                     f"{window['roc_auc']:.3g}")
    return lines
