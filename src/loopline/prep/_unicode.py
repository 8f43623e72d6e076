"""Text functions for the one-record path that give exactly what polars gives for a table.

Python's ``str.lower``, ``str.upper`` and ``unicodedata.normalize`` follow the Unicode version of the running
Python (14.0 on 3.11); polars follows the newer tables compiled into it. They differ only on characters assigned
since then, and on those polars maps each character to one character that Python leaves alone. The runs below
(first code point, last code point, offset of the result) list those characters, so the record path maps them
first and then lets Python do the rest. ``tests/prep/test_cleaning.py`` compares every code point with the
installed polars and prints new runs when a polars upgrade brings a newer Unicode.

Whitespace is the Unicode ``White_Space`` set, written out: Python's ``str.strip()`` and ``\\s`` and Rust's
disagree on a few control characters, so neither is used.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

#: the Unicode White_Space characters
WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
#: a run of whitespace, as a regular expression both Python's ``re`` and polars (Rust) read the same way
WHITESPACE_RUN = "[" + "".join(f"\\u{ord(c):04X}" for c in WHITESPACE) + "]+"

_LOWER_RUNS = (
    (0x1C89, 0x1C89, 1),
    (0xA7CB, 0xA7CB, -42343),
    (0xA7CC, 0xA7CC, 1),
    (0xA7CE, 0xA7CE, 1),
    (0xA7D2, 0xA7D2, 1),
    (0xA7D4, 0xA7D4, 1),
    (0xA7DA, 0xA7DA, 1),
    (0xA7DC, 0xA7DC, -42561),
    (0x10D50, 0x10D65, 32),
    (0x16EA0, 0x16EB8, 27),
)
_UPPER_RUNS = (
    (0x19B, 0x19B, 42561),
    (0x264, 0x264, 42343),
    (0x1C8A, 0x1C8A, -1),
    (0xA7CD, 0xA7CD, -1),
    (0xA7CF, 0xA7CF, -1),
    (0xA7D3, 0xA7D3, -1),
    (0xA7D5, 0xA7D5, -1),
    (0xA7DB, 0xA7DB, -1),
    (0x10D70, 0x10D85, -32),
    (0x16EBB, 0x16ED3, -27),
)
_NFKC_RUNS = (
    (0xA7F1, 0xA7F1, -42910),
    (0x1CCD6, 0x1CCEF, -117909),
    (0x1CCF0, 0x1CCF9, -117952),
    (0x1E030, 0x1E038, -121856),
    (0x1E039, 0x1E03B, -121855),
    (0x1E03C, 0x1E046, -121854),
    (0x1E047, 0x1E047, -121852),
    (0x1E048, 0x1E049, -121851),
    (0x1E04A, 0x1E04A, -80321),
    (0x1E04B, 0x1E04B, -121714),
    (0x1E04C, 0x1E04C, -121846),
    (0x1E04D, 0x1E04D, -121845),
    (0x1E04E, 0x1E04E, -121701),
    (0x1E04F, 0x1E04F, -121760),
    (0x1E050, 0x1E050, -121729),
    (0x1E051, 0x1E059, -121889),
    (0x1E05A, 0x1E05B, -121888),
    (0x1E05C, 0x1E05D, -121886),
    (0x1E05E, 0x1E05E, -121885),
    (0x1E05F, 0x1E064, -121884),
    (0x1E065, 0x1E066, -121883),
    (0x1E067, 0x1E067, -121814),
    (0x1E068, 0x1E068, -121874),
    (0x1E069, 0x1E069, -121876),
    (0x1E06A, 0x1E06A, -121867),
    (0x1E06B, 0x1E06B, -121792),
    (0x1E06C, 0x1E06C, -80411),
    (0x1E06D, 0x1E06D, -121788),
)
_RUNS = {"lower": _LOWER_RUNS, "upper": _UPPER_RUNS, "nfkc": _NFKC_RUNS}
_WHITESPACE_RUN = re.compile(WHITESPACE_RUN)


@cache
def _table(name: str) -> dict[int, int]:
    return {code: code + offset for first, last, offset in _RUNS[name] for code in range(first, last + 1)}


def lower(text: str) -> str:
    """``polars.Expr.str.to_lowercase`` for one string."""
    return text.translate(_table("lower")).lower()


def upper(text: str) -> str:
    """``polars.Expr.str.to_uppercase`` for one string."""
    return text.translate(_table("upper")).upper()


def nfkc(text: str) -> str:
    """``polars.Expr.str.normalize("NFKC")`` for one string."""
    return unicodedata.normalize("NFKC", text.translate(_table("nfkc")))


def collapse_whitespace(text: str) -> str:
    """Every run of whitespace as one space (``str.replace_all(WHITESPACE_RUN, " ")`` in polars)."""
    return _WHITESPACE_RUN.sub(" ", text)
