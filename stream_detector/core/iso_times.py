"""ISO 8601 timestamps of a message read at once: numpy's ``datetime64`` parser over all.

``Record.epoch_ns`` reads each record's timestamp with ``datetime.fromisoformat`` (naive =
UTC) and :func:`schemas.records.in_time_range` bounds it; about 0.4 us a record in Python.
:func:`epoch_ns_array` gives the same integers for a whole message in a few numpy calls when
every text is in one of the common layouts below, and None otherwise (any other layout, an
offset other than ``Z``, a date or time that does not exist, a time out of range): the
caller then applies the per-record rule, which decides (and words the dead letter).

Accepted layouts (``0`` any digit; one layout for the whole message)::

    0000-00-00
    0000-00-00T00:00:00          0000-00-00 00:00:00
    0000-00-00T00:00:00.000      0000-00-00 00:00:00.000
    0000-00-00T00:00:00.000000   0000-00-00 00:00:00.000000
    (each with a time, also with a trailing Z: UTC)

numpy reads these exactly as ``datetime.fromisoformat`` does and, like it, refuses a day,
hour, minute or second that does not exist (``2015-02-29``, ``24:00:00``, ``:60``); a
property test compares both on random and odd texts.

>>> epoch_ns_array(["1970-01-02", "2015-02-26"] * 10)[:3].tolist()
[86400000000000, 1424908800000000000, 86400000000000]
>>> epoch_ns_array(["1970-01-01T00:00:01Z"] * 19 + ["1970-01-01T00:00:01"]) is None  # 2 layouts
True
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from schemas.records import TIMESTAMP_MAX, TIMESTAMP_MIN

__all__ = ["epoch_ns_array"]

_MIN_TEXTS: Final = 20  # fewer: the per-record rule is as fast as numpy's calls
_DIGITS_AS_ZERO: Final = bytes(48 if 48 <= i <= 57 else i for i in range(256))
_DATE: Final = "0000-00-00"
_TIMES: Final = ("00:00:00", "00:00:00.000", "00:00:00.000000")
_LAYOUTS: Final = frozenset(
    {_DATE.encode()}
    | {f"{_DATE}{sep}{t}{z}".encode() for sep in "T " for t in _TIMES for z in ("", "Z")}
)
# each layout with its separator: the record dtype whose field ``t`` is the clock time
_LAYOUT_DTYPES: Final = {
    layout + b"|": np.dtype([("t", f"S{len(layout) - layout.endswith(b'Z')}"),
                             ("rest", f"S{1 + layout.endswith(b'Z')}")])
    for layout in _LAYOUTS
}
_US: Final = timedelta(microseconds=1)
_MIN: Final = np.minimum.reduce
_MAX: Final = np.maximum.reduce
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_RANGE_US: Final = ((TIMESTAMP_MIN - _EPOCH) // _US, (TIMESTAMP_MAX - _EPOCH) // _US)


def epoch_ns_array(texts: Sequence[Any]) -> npt.NDArray[np.int64] | None:
    """Nanoseconds since the Unix epoch of ``texts`` (``Record.epoch_ns`` of each), as an
    int64 array ``(len(texts),)``, or None when any is not a str in one layout shared by all
    (see the module docstring), not a real date and time, or outside
    ``[TIMESTAMP_MIN, TIMESTAMP_MAX)``; also None for fewer than 20 texts (cheaper one by
    one)."""
    n = len(texts)
    if n < _MIN_TEXTS:
        return None
    try:  # each text followed by a separator no layout holds: one pass checks every length
        raw = "|".join(texts).encode("ascii") + b"|"  # TypeError: not all str
    except (TypeError, UnicodeEncodeError):
        return None
    width = len(texts[0])
    layout = raw[: width + 1].translate(_DIGITS_AS_ZERO)
    if layout[:-1] not in _LAYOUTS or raw.translate(_DIGITS_AS_ZERO) != layout * n:
        return None
    # the clock time without the separator (and without a trailing Z: numpy warns on
    # zones, and Z is UTC, as naive times are), as a strided view of the bytes
    times = np.frombuffer(raw, _LAYOUT_DTYPES[layout])["t"]
    try:
        us = times.astype("datetime64[us]").view(np.int64)
    except ValueError:  # a day, hour, minute or second that does not exist
        return None
    lo, hi = _RANGE_US  # the ufuncs' reduce: the array methods add ~1 us each in Python
    if _MIN(us) < lo or _MAX(us) >= hi:
        return None
    out: npt.NDArray[np.int64] = us * 1000
    return out
