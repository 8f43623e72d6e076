"""Batch scoring: a model version over a large file or dataset version, chunk by chunk, into a file.

The input is read in chunks of ``chunk_rows`` rows (see :mod:`loopline.run._score_input`), each chunk is
checked and typed as the model was trained by the input policy every path applies
(:func:`loopline.bundle.conform_table`: the service's rules for types, extra and missing fields and text
lengths), scored by the model bundle's one prediction function (:meth:`ModelBundle.predict_table`), and its
rows are appended to a temporary file next to the output.
Memory therefore holds one chunk (and its feature matrix), whatever the input's size.

``chunk_rows`` is rounded up to a multiple of 64 (:data:`ROW_ALIGN`): BLAS sums a row's products in an
order that depends on where the row falls in a block of rows (a linear model's last 1-7 rows of a call go
through another kernel), so chunks that start on a 64-row boundary give the whole table's numbers bit for
bit, whatever ``chunk_rows`` is. The temporary
file replaces the output only once every chunk is written, so a failure leaves no output file behind,
and an existing output is never replaced unless asked.

Output columns: the input columns named in ``keep`` (in that order), ``prediction``, and for
classifiers one ``proba_<class>`` column per class, in the bundle's class order.
"""

from __future__ import annotations

import gzip
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from loopline.bundle import ColumnPlan, FieldRule, InputPolicy, conform_table, field_rules, plan_columns
from loopline.core.cpu import limited_threads
from loopline.core.diskspace import disk_full_as_error
from loopline.core.errors import ConfigError, DataError, NotFoundError, did_you_mean
from loopline.run._evaluate import load_bundle
from loopline.run._score_input import ScoreInput, open_input, same_file

if TYPE_CHECKING:
    from loopline.bundle import ModelBundle
    from loopline.store import Store
    from loopline.store.models import ModelVersion

DEFAULT_CHUNK_ROWS = 100_000
ROW_ALIGN = 64
PREDICTION = "prediction"
PROBA_PREFIX = "proba_"
_OUTPUT_HINT = "Name the output file .parquet, .csv or .jsonl (.csv.gz and .jsonl.gz compress)."


@dataclass(frozen=True)
class ScoreProgress:
    """Where a batch scoring stands after a chunk: rows done so far, of ``total`` (None: not known)."""

    rows: int
    total: int | None
    chunks: int
    chunk_rows: int


@dataclass(frozen=True)
class BatchScore:
    """What :func:`score_batch` did: the model version, the input, the output file and the work done."""

    name: str
    version: int
    input: str
    output: Path
    rows: int
    chunks: int
    seconds: float
    max_chunk_rows: int
    columns: list[str]
    ignored_columns: list[str] = field(default_factory=list)
    """Input columns the model does not take (ignored; those copied by ``keep`` included)."""
    missing_columns: list[str] = field(default_factory=list)
    """Model inputs the input lacks, scored as null (the model imputes them)."""


Progress = Callable[[ScoreProgress], None]


def score_batch(
    store: Store,
    name: str,
    input: str | Path,
    output: str | Path,
    *,
    version: int | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    keep: Sequence[str] = (),
    force: bool = False,
    progress: Progress | None = None,
    policy: InputPolicy | None = None,
) -> BatchScore:
    """Score ``input`` with model ``name`` (its production version, or ``version``) into ``output``.

    ``input`` is a CSV, Parquet or JSON Lines file (by extension; ``.gz`` allowed) or a URL polars can
    scan, or ``dataset:NAME`` / ``dataset:NAME@VERSION`` for a stored dataset version (latest if no
    version). ``output`` is a ``.parquet``, ``.csv`` or ``.jsonl`` file (``.csv.gz``, ``.jsonl.gz``).

    Guarantees: at most ``chunk_rows`` input rows (rounded up to a multiple of 64) are held at once; the
    output equals scoring the whole input with :meth:`ModelBundle.predict_table` (probabilities bit for bit), whatever
    ``chunk_rows``; the output appears at its path only complete (written to a temporary file, then
    renamed), and an existing file is replaced only with ``force``. Everything is checked (model,
    output path, input columns) before anything is written. ``progress`` is called after each chunk.
    ``policy`` is the input policy (default :class:`InputPolicy`'s: text of at most 1024 characters where the
    schema names no ``max_length``, missing nullable columns scored as null); the columns the model does not
    take are ignored and listed in the result.

    Raises NotFoundError (unknown model, version or dataset), ConfigError (output path, ``keep``,
    ``chunk_rows``) and DataError (missing input file or column, values of the wrong type).
    """
    started = time.perf_counter()
    if chunk_rows < 1:
        raise ConfigError(f"chunk_rows must be at least 1, not {chunk_rows}.", hint="Use e.g. --chunk-rows 100000.")
    chunk_rows = -(-chunk_rows // ROW_ALIGN) * ROW_ALIGN
    found = _model_version(store, name, version)
    target = _check_output(store, output, force=force)
    bundle = load_bundle(store, found)
    source = open_input(store, input, text_columns=_text_columns(bundle))
    if same_file(source.label, target):
        raise ConfigError(f"the output {target} is the input file.", hint="Write the scores to another file.")
    policy = policy or InputPolicy()
    policy.check()
    rules = field_rules(bundle.input_schema, policy)
    plan = plan_columns(rules, list(source.schema), policy, label=source.label)
    needed = _check_keep(plan, source, list(keep))
    scorer = _Scorer(bundle, rules, list(keep), source.schema)
    rows = chunks = largest = 0
    with limited_threads(None), _Writer(target, scorer.empty()) as writer:  # cores from the process's budget
        for chunk in source.chunks(needed, chunk_rows):
            writer.write(scorer.score(chunk, first_row=rows))
            rows, chunks, largest = rows + chunk.height, chunks + 1, max(largest, chunk.height)
            if progress is not None:
                progress(ScoreProgress(rows, source.total, chunks, chunk.height))
    columns = scorer.empty().columns
    seconds = time.perf_counter() - started
    return BatchScore(
        found.name,
        found.version,
        source.label,
        target,
        rows,
        chunks,
        seconds,
        largest,
        columns,
        ignored_columns=plan.ignored,
        missing_columns=plan.missing,
    )


# -- the model -----------------------------------------------------------------------------------------


def _model_version(store: Store, name: str, version: int | None) -> ModelVersion:
    """Version ``version`` of ``name``, or its production version; NotFoundError with the fix otherwise."""
    if version is not None:
        return store.models.get(name, version)
    found = store.models.production(name)
    if found is None:
        latest = store.models.get(name)  # raises "does not exist" with a did-you-mean
        raise NotFoundError(
            f"model {name!r} has no production version.",
            hint=f"Pass --version (latest is {latest.version}), or promote one with "
            f"`loopline models promote {name} {latest.version}`.",
        )
    return found


def _check_keep(plan: ColumnPlan, source: ScoreInput, keep: list[str]) -> list[str]:
    """The input columns to read (model inputs present, then kept ones); ConfigError naming a bad ``keep``."""
    for column in keep:
        if column not in source.schema:
            raise ConfigError(
                f"--keep {column!r}: the input has no such column.",
                hint=did_you_mean(column, source.schema) or f"Columns present: {', '.join(source.schema)}.",
            )
    return list(dict.fromkeys([*plan.read, *keep]))


def _text_columns(bundle: ModelBundle) -> list[str]:
    """The inputs a CSV file is read with as text, left to the input policy: text, integer and boolean ones
    (float and date-time columns keep the types polars gives them, NaN included)."""
    return [rule.name for rule in field_rules(bundle.input_schema) if rule.kind in ("string", "integer", "boolean")]


class _Scorer:
    """Types a chunk by the input policy, scores it and lays out the output columns."""

    def __init__(self, bundle: ModelBundle, rules: list[FieldRule], keep: list[str], schema: dict[str, Any]) -> None:
        self.bundle = bundle
        self.rules = rules
        self.keep = keep
        self.schema = schema
        self.names = [f"{PROBA_PREFIX}{c}" for c in bundle.classes] if bundle.classes is not None else []
        clash = sorted({PREDICTION, *self.names} & set(keep))
        if clash:
            raise ConfigError(
                f"--keep {clash[0]!r} would clash with an output column of the same name.",
                hint="Rename the input column, or do not keep it.",
            )

    def score(self, chunk: pl.DataFrame, *, first_row: int) -> pl.DataFrame:
        """The output rows of one chunk (``first_row``: the chunk's first input row, for messages)."""
        typed = conform_table(chunk, self.rules, first_row=first_row)
        out = self.bundle.predict_table(typed)
        if len(out[PREDICTION]) != chunk.height:
            raise DataError(
                f"the model returned {len(out[PREDICTION])} predictions for {chunk.height} rows.",
                hint="Its transform chain removes rows at prediction time; batch scoring needs one per row.",
            )
        return self._frame(typed.select(self.keep), out)

    def empty(self) -> pl.DataFrame:
        """The output's columns and types, with no rows (kept model inputs typed as the policy types them)."""
        present = {c: t for c, t in self.schema.items() if c in self.keep}
        kept = conform_table(pl.DataFrame(schema=present), [r for r in self.rules if r.name in present])
        if self.bundle.classes is None:
            out = {PREDICTION: np.zeros(0, dtype=np.float64)}
        else:
            labels = np.asarray(self.bundle.classes)[:0]
            out = {PREDICTION: labels, "probability": np.zeros((0, len(self.names)), dtype=np.float64)}
        return self._frame(kept.select(self.keep), out)

    def _frame(self, kept: pl.DataFrame, out: dict[str, np.ndarray]) -> pl.DataFrame:
        columns = [pl.Series(PREDICTION, out[PREDICTION])]
        if "probability" in out:
            columns += [pl.Series(n, out["probability"][:, i]) for i, n in enumerate(self.names)]
        return kept.with_columns(columns) if kept.width else pl.DataFrame(columns)


# -- the output ----------------------------------------------------------------------------------------


def output_format(path: Path) -> tuple[str, bool]:
    """``(format, gzip)`` of an output path from its name; ConfigError for any other name."""
    suffixes = [s.lower() for s in path.suffixes]
    compressed = bool(suffixes) and suffixes[-1] == ".gz"
    ext = (suffixes[-2] if compressed and len(suffixes) > 1 else suffixes[-1] if suffixes else "").lstrip(".")
    fmt = {"parquet": "parquet", "csv": "csv", "jsonl": "jsonl", "ndjson": "jsonl"}.get(ext)
    if fmt is None or (compressed and fmt == "parquet"):
        raise ConfigError(f"cannot tell which format to write {path.name!r} in.", hint=_OUTPUT_HINT)
    return fmt, compressed


def _check_output(store: Store, output: str | Path, *, force: bool) -> Path:
    target = Path(output).expanduser().resolve()
    output_format(target)
    if target.is_dir():
        raise ConfigError(f"{target} is a directory.", hint="Give a file path, e.g. --output scores.parquet.")
    if not target.parent.is_dir():
        raise ConfigError(f"folder {target.parent} does not exist.", hint="Create it first, or pick another --output.")
    if store.artifacts.is_inside(target):
        raise ConfigError(
            f"{target} is inside the artifact store ({store.artifacts.location}).", hint="Write the scores outside it."
        )
    if (target.exists() or target.is_symlink()) and not force:
        raise ConfigError(f"{target} already exists.", hint="Pass --force to overwrite it, or pick another --output.")
    return target


class _Writer:
    """Appends chunks to a temporary file beside ``target``; :meth:`commit` renames it into place."""

    def __init__(self, target: Path, empty: pl.DataFrame) -> None:
        self.target = target
        self.format, compressed = output_format(target)
        handle, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        os.close(handle)
        self.tmp = Path(tmp)
        self._parquet: Any = None
        self._text: Any = None
        try:
            self._open(empty, compressed)
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise

    def _open(self, empty: pl.DataFrame, compressed: bool) -> None:
        if self.format == "parquet":
            import pyarrow.parquet as pq

            self.schema = empty.to_arrow().schema
            self._parquet = pq.ParquetWriter(self.tmp, self.schema, compression="zstd")
        else:
            self._text = gzip.open(self.tmp, "wb") if compressed else open(self.tmp, "wb")  # noqa: SIM115
            if self.format == "csv":
                empty.write_csv(self._text)  # the header, even for an input without rows

    def write(self, frame: pl.DataFrame) -> None:
        with disk_full_as_error(self.target, int(frame.estimated_size())):
            if self._parquet is not None:
                self._parquet.write_table(frame.to_arrow().cast(self.schema))
            elif self.format == "csv":
                frame.write_csv(self._text, include_header=False)
            else:
                frame.write_ndjson(self._text)

    def close(self) -> None:
        with disk_full_as_error(self.target):
            if self._parquet is not None:
                self._parquet.close()
            if self._text is not None:
                self._text.close()

    def commit(self) -> None:
        with disk_full_as_error(self.target), open(self.tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(self.tmp, self.target)

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            self.close()
            if kind is None:
                self.commit()
        finally:
            self.tmp.unlink(missing_ok=True)
