"""Turning a CSV file's bytes into something pandas can parse, as spreadsheets save them.

Excel on Chinese Windows saves GBK (a subset of GB18030), "CSV UTF-8" adds a byte-order
mark, and European locales separate fields with semicolons; tab-separated text is what a
copy from a spreadsheet gives. So the encoding is found by strict decoding (UTF-8 first:
any GB18030 text that happens to be valid UTF-8 is almost surely UTF-8), and the delimiter
by counting candidates on the header line, where every field is a plain column name.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from models.schemas import RequestValidationError

Source = str | Path | IO[str] | IO[bytes]

# Wide enough for any real partners file (a few dozen attributes and resources); a file
# of 50,000 columns takes pandas tens of seconds, so it is refused before parsing.
MAX_CSV_COLUMNS = 1000

DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}
_BOM = codecs.BOM_UTF8
_CHUNK = 1 << 20  # decode in chunks to check a large file without a second full copy
_QUOTED = re.compile(r'"[^"]*"')


@dataclass(frozen=True)
class CsvFormat:
    """What was detected in one CSV file (reported back to the planner)."""

    label: str
    encoding: str  # "UTF-8", "UTF-8 with BOM", "GB18030", or "text" (already decoded)
    delimiter: str
    rows: int = 0

    @property
    def delimiter_name(self) -> str:
        return DELIMITERS.get(self.delimiter, repr(self.delimiter))

    def to_dict(self) -> dict[str, str | int]:
        return {"encoding": self.encoding, "delimiter": self.delimiter_name, "rows": self.rows}

    def summary(self) -> str:
        """``partners.csv: GB18030, semicolon-separated, 300 rows``."""
        rows = f"{self.rows} row{'s' if self.rows != 1 else ''}"
        return f"{self.label}: {self.encoding}, {self.delimiter_name}-separated, {rows}"


@dataclass(frozen=True)
class CsvText:
    """A CSV file ready for pandas: a buffer, the codec to read it with, its format."""

    buffer: IO[bytes] | IO[str]
    codec: str | None
    format: CsvFormat
    columns: int


def _fail(label: str, message: str) -> RequestValidationError:
    return RequestValidationError({label: [message]}, f"invalid {label}")


def _read(source: Source, label: str) -> bytes | str:
    if isinstance(source, str | Path):
        try:
            return Path(source).read_bytes()
        except OSError as error:
            raise _fail(label, f"cannot read: {error.strerror or error}") from None
    try:
        data = source.read()
    except UnicodeDecodeError:  # a text stream opened with the wrong encoding
        raise _fail(label, "cannot be decoded; pass the file as bytes") from None
    except OSError as error:
        raise _fail(label, f"cannot read: {error.strerror or error}") from None
    return data if isinstance(data, str) else bytes(data)


def _first_bad_byte(data: bytes, codec: str) -> int | None:
    """Offset of the first byte `codec` cannot decode strictly, or None."""
    decoder = codecs.getincrementaldecoder(codec)("strict")
    for start in range(0, len(data), _CHUNK):
        chunk = data[start : start + _CHUNK]
        try:
            decoder.decode(chunk, final=start + _CHUNK >= len(data))
        except UnicodeDecodeError as error:
            return start + error.start
    if not data:
        return None
    try:
        decoder.decode(b"", final=True)  # a multi-byte sequence cut off at the end
    except UnicodeDecodeError:
        return len(data) - 1
    return None


def detect_encoding(data: bytes, label: str) -> tuple[str, str]:
    """(name to report, codec for pandas); RequestValidationError when neither fits."""
    if data.startswith(_BOM):
        bad = _first_bad_byte(data, "utf-8-sig")
        if bad is None:
            return "UTF-8 with BOM", "utf-8-sig"
    else:
        bad = _first_bad_byte(data, "utf-8")
        if bad is None:
            return "UTF-8", "utf-8"
        if _first_bad_byte(data, "gb18030") is None:
            return "GB18030", "gb18030"
    line = data.count(b"\n", 0, bad) + 1
    raise _fail(
        label,
        f"not UTF-8 or GB18030 text (byte 0x{data[bad]:02x} on line {line} cannot be read); "
        "save it as UTF-8 (Excel: 'CSV UTF-8') or GB18030/GBK",
    )


def detect_delimiter(header: str) -> str:
    """The candidate found most often on the header line outside quotes; comma on a tie or
    when there is none (a one-column file)."""
    bare = _QUOTED.sub("", header)
    counts = {delimiter: bare.count(delimiter) for delimiter in DELIMITERS}
    best = max(counts, key=lambda delimiter: counts[delimiter])
    if counts[best] == 0 or list(counts.values()).count(counts[best]) > 1:
        return ","
    return best


def prepare(source: Source, label: str, max_columns: int = MAX_CSV_COLUMNS) -> CsvText:
    """Read `source` whole, detect its encoding and delimiter, and refuse a header wider
    than `max_columns` before any row is parsed."""
    data = _read(source, label)
    buffer: IO[bytes] | IO[str]
    if isinstance(data, str):  # a text stream: the caller has already decoded it
        header = data[: _line_end(data, "\n")].lstrip("\ufeff")
        encoding, codec, buffer = "text", None, io.StringIO(data)
    else:
        encoding, codec = detect_encoding(data, label)
        raw = data[: _line_end(data, b"\n")]
        header = raw.decode(codec, errors="replace").lstrip("\ufeff")
        buffer = io.BytesIO(data)
    delimiter = detect_delimiter(header)
    fields = next(csv.reader([header.rstrip("\r")], delimiter=delimiter), [])
    if len(fields) > max_columns:
        raise _fail(
            label,
            f"has {len(fields):,} columns; at most {max_columns:,} are read "
            "(WINDMAKER_MAX_CSV_COLUMNS)",
        )
    return CsvText(buffer, codec, CsvFormat(label, encoding, delimiter), len(fields))


def _line_end(data: str | bytes, newline: str | bytes) -> int:
    end = data.find(newline)  # type: ignore[arg-type]
    return len(data) if end < 0 else end
