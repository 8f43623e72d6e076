"""bench_monitor: the shifted tables shift what they say, the peers' results are read right, the parts run without
their peers (as --quick does where a peer's virtualenv is absent) and the last line is the JSON line."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import polars as pl
import pytest

from ._load import ROOT, load

bench: ModuleType = load("bench_monitor")
shifted: ModuleType = load("_shifted")


def test_the_tables_shift_the_five_columns_they_name_and_no_other() -> None:
    reference, current = shifted.shifted_tables(40_000, seed=3)
    assert reference.columns == current.columns == [*shifted.NUMERIC, *shifted.CATEGORICAL]
    assert reference.height == current.height == 40_000
    assert len(shifted.SHIFTS) == 5 and set(shifted.SHIFTS) <= set(reference.columns)
    again, _ = shifted.shifted_tables(40_000, seed=3)
    assert again.equals(reference)  # seeded
    ref, cur = reference["n00"], current["n00"]
    assert (cur.mean() - ref.mean()) / ref.std() == pytest.approx(0.25, abs=0.03)
    assert current["n01"].std() / reference["n01"].std() == pytest.approx(1.3, abs=0.03)
    far = (current["n02"] > 3.5).mean() - (reference["n02"] > 3.5).mean()  # the component 2 sd away, 15% of rows
    assert far == pytest.approx(0.15 * 0.0668, abs=0.004)

    def share(frame: pl.DataFrame, column: str, level: str) -> float:
        return float((frame[column] == level).mean())

    assert share(reference, "c0", "a3") == pytest.approx(0.1, abs=0.01)
    assert share(current, "c0", "a3") == pytest.approx(0.2, abs=0.01)
    assert share(current, "c1", "b1") / share(reference, "c1", "b1") == pytest.approx(1.7, abs=0.15)
    from scipy.stats import chi2_contingency, ks_2samp

    for name in shifted.NUMERIC:
        p = ks_2samp(reference[name].drop_nulls(), current[name].drop_nulls()).pvalue
        assert (p < 1e-6) == (name in shifted.SHIFTS), name
    for name in shifted.CATEGORICAL:
        counts = pl.concat([reference.select(name).with_columns(side=0), current.select(name).with_columns(side=1)])
        table = counts.drop_nulls().pivot(on="side", index=name, values="side", aggregate_function="len").fill_null(0)
        p = chi2_contingency(table.select("0", "1").to_numpy()).pvalue
        assert (p < 1e-6) == (name in shifted.SHIFTS), name


def test_verdicts_are_counted_per_shifted_and_unchanged_case() -> None:
    unchanged = [name for name in [*shifted.NUMERIC, *shifted.CATEGORICAL] if name not in shifted.SHIFTS]
    draw = {name: name in ("n00", "c1") for name in shifted.SHIFTS} | {name: name == "n05" for name in unchanged}
    counts = bench.count_verdicts([draw, dict.fromkeys(draw, False)])
    assert counts == {"caught": 2, "shifted_cases": 10, "false_alarms": 1, "unchanged_cases": 30}
    peer = {**counts, "caught": 3, "false_alarms": 0}
    assert bench.verdict_goal(counts, peer)["met"] is False
    assert bench.verdict_goal({**counts, "caught": 3}, {**peer, "false_alarms": 1})["met"] is True
    assert bench.verdict_goal({**counts, "caught": 3}, peer)["met"] is False  # a false alarm more


def _evidently_result(scores: dict[str, float], failed: set[str], count: int) -> dict[str, Any]:
    """The shape of Evidently 0.7's Snapshot.dict() for a DataDriftPreset run with include_tests=True."""
    value_drift = [
        {
            "metric_name": f"ValueDrift(column={name},method=Wasserstein distance (normed),threshold=0.1)",
            "config": {"type": "evidently:metric_v2:ValueDrift", "column": name, "method": "Wasserstein"},
            "value": score,
        }
        for name, score in scores.items()
    ]
    counted = {"config": {"type": "evidently:metric_v2:DriftedColumnsCount"}, "value": {"count": float(count)}}
    tests = [
        {"metric_config": {"params": {"type": "evidently:metric_v2:DriftedColumnsCount"}}, "status": "FAIL"},
        *(
            {
                "metric_config": {"params": {"type": "evidently:metric_v2:ValueDrift", "column": name}},
                "status": "FAIL" if name in failed else "SUCCESS",
            }
            for name in scores
        ),
    ]
    return {"metrics": [counted, *value_drift], "tests": tests}


def test_evidentlys_per_column_verdict_is_its_value_drift_test_status_checked_against_its_count() -> None:
    result = _evidently_result({"a": 0.5, "b": 0.03}, failed={"a"}, count=1)
    drifted, scores, methods = bench.evidently_verdicts(result)
    assert drifted == {"a": True, "b": False}
    assert scores == {"a": 0.5, "b": 0.03} and methods["a"] == "Wasserstein"
    with pytest.raises(ValueError, match="disagree with its DriftedColumnsCount"):
        bench.evidently_verdicts(_evidently_result({"a": 0.5, "b": 0.03}, failed={"a"}, count=2))
    no_tests = {**result, "tests": []}  # a run without include_tests=True carries no verdicts
    with pytest.raises(ValueError, match="result format"):
        bench.evidently_verdicts(no_tests)


@pytest.mark.skipif(
    not (ROOT / bench.EVIDENTLY_VENV / ".ready").exists() and "CI" not in os.environ,
    reason="no .bench/evidently-venv here (CI makes it: bench_monitor.py --create-evidently-venv)",
)
def test_the_evidently_peer_answers_verdicts_and_timings(tmp_path: Path) -> None:
    reference, current = shifted.shifted_tables(2_000, seed=0)
    files = {side: str(tmp_path / f"{side}.parquet") for side in ("reference", "current")}
    reference.write_parquet(files["reference"])
    current.write_parquet(files["current"])
    peer = bench.Peer(str(ROOT / bench.EVIDENTLY_VENV / "bin" / "python"), bench.EVIDENTLY_PEER)
    try:
        assert peer.hello["version"] == bench.EVIDENTLY_VERSION
        assert peer.ask(op="load", numeric=shifted.NUMERIC, categorical=shifted.CATEGORICAL, **files) == {"rows": 2000}
        drifted, _, methods = bench.evidently_verdicts(peer.ask(op="verdicts"))
        assert set(drifted) == set(reference.columns) and drifted["n00"] is True
        assert methods["n00"] == "Wasserstein distance (normed)"  # above 1,000 rows
        assert peer.ask(op="time")["s"] > 0
    finally:
        peer.close()


@pytest.fixture
def no_peers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Data under a temporary folder; neither peer's virtualenv exists (as on a machine without them)."""
    monkeypatch.setattr(bench, "DATA", tmp_path / "data")
    monkeypatch.setattr(bench, "EVIDENTLY_VENV", tmp_path / "evidently-venv")
    monkeypatch.setattr(bench, "NANNYML_VENV", tmp_path / "nannyml-venv")
    monkeypatch.setitem(bench.PEER_PINS, tmp_path / "evidently-venv", [])
    monkeypatch.setitem(bench.PEER_PINS, tmp_path / "nannyml-venv", [])
    return tmp_path


def test_quick_drift_without_evidently_times_loopline_alone_and_ends_with_the_json_line(
    no_peers: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench.main(["--quick", "--only", "drift_vs_evidently"])
    out = capsys.readouterr().out
    assert "Evidently skipped" in out
    line = json.loads(out.strip().splitlines()[-1])
    assert line["bench"] == "monitor" and line["sizes"]["drift_rows"] == 5_000
    assert line["ratios"] == {"drift_vs_evidently": None} and "drift_vs_evidently" not in line["goals"]
    assert len(line["spread"]["loopline_drift_s"]) == 3 and line["drift_verdicts"]["loopline"]["shifted_cases"] == 10
    assert not (no_peers / "evidently-venv").exists()  # --quick never creates a peer's virtualenv


def test_the_estimate_error_is_nannymls_over_looplines_and_null_while_nannyml_is_absent(
    no_peers: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    figures = bench.estimate_error_vs_nannyml(quick=True)
    out = capsys.readouterr().out
    assert "NannyML skipped" in out
    assert figures.ratios == {"estimate_error_vs_nannyml": None}
    realised = figures.extra["estimates"]["realised_auc"]
    assert list(realised) == [f"2013-{month:02d}" for month in range(4, 13)]
    assert all(0.55 < auc < 0.85 for auc in realised.values())  # DATA.md: 0.65-0.72 per later month on all rows
    estimated = figures.extra["estimates"]["loopline"]  # loopline's estimator, from the probabilities alone
    assert list(estimated) == list(realised) and all(0.5 < auc < 0.9 for auc in estimated.values())
    assert 0 <= figures.median["loopline_mae"] < 0.1

    def off_by_a_hundredth(
        reference_proba: np.ndarray, reference_labels: np.ndarray, months: dict[str, np.ndarray]
    ) -> dict[str, float]:
        assert len(reference_proba) == len(reference_labels) == figures.sizes["flights_reference_rows"]
        return {month: realised[month] + 0.01 for month in months}

    monkeypatch.setattr(bench, "loopline_estimates", off_by_a_hundredth)
    again = bench.estimate_error_vs_nannyml(quick=True)  # the model outputs are read back from Parquet
    assert again.median["loopline_mae"] == pytest.approx(0.01)
    assert again.ratios == {"estimate_error_vs_nannyml": None}  # NannyML absent


def test_mean_absolute_error_needs_an_estimate_for_every_realised_month() -> None:
    assert bench.mean_abs_error({"a": 0.7, "b": 0.6, "c": 0.1}, {"a": 0.75, "b": 0.5}) == pytest.approx(0.075)
    with pytest.raises(KeyError, match=r"\['b'\]"):
        bench.mean_abs_error({"a": 0.7}, {"a": 0.75, "b": 0.5})


def test_unknown_parts_are_refused() -> None:
    with pytest.raises(SystemExit, match="unknown part.*windows.*use: drift_vs_evidently"):
        bench.main(["--quick", "--only", "windows"])
