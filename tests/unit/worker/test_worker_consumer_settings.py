"""The worker's Faust consumer fetches ahead of the scoring agent as its settings say."""

from __future__ import annotations

from pathlib import Path

from stream_detector.settings import Settings
from stream_detector.worker.app import faust_app


def test_the_consumer_buffer_and_fetch_size_reach_faust(tmp_path: Path) -> None:
    default = faust_app(Settings(state_dir=tmp_path / "a"), 4).conf
    assert (default.stream_buffer_maxsize, default.consumer_max_fetch_size) == (16384, 8 << 20)
    chosen = faust_app(Settings(state_dir=tmp_path / "b", consumer_buffer=100,
                                 fetch_bytes=2 << 20), 4).conf
    assert (chosen.stream_buffer_maxsize, chosen.consumer_max_fetch_size) == (100, 2 << 20)


def test_faust_gets_the_brokers_the_other_clients_get(tmp_path: Path) -> None:
    """Faust read the raw URL: an empty entry became a second broker, 127.0.0.1:9092."""
    from faust.transport.drivers.aiokafka import server_list

    for url, servers in (("kafka://h:9092,", ["h:9092"]), ("kafka://a:1;;b:2", ["a:1", "b:2"]),
                         ("kafka://a:1, b:2", ["a:1", "b:2"]), ("c:3", ["c:3"])):
        conf = faust_app(Settings(state_dir=tmp_path, kafka_url=url), 4).conf
        assert server_list(conf.broker, 9092) == servers, url
