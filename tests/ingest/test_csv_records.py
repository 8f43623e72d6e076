"""Where CSV records end: line ends outside quotes, pyarrow's quoting rules."""

from __future__ import annotations

import pytest

from loopline.ingest._csv_records import CsvRecords, UnclosedQuote


@pytest.mark.parametrize(
    ("data", "end"),
    [
        (b"a,b\n1,2\n3,", 8),  # no quotes: the last line end
        (b'a,"x\ny"\n1,"open\n', 8),  # the line end inside quotes is not a record end
        (b'a,b"c\n1,2\n', 10),  # a quote inside a bare value is a plain character
        (b'a,"x""\n""y"\n', 12),  # doubled quotes stay inside the value
        (b'a,"x"y"\nz\n', 10),  # after the closing quote, a quote is plain again
        (b'1,"a\r\nb"\r\n2', 10),
        (b'1;"a\nb";c\n', 10),
    ],
)
def test_last_end_is_the_end_of_the_last_whole_record(data: bytes, end: int) -> None:
    records = CsvRecords(";" if b";" in data else ",")
    assert records.last_end(data, len(data)) == end


def test_first_end_and_ends_open() -> None:
    records = CsvRecords(",")
    assert records.first_end(b'"a\nb",c\n1,2\n') == 8
    assert records.first_end(b"a,b") == 3
    assert records.ends_open(b'1,2\n3,"open\n4')
    assert records.ends_open(b'1,"x""')
    assert not records.ends_open(b'1,"closed"')
    assert not records.ends_open(b'1,bare"quote')


def test_an_open_quote_past_the_limit_raises_instead_of_reading_on() -> None:
    records = CsvRecords(",", limit=16)
    data = b'1,"' + b"x\n" * 20
    with pytest.raises(UnclosedQuote, match="runs over 16 bytes"):
        records.last_end(data, len(data))
    assert records.last_end(b"1,x" * 20, 60) == 0  # a long bare line is read on, as before
