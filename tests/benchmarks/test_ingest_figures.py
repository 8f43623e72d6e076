"""The ingestion benchmarks label every contender, and every ratio and goal names contenders they time."""

from __future__ import annotations

from ._load import load


def test_file_ingest_figures_are_labelled_and_ratios_name_timed_contenders() -> None:
    bench = load("bench_ingest")
    assert set(bench.LABELS) == set(bench.CONTENDERS)
    for peer, ours in bench.RATIOS.values():
        assert {peer, ours} <= set(bench.CONTENDERS)
    assert set(bench.GOALS) <= set(bench.RATIOS)
    assert "parquet_vs_polars" not in bench.RATIOS  # it timed the whole-file shortcut against a decoder


def test_sql_ingest_figures_are_labelled_and_goals_judge_the_dataset_path() -> None:
    bench = load("bench_ingest_sql")
    for peer, ours in bench.RATIOS.values():
        assert {peer, ours} <= set(bench.CONTENDERS)
    assert {bench.RATIOS[name][1] for name in bench.GOALS} == {"loopline"}
    assert "dataset" in bench.CONTENDERS["loopline"]
    assert all("source only" in bench.CONTENDERS[name] for name in ("loopline_source", "loopline_keyset"))


def test_csv_ratios_come_per_run_from_paired_repeats() -> None:
    bench = load("bench_ingest")
    run = {"csv_pyarrow": [{"s": 1.0}, {"s": 2.0}], "csv_loopline": [{"s": 2.0}, {"s": 2.0}]}
    slow = {"csv_pyarrow": [{"s": 1.0}, {"s": 1.0}], "csv_loopline": [{"s": 4.0}, {"s": 2.0}]}
    assert bench.ratio_samples([run, slow, {}], "csv_vs_pyarrow") == [[0.5, 1.0], [0.25, 0.5]]
