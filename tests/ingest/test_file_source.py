"""The file source for ingestion: conformance, lakes, manifests, bounded batches, bad rows."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from loopline import DataError
from loopline.ingest import SOURCES, Limits, Source
from loopline.testing import check_source


def make(path: Path | str, **config: Any) -> Source:
    cls = SOURCES.get("file")
    return cls(cls.Config.model_validate({"path": str(path), **config}))


def read_all(source: Source, position: Any = None, rows: int = 1000) -> list[Any]:
    return list(source.batches(position, limits=Limits(max_rows=rows)))


def test_file_source_conforms(tmp_path: Path) -> None:
    counter = iter(range(1000))

    def produce(records: list[dict[str, Any]]) -> None:
        pl.DataFrame(records).write_csv(tmp_path / f"part-{next(counter):04d}.csv")

    check_source(
        lambda: make(tmp_path / "*.csv"),
        produce,
        key="id",
        rows=lambda start, n: [{"id": i, "x": i * 0.5, "s": f"r{i}"} for i in range(start, start + n)],
    )


def test_lake_folder_with_hive_partitions(tmp_path: Path) -> None:
    for year, month in ((2023, 12), (2024, 1)):
        folder = tmp_path / f"year={year}" / f"month={month}"
        folder.mkdir(parents=True)
        pl.DataFrame({"id": [year * 100 + month], "v": [1.0]}).write_parquet(folder / "data.parquet")
    (tmp_path / "README.txt").write_text("not data")
    frames = [b.rows for b in read_all(make(tmp_path)) if b.rows.height]
    lake = pl.concat(frames)
    assert sorted(lake.columns) == ["id", "month", "v", "year"]
    assert sorted(lake["year"].to_list()) == [2023, 2024]


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".csv.zst"])
def test_compressed_files_are_read_transparently(tmp_path: Path, suffix: str) -> None:
    raw = pl.DataFrame({"id": range(50)}).write_csv().encode()
    path = tmp_path / f"data{suffix}"
    if suffix == ".csv.gz":
        raw = gzip.compress(raw)
    elif suffix == ".csv.zst":
        import zstandard

        raw = zstandard.ZstdCompressor().compress(raw)
    path.write_bytes(raw)
    assert sum(b.rows.height for b in read_all(make(path))) == 50


@pytest.mark.parametrize("budget", [0, 256], ids=["streamed", "in-memory"])
def test_a_large_file_comes_in_bounded_batches_and_resumes_mid_file(tmp_path: Path, budget: int) -> None:
    pl.DataFrame({"id": range(10_000), "s": ["x" * 20] * 10_000}).write_csv(tmp_path / "big.csv")
    batches = read_all(make(tmp_path / "big.csv", memory_budget_mb=budget), rows=1000)
    assert max(b.rows.height for b in batches) <= 1000
    assert sum(b.rows.height for b in batches) == 10_000
    halfway = batches[4].position
    assert halfway["current"]["rows"] == 5000
    rest = read_all(make(tmp_path / "big.csv", memory_budget_mb=budget), halfway, rows=1000)
    assert [i for b in rest if b.rows.height for i in b.rows["id"].to_list()] == list(range(5000, 10_000))


@pytest.mark.parametrize("budget", [0, 256], ids=["streamed", "in-memory"])
def test_malformed_csv_rows_become_rejects_and_the_rest_goes_on(tmp_path: Path, budget: int) -> None:
    (tmp_path / "bad.csv").write_text("id,v\n1,a\n2,b,extra\n3,c\n")
    batches = read_all(make(tmp_path / "bad.csv", memory_budget_mb=budget))
    assert sorted(i for b in batches if b.rows.height for i in b.rows["id"].to_list()) == [1, 3]
    rejects = [r for b in batches for r in b.rejects]
    assert len(rejects) == 1 and "found 3" in rejects[0].reason and rejects[0].raw == "2,b,extra"
    assert rejects[0].position["path"].endswith("bad.csv") and rejects[0].position["line"] == 3


def test_quoted_line_breaks_across_blocks_keep_every_row(tmp_path: Path) -> None:
    rows = [{"id": i, "note": f'first {i}\r\nsecond, "{i}"' if i % 3 else f"plain {i}"} for i in range(20_000)]
    pl.DataFrame(rows).write_csv(tmp_path / "notes.csv")
    batches = read_all(make(tmp_path / "notes.csv", memory_budget_mb=0), rows=5000)  # 64 KiB blocks
    assert [r for b in batches for r in b.rejects] == []
    assert pl.concat([b.rows for b in batches if b.rows.height]).to_dicts() == rows


def test_a_quote_never_closed_is_a_data_error_naming_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "open.csv").write_text('id,v\n1,a\n2,"b\n3,c\n')
    with pytest.raises(DataError, match=r"open\.csv'?: line 3: a quoted value .* without a closing quote") as info:
        read_all(make(tmp_path / "open.csv"))
    assert info.value.file is not None and info.value.file.endswith("open.csv") and info.value.row == 3


def test_a_changed_file_is_reported_not_read_twice(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    pl.DataFrame({"id": [1, 2]}).write_csv(path)
    done = read_all(make(path))[-1].position
    pl.DataFrame({"id": [1, 2, 3]}).write_csv(path)
    again = read_all(make(path), done)
    assert sum(b.rows.height for b in again) == 0
    assert any("changed after it was ingested" in r.reason for b in again for r in b.rejects)


def test_missing_input_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        read_all(make(tmp_path / "none.csv"))


def test_column_types_pin_a_csv_column_instead_of_inferring_it(tmp_path: Path) -> None:
    (tmp_path / "codes.csv").write_text("id,zip\n1,01234\n2,90210\n")
    (batch,) = [b for b in read_all(make(tmp_path / "codes.csv", column_types={"zip": "String"})) if b.rows.height]
    assert batch.rows.schema["zip"] == pl.String and batch.rows["zip"].to_list() == ["01234", "90210"]


def test_an_unknown_column_type_is_a_config_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="Strnig"):
        make(tmp_path / "x.csv", column_types={"zip": "Strnig"})
