"""The alerts consumer: anomaly events from Kafka to a webhook, at least once.

The loop reads the anomaly topic in its own consumer group with auto-commit off and commits
a message's offset only after every post it caused has been delivered; a crash or a failed
delivery means the message is read again (so a post can repeat, never go missing). Grouping
into incidents is :class:`~stream_detector.alerts.incidents.IncidentTracker`'s job; this module only
moves bytes. Open incidents are saved to Redis (one hash per consumer group) after a
message's posts and before its offset is committed, so a restarted consumer resumes them
instead of paging again.

Webhook URLs often carry a secret in their path (Slack's ``/services/T../B../XXXX``), so
nothing here ever prints the whole URL: :func:`mask_url` keeps the scheme and host.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol
from urllib.parse import urlsplit

from stream_detector.alerts.incidents import (
    IncidentTracker,
    Notice,
    Payload,
    incident_state,
    parse_event,
    payload_bytes,
)
from stream_detector.constants import REDIS_ALERTS_PREFIX, namespaced
from stream_detector.exceptions import ConfigurationError, InvalidRecord, StreamDetectorError

__all__ = [
    "AlertOptions",
    "AlertStats",
    "ConsumerLike",
    "DryRunSender",
    "IncidentStore",
    "RedisIncidentStore",
    "Webhook",
    "WebhookError",
    "webhook_problem",
    "consumer_config",
    "mask_url",
    "run_alerts",
]

_USER_AGENT: Final = "stream-detector-alerts"
_PARTITION_EOF: Final = -191  # confluent_kafka.KafkaError._PARTITION_EOF


class WebhookError(StreamDetectorError):
    """The webhook refused a post (4xx) or stayed unreachable through every retry."""


def mask_url(url: str) -> str:
    """The URL with only scheme and host left: paths and queries of webhooks hold secrets.

    >>> mask_url("https://user:pw@hooks.slack.com/services/T0/B0/XXXX?x=1")
    'https://hooks.slack.com/***'
    >>> mask_url("http://127.0.0.1:8080/hook")
    'http://127.0.0.1:8080/***'
    """
    parts = urlsplit(url)
    host = parts.hostname or "?"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}/***"


def webhook_problem(url: str) -> str | None:
    """What is wrong with a webhook URL, in words that never repeat its secret part; None
    if it is usable.

    >>> webhook_problem("hooks.example.com/services/T0/B0/XXXX")
    "has no http:// or https:// scheme (it starts 'hooks.example.com/...')"
    >>> webhook_problem("ftp://host/x")
    "has scheme 'ftp', not http or https"
    >>> webhook_problem("https:///services/x")
    'names no host (https://?/...)'
    """
    parts = urlsplit(url.strip())
    if not parts.scheme:
        head = url.strip().split("/", 1)[0][:40]
        shown = f" (it starts {head + '/...'!r})" if head and "@" not in head else ""
        return f"has no http:// or https:// scheme{shown}"
    if parts.scheme not in {"http", "https"}:
        return f"has scheme {parts.scheme[:10]!r}, not http or https"
    if not parts.hostname:
        return f"names no host ({parts.scheme}://?/...)"
    return None


class _Retryable(Exception):
    """A failure worth another try: 5xx, 429, timeouts, refused or reset connections."""


Opener = Callable[[urllib.request.Request, float], Any]


def _urlopen(request: urllib.request.Request, timeout: float) -> Any:
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - scheme checked


class Webhook:
    """POST JSON payloads to one URL with a timeout and exponential backoff on 5xx.

    Parameters
    ----------
    url
        ``http://`` or ``https://`` URL; never shown whole in messages.
    timeout
        Seconds for one attempt (connect and read).
    retries
        Further attempts after the first on 5xx, 429 and connection errors; 4xx other than
        429 fail at once, since repeating the same request cannot help.
    backoff
        Seconds before the first retry, doubled after each.
    """

    def __init__(
        self, url: str, timeout: float = 10.0, retries: int = 4, backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep, opener: Opener = _urlopen,
    ) -> None:
        problem = webhook_problem(url)
        if problem is not None:
            raise ConfigurationError(f"webhook URL {problem}; give the full URL, e.g. "
                                     "https://hooks.slack.com/services/T0/B0/XXXX")
        self._url = url
        self.masked = mask_url(url)
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self._sleep, self._open = sleep, opener

    def __repr__(self) -> str:
        return f"Webhook({self.masked!r})"

    def __call__(self, payload: Payload) -> None:
        """Deliver one payload or raise :class:`WebhookError`."""
        body = payload_bytes(payload)
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(self.backoff * 2 ** (attempt - 1))
            try:
                self._send(body)
                return
            except _Retryable as exc:
                last = str(exc)
        raise WebhookError(
            f"webhook {self.masked} failed {self.retries + 1} times, last: {last}; "
            "check that it is up (offsets are not committed: the events will be retried)")

    def _send(self, body: bytes) -> None:
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self._url, data=body, method="POST",
            headers={"Content-Type": "application/json", "User-Agent": _USER_AGENT})
        try:
            with self._open(request, self.timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            exc.close()  # it holds the response's socket
            if exc.code >= 500 or exc.code == 429:
                raise _Retryable(f"HTTP {exc.code} {exc.reason}") from None
            raise WebhookError(
                f"webhook {self.masked} rejected the post: HTTP {exc.code} {exc.reason}; "
                "check the URL and that it accepts Slack-style JSON") from None
        except (urllib.error.URLError, OSError) as exc:  # TimeoutError, ConnectionError ...
            reason = getattr(exc, "reason", None) or exc
            raise _Retryable(f"{type(exc).__name__}: {reason}") from None


class DryRunSender:
    """Write payloads as JSON lines instead of posting them (``--dry-run``)."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write

    def __call__(self, payload: Payload) -> None:
        self._write(json.dumps(payload, ensure_ascii=False))


@dataclass(frozen=True)
class AlertOptions:
    """How long to run and how often to look for quiet incidents."""

    topic: str
    max_seconds: float | None = None
    exit_when_idle: float | None = None
    tick: float = 1.0


@dataclass
class AlertStats:
    messages: int = 0
    invalid: int = 0
    opened: int = 0
    resolved: int = 0


class _Message(Protocol):
    def value(self) -> bytes | None: ...
    def error(self) -> Any: ...
    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...


class ConsumerLike(Protocol):
    def poll(self, timeout: float) -> Any: ...
    def commit(self, *, message: Any, asynchronous: Literal[False]) -> Any: ...


class IncidentStore(Protocol):
    """Where open incidents live between runs (JSON per key, see ``incident_state``)."""

    def save(self, states: dict[str, str]) -> None: ...

    def delete(self, keys: list[str]) -> None: ...


class RedisIncidentStore:
    """Open incidents of one consumer group in the Redis hash ``sd:[NS:]alerts:GROUP``.

    Under the project's ``sd:`` prefix like every key, so one ACL rule (``~sd:* &sd:*``)
    covers all that stream-detector touches.
    """

    def __init__(self, client: Any, group: str, namespace: str = "") -> None:
        self._redis = client
        self.name = f"{namespaced(REDIS_ALERTS_PREFIX, namespace)}{group}"

    def load(self) -> list[bytes]:
        return list(self._redis.hvals(self.name))

    def save(self, states: dict[str, str]) -> None:
        self._redis.hset(self.name, mapping=states)

    def delete(self, keys: list[str]) -> None:
        self._redis.hdel(self.name, *keys)


def _persist(tracker: IncidentTracker, store: IncidentStore | None, wall_now: float,
             log: Callable[[str], None]) -> None:
    """Save what changed; a Redis outage costs the restart memory, never the paging."""
    opened, closed = tracker.take_changes()
    if store is None or not (opened or closed):
        return
    try:
        if opened:
            store.save({k: incident_state(i, tracker.now(), wall_now) for k, i in opened.items()})
        if closed:
            store.delete(closed)
    except Exception as exc:  # noqa: BLE001 - any store failure: log it and keep alerting
        log(f"incident state not saved ({type(exc).__name__}: {exc}); alerting goes on")


def consumer_config(base: dict[str, Any], group: str, from_beginning: bool) -> dict[str, Any]:
    """Consumer settings: own group, manual commits, where a new group starts."""
    return {**base, "group.id": group, "enable.auto.commit": False,
            "auto.offset.reset": "earliest" if from_beginning else "latest",
            "enable.partition.eof": False}


def _post(notices: list[Notice], send: Callable[[Payload], None], stats: AlertStats,
          log: Callable[[str], None]) -> None:
    for notice in notices:
        send(notice.payload)
        incident = notice.incident
        if notice.kind == "opened":
            stats.opened += 1
            log(f"posted: incident opened for {incident.key} ({incident.first.event_id})")
        else:
            stats.resolved += 1
            log(f"posted: incident of {incident.key} resolved after {incident.count} "
                f"anomalies")


def _handle(msg: _Message, tracker: IncidentTracker, send: Callable[[Payload], None],
            stats: AlertStats, log: Callable[[str], None]) -> None:
    stats.messages += 1
    try:
        event = parse_event(msg.value())
    except InvalidRecord as exc:
        stats.invalid += 1
        log(f"skipped {msg.topic()}[{msg.partition()}]@{msg.offset()}: {exc}")
        return
    _post(tracker.observe(event), send, stats, log)


def run_alerts(
    consumer: ConsumerLike, tracker: IncidentTracker, send: Callable[[Payload], None],
    opts: AlertOptions, log: Callable[[str], None],
    clock: Callable[[], float] = time.monotonic, store: IncidentStore | None = None,
    wall: Callable[[], float] = time.time,
) -> AlertStats:
    """Consume until ``max_seconds`` pass or, with ``exit_when_idle``, until no message has
    arrived for that many seconds (incidents still open stay open: with a store they resume
    in the next run). The caller subscribes and closes.
    ``clock`` must be the tracker's; incidents changed by a message reach ``store`` before
    its offset is committed.
    """
    stats = AlertStats()
    start = last_message = next_tick = clock()
    while True:
        now = clock()
        if opts.max_seconds is not None and now - start >= opts.max_seconds:
            break
        idle = now - last_message
        if opts.exit_when_idle is not None and idle >= opts.exit_when_idle:
            break
        msg = consumer.poll(opts.tick)
        if msg is not None:
            error = msg.error()
            if error is None:
                last_message = clock()
                _handle(msg, tracker, send, stats, log)
                _persist(tracker, store, wall(), log)
                consumer.commit(message=msg, asynchronous=False)
            elif error.code() != _PARTITION_EOF:
                log(f"kafka: {error.str()}")
        if clock() >= next_tick:
            _post(tracker.tick(), send, stats, log)
            _persist(tracker, store, wall(), log)
            next_tick = clock() + opts.tick
    return stats
