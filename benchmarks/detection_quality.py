"""Detection quality of the default detector, one configuration for every series.

Causal protocol: each file's model trains on its first 15% (NAB's probationary period), then
the whole file is scored through the worker's own pipeline (``score_records``: the
``alert`` column of ``stream-detector score``, the decision the worker makes). Reported:

- NAB realTweets and artificialWithAnomaly: standard, reward-low-FP and reward-low-FN
  scores, normalised per group, next to the published detectors (../shared/data/nab);
- NAB artificialNoAnomaly: alerts after the probationary period (a good detector has none);
- the demo's generated data (``stream-detector demo``'s own training options): recall per
  labelled anomaly kind and precision, for series (seeds 0..9) and sales (seeds 0..2, each
  seed's precision too: one seed's figure moves by several points with one alert), and
  series on seeds no setting was tuned on (``--unseen-seeds``, default 10-29: the
  default's robustness beyond the seeds it was chosen on);
- the demo's physics events (``benchmarks/events_quality.py``): ROC AUC of the event
  model's score between signal and background events (trained on background only), and
  the hybrid's NPLM p-values per sample: calibration under the null, power per injected
  signal fraction;
- an ablation: the same trained models' windows re-decided with one detection setting
  changed (``benchmarks/detection_replay.py``: scored once, every variant replayed through
  ``decide``; the default's replay is checked against the worker's own alerts);
- generated series of other shapes (``benchmarks/generated_quality.py``: server metrics,
  sensors, traffic, prices, demand), none tuned on: NAB standard score per family, for the
  default and the ablations in ``GENERATED_VARIANTS``;
- a held-out proxy (``benchmarks/detection_heldout.py``): five metric-like families with
  irregular sampling (1-10 minute cadences), NAB scores per family in the three profiles
  for the default and every ablation, against NAB's windowed Gaussian and the AE alone.

    python benchmarks/detection_quality.py     # about 15 minutes on 2 cores
    python benchmarks/detection_quality.py --only events     # the events part, ~3 minutes
    python benchmarks/detection_quality.py --only heldout    # the held-out proxy, ~3 minutes
    python benchmarks/detection_quality.py --only unseen     # series seeds 10-29, ~1 minute

Writes ``detection_quality.json`` and ``detection_quality.md`` under ``--out`` (and the
held-out proxy alone as ``detection_heldout.json``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from offline_training.nab import (
    PROFILES,
    load_windows,
    probationary_length,
    score_corpus,
    window_indices,
)
from offline_training.train import train
from offline_training.train_options import TrainOptions
from offline_training.trainer import TrainConfig
from stream_detector.files.history import load_source

try:
    from benchmarks import detection_heldout, detection_replay, events_quality, generated_quality
except ModuleNotFoundError:  # run as a script (the README's command): benchmarks/ is on the path
    import detection_heldout  # type: ignore[no-redef]
    import detection_replay  # type: ignore[no-redef]
    import events_quality  # type: ignore[no-redef]
    import generated_quality  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
NAB = ROOT.parent / "shared" / "data" / "nab"
GROUPS = ("realTweets", "artificialWithAnomaly", "artificialNoAnomaly")
PUBLISHED = {  # standard profile, normalised per group (../shared/data/nab/README.md)
    "ARTime": (81.8, 70.3), "contextOSE": (74.5, 73.0), "Numenta HTM": (68.0, 70.2),
    "KNN-CAD": (64.3, 45.3), "Random Cut Forest": (48.1, 15.5)}
# Each row re-scores the same models with detection settings changed from the default.
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "without the trust in the seasonal component (season_gate 0)": {"season_gate": 0.0},
    "without the anomaly-likelihood stage (likelihood_weight 0)": {"likelihood_weight": 0.0},
    "without the level-shift component (shift_weight 0)": {"shift_weight": 0.0},
    "without the seasonal components (AE z-score only)": {"season_weight": 0.0,
                                                          "shift_weight": 0.0,
                                                          "value_weight": 0.0,
                                                          "burst_weight": 0.0},
    "seasonal baseline: mean of past days (season_alpha 0.5)": {"season_alpha": 0.5},
    "without the short-term-forecast component (value_weight 0)": {"value_weight": 0.0},
    "without the trust in the short-term-forecast component (value_gate 0)": {"value_gate": 0.0},
    "short-term-forecast component without its slope (value_trend 0)": {"value_trend": 0.0},
    "without the variance-burst component (burst_weight 0)": {"burst_weight": 0.0},
    "without the trust in the variance-burst component (burst_gate 0)": {"burst_gate": 0.0},
    "level-shift baseline without slope or hold (shift_trend 0, shift_hold 0)": {
        "shift_trend": 0.0, "shift_hold": 0.0},
    "without habituation after a page (habituate 0)": {"habituate": 0.0},
    "AE-led pages habituate like the rest (habituate_ae 0)": {"habituate_ae": 0.0},
    "without confirmation by the window before (confirm 0)": {"confirm": 0.0},
    "forecast residual's exceedances fade like the rest of its spread (value_excess 1)": {
        "value_excess": 1.0},
    "plus smoothing of the detection score (half-life 2)": {"smooth": 2.0},
    "anomaly likelihood weighed 1.29 (alerts at likelihood 0.99999)": {"likelihood_weight": 1.29},
    "variance-burst component without its collapse side (collapse 0)": {"collapse": 0.0},
    "warm-up and quiet period a whole day at any cadence (max_windows 0)": {"max_windows": 0},
    "without recurrence: a repeat of a recent page's shape pages (recur_memory 0)": {
        "recur_memory": 0},
}
GENERATED_VARIANTS = ("default", "without habituation after a page (habituate 0)",
                      "AE-led pages habituate like the rest (habituate_ae 0)",
                      "without confirmation by the window before (confirm 0)",
                      "without the short-term-forecast component (value_weight 0)",
                      "without the trust in the seasonal component (season_gate 0)",
                      "without the anomaly-likelihood stage (likelihood_weight 0)",
                      "anomaly likelihood weighed 1.29 (alerts at likelihood 0.99999)",
                      "variance-burst component without its collapse side (collapse 0)",
                      "warm-up and quiet period a whole day at any cadence (max_windows 0)",
                      "without recurrence: a repeat of a recent page's shape pages "
                      "(recur_memory 0)")
SERIES_SEEDS = range(10)
UNSEEN_SEEDS = range(10, 30)  # series seeds no detection setting was tuned on
SALES_SEEDS = range(3)


def _train(path: Path, registry: Path, epochs: int, **options: Any) -> Path:
    report = train(TrainOptions(data=path, out=registry, plots=False,
                                train=TrainConfig(max_epochs=epochs, progress=False,
                                                  num_threads=1), **options))
    return report.path


def nab_detections(
    epochs: int, registry: Path, groups: tuple[str, ...] = GROUPS, nab: Path = NAB,
    variants: tuple[str, ...] = tuple(VARIANTS),
) -> dict[str, dict[str, np.ndarray]]:
    """Per variant, per ``group/file``: one boolean per row (the row's window alerted)."""
    out: dict[str, dict[str, np.ndarray]] = {name: {} for name in variants}
    for group in groups:
        for path in sorted((nab / "data" / group).glob("*.csv")):
            model = _train(path, registry, epochs, train_fraction=0.15)
            # scored once through the worker's pipeline; each variant re-decides its windows
            scored = detection_replay.trace(model, list(load_source(path).records))
            stamps = pd.read_csv(path).timestamp.str.replace(" ", "T", regex=False)
            for name in variants:
                alerts = detection_replay.replay(scored, VARIANTS[name])
                ends = {t for t, alert in zip(scored.stamps, alerts, strict=True) if alert}
                out[name][f"{group}/{path.name}"] = stamps.isin(ends).to_numpy()
            print(f"{group}/{path.name}: {int(out['default'][f'{group}/{path.name}'].sum())} "
                  "alerts", flush=True)
    return out


def nab_scores(detections: dict[str, np.ndarray], nab: Path = NAB) -> dict[str, Any]:
    """Normalised scores per group and profile; alerts after probation on artificialNoAnomaly."""
    windows = load_windows(nab / "labels" / "combined_windows.json")
    result: dict[str, Any] = {}
    for group in GROUPS:
        files = {k: v for k, v in detections.items() if k.startswith(group + "/")}
        if not files:
            continue
        if group == "artificialNoAnomaly":
            result[group] = {"alerts_after_probation": sum(
                int(v[probationary_length(v.size):].sum()) for v in files.values())}
            continue
        rows = {k: window_indices(pd.to_datetime(pd.read_csv(nab / "data" / k).timestamp)
                                  .to_numpy(), windows[k]) for k in files}
        scores = {p: score_corpus(files, rows, p) for p in PROFILES}
        std = scores["standard"]
        result[group] = {
            **{p: round(s.normalized, 1) for p, s in scores.items()},
            "windows_found": sum(f.detected_windows for f in std.files.values()),
            "windows": sum(f.windows for f in std.files.values()),
            "false_positives": sum(f.fp for f in std.files.values())}
    return result


def _kind_quality(found: dict[str, list[bool]], alerts: int, true: int) -> dict[str, Any]:
    return {"precision": round(true / alerts, 3) if alerts else None, "alerts": alerts,
            "recall": {k: round(float(np.mean(v)), 3) for k, v in sorted(found.items())}}


def _labelled(labelled: Any, rows: list[Any], found: dict[str, list[bool]]) -> tuple[int, int]:
    """Alerts of one labelled series and how many fall in a window; marks windows found."""
    position = {int(t): i for i, t in enumerate(labelled.timestamps.astype("datetime64[ns]")
                                                .astype(np.int64))}
    ends = [pd.Timestamp(r.timestamp.removesuffix("Z")).value for r in rows if r.alert]
    hits = [position[t] for t in ends if t in position]
    for a in labelled.anomalies:
        found.setdefault(a.kind, []).append(
            any(a.window_start <= i <= a.window_end for i in hits))
    true = sum(any(a.window_start <= i <= a.window_end for a in labelled.anomalies)
               for i in hits)
    return len(hits), true


def demo_quality(epochs: int, folder: Path) -> dict[str, Any]:
    """The demo's kinds, trained with the demo's own options: the default's quality per
    kind (the worker's decisions) and, per ablation variant, the same windows re-decided."""
    folder.mkdir(parents=True, exist_ok=True)
    traces = {"series": _series_traces(epochs, folder), "sales": _sales_traces(epochs, folder)}
    result: dict[str, Any] = {kind: _demo_kind(t, None) for kind, t in traces.items()}
    result["ablation"] = {name: {kind: _demo_kind(t, overrides) for kind, t in traces.items()}
                          for name, overrides in VARIANTS.items() if name != "default"}
    return result


# one scored file of generated data: its trace and each key's labelled series
_Scored = tuple[detection_replay.Trace, dict[str, Any]]


def unseen_quality(epochs: int, folder: Path, seeds: range = UNSEEN_SEEDS) -> dict[str, Any]:
    """The demo's series on ``seeds`` (none tuned on), the worker's own decisions: recall
    per kind, precision, each seed's precision, and the seeds as ``[first, last]``."""
    folder.mkdir(parents=True, exist_ok=True)
    return {**_demo_kind(_series_traces(epochs, folder, seeds), None),
            "seeds": [seeds[0], seeds[-1]]}


def _series_traces(epochs: int, folder: Path, seeds: range = SERIES_SEEDS) -> list[_Scored]:
    from offline_training.synthetic_series import make_series, write_series_csv

    out = []
    for seed in seeds:
        one = make_series(seed=seed, key="synthetic_series")
        path = write_series_csv(folder / f"series_{seed}.csv", one)
        model = _train(path, folder / "models", epochs, name=f"series{seed}",
                       **_demo_options("series"))
        scored = detection_replay.trace(model, list(load_source(path).records))
        out.append((scored, {key: one for key in set(scored.keys)}))  # one key per file
    return out


def _sales_traces(epochs: int, folder: Path) -> list[_Scored]:
    from offline_training.synthetic_sales import make_sales, write_panel_csv

    out = []
    for seed in SALES_SEEDS:
        panel = make_sales(seed=seed)
        path = write_panel_csv(folder / f"sales_{seed}.csv", panel)
        model = _train(path, folder / "models", epochs, name=f"sales{seed}",
                       **_demo_options("sales"))
        out.append((detection_replay.trace(model, list(load_source(path).records)),
                    dict(panel.series)))
    return out


def _demo_kind(traces: list[_Scored], overrides: dict[str, Any] | None) -> dict[str, Any]:
    """Recall per kind and precision over all of a kind's files, and each file's precision;
    ``overrides`` None: the worker's own alerts, else re-decided with those settings."""
    found: dict[str, list[bool]] = {}
    alerts = true = 0
    per_seed = []
    for scored, labelled in traces:
        flags = scored.alerts if overrides is None else detection_replay.replay(scored,
                                                                                overrides)
        rows = [_Row(t, k, a) for t, k, a in zip(scored.stamps, scored.keys, flags,
                                                 strict=True)]
        n_seed = t_seed = 0
        for key, one in labelled.items():
            n, t = _labelled(one, [r for r in rows if r.key == key], found)
            n_seed, t_seed = n_seed + n, t_seed + t
        per_seed.append(round(t_seed / n_seed, 3) if n_seed else None)
        alerts, true = alerts + n_seed, true + t_seed
    return {**_kind_quality(found, alerts, true), "precision_per_seed": per_seed}


class _Row(NamedTuple):
    timestamp: str
    key: str
    alert: bool


def _demo_options(kind: str) -> dict[str, Any]:
    """The demo's training options for ``kind``, as ``TrainOptions`` keywords."""
    from stream_detector.demo.data import DemoOptions, train_options

    o = train_options(DemoOptions(kind=kind))  # type: ignore[arg-type]
    known = {k: o[k] for k in ("family", "kind", "train_fraction", "window",
                               "threshold_method", "threshold_value", "seed") if k in o}
    return {**known, **o.get("extra", {}), "detection": o.get("detection", {})}


def events_quality_of(epochs: int, folder: Path) -> dict[str, Any]:
    """ROC AUC on the demo's events and NPLM p-values per sample (events_quality.py)."""
    folder.mkdir(parents=True, exist_ok=True)
    options = _demo_options("events")
    return {"auc": events_quality.events_auc(epochs, folder, options),
            "nplm": events_quality.nplm_samples(epochs, folder, options)}


def markdown(result: dict[str, Any]) -> str:
    nab = result.get("nab", {})
    lines = ["| detector | realTweets std | low FP | low FN | artificialWithAnomaly std | "
             "low FP | low FN | alerts on artificialNoAnomaly |",
             "|---|---|---|---|---|---|---|---|"]
    for name, groups in nab.items():
        rt, aw = groups["realTweets"], groups["artificialWithAnomaly"]
        label = "stream-detector default" if name == "default" else f"ablation: {name}"
        lines.append(
            f"| {label} | {rt['standard']} | {rt['reward_low_FP_rate']} | "
            f"{rt['reward_low_FN_rate']} | {aw['standard']} | {aw['reward_low_FP_rate']} | "
            f"{aw['reward_low_FN_rate']} | "
            f"{groups['artificialNoAnomaly']['alerts_after_probation']} |")
    for name, (rt_score, aw_score) in PUBLISHED.items():
        lines.append(f"| {name} (published) | {rt_score} | | | {aw_score} | | | |")
    demo = result.get("demo")
    if demo:
        lines += ["", "| demo data | precision | recall per labelled kind |", "|---|---|---|"]
        seeds = {"series": f"seeds 0-{SERIES_SEEDS[-1]}", "sales": f"seeds 0-{SALES_SEEDS[-1]}"}
        for kind in ("series", "sales"):
            q = demo[kind]
            recall = ", ".join(f"{k} {v}" for k, v in q["recall"].items())
            each = q.get("precision_per_seed")
            per = f"; per seed {', '.join(str(v) for v in each)}" if each else ""
            lines.append(f"| {kind} ({seeds[kind]}) | {q['precision']} ({q['alerts']} alerts"
                         f"{per}) | {recall} |")
        unseen = result.get("unseen")
        if unseen:
            first, last = unseen["seeds"]
            recall = ", ".join(f"{k} {v}" for k, v in unseen["recall"].items())
            lines.append(f"| series (unseen seeds {first}-{last}, not tuned on) | "
                         f"{unseen['precision']} ({unseen['alerts']} alerts) | {recall} |")
        if demo.get("ablation"):
            lines += _demo_ablation(demo["ablation"])
    if result.get("events"):
        lines += events_quality.markdown(result["events"])
    lines += generated_quality.markdown(result.get("generated", {}))
    if result.get("heldout"):
        lines += detection_heldout.markdown(result["heldout"])
    return "\n".join(lines) + "\n"


def _demo_ablation(ablation: dict[str, Any]) -> list[str]:
    """The demo rows re-decided per ablation variant (the same trained models)."""
    lines = ["", "| demo data, ablation | series precision | series recall | sales precision "
             "| sales recall |", "|---|---|---|---|---|"]
    for name, kinds in ablation.items():
        cells = []
        for kind in ("series", "sales"):
            q = kinds[kind]
            cells += [f"{q['precision']} ({q['alerts']})",
                      ", ".join(f"{k} {v}" for k, v in q["recall"].items())]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def seed_range(text: str) -> range:
    """``"10-29"`` -> ``range(10, 30)``; a single ``"12"`` -> ``range(12, 13)``."""
    first, _, last = text.partition("-")
    lo, hi = int(first), int(last or first)
    if hi < lo:
        raise argparse.ArgumentTypeError(f"empty seed range {text!r}")
    return range(lo, hi + 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--only", choices=("nab", "demo", "unseen", "events", "generated",
                                           "heldout"),
                        default=None,
                        help="one part only (the other's figures are kept from the last run)")
    parser.add_argument("--unseen-seeds", type=seed_range, default=UNSEEN_SEEDS,
                        metavar="FIRST-LAST",
                        help="series seeds for the unseen-seed check (default 10-29)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    saved = args.out / "detection_quality.json"
    result: dict[str, Any] = json.loads(saved.read_text()) if saved.is_file() else {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "nab"):
            detections = nab_detections(args.epochs, Path(tmp) / "nab")
            result["nab"] = {name: nab_scores(d) for name, d in detections.items()}
            saved.write_text(json.dumps(result, indent=2))
        if args.only in (None, "demo"):
            result["demo"] = demo_quality(args.epochs, Path(tmp) / "demo")
            saved.write_text(json.dumps(result, indent=2))
        if args.only in (None, "unseen"):
            result["unseen"] = unseen_quality(args.epochs, Path(tmp) / "unseen",
                                              args.unseen_seeds)
            saved.write_text(json.dumps(result, indent=2))
        if args.only in (None, "events"):
            result["events"] = events_quality_of(args.epochs, Path(tmp) / "events")
            saved.write_text(json.dumps(result, indent=2))
        if args.only in (None, "generated"):
            result["generated"] = generated_quality.generated_quality(
                args.epochs, Path(tmp) / "generated",
                {v: VARIANTS[v] for v in GENERATED_VARIANTS}, _train, detection_replay)
            saved.write_text(json.dumps(result, indent=2))
        if args.only in (None, "heldout"):
            result["heldout"] = detection_heldout.heldout_quality(
                args.epochs, Path(tmp) / "heldout", _train, VARIANTS)
            (args.out / "detection_heldout.json").write_text(  # kept in the repository
                json.dumps(result["heldout"], indent=2) + "\n")
    (args.out / "detection_quality.json").write_text(json.dumps(result, indent=2))
    (args.out / "detection_quality.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
