"""Per-key state of a model: window, detection history, last applied position; its bytes.

:class:`KeyState` is what the worker keeps per model and key, and what its changelog
table holds (a compact binary form, versioned by a magic, not JSON). The last applied
position (:func:`position_of`) with the tag of the topic partition it counts in
(:func:`source_tag`) lets a restarted worker skip records its state already holds
(:meth:`KeyState.applied`). Key states live in a :class:`StateStore`: a dict offline
(:class:`DictStore`), a changelog-backed Faust table in the worker.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import Final, Protocol

from schemas.events import SourceRef
from schemas.records import MAX_RECORDS_PER_MESSAGE
from stream_detector.core.detector_state import DetectorState
from stream_detector.core.hybrid import SampleRing
from stream_detector.core.windowing import WindowState

__all__ = [
    "NO_POSITION", "NO_TAG", "DictStore", "KeyState", "StateStore", "position_of", "source_tag",
]

_HEADER: Final = struct.Struct("<4sqHII")  # magic, last position, version len, window len, det len
_MAGIC: Final = b"SDK1"
# SDK2: SDK1's layout plus a trailing NPLM sample ring (hybrid models); states without a
# ring are still written as SDK1, so older workers keep reading non-hybrid states.
_HEADER2: Final = struct.Struct("<4sqHIII")  # ... and sample ring len
_MAGIC2: Final = b"SDK2"
# SDK3: SDK2's layout plus the source tag of ``last_position`` (which topic and partition
# it counts in). Written whenever the tag is known, i.e. by the worker: workers older than
# SDK3 cannot read those states, so upgrade every worker of an app id together.
_HEADER3: Final = struct.Struct("<4sqHIIII")  # ... and source tag
_MAGIC3: Final = b"SDK3"
_HEADERS: Final = {_MAGIC: _HEADER, _MAGIC2: _HEADER2, _MAGIC3: _HEADER3}
NO_POSITION: Final = -1
NO_TAG: Final = 0  # states from before SDK3 and offline sources: the position alone counts


def source_tag(source: SourceRef) -> int:
    """A nonzero 32-bit tag of the topic and partition that positions count in.

    Offsets of another topic (an app id reused with a new input topic) or of another
    partition (a topic repartitioned) are not comparable with the stored position.
    """
    if source.offset is None:
        return NO_TAG
    return zlib.crc32(f"{source.topic}\x00{source.partition}".encode()) | 1


def position_of(offset: int | None, index: int) -> int:
    """Total order of records in a partition: message offset, then index in the message.

    >>> position_of(7, 2) > position_of(7, 1) > position_of(6, 9_999)
    True
    """
    return -1 if offset is None else offset * MAX_RECORDS_PER_MESSAGE + index


@dataclass
class KeyState:
    """Everything the pipeline remembers about one key for one model."""

    version: str
    window: WindowState
    detector: DetectorState = field(default_factory=DetectorState)
    last_position: int = NO_POSITION
    sample: SampleRing | None = None  # hybrid models: the key's recent NPLM features
    last_source: int = NO_TAG  # source_tag() of the topic partition last_position is in

    def applied(self, first: int, tag: int) -> int:
        """How many records from position ``first`` on (of the topic partition ``tag``) this
        state already holds: applied before a restart, their events went out then.

        Positions grow along a message, so those records are a prefix of it. A position of
        another topic partition, or none (offline), says nothing: 0.

        >>> state = KeyState("1", WindowState(3, 1), last_position=position_of(7, 2))
        >>> state.applied(position_of(7, 0), NO_TAG), state.applied(position_of(8, 0), NO_TAG)
        (3, 0)
        """
        if first == NO_POSITION or self.last_source not in (tag, NO_TAG):
            return 0
        return max(0, self.last_position - first + 1)

    def to_bytes(self) -> bytes:
        version = self.version.encode()
        win, det = self.window.to_bytes(), self.detector.to_bytes()
        ring = self.sample.to_bytes() if self.sample is not None else b""
        sizes = (self.last_position, len(version), len(win), len(det))
        if self.last_source != NO_TAG:
            header = _HEADER3.pack(_MAGIC3, *sizes, len(ring), self.last_source)
        elif self.sample is None:
            header = _HEADER.pack(_MAGIC, *sizes)
        else:
            header = _HEADER2.pack(_MAGIC2, *sizes, len(ring))
        return b"".join((header, version, win, det, ring))

    @classmethod
    def from_bytes(cls, data: bytes) -> KeyState:
        header = _HEADERS.get(data[:4])
        if header is None or len(data) < header.size:
            raise ValueError("not a stream-detector key state (corrupt or foreign changelog)")
        _, last, nv, nw, nd, *rest = header.unpack_from(data)
        ns = rest[0] if rest else 0
        tag = rest[1] if len(rest) > 1 else NO_TAG
        if len(data) != header.size + nv + nw + nd + ns:
            raise ValueError("not a stream-detector key state (corrupt or foreign changelog)")
        at = header.size
        version = data[at : at + nv].decode()
        window = WindowState.from_bytes(data[at + nv : at + nv + nw])
        detector = DetectorState.from_bytes(data[at + nv + nw : at + nv + nw + nd])
        sample = SampleRing.from_bytes(data[at + nv + nw + nd :]) if ns else None
        return cls(version=version, window=window, detector=detector, last_position=last,
                   sample=sample, last_source=tag)


class StateStore(Protocol):
    """Where key states live: a dict offline, a changelog-backed table in the worker."""

    def get(self, model: str, key: str) -> KeyState | None: ...

    def put(self, model: str, key: str, state: KeyState, source: SourceRef) -> None: ...


class DictStore:
    """An in-memory :class:`StateStore` (offline scoring, tests)."""

    def __init__(self) -> None:
        self.states: dict[tuple[str, str], KeyState] = {}

    def get(self, model: str, key: str) -> KeyState | None:
        return self.states.get((model, key))

    def put(self, model: str, key: str, state: KeyState, source: SourceRef) -> None:
        self.states[(model, key)] = state
