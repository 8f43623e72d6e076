"""Where CSV records end: the line ends outside quoted values.

A CSV value in double quotes may hold line breaks, so a block of a CSV file may only be cut after a record,
never at a line end inside quotes. The rules are pyarrow's (and RFC 4180's): a quote opens a quoted value
only at the start of a field; inside it, ``""`` is a literal quote and a single ``"`` closes it; after the
close, and anywhere in a field that did not start with a quote, a ``"`` is a plain character. A record ends
at ``\\n``, ``\\r\\n`` or ``\\r`` outside quotes.

The scan is one regular expression with possessive quantifiers (linear, no backtracking), run only over
blocks that hold a quote at all; a block without one is cut at its last ``\\n``.
"""

from __future__ import annotations

import re

_QUOTED = rb'"[^"]*+(?:""[^"]*+)*+'  # an opening quote and the quoted text after it, up to a lone quote


class UnclosedQuote(ValueError):
    """A quoted value is never closed: ``how`` says "reaches the end of the data" or "runs over N bytes"."""

    def __init__(self, how: str) -> None:
        self.how = how
        super().__init__(f"a quoted value {how} without a closing quote")


class CsvRecords:
    """Finds record ends in CSV bytes that start at a record start.

    ``limit`` bounds an open quoted value: :meth:`last_end` raises :class:`UnclosedQuote` when a buffer
    longer than ``limit`` holds no whole record and ends inside quotes (an unbalanced quote would otherwise
    read the rest of the file into memory as one value).
    """

    def __init__(self, delimiter: str = ",", *, limit: int | None = None) -> None:
        self.delimiter = delimiter
        self.limit = limit
        d = re.escape(delimiter.encode())
        field = rb"(?:" + _QUOTED + rb'"[^' + d + rb"\r\n]*+|(?!\")[^" + d + rb"\r\n]*+)"
        self._record = re.compile(field + rb"(?:" + d + field + rb")*+(?:\r\n?|\n)")
        self._records = re.compile(rb"(?:" + self._record.pattern + rb")*+")
        self._open = re.compile(rb"(?:" + field + d + rb")*+" + _QUOTED)

    def last_end(self, data: bytes | bytearray, stop: int) -> int:
        """The end of the last whole record in ``data[:stop]``, or 0 when there is none."""
        if data.find(b'"', 0, stop) < 0:  # no quotes: every line end is a record end
            return data.rfind(b"\n", 0, stop) + 1
        end = self._whole(data, 0, stop)
        if not end and self.limit is not None and stop > self.limit and self.ends_open(data, 0, stop):
            raise UnclosedQuote(f"runs over {self.limit} bytes")
        return end

    def first_end(self, data: bytes | bytearray) -> int:
        """The end of the first record in ``data`` (its length when the record has no line end)."""
        found = self._record.match(data)
        return found.end() if found else len(data)

    def ends_open(self, data: bytes | bytearray, start: int = 0, stop: int | None = None) -> bool:
        """Whether ``data[start:stop]``, taken as the end of the data, ends inside a quoted value."""
        stop = len(data) if stop is None else stop
        if data.find(b'"', start, stop) < 0:
            return False
        return self._open.fullmatch(data, self._whole(data, start, stop), stop) is not None

    def _whole(self, data: bytes | bytearray, start: int, stop: int) -> int:
        """The end of the whole records from ``start`` on."""
        return self._records.match(data, start, stop).end()  # type: ignore[union-attr]  # (?:...)* always matches
