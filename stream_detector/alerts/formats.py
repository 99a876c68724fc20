"""The words of an alert: Slack-compatible JSON payloads for incident notices.

Pure functions, no I/O. A payload is Slack's message shape (``text`` for notifications and
clients without blocks, ``blocks`` for the layout); Mattermost, Rocket.Chat, Discord's Slack
endpoint and most generic webhooks accept it too. Keys, model names and window ends come
from Kafka messages, so every string taken from an event is escaped (:func:`escape`): a key
cannot inject a link or an ``@channel`` mention.

``render`` is what the consumer calls for each :class:`~stream_detector.alerts.incidents.Notice`;
sinks (:mod:`stream_detector.alerts.sinks`) deliver the payload it returns.
"""

from __future__ import annotations

import json
from typing import Any, Final

from schemas.events import AnomalyEvent
from stream_detector.alerts.incidents import Incident, Notice
from stream_detector.logs import printable

__all__ = [
    "Payload",
    "escape",
    "incident_payload",
    "payload_bytes",
    "render",
    "resolution_payload",
]

_HEADER_MAX: Final = 150  # Slack's limit on a header block's text
_TOP_CONTRIBUTORS: Final = 5

Payload = dict[str, Any]


def escape(text: str) -> str:
    """Escape Slack's three control characters so keys cannot inject links or mentions,
    and control characters (:func:`~stream_detector.logs.printable`) so they cannot break
    the post's lines.

    >>> escape("a<b>&c"), escape("k\\n*fake*")
    ('a&lt;b&gt;&amp;c', 'k\\\\n*fake*')
    """
    return printable(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _field(title: str, value: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": f"*{title}*\n{value}"}


def _contributors(event: AnomalyEvent) -> str:
    top = sorted(event.top_contributors, key=lambda c: c.error, reverse=True)
    lines = [
        f"• {escape(c.name)} (t-{c.time_offset}): {c.error:.4g}" for c in top[:_TOP_CONTRIBUTORS]
    ]
    return "\n".join(lines) or "none reported"


def render(notice: Notice, suppress: float) -> Payload:
    """The payload of one notice: :func:`incident_payload` for an opening (naming the quiet
    period of ``suppress`` event-time seconds), :func:`resolution_payload` for a closing."""
    if notice.kind == "opened":
        return incident_payload(notice.incident.first, suppress)
    return resolution_payload(notice.incident)


def incident_payload(event: AnomalyEvent, suppress: float) -> Payload:
    """The post that opens an incident: everything an on-call person needs at a glance.

    Parameters
    ----------
    event
        The incident's first anomaly event.
    suppress
        Event-time seconds a key must be quiet for its incident to close (said in the
        post's footer).
    """
    model = f"{event.model.name} v{event.model.version}"
    text = (
        f"Anomaly on {event.key}: score {event.score:.4g} > threshold {event.threshold:.4g} "
        f"(severity {event.severity:.1f}), model {model}, window end {event.window_end}"
    )
    fields = [
        _field("Model", escape(model)),
        _field("Window end", escape(event.window_end)),
        _field("Score vs threshold", f"{event.score:.4g} vs {event.threshold:.4g}"),
        _field("Severity", f"{event.severity:.1f} / 100"),
    ]
    if event.p_value is not None:
        fields.append(_field("p-value", f"{event.p_value:.3g}"))
    header = printable(f"Anomaly: {event.key}")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header[:_HEADER_MAX]}},
        {"type": "section", "fields": fields},
        {"type": "section", "text": {"type": "mrkdwn",
                                     "text": "*Top contributors*\n" + _contributors(event)}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": (
            f"event {event.event_id}; further anomalies of this key are grouped until it has "
            f"been quiet for {suppress:g} s")}]},
    ]
    return {"text": escape(text), "blocks": blocks}


def resolution_payload(incident: Incident) -> Payload:
    """The short post that closes an incident: how many anomalies, over which windows."""
    start, end = incident.first.window_end, incident.last.window_end
    text = (
        f"resolved: {incident.count} anomal{'y' if incident.count == 1 else 'ies'} "
        f"between {start} and {end} on {incident.key}"
    )
    block = {"type": "section", "text": {"type": "mrkdwn", "text": escape(text)}}
    return {"text": escape(text), "blocks": [block]}


def payload_bytes(payload: Payload) -> bytes:
    """The JSON body of a POST (compact, UTF-8).

    >>> payload_bytes({"text": "é"})
    b'{"text":"\\xc3\\xa9"}'
    """
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
