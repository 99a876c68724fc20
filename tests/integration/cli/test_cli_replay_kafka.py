"""`stream-detector replay` against the real broker: what a consumer reads back."""

from __future__ import annotations

import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic
from typer.testing import CliRunner

from offline_training.synthetic_sales import SalesConfig, make_sales, write_panel_csv
from offline_training.synthetic_series import SeriesConfig, make_series, write_series_csv
from schemas.records import SalesRow, SeriesPoint, parse_message
from stream_detector.cli.main import app
from stream_detector.services.process import ServiceHandle

PARTITIONS = 5
runner = CliRunner()


def java_murmur2(data: bytes) -> int:
    """Kafka's Java ``Utils.murmur2`` (seed 0x9747b28c), written independently of librdkafka."""
    m, r, mask = 0x5BD1E995, 24, 0xFFFFFFFF
    h = (0x9747B28C ^ len(data)) & mask
    whole = len(data) // 4 * 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & mask
        k ^= k >> r
        k = (k * m) & mask
        h = ((h * m) & mask) ^ k
    tail = data[whole:]
    if len(tail) == 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if tail:
        h ^= tail[0]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h


def java_partition(key: bytes, partitions: int) -> int:
    """``DefaultPartitioner``/``BuiltInPartitioner``: toPositive(murmur2(key)) % n."""
    return (java_murmur2(key) & 0x7FFFFFFF) % partitions


def test_java_murmur2_matches_kafkas_published_vectors() -> None:
    # From Kafka's UtilsTest.testMurmur2 (signed ints there).
    cases = {b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536,
             b"a-little-bit-longer-string": -1486304829,
             b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
             b"abc": 479470107}
    for key, signed in cases.items():
        assert java_murmur2(key) == signed & 0xFFFFFFFF, key


@pytest.fixture()
def topic(kafka_broker: ServiceHandle) -> str:
    name = f"replay-{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": kafka_broker.url.split("://", 1)[1]})
    for future in admin.create_topics([NewTopic(name, PARTITIONS, 1)]).values():
        future.result(timeout=30)
    return name


def consume_all(handle: ServiceHandle, topic: str, expected: int) -> list[Any]:
    consumer = Consumer({
        "bootstrap.servers": handle.url.split("://", 1)[1],
        "group.id": f"test-{uuid.uuid4()}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    consumer.subscribe([topic])
    got: list[Any] = []
    deadline = time.monotonic() + 30
    try:
        # after the expected count, a few empty polls show that nothing more was sent
        idle = 0
        while idle < 3 and time.monotonic() < deadline:
            batch = consumer.consume(1000, timeout=0.5)
            idle = 0 if batch or len(got) < expected else idle + 1
            got.extend(m for m in batch if m.error() is None)
    finally:
        consumer.close()
    return got


def replay(*args: str) -> Any:
    result = runner.invoke(app, ["replay", *args, "--no-progress"])
    assert result.exit_code == 0, result.output
    return result


def check_keys_and_partitions(messages: list[Any]) -> dict[str, list[Any]]:
    by_key: dict[str, list[Any]] = defaultdict(list)
    partitions: dict[str, set[int]] = defaultdict(set)
    for msg in messages:
        records = parse_message(msg.value())
        key = msg.key().decode()
        assert {r.key for r in records} == {key}
        partitions[key].add(msg.partition())
        by_key[key].extend(records)
    for key, seen in partitions.items():
        assert seen == {java_partition(key.encode(), PARTITIONS)}, key
    return by_key


def test_series_file_arrives_keyed_ordered_and_java_partitioned(
    kafka_broker: ServiceHandle, topic: str, tmp_path: Path
) -> None:
    series = make_series(SeriesConfig(rows=600), seed=3)
    path = write_series_csv(tmp_path / "Twitter_volume_TEST.csv", series)
    result = replay(str(path), "--topic", topic, "--kafka", kafka_broker.url)
    assert "sent 600 series records" in result.output
    messages = consume_all(kafka_broker, topic, 600)
    assert len(messages) == 600
    by_key = check_keys_and_partitions(messages)
    assert list(by_key) == ["Twitter_volume_TEST"]
    records = by_key["Twitter_volume_TEST"]
    assert all(isinstance(r, SeriesPoint) for r in records)
    assert [r.value for r in records] == series.values.tolist()
    # NAB-style "2015-02-26 00:00:00" text comes back as ISO 8601 with a T
    assert records[0].timestamp == str(series.timestamps[0].astype("datetime64[s]"))
    assert [r.epoch_ns for r in records] == series.timestamps.astype("int64").tolist()


def test_sales_panel_in_batches_keeps_every_key_on_its_java_partition(
    kafka_broker: ServiceHandle, topic: str, tmp_path: Path
) -> None:
    panel = make_sales(SalesConfig(stores=3, items=4, days=60), seed=5)
    path = write_panel_csv(tmp_path / "sales.csv", panel)
    replay(str(path), "-t", topic, "--batch", "7", "--kafka", kafka_broker.url)
    # 12 keys x 60 days in runs of 7: ceil(60 / 7) = 9 messages per key
    messages = consume_all(kafka_broker, topic, 12 * 9)
    assert len(messages) == 12 * 9
    by_key = check_keys_and_partitions(messages)
    assert sorted(by_key) == sorted(panel.series)
    assert len({java_partition(k.encode(), PARTITIONS) for k in by_key}) > 1
    for key, records in by_key.items():
        assert all(isinstance(r, SalesRow) for r in records)
        assert [r.values[0] for r in records] == panel.series[key].values.tolist()
        assert records[0].date == "2016-01-01"
    assert Counter(len(parse_message(m.value())) for m in messages) == {7: 12 * 8, 4: 12}


def test_nab_aapl_first_rows(kafka_broker: ServiceHandle, topic: str, nab_dir: Path) -> None:
    path = nab_dir / "data" / "realTweets" / "Twitter_volume_AAPL.csv"
    replay(str(path), "-t", topic, "--limit", "2000", "--batch", "50",
           "--kafka", kafka_broker.url)
    messages = consume_all(kafka_broker, topic, 40)
    assert len(messages) == 40
    records = check_keys_and_partitions(messages)["Twitter_volume_AAPL"]
    assert len(records) == 2000
    with path.open() as handle:
        next(handle)
        first = next(handle).strip().split(",")
    assert records[0].timestamp == first[0].replace(" ", "T")
    assert records[0].value == float(first[1])


def test_a_name_kafka_refuses_is_one_clear_line(kafka_broker: ServiceHandle,
                                                tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("timestamp,value\n2015-02-26 21:42:53,1\n")
    result = runner.invoke(
        app, ["replay", str(path), "-t", "bad topic!", "--kafka", kafka_broker.url]
    )
    assert result.exit_code == 1
    assert "--topic: 'bad topic!' is not a Kafka topic name: use letters" in result.output
    assert "Traceback" not in result.output


def test_a_new_topic_gets_the_workers_partition_count(kafka_broker: ServiceHandle,
                                                      tmp_path: Path) -> None:
    """Not the broker's auto-creation (num.partitions=1 here): a worker could not spread
    a one-partition topic over replicas."""
    from stream_detector.settings import Settings

    want = Settings().topic_partitions
    assert want != 1  # else the test would not tell the two apart
    path = tmp_path / "s.csv"
    path.write_text("timestamp,value\n2015-02-26 21:42:53,1\n")
    name = f"fresh-{uuid.uuid4().hex[:10]}"
    result = replay(str(path), "-t", name, "--kafka", kafka_broker.url)
    assert f"to {name} ({want} partitions)" in result.output
    admin = AdminClient({"bootstrap.servers": kafka_broker.url.split("://", 1)[1]})
    assert len(admin.list_topics(name, timeout=10).topics[name].partitions) == want


def test_broker_rejections_fail_the_replay_with_the_reason(
    kafka_broker: ServiceHandle, tmp_path: Path
) -> None:
    name = f"tiny-{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": kafka_broker.url.split("://", 1)[1]})
    small = NewTopic(name, 1, 1, config={"max.message.bytes": "2000"})
    for future in admin.create_topics([small]).values():
        future.result(timeout=30)
    series = make_series(SeriesConfig(rows=600), seed=3)
    path = write_series_csv(tmp_path / "s.csv", series)
    # 50 records (~5 kB) per message: the broker refuses each one
    result = runner.invoke(app, ["replay", str(path), "-t", name, "--batch", "50",
                                 "--kafka", kafka_broker.url, "--no-progress"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: Kafka rejected"), result.output
    assert "too large" in lines[0].lower()


def test_a_broker_that_goes_away_mid_replay_is_said_so_within_the_delivery_timeout(
    tmp_path: Path,
) -> None:
    """It was silent for ~80 s (30 s of message timeout, then a 60 s flush of a queue that
    timed out message by message) and then blamed the broker: "Kafka rejected 9002 of
    12051 messages"."""
    import os
    import subprocess
    import sys

    from stream_detector.services.kafka import KafkaBroker
    from stream_detector.services.process import stop_handle
    from stream_detector.settings import Settings

    kafka = KafkaBroker(Settings().cache_dir).start(data_dir=tmp_path / "kafka")
    path = write_series_csv(tmp_path / "s.csv", make_series(SeriesConfig(rows=20_000), seed=4))
    repo = str(Path(__file__).resolve().parents[3])
    replay = subprocess.Popen(  # noqa: S603 - our own interpreter
        [sys.executable, "-m", "stream_detector", "replay", str(path), "-t", "gone",
         "--rate", "500", "--kafka", kafka.url, "--no-progress"],
        env={**os.environ, "PYTHONPATH": repo}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(6)
        stop_handle(kafka)
        started = time.monotonic()
        output, _ = replay.communicate(timeout=120)
        took = time.monotonic() - started
    finally:
        replay.kill()
        stop_handle(kafka)
    assert replay.returncode == 1, output
    error = [line for line in output.splitlines() if line.startswith("error: ")]
    assert error and error[0].startswith("error: Kafka stopped taking messages to 'gone' ("), \
        output
    assert "is the broker still running? The replay stopped with" in error[0]
    assert took < 50, f"said after {took:.0f} s"


@pytest.mark.parametrize("progress", ["--no-progress", "--progress"])
def test_ctrl_c_in_a_paced_replay_says_what_was_sent_and_exits_130(
    kafka_broker: ServiceHandle, topic: str, tmp_path: Path, progress: str,
) -> None:
    """A Ctrl-C while librdkafka's poll slept raised inside it: a SystemError traceback
    ("returned NULL without setting an exception"), or with the bar an exit that never
    said how much had been sent."""
    import os
    import signal
    import subprocess
    import sys

    path = write_series_csv(tmp_path / "s.csv", make_series(SeriesConfig(rows=2_000), seed=6))
    repo = str(Path(__file__).resolve().parents[3])
    replay = subprocess.Popen(  # noqa: S603 - our own interpreter
        [sys.executable, "-m", "stream_detector", "replay", str(path), "-t", topic,
         "--rate", "50", "--kafka", kafka_broker.url, progress],
        env={**os.environ, "PYTHONPATH": repo}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(8)  # connected, and some records sent
        replay.send_signal(signal.SIGINT)
        output, _ = replay.communicate(timeout=60)
    finally:
        replay.kill()
    assert replay.returncode == 130, output
    assert "Traceback" not in output, output
    line = next(x for x in output.splitlines() if x.startswith("interrupted: sent "))
    sent = int(line.split()[2].replace(",", ""))
    assert 0 < sent < 2_000 and f"of 2,000 records in {sent:,} messages" in line, line
    assert len(consume_all(kafka_broker, topic, sent)) == sent  # what it said went out
