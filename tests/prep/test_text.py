"""Text transforms: statistics and feature hashing, the same in a table and in a record, stable across runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zlib
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopline import ConfigError, DataError
from loopline.prep import Chain, build_transform
from loopline.prep._text import TOKEN_PATTERN

FRAME = pl.DataFrame({"text": ["Hello World 42", "", None, "  a\u00a0b\u3000c\x1cd  "], "n": [1, 2, 3, 4]})


def both(spec: dict[str, Any], frame: pl.DataFrame) -> list[dict[str, Any]]:
    """The table rows, after checking the records give the same."""
    transform = build_transform(spec).fit(frame)
    table = transform.transform(frame).to_dicts()
    assert table == [transform.transform_record(r) for r in frame.to_dicts()]
    return table


def test_text_stats_values() -> None:
    rows = both({"type": "text_stats", "columns": ["text"], "digits": True, "upper": True}, FRAME)
    assert rows[0] == {
        "text": "Hello World 42",
        "n": 1,
        "text_length": 14,
        "text_tokens": 3,
        "text_digit_share": 2 / 14,
        "text_upper_share": 2 / 14,
    }
    assert rows[1]["text_length"] == 0 and rows[1]["text_digit_share"] == 0.0
    assert rows[2]["text_length"] is None and rows[2]["text_upper_share"] is None
    # no-break space and ideographic space split tokens; \x1c is not Unicode white space (str.split() disagrees)
    assert rows[3]["text_tokens"] == 3
    assert len(FRAME["text"][3].split()) == 4


def test_tokens_split_at_the_same_places_for_every_code_point() -> None:
    """Rust's regex and Python's re read the spelled-out white space class alike, whatever their Unicode tables."""
    points = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    texts = [f"a{chr(c)}b" for c in points]
    table = pl.Series(texts).str.count_matches(TOKEN_PATTERN).to_list()
    pattern = re.compile(TOKEN_PATTERN)
    differ = [hex(c) for c, t, n in zip(points, texts, table, strict=True) if len(pattern.findall(t)) != n]
    assert differ == []
    assert sum(1 for n in table if n == 2) == 25  # exactly the White_Space characters split


def test_hashing_is_a_fixed_crc32_of_each_token() -> None:
    transform = build_transform({"type": "hashing", "columns": ["text"], "n_buckets": 16})
    assert zlib.crc32(b"hello") == 907060870
    assert transform.bucket("Hello") == (907060870 % 16, 1.0)  # lowercased first
    rows = both({"type": "hashing", "columns": ["text"], "n_buckets": 16}, FRAME)
    assert list(rows[0]) == ["n", *(f"text_hash{i}" for i in range(16))]
    expected = [0.0] * 16
    for token in ("hello", "world", "42"):
        expected[zlib.crc32(token.encode()) % 16] += 1.0
    assert [rows[0][f"text_hash{i}"] for i in range(16)] == expected
    assert sum(rows[2][f"text_hash{i}"] for i in range(16)) == 0.0  # null text: no tokens


def test_hashing_is_the_same_in_another_process() -> None:
    code = (
        "from loopline.prep import build_transform;"
        "t = build_transform({'type': 'hashing', 'columns': ['t'], 'n_buckets': 1000, 'alternate_sign': True});"
        "print([t.bucket(w) for w in ('Lyon', 'été', '北京', 'x')])"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1
    transform = build_transform({"type": "hashing", "columns": ["t"], "n_buckets": 1000, "alternate_sign": True})
    assert outputs == {f"{[transform.bucket(w) for w in ('Lyon', 'été', '北京', 'x')]}\n"}


def test_alternate_sign_and_case() -> None:
    frame = pl.DataFrame({"t": ["Tok tok TOK"]})
    folded = both({"type": "hashing", "columns": ["t"], "n_buckets": 1}, frame)
    assert folded == [{"t_hash0": 3.0}]
    signed = both(
        {"type": "hashing", "columns": ["t"], "n_buckets": 4, "lowercase": False, "alternate_sign": True}, frame
    )
    expected = [0.0] * 4
    for token in ("Tok", "tok", "TOK"):
        code = zlib.crc32(token.encode())
        expected[code % 4] += -1.0 if code >> 31 else 1.0
    assert list(signed[0].values()) == expected


def test_null_texts_are_counted_and_the_chain_keeps_lineage() -> None:
    chain = Chain.from_config(
        [{"type": "text_stats", "columns": ["text"]}, {"type": "hashing", "columns": ["text"], "n_buckets": 2}]
    )
    chain.fit_transform(FRAME)
    chain.transform(FRAME)
    chain.transform_record({"text": None, "n": 1})
    assert chain.counts() == {"text_stats: text: null text": 2, "hashing: text: null text": 2}
    assert chain.lineage()["text_hash1"] == ["text"]
    assert chain.lineage()["text_tokens"] == ["text"]


def test_errors_name_the_column_and_the_fix() -> None:
    with pytest.raises(DataError, match="column 'n' is Int64, not text.*Cast 'n' to a string"):
        build_transform({"type": "text_stats", "columns": ["n"]}).fit(FRAME)
    with pytest.raises(DataError, match="column 'txt' is missing.*Did you mean 'text'"):
        build_transform({"type": "hashing", "columns": ["txt"]}).fit(FRAME)
    transform = build_transform({"type": "hashing", "columns": ["text"]}).fit(FRAME)
    with pytest.raises(DataError, match="holds int 3, not text.*JSON string"):
        transform.transform_record({"text": 3})
    with pytest.raises(ConfigError, match="n_buckets must be an integer from 1 to 65536.*n_buckets: 64"):
        build_transform({"type": "hashing", "columns": ["text"], "n_buckets": 0})
    with pytest.raises(ConfigError, match="digits must be true or false"):
        build_transform({"type": "text_stats", "columns": ["text"], "digits": "yes"})
    with pytest.raises(ConfigError, match="has no option 'bucket'.*Did you mean 'n_buckets'"):
        build_transform({"type": "hashing", "columns": ["text"], "bucket": 3})


@settings(max_examples=80, deadline=None, database=None)
@given(texts=st.lists(st.one_of(st.none(), st.text(max_size=40)), min_size=1, max_size=12))
def test_table_and_records_agree_on_any_text(texts: list[str | None]) -> None:
    frame = pl.DataFrame({"t": texts}, schema={"t": pl.String})
    both({"type": "text_stats", "columns": ["t"], "digits": True, "upper": True}, frame)
    both({"type": "hashing", "columns": ["t"], "n_buckets": 7, "alternate_sign": True}, frame)
    both({"type": "hashing", "columns": ["t"], "n_buckets": 3, "lowercase": False}, frame)
