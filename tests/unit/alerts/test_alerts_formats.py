"""Slack-compatible payloads: complete openings, short resolutions, escaped keys."""

from __future__ import annotations

import json

from alert_events import FakeClock, event

from stream_detector.alerts.formats import (
    incident_payload,
    payload_bytes,
    render,
    resolution_payload,
)
from stream_detector.alerts.incidents import IncidentTracker


def test_opening_payload_is_slack_shaped_and_complete() -> None:
    payload = incident_payload(event("AAPL", "2015-02-26T21:42:53", p_value=0.0012), 900)
    assert set(payload) == {"text", "blocks"}
    assert "AAPL" in payload["text"] and "nab v3" in payload["text"]
    header, fields, contributors, context = payload["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": "Anomaly: AAPL"}}
    texts = [f["text"] for f in fields["fields"]]
    assert texts == ["*Model*\nnab v3", "*Window end*\n2015-02-26T21:42:53",
                     "*Score vs threshold*\n0.9 vs 0.5", "*Severity*\n50.0 / 100",
                     "*p-value*\n0.0012"]
    # largest error first
    assert contributors["text"]["text"].splitlines()[1:] == [
        "• value (t-3): 0.7", "• value (t-0): 0.2"]
    assert "900 s" in context["elements"][0]["text"]
    json.loads(payload_bytes(payload))  # serialisable


def test_payload_without_p_value_omits_the_field_and_escapes_keys() -> None:
    payload = incident_payload(event("<!channel>&x", "t"), 60)
    titles = [f["text"].split("\n")[0] for f in payload["blocks"][1]["fields"]]
    assert "*p-value*" not in titles
    assert "<!channel>" not in payload["text"]
    assert "&lt;!channel&gt;&amp;x" in payload["text"]


def test_control_characters_of_a_key_are_escaped_in_every_part_of_a_post() -> None:
    payload = incident_payload(event("k\n*@here*\x1b[2J", "t"), 60)
    texts: list[str] = []
    json.loads(json.dumps(payload), object_hook=lambda d: texts.extend(
        v for v in d.values() if isinstance(v, str)))
    assert len(texts) >= 8
    assert not any("k\n" in t or "\x1b" in t for t in texts), texts  # the fields' own \n stay
    assert payload["blocks"][0]["text"]["text"] == r"Anomaly: k\n*@here*\x1b[2J"
    assert payload["text"].startswith(r"Anomaly on k\n*@here*\x1b[2J: score")


def test_resolution_payload_is_short() -> None:
    tracker = IncidentTracker(60, 0, FakeClock())
    (notice,) = tracker.observe(event("k", "t1"))
    payload = resolution_payload(notice.incident)
    assert len(payload["blocks"]) == 1
    assert payload["blocks"][0]["text"]["text"] == payload["text"]


def test_render_words_an_opening_and_a_resolution_of_one_incident() -> None:
    clock = FakeClock()
    tracker = IncidentTracker(60, 0, clock)
    (opened,) = tracker.observe(event("k", "t1"))
    clock.now += 60
    (resolved,) = tracker.tick()
    assert render(opened, 60) == incident_payload(event("k", "t1"), 60)
    assert render(resolved, 60)["text"] == "resolved: 1 anomaly between t1 and t1 on k"


def test_payload_bytes_are_compact_utf8() -> None:
    assert payload_bytes({"text": "é", "n": [1, 2]}) == '{"text":"é","n":[1,2]}'.encode()
