"""Outputs (anomaly events, dead letters) on their way to Kafka, never dropped.

A batch hands its outputs to the producer (:meth:`Deliveries.hand_over`) and goes on; the
state flush, after which the app acks the batches, first awaits every delivery
(:meth:`Deliveries.settle`), so state is written only after its events are out. A failed
send is sent again with backoff (:func:`deliver`) until it is delivered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

__all__ = ["Deliveries", "Send", "deliver"]

log = logging.getLogger(__name__)

Send = Callable[[bytes, bytes], Awaitable[Any]]  # (key, value) -> future of the delivery
Outgoing = tuple[Send, bytes, bytes]


class Deliveries:
    """Outputs handed to the producer whose delivery nobody has awaited yet."""

    def __init__(self) -> None:
        self._in_flight: list[tuple[Outgoing, Any]] = []

    async def hand_over(self, outgoing: Sequence[Outgoing]) -> None:
        """Give outputs to the producer; :meth:`settle` awaits their delivery."""
        for item in outgoing:
            send, key, value = item
            try:
                delivery = await send(key, value)
            except Exception as exc:  # noqa: BLE001 - sent again by settle
                delivery = _failed(exc)
            self._in_flight.append((item, delivery))

    async def settle(self) -> None:
        """Await the delivery of every output handed over; send failed ones again (with
        :func:`deliver`'s backoff) until delivered."""
        if not self._in_flight:
            return
        in_flight, self._in_flight = self._in_flight, []
        done = await asyncio.gather(*(d for _, d in in_flight), return_exceptions=True)
        failed = [item for (item, _), r in zip(in_flight, done, strict=True)
                  if isinstance(r, BaseException)]
        if failed:
            log.warning("%d of %d sends failed; sending them again", len(failed),
                        len(in_flight))
            await deliver(failed)

    def take(self) -> Deliveries:
        """The outputs handed over so far, in a :class:`Deliveries` of their own (a flush
        settles them while later batches hand over theirs here)."""
        taken = Deliveries()
        taken._in_flight, self._in_flight = self._in_flight, []
        return taken

    def clear(self) -> None:
        """Forget them (partitions revoked: their messages are not acked, and replayed)."""
        self._in_flight.clear()


async def deliver(outgoing: Sequence[Outgoing]) -> None:
    """Send and await delivery, retrying failures with backoff; never drop output."""
    delay = 0.1
    pending = list(outgoing)
    while pending:
        results: list[Any] = []
        for send, key, value in pending:
            try:
                results.append(await send(key, value))
            except Exception as exc:  # noqa: BLE001 - retried below
                results.append(_failed(exc))
        done = await asyncio.gather(*results, return_exceptions=True)
        failed = [o for o, r in zip(pending, done, strict=True) if isinstance(r, Exception)]
        if failed:
            log.warning("%d of %d sends failed (%s); retrying in %.1fs", len(failed),
                        len(pending), next(r for r in done if isinstance(r, Exception)),
                        delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        pending = failed


def _failed(exc: Exception) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_exception(exc)
    return future
