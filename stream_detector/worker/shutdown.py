"""A deadline on the worker's shutdown, so a stop never outlasts the orchestrator's grace.

With Kafka unreachable, Faust's stop waits on the broker: the stream waits for its unacked
events (acked only after their key states reach the changelog, see :mod:`.acks`), the
producer flush and the offset commit retry, and SIGTERM took 63-90 s to end the process.
:class:`ShutdownDeadline` starts at the first stop signal and, if the process is still alive
``seconds`` later, logs why and exits at once (``os._exit``): nothing more is acked or
committed, so at-least-once holds (a restarted worker replays from the last commit). It runs
on a thread, so an event loop stuck in a retry cannot hold it up.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import Final

__all__ = ["EXIT_CODE", "ShutdownDeadline"]

log = logging.getLogger(__name__)

EXIT_CODE: Final = 1
"""Exit status when the deadline ends the process (not a clean stop)."""


def _exit_now(code: int) -> None:
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class ShutdownDeadline:
    """Exit the process ``seconds`` after :meth:`start` unless it has ended by then.

    Parameters
    ----------
    seconds
        The bound on the stop, in seconds (``Settings.shutdown_timeout``).
    exit_process
        Called with :data:`EXIT_CODE` at the deadline; ``os._exit`` after flushing the log
        handlers by default (injected for tests).
    """

    def __init__(self, seconds: float,
                 exit_process: Callable[[int], None] = _exit_now) -> None:
        self.seconds = seconds
        self._exit = exit_process
        self._timer: threading.Timer | None = None

    def start(self) -> None:
        """Start the countdown (the first call only; later signals do not extend it)."""
        if self._timer is None:
            self._timer = threading.Timer(self.seconds, self._expired)
            self._timer.daemon = True
            self._timer.start()

    def cancel(self) -> None:
        """Stop the countdown (the stop finished in time)."""
        if self._timer is not None:
            self._timer.cancel()

    def _expired(self) -> None:
        log.error("the worker did not stop within %.0f s (shutdown_timeout; Kafka "
                  "unreachable?): exiting without committing; records since the last commit "
                  "are scored again on restart", self.seconds)
        self._exit(EXIT_CODE)
