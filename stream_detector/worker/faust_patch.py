"""A start-up patch of Faust's consumer: deliver a message without four asyncio tasks.

Faust's fetch loop (``faust.transport.consumer.Consumer._drain_messages``) hands every
message to the topic conductor with::

    await self.wait_first(callback(message), self.suspend_flow.wait())

and mode's ``Service.wait_first`` wraps each argument, plus the service's ``stopped`` and
``crashed`` events, in a task, then ``asyncio.wait``s for the first: four tasks created,
scheduled and cancelled per message, about a fifth of a worker's busy time at one record
per message (py-spy, issue #13). The callback almost never waits: it decodes the raw
bytes and puts the event on the stream's queue.

:func:`install` overrides ``wait_first`` on Faust's consumer for exactly that call: the
callback coroutine is first run inline; when it finishes without suspending (the usual
case) its result is returned with no task at all, as ``wait_first`` would have returned
it. When it does suspend (a full stream queue), the rest of it is raced against the flow
suspension exactly as upstream does. Every other ``wait_first`` call goes to upstream.

The patch is tied to the upstream code it relies on: :data:`UPSTREAM_SHA256` holds the
sha256 of the source of both functions it was written against. :func:`install` refuses
(logs, leaves Faust as it is) when they differ, and a unit test fails, so an upgrade of
faust-streaming or mode is reviewed against this patch.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
from collections.abc import Coroutine, Generator
from typing import Any, Final

__all__ = ["UPSTREAM_SHA256", "install", "installed", "upstream_matches"]

log = logging.getLogger(__name__)

UPSTREAM_SHA256: Final = {
    "faust.transport.consumer.Consumer._drain_messages":
        "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417",
    "mode.services.Service.wait_first":
        "feade6a31f8a67897cf687c54c66f5f4535288050bbaac07249ce2063d36ae2e",
}
_state: dict[str, Any] = {}


def _upstream_sources() -> dict[str, str]:
    from faust.transport.consumer import Consumer
    from mode.services import Service

    return {"faust.transport.consumer.Consumer._drain_messages":
            inspect.getsource(Consumer._drain_messages),
            "mode.services.Service.wait_first": inspect.getsource(Service.wait_first)}


def upstream_matches() -> dict[str, bool]:
    """For each patched-against function, whether its source is the one reviewed."""
    return {name: hashlib.sha256(src.encode()).hexdigest() == UPSTREAM_SHA256[name]
            for name, src in _upstream_sources().items()}


def installed() -> bool:
    """Whether :func:`install` patched Faust's consumer in this process."""
    return "upstream" in _state


def install() -> bool:
    """Patch Faust's consumer (idempotent); False, with a warning, if upstream changed."""
    from faust.transport.consumer import Consumer

    if installed():
        return True
    changed = [name for name, ok in upstream_matches().items() if not ok]
    if changed:
        log.warning("faust fast delivery not installed: %s changed upstream; review "
                    "stream_detector/worker/faust_patch.py against it", ", ".join(changed))
        return False
    _state["upstream"] = upstream = Consumer.wait_first

    async def wait_first(self: Any, *coros: Any, timeout: Any = None) -> Any:
        if timeout is None and len(coros) == 2 and _is_flow_wait(self, coros[1]) \
                and asyncio.iscoroutine(coros[0]):
            return await _deliver(self, upstream, coros[0], coros[1])
        return await upstream(self, *coros, timeout=timeout)

    Consumer.wait_first = wait_first  # type: ignore[method-assign]
    return True


def _is_flow_wait(consumer: Any, coro: Any) -> bool:
    """``coro`` is ``consumer.suspend_flow.wait()``, not yet started."""
    frame = getattr(coro, "cr_frame", None)
    return (getattr(coro, "cr_code", None) is asyncio.Event.wait.__code__
            and frame is not None and frame.f_locals.get("self") is consumer.suspend_flow)


async def _deliver(consumer: Any, upstream: Any, callback: Coroutine[Any, Any, Any],
                   flow_wait: Coroutine[Any, Any, Any]) -> Any:
    from mode.services import WaitResults

    try:
        yielded = callback.send(None)
    except StopIteration as done:  # finished without waiting: no task needed
        flow_wait.close()
        return WaitResults([callback], [done.value], False)
    except BaseException:
        flow_wait.close()
        raise
    # it waits (a full queue): race the rest of it against the flow suspension, as upstream
    return await upstream(consumer, _Resumed(callback, yielded), flow_wait)


class _Resumed:
    """An awaitable that goes on running a coroutine already started by hand."""

    def __init__(self, coro: Coroutine[Any, Any, Any], yielded: Any) -> None:
        self.coro, self.yielded = coro, yielded

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, yielded = self.coro, self.yielded
        while True:
            try:
                value = yield yielded
            except BaseException as exc:  # e.g. cancellation: into the coroutine
                try:
                    yielded = coro.throw(exc)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    yielded = coro.send(value)
                except StopIteration as done:
                    return done.value
