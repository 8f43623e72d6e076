"""The record path's text functions agree with polars on every Unicode code point."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl
import pytest

from loopline.prep import _unicode

CHARACTERS = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]

CASES: dict[str, tuple[Callable[[str], str], Callable[[pl.Expr], pl.Expr]]] = {
    "lower": (_unicode.lower, lambda e: e.str.to_lowercase()),
    "upper": (_unicode.upper, lambda e: e.str.to_uppercase()),
    "nfkc": (_unicode.nfkc, lambda e: e.str.normalize("NFKC")),
}


def _runs(differences: dict[int, str]) -> list[tuple[int, int, int]]:
    runs: list[list[int]] = []
    for code, result in sorted(differences.items()):
        offset = ord(result[0]) - code if len(result) == 1 else 0
        if runs and runs[-1][2] == offset and runs[-1][1] == code - 1:
            runs[-1][1] = code
        else:
            runs.append([code, code, offset])
    return [(a, b, c) for a, b, c in runs]


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_code_point_maps_as_in_polars(name: str) -> None:
    python, expr = CASES[name]
    polars = pl.select(expr(pl.lit(pl.Series(CHARACTERS)))).to_series().to_list()
    differences = {ord(c): p for c, p in zip(CHARACTERS, polars, strict=True) if python(c) != p}
    assert not differences, (
        f"polars maps these characters differently; add to _unicode._{name.upper()}_RUNS "
        f"(one character each: {all(len(p) == 1 for p in differences.values())}): {_runs(differences)}"
    )


def test_whitespace_is_the_same_set_for_both_regex_engines() -> None:
    text = "x".join(CHARACTERS[:0x3100])  # every whitespace character and its neighbours
    polars = pl.select(pl.lit(text).str.replace_all(_unicode.WHITESPACE_RUN, " ")).item()
    assert polars == _unicode.collapse_whitespace(text)
    assert pl.select(pl.lit(text).str.strip_chars(_unicode.WHITESPACE)).item() == text.strip(_unicode.WHITESPACE)
    for char in _unicode.WHITESPACE:
        assert pl.select(pl.lit(f"a{char}{char}b").str.replace_all(_unicode.WHITESPACE_RUN, " ")).item() == "a b"
        assert _unicode.collapse_whitespace(f"a{char}{char}b") == "a b"
    assert _unicode.collapse_whitespace("a\x1cb") == "a\x1cb"  # Python's str.isspace() would say otherwise
