"""bench_ui: the generated store holds what it says (on both backends), every dashboard page answers on it, a page
with a path parameter no resolver knows stops the benchmark, and a paginated answer is timed on its last page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import func, select

from loopline.store import Store
from loopline.store._tables import feedback, monitor_windows, predictions

from ._load import load

generator: ModuleType = load("_ui_store")
bench: ModuleType = load("bench_ui")
TINY = generator.Sizes(
    runs=30, versions=9, predictions=900, windows=12, alerts=3, loop_events=60, datasets=2, dataset_versions=3,
    dead_letters=4, studies=1, trials=3,
)  # fmt: skip


def test_the_generated_store_holds_the_sizes_and_every_page_answers_on_it(store: Store) -> None:
    made = generator.generate(store, TINY)
    assert made.rows["runs"] == 30 and made.rows["models"] == 9 and made.rows["predictions"] == 900
    assert made.rows["monitor_windows"] == 3 * 30 and made.rows["alerts"] == 3  # 12 asked: 1d windows tile the 30 days
    assert made.rows["dataset_versions"] == 6 and made.rows["dead_letters"] == 8
    assert sorted(store.models.names()) == ["churn", "flights", "fraud"]
    for name in store.models.names():
        production = store.models.production(name)
        assert production is not None and production.stage == "production"
        store.models.verify(name, production.version, production.bundle_digest)  # the shared bundle is real
    # the log written in bulk reads back through the library: times within the 30 days, inputs and outputs parsed
    now = datetime.now(UTC)
    log = store.predictions.read("churn")
    assert log.height == 300 and set(log.columns) >= {"x", "n", "group", "prediction", "created_at"}
    assert store.predictions.prediction_count("churn", now - timedelta(days=31), now + timedelta(minutes=1)) == 300
    with store.engine.connect() as conn:
        labelled = conn.execute(select(func.count()).select_from(feedback)).scalar_one()
        window_rows = conn.execute(select(func.sum(monitor_windows.c.rows))).scalar_one()
        logged = conn.execute(select(func.count()).select_from(predictions)).scalar_one()
    assert 0 < labelled < 300 and window_rows == logged  # the windows tile the log
    latest = store.windows.latest("churn")
    assert latest is not None and latest.result["health"]["rows"] == latest.rows
    results = bench.run_pages(store, 1, None)
    assert results and all(t.status == 200 for t in results), [(t.address, t.status) for t in results]
    assert {"/api/", "/ui/"} <= {t.address for t in results}


def test_a_generated_postgresql_store_is_reused_and_a_foreign_one_refused(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    first, made = generator.open_generated(pg_url, TINY)
    first.close()
    assert not made.reused and made.rows["runs"] == 30
    again, reused = generator.open_generated(pg_url, TINY)
    again.close()
    assert reused.reused and reused.rows == made.rows
    with pytest.raises(SystemExit, match="did not write .*empty database"):
        generator.open_generated(pg_url, generator.Sizes(runs=31))


def test_a_cached_sqlite_store_is_generated_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store, made = generator.open_generated(None, TINY)
    store.close()
    assert not made.reused and (tmp_path / generator.ROOT).is_dir()
    store, again = generator.open_generated(None, TINY)
    store.close()
    assert again.reused and again.rows == made.rows


FACTS = bench.Facts(
    model="churn", model_version=7, run_id="r1", pipeline="churn-loop", dataset="churn-events", dataset_version=3,
    study="churn-tuning", alert_id=5, window_spec="1h", window_seq=9, step="train",
)  # fmt: skip


def test_path_parameters_are_filled_by_name_and_area() -> None:
    assert bench.fill("/models/{name}/{version}", FACTS) == "/models/churn/7"
    assert bench.fill("/datasets/{name}/versions/{version}", FACTS) == "/datasets/churn-events/versions/3"
    assert bench.fill("/runs/{run_id}", FACTS) == "/runs/r1"
    assert bench.fill("/monitoring/{model}", FACTS) == "/monitoring/churn"
    assert bench.fill("/models/{name}/compare", FACTS) == "/models/churn/compare?versions=5,7,8"


def test_a_parameter_no_resolver_knows_stops_the_benchmark_naming_it() -> None:
    with pytest.raises(SystemExit, match=r"/widgets/\{widget_id\}.*\{widget_id\}.*RESOLVERS"):
        bench.fill("/widgets/{widget_id}", FACTS)
    with pytest.raises(SystemExit, match=r"\{name\} under /widgets.*NAME_BY_AREA"):
        bench.fill("/widgets/{name}", FACTS)


def test_the_last_page_of_a_paginated_answer_is_found_at_the_top_or_one_level_down() -> None:
    assert bench.last_page({"page": 1, "per_page": 50, "total": 120, "pages": 3}) == 3
    assert bench.last_page({"runs": [], "pagination": {"page": 1, "per_page": 50, "total": 120, "pages": 3}}) == 3
    assert bench.last_page({"pagination": {"page": 1, "per_page": 50, "total": 10, "pages": 1}}) is None
    assert bench.last_page({"models": []}) is None


def test_the_mlflow_peer_runs_only_when_asked_and_never_in_the_quick_run_by_default() -> None:
    import argparse

    said: list[str] = []
    made = generator.Made({"runs": 10}, 0.0, True)
    for mlflow, quick in (("off", False), ("auto", True), ("off", True)):
        found = bench.run_peer(None, made, argparse.Namespace(mlflow=mlflow, quick=quick), 3, said.append)
        assert found == {"ratios": {"runs_search_vs_mlflow": None}, "figures": None}
    assert said == []  # skipped silently: nothing was asked for
