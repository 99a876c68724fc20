"""CSV as text, before pandas sees it: binary files refused by their signature, the lines
before the header (an Excel ``sep=`` line, ``#`` comments), the separator, the header and
every row's width, and decimal commas; each fault named by its line.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from offline_training.load_checks import canonical_columns
from stream_detector.exceptions import DataError

__all__ = [
    "CsvShape",
    "check_csv_shape",
    "check_text",
    "csv_delimiter",
    "csv_header",
    "csv_layout",
    "decimal_commas",
]

_DELIMITERS = (",", ";", "\t", "|")
# a decimal comma: "1,5", "-0,25" (files that separate columns with ';' or tabs)
_DECIMAL_COMMA = r"\s*[+-]?\d*,\d+(?:[eE][+-]?\d+)?\s*"


# Leading bytes of files that are not CSV text, and what to do with each.
_NOT_TEXT = (
    (b"\x1f\x8b", "gzip-compressed; decompress it first (gunzip)"),
    (b"BZh", "bzip2-compressed; decompress it first (bunzip2)"),
    (b"\xfd7zXZ", "xz-compressed; decompress it first (unxz)"),
    (b"(\xb5/\xfd", "zstd-compressed; decompress it first (unzstd)"),
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook?); export the sheet as CSV (UTF-8)"),
    (b"\xd0\xcf\x11\xe0", "an Excel .xls workbook; export the sheet as CSV (UTF-8)"),
    (b"\x89HDF", "an HDF5 file; name it .h5 to read its feature vectors"),
    (b"PAR1", "a Parquet file; name it .parquet"),
)


def check_text(path: Path) -> None:
    """Refuse a binary file given where CSV text is read, naming what it looks like.

    Raises
    ------
    DataError
        The file starts with a compressed, spreadsheet, HDF5 or Parquet signature, is UTF-16
        or UTF-32 text (a byte-order mark, or NUL bytes around ASCII), or holds NUL bytes in
        its first 4 KiB (UTF-8 text files never do).
    """
    with path.open("rb") as handle:
        head = handle.read(4096)
    for magic, what in _NOT_TEXT:
        if head.startswith(magic):
            raise DataError(f"{path}: not CSV text but {what}")
    wide = _wide_unicode(head)
    if wide:
        excel = " (as Excel's \"Unicode text\" export writes)" if wide == "UTF-16" else ""
        raise DataError(f"{path}: not UTF-8 text but {wide}{excel}; save it as UTF-8 (Excel: "
                        "\"CSV UTF-8\")")
    if b"\x00" in head:
        raise DataError(f"{path}: not CSV text (binary bytes in its first 4 KiB); expected a "
                        "CSV, Parquet (.parquet), HDF5 (.h5) or JSON (.json, .jsonl) file")


def _wide_unicode(head: bytes) -> str | None:
    """"UTF-32" or "UTF-16" for text in those encodings (a byte-order mark, or ASCII with
    its NUL bytes in place), else None.

    >>> [_wide_unicode(t.encode(e)) for t, e in [("date,value", "utf-16"),
    ...     ("date,value", "utf-32-le"), ("date,value", "utf-16-be"), ("date,value", "utf-8")]]
    ['UTF-16', 'UTF-32', 'UTF-16', None]
    """
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "UTF-32"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16"
    for width, name in ((4, "UTF-32"), (2, "UTF-16")):
        n = min(len(head), 64)
        sample = head[:n - n % width]  # whole code units
        if len(sample) < 2 * width or 0 not in sample:
            continue
        lanes = [sample[i::width] for i in range(width)]
        if sum(1 for lane in lanes if not any(lane)) == width - 1:  # one lane holds the text
            return name
    return None


_SEP_LINE = re.compile(r"sep=(.)\s*")  # Excel's first line naming the separator


def csv_layout(path: Path) -> tuple[int, str]:
    """(lines before the header, column separator) of a CSV file.

    Lines before the header: an Excel ``sep=;`` line (which also names the separator) and
    ``#`` comment lines. The separator is otherwise whichever of ``, ; tab |`` the header
    line holds most (``,`` when it holds none: a one-column file). Headers rarely hold
    decimal commas, so ``date;value`` files with ``1,5`` values are read right.
    """
    skip, named = 0, None
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
        for line in handle:
            sep = _SEP_LINE.fullmatch(line.rstrip("\r\n"))
            if sep is None and not line.startswith("#"):
                break
            skip, named = skip + 1, sep.group(1) if sep else named
        else:
            line = ""
    if named is not None:
        return skip, named
    counts = {d: line.count(d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return skip, best if counts[best] else ","


def csv_delimiter(path: Path) -> str:
    """The column separator of a CSV file (see :func:`csv_layout`)."""
    return csv_layout(path)[1]


class CsvShape(NamedTuple):
    """A CSV file's header and where its rows span several lines (quoted line breaks)."""

    header: list[str]
    # (first data row, 0-based; lines the rows before it took beyond one each), a pair at
    # each row after one that spans several lines: see :class:`~.load_checks.Where`
    extra_lines: tuple[tuple[int, int], ...] = ()


def check_csv_shape(path: Path, skip: int, delimiter: str) -> CsvShape:
    """Return the header and where rows span several lines; reject ragged rows and
    interior blank lines with their line."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        for _ in range(skip):
            next(reader, None)
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise DataError(f"{path}: line {skip + 1}: no header; expected column names")
        names = [h.strip() for h in header]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise DataError(f"{path}: line {skip + 1}: column(s) {repeated} appear twice; "
                            "rename them")
        blank_line: int | None = None
        rows = extra = 0
        extra_lines: list[tuple[int, int]] = []
        ended = reader.line_num  # the last line read
        for row in reader:
            start, ended = ended + 1, reader.line_num
            if not row:
                blank_line = blank_line or ended
                continue
            if blank_line is not None:
                raise DataError(f"{path}: line {blank_line} is blank; remove blank lines")
            if len(row) != len(header):
                raise DataError(
                    f"{path}: row {rows + 1} (line {start}): "
                    f"{len(row)} fields, the header has {len(header)} (columns separated by "
                    f"{delimiter!r}, as its header line reads); fix the row width"
                )
            rows += 1
            if ended > start:  # a quoted line break: later rows start further down
                extra += ended - start
                extra_lines.append((rows, extra))
    return CsvShape(names, tuple(extra_lines))


def decimal_commas(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns whose every comma-holding value is a decimal comma (``1,5``) get points."""
    for column in frame.columns:
        text = frame[column]
        commas = text.str.contains(",", regex=False)
        if commas.any() and text[commas].str.fullmatch(_DECIMAL_COMMA).all():
            frame[column] = text.str.replace(",", ".", regex=False)
    return frame


def csv_header(path: Path) -> list[str]:
    """The column names of a CSV file's header line (for guessing its kind); a header that
    is not UTF-8 is a DataError, as the rows would be (never names with U+FFFD in them)."""
    skip, delimiter = csv_layout(path)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            for _ in range(skip):
                next(reader, None)
            return canonical_columns(next(reader, []))
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not UTF-8 text ({exc.reason}); save it as UTF-8") from exc
