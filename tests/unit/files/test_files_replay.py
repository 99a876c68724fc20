"""Replay's pure parts (history records, grouping, encoding, pacing) and CLI errors; no network."""

from __future__ import annotations

import doctest
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from confluent_kafka import KafkaError, KafkaException
from typer.testing import CliRunner

from schemas.records import (
    MAX_MESSAGE_BYTES,
    FeatureEvent,
    SalesRow,
    SeriesPoint,
    parse_message,
)
from stream_detector.cli.main import app
from stream_detector.exceptions import DataError
from stream_detector.files import history
from stream_detector.files.history import iso_timestamps, records_from
from stream_detector.files.replay import (
    ReplayError,
    check_topic,
    encode,
    group_by_key,
    messages,
    producer_config,
    send,
)

runner = CliRunner()


def load_source(path: Path, kind: Any = None, **options: Any) -> history.RecordSource:
    """What the CLI does: load with offline_training, then prepare the records."""
    from offline_training.loaders import load

    return records_from(load(path, kind), path, kind=kind, **options)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def point(key: str, i: int, value: float = 1.0) -> SeriesPoint:
    stamp = f"2015-02-26T21:{i:02d}:00"
    return SeriesPoint(kind="series", series=key, timestamp=stamp, value=value)


def test_module_doctests() -> None:
    result = doctest.testmod(history)
    assert result.attempted >= 3 and result.failed == 0


@pytest.mark.parametrize(
    ("stamps", "coarsest", "expected"),
    [
        (["2015-02-26 21:42:53", "2015-02-26 21:47:53"], "s",
         ["2015-02-26T21:42:53", "2015-02-26T21:47:53"]),
        (["2017-01-01", "2017-01-02"], "s", ["2017-01-01T00:00:00", "2017-01-02T00:00:00"]),
        (["2017-01-01", "2017-01-02"], "D", ["2017-01-01", "2017-01-02"]),
        (["2017-01-01", "2017-01-02T06:00"], "D", ["2017-01-01T00:00:00", "2017-01-02T06:00:00"]),
        (["2015-01-01T00:00:00.25"], "s", ["2015-01-01T00:00:00.250"]),
        (["2015-01-01T00:00:00.000001"], "s", ["2015-01-01T00:00:00.000001"]),
        (["1969-12-31T23:59:59"], "s", ["1969-12-31T23:59:59"]),
    ],
)
def test_iso_timestamps_keep_every_value_exact(
    stamps: list[str], coarsest: Any, expected: list[str]
) -> None:
    assert iso_timestamps(np.array(stamps, dtype="datetime64[ns]"), coarsest) == expected


def test_nab_series_becomes_series_points_keyed_by_the_file_stem(tmp_path: Path) -> None:
    path = write(tmp_path / "Twitter_volume_AAPL.csv",
                 "timestamp,value\n2015-02-26 21:42:53,104\n2015-02-26 21:47:53,100.5\n")
    source = load_source(path)
    assert (source.kind, source.total, source.keys) == ("series", 2, 1)
    assert list(source.records) == [
        SeriesPoint(kind="series", series="Twitter_volume_AAPL",
                    timestamp="2015-02-26T21:42:53", value=104.0),
        SeriesPoint(kind="series", series="Twitter_volume_AAPL",
                    timestamp="2015-02-26T21:47:53", value=100.5),
    ]
    renamed = load_source(path, key="AAPL", limit=1)
    assert [r.key for r in renamed.records] == ["AAPL"] and renamed.total == 1


def test_timezone_offsets_become_utc(tmp_path: Path) -> None:
    path = write(tmp_path / "s.csv", "timestamp,value\n2015-02-26T21:42:53+01:00,1\n")
    (record,) = load_source(path).records
    assert isinstance(record, SeriesPoint)
    assert record.timestamp == "2015-02-26T20:42:53"


PANEL = (
    "date,store,item,sales\n"
    "2017-01-01,1,7,3\n2017-01-02,1,7,4\n2017-01-03,1,7,5\n"
    "2017-01-01,2,7,10\n2017-01-02,2,7,11\n"
)


def test_sales_panel_key_order_and_time_order(tmp_path: Path) -> None:
    path = write(tmp_path / "train.csv", PANEL)
    by_key = load_source(path)
    assert (by_key.kind, by_key.total, by_key.keys) == ("sales", 5, 2)
    rows = [(r.key, r.date, r.sales) for r in by_key.records if isinstance(r, SalesRow)]
    assert rows == [("1/7", "2017-01-01", 3.0), ("1/7", "2017-01-02", 4.0),
                    ("1/7", "2017-01-03", 5.0), ("2/7", "2017-01-01", 10.0),
                    ("2/7", "2017-01-02", 11.0)]
    by_time = [(r.key, r.timestamp_text) for r in load_source(path, order="time").records]
    assert by_time == [("1/7", "2017-01-01"), ("2/7", "2017-01-01"), ("1/7", "2017-01-02"),
                       ("2/7", "2017-01-02"), ("1/7", "2017-01-03")]
    first = next(load_source(path).records)
    assert isinstance(first, SalesRow) and (first.store, first.item) == (1, 7)


def test_panel_key_selects_one_series(tmp_path: Path) -> None:
    path = write(tmp_path / "train.csv", PANEL)
    only = load_source(path, key="2/7")
    assert only.total == 2 and {r.key for r in only.records} == {"2/7"}
    with pytest.raises(DataError, match=r"no key '9/9'; the file has 2 keys \(1/7, 2/7\)$"):
        load_source(path, key="9/9")  # both named: no "..." after them


def test_key_on_a_file_whose_series_column_holds_another_id_is_refused(tmp_path: Path) -> None:
    """--key X on a file of series Y renamed its records to X without a word (on a file of
    two series the same flag was refused)."""
    rows = "".join(f"2015-02-26T21:{i:02d}:00,{i},Y\n" for i in range(5))
    path = write(tmp_path / "one.csv", "timestamp,value,series\n" + rows)
    with pytest.raises(DataError, match="no key 'X'; its series column holds one id, 'Y'"):
        load_source(path, key="X")
    assert {r.key for r in load_source(path, key="Y").records} == {"Y"}
    plain = write(tmp_path / "plain.csv", "timestamp,value\n2015-02-26T21:00:00,1\n")
    assert {r.key for r in load_source(plain, key="X").records} == {"X"}  # it names it


def test_sales_ids_must_be_integers(tmp_path: Path) -> None:
    path = write(tmp_path / "train.csv", "date,store,item,sales\n2017-01-01,A,7,3\n")
    with pytest.raises(DataError, match="'A/7' is not STORE/ITEM with integer ids"):
        load_source(path)


def test_events_get_row_ids_and_row_second_timestamps(tmp_path: Path) -> None:
    path = write(tmp_path / "ev.csv", "a,b,label\n1.5,2,0\n3,4.25,1\n5,6,0\n")
    source = load_source(path, key="detector-a", limit=2)
    assert (source.kind, source.total) == ("events", 2)
    assert list(source.records) == [
        FeatureEvent(kind="events", source="detector-a", event_id="ev:0",
                     timestamp="1970-01-01T00:00:00", features=[1.5, 2.0]),
        FeatureEvent(kind="events", source="detector-a", event_id="ev:1",
                     timestamp="1970-01-01T00:00:01", features=[3.0, 4.25]),
    ]
    assert {r.key for r in load_source(path).records} == {"events"}


def test_records_over_schema_bounds_fail_with_the_row(tmp_path: Path) -> None:
    path = write(tmp_path / "s.csv", "timestamp,value\n2015-02-26 21:42:53,1\n")
    source = load_source(path, key="k" * 300)
    with pytest.raises(DataError,
                       match=r"s.csv: record 1 \(k+\.\.\. at 2015-02-26T21:42:53\): series"):
        list(source.records)


def test_group_by_key_keeps_order_and_never_mixes_keys() -> None:
    records = [point("a", 0), point("a", 1), point("a", 2), point("b", 3), point("a", 4)]
    groups = list(group_by_key(records, 2))
    assert [[r.timestamp[-5:-3] for r in g] for g in groups] == [
        ["00", "01"], ["02"], ["03"], ["04"]]
    assert [g[0].key for g in groups] == ["a", "a", "b", "a"]
    assert [r for g in group_by_key(records, 10) for r in g] == records
    assert list(group_by_key([], 3)) == []
    with pytest.raises(ValueError, match="size must be >= 1"):
        list(group_by_key(records, 0))


def test_encode_is_model_dump_json_and_parses_back() -> None:
    records = [point("a", 0, 0.1), point("a", 1, 1e20)]
    assert encode(records[:1]) == records[0].model_dump_json().encode()
    as_list = encode(records)
    assert json.loads(as_list) == [json.loads(r.model_dump_json()) for r in records]
    assert parse_message(as_list) == records
    assert parse_message(encode(records[:1], as_list=True)) == records[:1]


def test_messages_key_by_record_and_batch_as_lists() -> None:
    records = [point("a", 0), point("a", 1), point("b", 2)]
    singles = list(messages(records, 1))
    assert [(k, n) for k, _, n in singles] == [(b"a", 1), (b"a", 1), (b"b", 1)]
    assert all(v.startswith(b"{") for _, v, _ in singles)
    batched = list(messages(records, 5))
    assert [(k, n) for k, _, n in batched] == [(b"a", 2), (b"b", 1)]
    assert [parse_message(v) for _, v, _ in batched] == [records[:2], records[2:]]
    with pytest.raises(DataError, match="batch must be 1..10000"):
        list(messages(records, 0))


def test_messages_over_the_worker_limit_say_which_batch_fits() -> None:
    wide = [FeatureEvent(kind="events", source="s", timestamp="2015-01-01",
                         features=[0.123456789] * 4000) for _ in range(30)]
    with pytest.raises(DataError, match=r"above the worker's limit of 1048576; use --batch \d+"):
        list(messages(wide, 30))
    assert all(len(v) <= MAX_MESSAGE_BYTES for _, v, _ in messages(wide[:5], 5))


def test_producer_config_partitions_like_java_and_stays_uncompressed() -> None:
    conf = producer_config({"bootstrap.servers": "h:1"})
    assert conf["partitioner"] == "murmur2_random"
    assert conf["bootstrap.servers"] == "h:1"
    assert conf.get("compression.type", "none") == "none"
    assert conf["enable.idempotence"] is True


class FakeProducer:
    """Delivers on poll; can refuse a message or report failures, on a fake clock."""

    def __init__(self, fail: bool = False, full_once: bool = False, lose: bool = False) -> None:
        self.now = 0.0
        self.fail, self.full_once, self.lose = fail, full_once, lose
        self.queue: list[Callable[[Any, Any], None]] = []
        self.produced: list[tuple[float, bytes, bytes]] = []
        self.flushes = 0

    def produce(self, topic: str, *, value: bytes, key: bytes,
                on_delivery: Callable[[Any, Any], None]) -> None:
        if self.full_once:
            self.full_once = False
            raise BufferError("queue full")
        self.produced.append((self.now, key, value))
        self.queue.append(on_delivery)

    def poll(self, timeout: float) -> int:
        self.now += timeout
        if self.lose:  # the broker never answers
            return 0
        served, self.queue = self.queue, []
        error = KafkaError(KafkaError._MSG_TIMED_OUT) if self.fail else None
        for callback in served:
            callback(error, None)
        return len(served)

    def flush(self, timeout: float) -> int:
        self.flushes += 1
        self.poll(0)
        return len(self.queue)


def stream(n: int) -> list[tuple[bytes, bytes, int]]:
    return [(b"k", b'{"i": %d}' % i, 2) for i in range(n)]


def test_send_counts_delivery_reports_and_retries_a_full_queue() -> None:
    producer = FakeProducer(full_once=True)
    progress: list[int] = []
    stats = send(producer, "t", stream(5), on_progress=progress.append, clock=lambda: producer.now)
    assert (stats.messages, stats.records, stats.delivered, stats.failed) == (5, 10, 5, 0)
    assert [v for _, _, v in producer.produced] == [v for _, v, _ in stream(5)]
    assert sum(progress) == 10
    assert stats.bytes == sum(len(v) for _, v, _ in stream(5))


def test_send_stops_at_the_first_failed_delivery() -> None:
    producer = FakeProducer(fail=True)
    # a timed-out delivery: the broker went away, it did not reject anything
    with pytest.raises(ReplayError, match=r"Kafka stopped taking messages to 't' \(Local: "
                                          r"Message timed out\): is the broker still running\? "
                                          r"The replay stopped with 0 of 1 messages stored"):
        send(producer, "t", stream(5))
    assert len(producer.produced) == 1


def test_send_raises_when_messages_stay_unacknowledged() -> None:
    with pytest.raises(ReplayError, match="5 of 5 messages to 't' were not acknowledged"):
        send(FakeProducer(lose=True), "t", stream(5), flush_timeout=0)


def test_send_paces_records_per_second() -> None:
    producer = FakeProducer()
    stats = send(producer, "t", stream(5), rate=100.0, clock=lambda: producer.now)
    times = [t for t, _, _ in producer.produced]
    # 2 records per message at 100 records/s: one message every 20 ms
    assert times == pytest.approx([0.0, 0.02, 0.04, 0.06, 0.08])
    assert stats.records_per_second == pytest.approx(10 / 0.08)


def test_send_stops_when_told_and_still_delivers_what_it_produced() -> None:
    producer = FakeProducer()
    stats = send(producer, "t", stream(50), rate=100.0, clock=lambda: producer.now,
                 stop=lambda: producer.now >= 0.05)  # asked in the paced wait too
    assert stats.interrupted
    assert (stats.messages, stats.records) == (3, 6)  # sent at 0, 20 and 40 ms
    assert stats.delivered == 3 and producer.flushes == 1


def test_interrupt_flag_turns_the_first_ctrl_c_into_a_flag_and_the_second_into_an_error(
) -> None:
    import os
    import signal

    from stream_detector.cli.common import interrupt_flag

    before = signal.getsignal(signal.SIGINT)
    with interrupt_flag() as flag:
        os.kill(os.getpid(), signal.SIGINT)
        assert flag.is_set()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


class Meta:
    def __init__(self, topics: dict[str, Any]) -> None:
        self.topics = topics


class TopicMeta:
    def __init__(self, error: KafkaError | None, partitions: int) -> None:
        self.error, self.partitions = error, dict.fromkeys(range(partitions))


class MetadataProducer:
    def __init__(self, answers: list[Any]) -> None:
        self.answers = answers

    def list_topics(self, topic: str, timeout: float) -> Meta:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return Meta({topic: answer})


def test_check_topic_waits_for_auto_creation_then_counts_partitions() -> None:
    pending = TopicMeta(KafkaError(KafkaError.LEADER_NOT_AVAILABLE), 0)
    assert check_topic(MetadataProducer([pending, TopicMeta(None, 3)]), "t", "h:1") == 3


def test_check_topic_errors_are_one_clear_sentence() -> None:
    down = KafkaException(KafkaError(KafkaError._TRANSPORT))
    with pytest.raises(ReplayError, match="cannot reach Kafka at h:1 .*--kafka kafka://HOST:PORT"):
        check_topic(MetadataProducer([down]), "t", "h:1")
    invalid = TopicMeta(KafkaError(KafkaError.TOPIC_EXCEPTION), 0)
    with pytest.raises(ReplayError, match="topic 't' is not available on h:1"):
        check_topic(MetadataProducer([invalid]), "t", "h:1", timeout=60)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("", "file is empty"),
        ("timestamp,value\n2015-02-26 21:42:53,abc\n", "'abc' is not a number"),
        ("timestamp,value\nyesterday,1\n", "is not an ISO 8601 timestamp"),
        ("time,v\n2015-02-26 21:42:53,1\n", "missing column(s)"),
    ],
)
def test_bad_files_are_one_clear_line(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "bad.csv"
    if content is not None:
        path.write_text(content)
    # the file is read before Kafka is contacted: no broker is needed to see the error
    result = runner.invoke(app, ["replay", str(path), "--kind", "series",
                                 "--kafka", "kafka://127.0.0.1:1"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert str(path) in lines[0]


def test_help_shows_examples_and_options() -> None:
    result = runner.invoke(app, ["replay", "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    assert "stream-detector replay Twitter_volume_AAPL.csv --topic records" in result.output
    for option in ("--topic", "--kind", "--key", "--rate", "--batch", "--limit", "--kafka"):
        assert option in result.output


def test_batch_out_of_range_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["replay", str(tmp_path / "x.csv"), "--batch", "0"])
    assert result.exit_code == 2


def test_hdf5_events_replay_as_feature_events(tmp_path: Path) -> None:
    from offline_training.synthetic_events import EventsConfig, make_events, write_events

    events = make_events(EventsConfig(events=40), seed=2)
    path = write_events(tmp_path / "collisions.h5", events)
    source = load_source(path, key="detector-a")
    records = list(source.records)
    assert (source.kind, source.total, len(records)) == ("events", 40, 40)
    assert all(isinstance(r, FeatureEvent) and len(r.features) == 57 for r in records)
    assert records[-1].event_id == "collisions:39"
    assert np.array_equal(np.array([r.values for r in records], np.float32), events.features)


def test_records_json_with_several_series_stays_series(tmp_path: Path) -> None:
    rows = [{"kind": "series", "series": s, "timestamp": f"2015-01-01T00:0{i}:00", "value": i}
            for s in ("a", "b") for i in range(3)]
    path = write(tmp_path / "records.json", json.dumps(rows))
    source = load_source(path)
    assert (source.kind, source.keys, source.total) == ("series", 2, 6)
    sent = [json.loads(r.model_dump_json()) for r in source.records]
    assert [(r["series"], r["timestamp"], r["value"]) for r in sent] == [
        (r["series"], r["timestamp"], float(r["value"])) for r in rows]


def test_a_bad_record_mid_stream_still_delivers_what_came_before() -> None:
    def broken() -> Any:
        yield from stream(3)
        raise DataError("bad.csv: record 7: value: not finite")

    producer = FakeProducer()
    with pytest.raises(DataError, match="record 7"):
        send(producer, "t", broken())
    assert producer.flushes == 1 and not producer.queue
    assert len(producer.produced) == 3
