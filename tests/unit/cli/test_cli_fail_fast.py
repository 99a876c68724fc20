"""Every user error: one line on stderr, a non-zero exit, no heavy import, nothing written.

Each case runs the real console entry point in a fresh interpreter and reports which heavy
modules it had imported by the time it exited: an error that is found before torch,
onnxruntime or faust load appears in well under a second (their import alone takes seconds).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.model_fixtures import window_mean_model, write_registry_model

HEAVY = ("torch", "onnxruntime", "faust", "offline_training.train", "plotly", "sklearn")
NAB = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "nab"
_PROBE = """
import json, sys
from stream_detector.cli.main import main
args, watched = json.loads(sys.argv[1]), json.loads(sys.argv[2])
sys.argv = ["stream-detector", *args]
try:
    main()
    code = 0
except SystemExit as exc:
    code = exc.code
heavy = [m for m in watched if m in sys.modules]
print(json.dumps({"code": code, "heavy": heavy}))
"""


def run_cli(args: list[str], cwd: Path) -> tuple[int, list[str], str, list[str]]:
    """(exit code, heavy modules imported, stderr, stderr lines) of one CLI run."""
    done = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", _PROBE, json.dumps(args), json.dumps(HEAVY)],
        cwd=cwd, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "HOME": str(cwd),
             "PYTHONPATH": str(Path(__file__).resolve().parents[3])},
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    return result["code"], result["heavy"], done.stderr, lines


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "series.csv"
    path.write_text("timestamp,value\n" + "".join(
        f"2015-01-01 00:{i:02d}:00,{i}\n" for i in range(60)))
    return path


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed when the block ends: nothing listens


CASES = {
    "fraction out of range": (["train", "--data", "{data}", "--train-fraction", "1.5"],
                              "--train-fraction"),
    "missing data file": (["train", "--data", "nosuch.csv"], "nosuch.csv does not exist"),
    "missing option": (["train"], "Missing option '--data'"),
    "score into a missing folder": (
        ["score", "--model", "{model}", "--data", "{data}", "--out", "{tmp}/no/dir/s.csv"],
        "does not exist; create it first"),
    "score with no model": (["score", "--model", "{tmp}", "--data", "{data}"], "no model in"),
    "evaluate, missing labels": (
        ["evaluate", "--model", "{model}", "--data", "{data}", "--labels", "nosuch.json",
         "--out", "{tmp}/ev"], "nosuch.json does not exist"),
    "evaluate, labels not JSON": (
        ["evaluate", "--model", "{model}", "--data", "{data}", "--labels", "{data}",
         "--out", "{tmp}/ev"], "cannot read label windows"),
    "unknown command": (["nosuch"], "No such command"),
    "worker, model missing": (["worker", "--model", "{tmp}/none"], "does not exist"),
    # a dead letter's topic read as input looped one bad message into thousands
    "worker, dead letters into its input": (
        ["worker", "--model", "{model}", "--input", "loop", "--dead-letter", "loop",
         "--kafka", "kafka://127.0.0.1:{port}"],
        "the input and dead-letter topics are both 'loop': a bad record's dead letter would "
        "be consumed again, forever"),
    "worker, events into its input": (
        ["worker", "--model", "{model}", "--input", "t", "--output", "t", "--kafka",
         "kafka://127.0.0.1:{port}"], "the input and output topics are both 't'"),
    "worker, events and dead letters in one topic": (
        ["worker", "--model", "{model}", "--output", "o", "--dead-letter", "o", "--kafka",
         "kafka://127.0.0.1:{port}"], "the output and dead-letter topics are both 'o'"),
    "ui, model missing": (["ui", "--model", "{tmp}/none", "--kafka",
                           "kafka://127.0.0.1:{port}"], "--model: {tmp}/none does not exist"),
    "wrong --kind": (["replay", "{data}", "--kind", "serie"],
                     "Invalid value for '--kind': 'serie' is not one of"),
    "worker, broker down": (["worker", "--model", "{model}", "--kafka",
                             "kafka://127.0.0.1:{port}"], "cannot reach Kafka"),
    "alerts, broker down": (["alerts", "--dry-run", "--no-state", "--kafka",
                             "kafka://127.0.0.1:{port}"], "cannot reach Kafka"),
    "alerts, unknown sink under --dry-run": (
        ["alerts", "--dry-run", "--no-state", "--sink", "slack", "--kafka",
         "kafka://127.0.0.1:{port}"], "no alert sink 'slack'; choose one of webhook, dry-run"),
    # a bad value from a flag is named by the flag, not by the variable the user never set
    "tail, credentials in --kafka": (["tail", "--kafka", "kafka://u:secret@127.0.0.1:9092"],
                                     "--kafka: Kafka URL carries credentials"),
    "alerts, bad port in --redis": (["alerts", "--dry-run", "--redis",
                                     "redis://127.0.0.1:99999/0"], "--redis: "),
    # a topic Kafka would refuse, before Kafka is reached (ui followed nothing, silently)
    "worker, a space in --output": (
        ["worker", "--model", "{model}", "--output", "a b", "--kafka",
         "kafka://127.0.0.1:{port}"], "--output: 'a b' is not a Kafka topic name"),
    "ui, a slash in --events": (["ui", "--events", "a/b", "--kafka", "kafka://127.0.0.1:{port}"],
                                "--events: 'a/b' is not a Kafka topic name"),
    "tail, a space in --topic": (["tail", "--topic", "a b", "--kafka",
                                  "kafka://127.0.0.1:{port}"], "--topic: 'a b' is not a Kafka"),
    "replay, a space in --topic": (["replay", "{data}", "--topic", "a b", "--kafka",
                                    "kafka://127.0.0.1:{port}"], "--topic: 'a b' is not a Kafka"),
    "demo, scheme of --redis": (["demo", "--redis", "http://127.0.0.1:6379", "--out",
                                 "{tmp}/demo"], "--redis: "),
    "demo, broker down": (["demo", "--kafka", "kafka://127.0.0.1:{port}", "--out",
                           "{tmp}/demo"], "cannot reach Kafka"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_user_errors_are_one_line_before_any_heavy_import(
    case: str, tmp_path: Path, data: Path, closed_port: int,
) -> None:
    model = write_registry_model(tmp_path / "registry" / "tiny" / "1", window_mean_model(4, 1),
                                 window=4)
    args, expected = CASES[case]
    argv = [a.format(data=data, tmp=tmp_path, model=model, port=closed_port) for a in args]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))

    code, heavy, stderr, lines = run_cli(argv, tmp_path)

    assert code not in (0, None), stderr
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    assert expected.format(tmp=tmp_path) in lines[0], stderr
    assert "Traceback" not in stderr
    assert heavy == [], f"imported {heavy} before failing"
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_score_into_a_missing_folder_creates_nothing(tmp_path: Path, data: Path) -> None:
    model = write_registry_model(tmp_path / "m" / "1", window_mean_model(4, 1), window=4)
    target = tmp_path / "nonexistent" / "dir" / "s.csv"
    code, _, _, _ = run_cli(["score", "--model", str(model), "--data", str(data),
                             "--out", str(target)], tmp_path)
    assert code == 2
    assert not (tmp_path / "nonexistent").exists()


def test_the_evaluate_labels_check_runs_before_scoring(tmp_path: Path, data: Path) -> None:
    """Labels that parse but do not name the file: one line, no report folder."""
    model = write_registry_model(tmp_path / "m" / "1", window_mean_model(4, 1), window=4)
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"other/file.csv": []}))
    code, _, stderr, lines = run_cli(["evaluate", "--model", str(model), "--data", str(data),
                                      "--labels", str(labels), "--out",
                                      str(tmp_path / "ev")], tmp_path)
    assert code == 1 and len(lines) == 1 and "has no windows for series.csv" in stderr
    assert not (tmp_path / "ev").exists()
