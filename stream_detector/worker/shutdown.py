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

__all__ = ["EXIT_CODE", "GroupWatch", "ShutdownDeadline", "exit_group_lost",
           "exit_input_changed", "group_lost_message"]

log = logging.getLogger(__name__)

EXIT_CODE: Final = 1
"""Exit status when the deadline ends the process (not a clean stop)."""


def _exit_now(code: int) -> None:
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def group_lost_message(failed: str, group_instance_id: str | None) -> str:
    """The one log line of a worker whose consumer lost its group for good (aiokafka's
    coordination task ended with ``failed``), naming the usual cause.

    >>> group_lost_message("AssertionError", None)[:60]
    'the consumer group coordination of this worker failed (Asser'
    """
    cause = (f"another worker uses the same STREAM_DETECTOR_GROUP_INSTANCE_ID "
             f"({group_instance_id!r}), or it was restarted with another web host or port: "
             "give each worker an id of its own" if group_instance_id else
             "report it with this line")
    return (f"the consumer group coordination of this worker failed ({failed}): it would "
            f"never consume again; {cause}. Exiting (code {EXIT_CODE}) so that it is "
            "restarted; records since the last commit are scored again")


def exit_group_lost(failed: str, group_instance_id: str | None,
                    exit_process: Callable[[int], None] = _exit_now) -> None:
    """Log :func:`group_lost_message` and end the process with :data:`EXIT_CODE`.

    Nothing is acked or committed after the coordination failed (commits need the group),
    so at-least-once holds. Before this, such a worker stayed up for good, fetching nothing,
    while its liveness probe (``/health``) answered 200.
    """
    log.error("%s", group_lost_message(failed, group_instance_id))
    exit_process(EXIT_CODE)


def exit_input_changed(topic: str, now: int, started: int, changelog: str,
                       exit_process: Callable[[int], None] = _exit_now) -> None:
    """Log one line and end the process with :data:`EXIT_CODE`: the input ``topic`` has
    ``now`` partitions, the worker started with ``started`` (its key-state ``changelog``'s
    count). Before, a worker whose input was deleted and re-created (by its own metadata
    requests, with the broker's default partitions) went on writing key states to the
    wrong changelog partitions; its restart then refused to start."""
    log.error("the input topic %s now has %d partitions; this worker started with %d, as "
              "its key-state changelog %s has: the topic was re-created or grown while it "
              "ran. Exiting (code %d): give both topics the same count (deploy/README.md, "
              "\"Adding partitions\") and start again; records since the last commit are "
              "scored again", topic, now, started, changelog, EXIT_CODE)
    exit_process(EXIT_CODE)


class GroupWatch:
    """Every ``interval`` seconds, on a thread of its own, ask ``failed`` whether the
    consumer's group coordination has failed (a reason, or None); on the first reason,
    :func:`exit_group_lost`.

    A thread, not an app timer: a worker whose coordination failed before its first
    assignment never starts its app's timers and tasks.
    """

    def __init__(self, failed: Callable[[], str | None], group_instance_id: str | None,
                 interval: float = 1.0,
                 exit_process: Callable[[int], None] = _exit_now) -> None:
        self._failed = failed
        self._instance = group_instance_id
        self._interval = interval
        self._exit = exit_process
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="group-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            reason = self._failed()  # kafka_status never raises
            if reason is not None:
                exit_group_lost(reason, self._instance, self._exit)
                return


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
