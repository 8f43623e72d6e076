"""Text transforms: lengths, token counts and character shares; feature hashing of tokens.

A **token** is a maximal run of characters that are not Unicode white space (the 25 characters of the Unicode
``White_Space`` property, written out in :data:`TOKEN_PATTERN`, so polars' regex engine and Python's ``re``
split text at exactly the same places whatever their Unicode tables). Digits and upper-case letters are the
ASCII ones (``0-9``, ``A-Z``) for the same reason. A null text gives null statistics and no tokens, and is
counted (``"<column>: null text"``).
"""

from __future__ import annotations

import re
import zlib
from typing import Any

import numpy as np
import polars as pl

from loopline.core.errors import ConfigError, DataError
from loopline.prep._transform import Record, Transform

#: one token: a run of non-white-space characters (the Unicode White_Space set, spelled out for both engines)
TOKEN_PATTERN = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+"
_TOKEN = re.compile(TOKEN_PATTERN)
_MAX_BUCKETS = 65536


def _flags(transform: str, **values: Any) -> None:
    for key, value in values.items():
        if not isinstance(value, bool):
            raise ConfigError(f"{transform}: {key} must be true or false, got {value!r}.", key=key)


def _columns(transform: Transform, columns: Any) -> None:
    if not isinstance(columns, list) or not columns or not all(isinstance(c, str) for c in columns):
        raise ConfigError(
            f"{transform.type_name}: columns must be a non-empty list of column names, got {columns!r}.",
            key="columns",
            hint="Write columns: [description].",
        )


def _text_column(transform: Transform, frame: pl.DataFrame, name: str) -> pl.Expr:
    dtype = frame.schema[name]
    if dtype == pl.String or dtype == pl.Null:
        return pl.col(name).cast(pl.String)
    if dtype == pl.Categorical or isinstance(dtype, pl.Enum):
        return pl.col(name).cast(pl.String)
    raise DataError(
        f"{transform.type_name}: column {name!r} is {dtype}, not text.",
        column=name,
        hint=f"Cast {name!r} to a string first, or leave it out of columns.",
    )


def _text_value(transform: Transform, name: str, value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise DataError(
        f"{transform.type_name}: column {name!r} holds {type(value).__name__} {value!r}, not text.",
        column=name,
        hint="Send the field as a JSON string.",
    )


class TextStats(Transform):
    """Adds ``<column>_length`` (characters) and ``<column>_tokens`` (tokens), both Int64, and with ``digits``
    / ``upper`` ``<column>_digit_share`` / ``<column>_upper_share``: the share of the characters that are ASCII
    digits / upper-case ASCII letters (Float64; 0.0 for an empty text). Keeps the text column.

    A null text gives nulls (counted, ``"<column>: null text"``); a column that is not text is an error.
    """

    type_name = "text_stats"
    stateful = False

    def __init__(self, columns: list[str], digits: bool = False, upper: bool = False) -> None:
        self.columns = columns
        self.digits = digits
        self.upper = upper

    def check_params(self) -> None:
        _columns(self, self.columns)
        _flags(self.type_name, digits=self.digits, upper=self.upper)

    def fit(self, frame: pl.DataFrame, target: str | None = None) -> TextStats:
        self.check_params()
        self.require_columns(frame, self.columns)
        for name in self.columns:
            _text_column(self, frame, name)
        return self

    def _shares(self) -> list[tuple[str, str]]:
        return [(s, r) for s, r, on in (("digit", "[0-9]", self.digits), ("upper", "[A-Z]", self.upper)) if on]

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        self.require_columns(frame, self.columns)
        exprs: list[pl.Expr] = []
        for name in self.columns:
            text = _text_column(self, frame, name)
            self.count(f"{name}: null text", frame.get_column(name).null_count())
            length = text.str.len_chars().cast(pl.Int64)
            exprs.append(length.alias(f"{name}_length"))
            exprs.append(text.str.count_matches(TOKEN_PATTERN).cast(pl.Int64).alias(f"{name}_tokens"))
            for share, pattern in self._shares():
                hits = text.str.count_matches(pattern).cast(pl.Float64)
                ratio = pl.when(length == 0).then(pl.lit(0.0)).otherwise(hits / length.cast(pl.Float64))
                exprs.append(ratio.alias(f"{name}_{share}_share"))
        return frame.with_columns(exprs)

    def transform_record(self, record: Record) -> Record:
        out = dict(record)
        for name in self.columns:
            text = _text_value(self, name, out.get(name))
            if text is None:
                self.count(f"{name}: null text")
            out[f"{name}_length"] = None if text is None else len(text)
            out[f"{name}_tokens"] = None if text is None else len(_TOKEN.findall(text))
            for share, _ in self._shares():
                low, high = ("0", "9") if share == "digit" else ("A", "Z")
                if text is None:
                    out[f"{name}_{share}_share"] = None
                else:
                    hits = sum(1 for ch in text if low <= ch <= high)
                    out[f"{name}_{share}_share"] = float(hits) / float(len(text)) if text else 0.0
        return out

    def lineage(self) -> dict[str, list[str]]:
        suffixes = ["length", "tokens", *(f"{share}_share" for share, _ in self._shares())]
        return {f"{name}_{suffix}": [name] for name in self.columns for suffix in suffixes}


class Hashing(Transform):
    """Feature hashing: each token of the text adds 1.0 to one of ``n_buckets`` columns ``<column>_hash<i>``
    (Float64 counts); the text column is dropped. With ``alternate_sign`` half of the tokens add -1.0 instead,
    so collisions cancel out on average. ``lowercase`` folds tokens with ``str.lower`` first.

    The bucket is ``crc32(token as UTF-8) % n_buckets`` (the sign: bit 31 of the same CRC), a checksum fixed by
    the zlib standard: the same token lands in the same bucket in every process, on every machine and in every
    version, unlike Python's salted ``hash()`` or polars' ``hash``. Stateless: no vocabulary is learned, so
    unseen words need no policy. The table path tokenises in polars and hashes each distinct token once.
    """

    type_name = "hashing"
    stateful = False

    def __init__(
        self, columns: list[str], n_buckets: int = 64, lowercase: bool = True, alternate_sign: bool = False
    ) -> None:
        self.columns = columns
        self.n_buckets = n_buckets
        self.lowercase = lowercase
        self.alternate_sign = alternate_sign

    def check_params(self) -> None:
        _columns(self, self.columns)
        _flags(self.type_name, lowercase=self.lowercase, alternate_sign=self.alternate_sign)
        n = self.n_buckets
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= _MAX_BUCKETS:
            raise ConfigError(
                f"hashing: n_buckets must be an integer from 1 to {_MAX_BUCKETS}, got {n!r}.",
                key="n_buckets",
                hint="Use n_buckets: 64 (more buckets, fewer collisions, wider tables).",
            )

    def fit(self, frame: pl.DataFrame, target: str | None = None) -> Hashing:
        self.check_params()
        self.require_columns(frame, self.columns)
        for name in self.columns:
            _text_column(self, frame, name)
        return self

    def bucket(self, token: str) -> tuple[int, float]:
        """The bucket of one token and the sign it adds."""
        if self.lowercase:
            token = token.lower()
        code = zlib.crc32(token.encode("utf-8", "surrogatepass"))
        sign = -1.0 if self.alternate_sign and code >> 31 else 1.0
        return code % self.n_buckets, sign

    def _outputs(self, name: str) -> list[str]:
        return [f"{name}_hash{i}" for i in range(self.n_buckets)]

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        self.require_columns(frame, self.columns)
        out = frame
        for name in self.columns:
            text = _text_column(self, frame, name)
            self.count(f"{name}: null text", frame.get_column(name).null_count())
            counts = self._matrix(frame.select(text.str.extract_all(TOKEN_PATTERN).alias("t")).get_column("t"))
            out = out.with_columns(
                pl.Series(output, counts[i], dtype=pl.Float64) for i, output in enumerate(self._outputs(name))
            )
        return out.drop(self.columns)

    def _matrix(self, tokens: pl.Series) -> np.ndarray[Any, Any]:
        """Buckets x rows (a bucket's counts side by side): the signed token counts, from each row's tokens."""
        matrix = np.zeros((self.n_buckets, tokens.len()), dtype=np.float64)  # the shape, and the empty case
        long = pl.DataFrame({"row": np.arange(tokens.len(), dtype=np.int64), "t": tokens}).explode("t")
        long = long.drop_nulls("t")
        if long.height == 0:
            return matrix
        distinct = long.get_column("t").unique().to_list()
        buckets, signs = zip(*(self.bucket(t) for t in distinct), strict=True)
        token = long.get_column("t")
        column = token.replace_strict(distinct, list(buckets), return_dtype=pl.Int64).to_numpy()
        sign = token.replace_strict(distinct, list(signs), return_dtype=pl.Float64).to_numpy()
        cells = column * tokens.len() + long.get_column("row").to_numpy()  # integer counts: exact in any order
        counts = np.bincount(cells, weights=sign, minlength=matrix.size)
        return counts.reshape(matrix.shape)

    def transform_record(self, record: Record) -> Record:
        out = dict(record)
        for name in self.columns:
            text = _text_value(self, name, out.pop(name, None))
            counts = [0.0] * self.n_buckets
            if text is None:
                self.count(f"{name}: null text")
            else:
                for token in _TOKEN.findall(text):
                    bucket, sign = self.bucket(token)
                    counts[bucket] += sign
            out.update(zip(self._outputs(name), counts, strict=True))
        return out

    def lineage(self) -> dict[str, list[str]]:
        return {output: [name] for name in self.columns for output in self._outputs(name)}
