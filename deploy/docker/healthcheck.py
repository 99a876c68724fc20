"""Container health probe for the worker image: exit 0 when an HTTP path answers 2xx, else 1.

The slim and CUDA images carry no curl or wget, and Python is already there, so the image's
HEALTHCHECK and the compose healthchecks run this file. The port is the worker's own
``web_port`` setting (``STREAM_DETECTOR_WEB_PORT``), read through ``Settings`` like every other
setting, and the probe always targets loopback: a worker bound to 0.0.0.0 answers there too.

Usage::

    python healthcheck.py            # GET /health (liveness: 200 while running, even degraded)
    python healthcheck.py /ready     # GET /ready  (200 once partitions are assigned)
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

__all__ = ["main", "probe"]

DEFAULT_PATH = "/health"
TIMEOUT_S = 3.0


def probe(url: str, timeout: float = TIMEOUT_S) -> int:
    """Exit status for one GET of ``url``: 0 on a 2xx answer, 1 on anything else.

    A refused connection, a timeout and a 5xx all mean "not healthy"; the reason goes to
    stderr so that ``docker inspect`` shows it in the health log.
    """
    if not url.startswith(("http://127.0.0.1:", "http://localhost:")):
        print(f"unhealthy: refusing to probe non-loopback URL {url!r}", file=sys.stderr)
        return 1
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (loopback)
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    if 200 <= status < 300:
        return 0
    print(f"unhealthy: {url} answered {status}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    """Probe ``argv[0]`` (default ``/health``) on the worker's configured web port."""
    from stream_detector.settings import Settings

    args = sys.argv[1:] if argv is None else argv
    path = args[0] if args else DEFAULT_PATH
    if not path.startswith("/"):
        path = "/" + path
    return probe(f"http://127.0.0.1:{Settings().web_port}{path}")


if __name__ == "__main__":
    sys.exit(main())
