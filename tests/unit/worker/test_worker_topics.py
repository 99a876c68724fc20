"""A worker's topics: three roles, three topics, checked before Kafka is asked anything."""

from __future__ import annotations

import pytest

from stream_detector.exceptions import ConfigurationError
from stream_detector.settings import Settings
from stream_detector.worker.topics import ensure_topics


@pytest.mark.parametrize(("given", "said"), [
    ({"STREAM_DETECTOR_DEAD_LETTER_TOPIC": "records"}, "input and dead-letter topics"),
    ({"STREAM_DETECTOR_OUTPUT_TOPIC": "records"}, "input and output topics"),
    ({"STREAM_DETECTOR_OUTPUT_TOPIC": "x", "STREAM_DETECTOR_DEAD_LETTER_TOPIC": "x"},
     "output and dead-letter topics"),
    ({"STREAM_DETECTOR_NAMESPACE": "team", "STREAM_DETECTOR_OUTPUT_TOPIC": "team.records"},
     "both 'team.records'"),  # the namespace prefixes each name once
])
def test_a_topic_in_two_roles_is_refused_before_kafka_is_reached(
    monkeypatch: pytest.MonkeyPatch, given: dict[str, str], said: str,
) -> None:
    for name, value in given.items():
        monkeypatch.setenv(name, value)
    settings = Settings(kafka_url="kafka://127.0.0.1:1")  # nothing listens: not reached
    with pytest.raises(ConfigurationError, match=said):
        ensure_topics(settings, timeout=0.5)
