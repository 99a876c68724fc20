"""The worker's shutdown deadline (stream_detector/worker/shutdown.py)."""

from __future__ import annotations

import threading
import time

from stream_detector.settings import Settings
from stream_detector.worker.shutdown import EXIT_CODE, ShutdownDeadline


def test_deadline_exits_once_after_its_seconds_when_the_stop_overruns() -> None:
    codes: list[int] = []
    done = threading.Event()

    def exit_process(code: int) -> None:
        codes.append(code)
        done.set()

    deadline = ShutdownDeadline(0.2, exit_process)
    started = time.monotonic()
    deadline.start()
    deadline.start()  # a second signal does not extend (or double) the countdown
    assert done.wait(5)
    took = time.monotonic() - started
    time.sleep(0.3)
    assert codes == [EXIT_CODE]
    assert 0.15 <= took < 2.0


def test_cancelled_deadline_never_exits() -> None:
    codes: list[int] = []
    deadline = ShutdownDeadline(0.1, codes.append)
    deadline.start()
    deadline.cancel()
    time.sleep(0.3)
    assert codes == []


def test_default_bound_fits_kubernetes_default_grace_period() -> None:
    assert Settings().shutdown_timeout < 30
