"""The webhook sink: retries with backoff, 4xx at once, URLs never shown whole (an opener
that answers from a script stands in for the network; the contract test posts for real)."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from stream_detector.alerts.sinks.base import SinkConfig
from stream_detector.alerts.sinks.webhook import Webhook, WebhookError, build, mask_url
from stream_detector.exceptions import ConfigurationError

URL = "https://hooks.example.com/services/T000/B000/s3cr3tT0ken"


class FakeResponse(io.BytesIO):
    pass


class Server:
    """Answers each request with the next status of a script (200 when it runs out)."""

    def __init__(self, *statuses: int | Exception) -> None:
        self.statuses = list(statuses)
        self.bodies: list[dict[str, Any]] = []
        self.timeouts: list[float] = []

    def __call__(self, request: urllib.request.Request, timeout: float) -> FakeResponse:
        assert request.get_method() == "POST"
        assert request.get_header("Content-type") == "application/json"
        assert isinstance(request.data, bytes)
        self.bodies.append(json.loads(request.data))
        self.timeouts.append(timeout)
        status = self.statuses.pop(0) if self.statuses else 200
        if isinstance(status, Exception):
            raise status
        if status >= 400:
            raise urllib.error.HTTPError(request.full_url, status, "nope", None, io.BytesIO())
        return FakeResponse(b"ok")


def hook(server: Server, sleeps: list[float], retries: int = 3) -> Webhook:
    return Webhook(URL, timeout=2.5, retries=retries, backoff=0.5, sleep=sleeps.append,
                   opener=server)


def test_mask_url_hides_path_query_and_credentials() -> None:
    masked = mask_url("https://u:pw@hooks.example.com:8443/services/T/B/XXX?token=abc")
    assert masked == "https://hooks.example.com:8443/***"


def test_post_succeeds_first_time_without_sleeping() -> None:
    server, sleeps = Server(), []
    hook(server, sleeps)({"text": "hi"})
    assert server.bodies == [{"text": "hi"}]
    assert server.timeouts == [2.5]
    assert sleeps == []


def test_5xx_and_connection_errors_are_retried_with_doubling_backoff() -> None:
    server = Server(503, urllib.error.URLError(ConnectionRefusedError("refused")),
                    TimeoutError("timed out"), 200)
    sleeps: list[float] = []
    hook(server, sleeps)({"text": "hi"})
    assert len(server.bodies) == 4
    assert sleeps == [0.5, 1.0, 2.0]


def test_giving_up_after_retries_raises_without_the_secret() -> None:
    server, sleeps = Server(500, 500, 500), []
    with pytest.raises(WebhookError) as info:
        hook(server, sleeps, retries=2)({"text": "hi"})
    assert len(server.bodies) == 3
    assert "failed 3 times" in str(info.value) and "HTTP 500" in str(info.value)
    assert "s3cr3t" not in str(info.value) and "/services" not in str(info.value)


@pytest.mark.parametrize("status", [400, 403, 404])
def test_4xx_fails_at_once_without_the_secret(status: int) -> None:
    server, sleeps = Server(status), []
    with pytest.raises(WebhookError, match=f"HTTP {status}") as info:
        hook(server, sleeps)({"text": "hi"})
    assert len(server.bodies) == 1 and sleeps == []
    assert "s3cr3t" not in str(info.value)


def test_429_is_retried() -> None:
    server, sleeps = Server(429), []
    hook(server, sleeps)({"text": "hi"})
    assert len(server.bodies) == 2


def test_non_http_url_is_a_configuration_error_without_the_secret() -> None:
    with pytest.raises(ConfigurationError) as info:
        Webhook("file:///etc/passwd-s3cr3t")
    assert "s3cr3t" not in str(info.value)
    assert "s3cr3t" not in repr(Webhook(URL))


@pytest.mark.parametrize(("url", "said"), [
    ("hooks.example.com/services/T0/B0/s3cr3t", "has no http:// or https:// scheme (it starts "
                                                "'hooks.example.com/...')"),
    ("ftp://hooks.example.com/s3cr3t", "has scheme 'ftp', not http or https"),
    ("https:///services/s3cr3t", "names no host"),
])
def test_a_bad_webhook_is_described_without_its_secret_or_gibberish(url: str, said: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Webhook(url)
    message = str(caught.value)
    assert said in message and "s3cr3t" not in message and "://?/***" not in message


def test_build_takes_url_timeout_and_retries_and_needs_a_url() -> None:
    hook = build(SinkConfig(URL, print, timeout=3.0, retries=1))
    assert (hook.target, hook.timeout, hook.retries) == ("https://hooks.example.com/***", 3.0, 1)
    with pytest.raises(ConfigurationError, match="STREAM_DETECTOR_ALERT_WEBHOOK_URL"):
        build(SinkConfig(None, print))


def test_credentials_in_the_url_are_sent_as_basic_auth_to_a_real_server() -> None:
    """urllib took ``user:pw@`` for part of the host name: 'Name or service not known'."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[tuple[str, str | None, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((self.path, self.headers.get("Authorization"), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        sink = Webhook(f"http://bot:s%40cr3t@127.0.0.1:{port}/hook/T?x=1", retries=0)
        assert "s3cr" not in repr(sink) and "bot" not in repr(sink)
        sink({"text": "hi"})
    finally:
        server.shutdown()
        server.server_close()
    assert seen == [("/hook/T?x=1", "Basic Ym90OnNAY3IzdA==", b'{"text":"hi"}')]


def test_a_redirect_is_not_followed_with_the_credentials() -> None:
    """urllib re-sent the post as a bodiless GET, Authorization included, to the target."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    reached: list[str] = []

    class Elsewhere(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            reached.append(self.headers.get("Authorization") or "")
            self.send_response(200)
            self.end_headers()

        do_POST = do_GET  # noqa: N815

        def log_message(self, *args: Any) -> None:
            return None

    other = ThreadingHTTPServer(("127.0.0.1", 0), Elsewhere)

    class Moved(Elsewhere):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{other.server_address[1]}/landing")
            self.end_headers()

    moved = ThreadingHTTPServer(("127.0.0.1", 0), Moved)
    for server in (other, moved):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        sink = Webhook(f"http://bot:s3cr3t@127.0.0.1:{moved.server_address[1]}/hook", retries=0)
        with pytest.raises(WebhookError, match="HTTP 302 Found, a redirect: not followed") as info:
            sink({"text": "hi"})
        assert "s3cr3t" not in str(info.value)
    finally:
        for server in (other, moved):
            server.shutdown()
            server.server_close()
    assert reached == []


def test_an_unencoded_slash_in_the_password_is_refused_without_it() -> None:
    with pytest.raises(ConfigurationError, match="port that is not a number") as info:
        Webhook("http://bot:s3/cr3t@127.0.0.1:18801/hook")
    assert "cr3t" not in str(info.value) and "s3" not in str(info.value)
