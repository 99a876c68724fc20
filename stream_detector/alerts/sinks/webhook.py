"""The webhook sink: Slack-compatible JSON POSTed to one URL, with retries.

Webhook URLs often carry a secret in their path (Slack's ``/services/T../B../XXXX``), so
nothing here ever prints the whole URL: :func:`mask_url` keeps the scheme and host.
"""

from __future__ import annotations

import base64
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import unquote, urlsplit, urlunsplit

from stream_detector.alerts.formats import Payload, payload_bytes
from stream_detector.alerts.sinks.base import SinkConfig, SinkError
from stream_detector.exceptions import ConfigurationError

__all__ = ["Webhook", "WebhookError", "build", "mask_url", "webhook_problem"]

_USER_AGENT: Final = "stream-detector-alerts"


class WebhookError(SinkError):
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
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError:
        return ("has a port that is not a number (in a user:password@, write / # ? as "
                "%2F %23 %3F)")
    return None


def _without_userinfo(url: str) -> tuple[str, str | None]:
    """The URL without ``user:password@``, and those as an HTTP Basic ``Authorization``
    value (RFC 7617; urllib would take them for part of the host name), or None.

    >>> _without_userinfo("https://bot:s%40cret@h.example:8443/hook?x=1")
    ('https://h.example:8443/hook?x=1', 'Basic Ym90OnNAY3JldA==')
    >>> _without_userinfo("http://127.0.0.1:9000/hook")
    ('http://127.0.0.1:9000/hook', None)
    """
    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at:
        return url, None
    user, _, password = userinfo.partition(":")
    pair = f"{unquote(user)}:{unquote(password)}".encode()
    return (urlunsplit(parts._replace(netloc=host)),
            "Basic " + base64.b64encode(pair).decode("ascii"))


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


class _Retryable(Exception):
    """A failure worth another try: 5xx, 429, timeouts, refused or reset connections."""


Opener = Callable[[urllib.request.Request, float], Any]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a new target: urllib would re-send the post as a GET
    without its body, with the Authorization header, to wherever it points."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises the 3xx as an HTTPError


_OPENER: Final = urllib.request.build_opener(_NoRedirect)


def _urlopen(request: urllib.request.Request, timeout: float) -> Any:
    return _OPENER.open(request, timeout=timeout)


class Webhook:
    """POST JSON payloads (:func:`~stream_detector.alerts.formats.payload_bytes`) to one URL
    with a timeout and exponential backoff on 5xx.

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

    Raises
    ------
    ConfigurationError
        The URL is not a usable ``http(s)://`` URL (:func:`webhook_problem` says why).
    WebhookError
        From a call: a 4xx answer other than 429, or every attempt failed.
    """

    def __init__(
        self, url: str, timeout: float = 10.0, retries: int = 4, backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep, opener: Opener = _urlopen,
    ) -> None:
        problem = webhook_problem(url)
        if problem is not None:
            raise ConfigurationError(f"webhook URL {problem}; give the full URL, e.g. "
                                     "https://hooks.slack.com/services/T0/B0/XXXX")
        self._url, self._auth = _without_userinfo(url.strip())
        self.target = mask_url(url)
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self._sleep, self._open = sleep, opener

    def __repr__(self) -> str:
        return f"Webhook({self.target!r})"

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
            f"webhook {self.target} failed {_times(self.retries + 1)}, last: {last}; "
            "check that it is up (offsets are not committed: the events will be retried)")

    def _send(self, body: bytes) -> None:
        headers = {"Content-Type": "application/json", "User-Agent": _USER_AGENT}
        if self._auth is not None:
            headers["Authorization"] = self._auth
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self._url, data=body, method="POST", headers=headers)
        try:
            with self._open(request, self.timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            exc.close()  # it holds the response's socket
            if exc.code >= 500 or exc.code == 429:
                raise _Retryable(f"HTTP {exc.code} {exc.reason}") from None
            if 300 <= exc.code < 400:
                raise WebhookError(
                    f"webhook {self.target} answered HTTP {exc.code} {exc.reason}, a redirect: "
                    "not followed (the post and its credentials go nowhere else); give the "
                    "URL it redirects to") from None
            raise WebhookError(
                f"webhook {self.target} rejected the post: HTTP {exc.code} {exc.reason}; "
                "check the URL and that it accepts Slack-style JSON") from None
        except (urllib.error.URLError, OSError) as exc:  # TimeoutError, ConnectionError ...
            reason = getattr(exc, "reason", None) or exc
            raise _Retryable(f"{type(exc).__name__}: {reason}") from None


def build(config: SinkConfig) -> Webhook:
    """The webhook sink for ``config.url``.

    Raises
    ------
    ConfigurationError
        No URL was given, or it is not usable.
    """
    if not config.url:
        raise ConfigurationError("no webhook: set STREAM_DETECTOR_ALERT_WEBHOOK_URL, or pass "
                                 "--webhook or --dry-run")
    return Webhook(config.url, timeout=config.timeout, retries=config.retries)
