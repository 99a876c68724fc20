"""MessageSources: each message's SourceRef, built only when read, as Message.source gives."""

from __future__ import annotations

import pytest

from schemas.events import SourceRef
from stream_detector.worker.messages import Message, MessageSources


def test_sources_are_the_messages_own_built_once_when_read(
        monkeypatch: pytest.MonkeyPatch) -> None:
    msgs = [Message(b"x", "in", i % 2, 10 + i) for i in range(5)]
    built: list[int | None] = []
    real = Message.source.fget
    assert real is not None
    monkeypatch.setattr(Message, "source", property(lambda m: built.append(m.offset) or real(m)))
    sources = MessageSources(msgs)
    assert built == [] and len(sources) == 5  # nothing built until read
    assert sources[-1] == SourceRef(topic="in", partition=0, offset=14)
    assert sources[0] is sources[0]  # built once
    assert built == [14, 10]
    assert sources[1:3] == [SourceRef(topic="in", partition=1, offset=11),
                            SourceRef(topic="in", partition=0, offset=12)]
    assert list(sources) == [m.source for m in msgs]
    with pytest.raises(IndexError):
        sources[5]
