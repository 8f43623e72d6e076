"""The runs pages: the run history (paginated, filtered in SQL) and one run (DAG, steps, params, resume)."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from loopline import Pipeline
from loopline.run import Runner, SequentialExecutor
from loopline.store import StepRecord, Store
from loopline.store._tables import runs
from loopline.ui import create_ui_app

from .conftest import ADMIN_TOKEN


def load(*, value: int = 1) -> int:
    return value


def double(value: int) -> int:
    return value * 2


def add(left: int, right: int) -> int:
    return left + right


def explode(value: int) -> int:
    raise RuntimeError("the <b>model</b> exploded")


@pytest.fixture
def runs_client(store: Store) -> Iterator[TestClient]:
    """The dashboard over an empty ``store`` (both backends)."""
    with TestClient(create_ui_app(store, token=ADMIN_TOKEN, hosts=["testserver"])) as test_client:
        yield test_client


def diamond(name: str = "diamond", *, fail: bool = False) -> Pipeline:
    """load -> (left, right) -> total; ``fail``: right raises."""
    pipeline = Pipeline(name, params={"seed": 7}).add("load", load, value=3)
    pipeline.add("left", double, inputs=["load"])
    pipeline.add("right", explode if fail else double, inputs=["load"])
    return pipeline.add("total", add, inputs=["left", "right"])


def run(store: Store, pipeline: Pipeline) -> str:
    result = Runner(store, SequentialExecutor()).run(pipeline, raise_on_error=False)
    return result.run_id


def links_in_main(page: str) -> list[str]:
    main = page.split("<main>", 1)[1]
    return [html.unescape(href) for href in re.findall(r'href="([^"]+)"', main)]


def test_a_failed_run_shows_its_dag_steps_error_params_and_resume_command(
    store: Store, runs_client: TestClient
) -> None:
    run_id = run(store, diamond(fail=True))
    data = runs_client.get(f"/api/runs/{run_id}").json()
    assert (data["run_id"], data["pipeline"], data["status"]) == (run_id, "diamond", "failed")
    assert data["params"] == {"seed": 7}
    assert "right" in data["error"]
    assert data["resume"] == {"command": f"loopline run --resume {run_id}", "pipeline_file": None}
    steps = {s["step"]: s for s in data["steps"]}
    assert {name: s["status"] for name, s in steps.items()} == {
        "load": "succeeded",
        "left": "succeeded",
        "right": "failed",
        "total": "not run",
    }
    assert "the <b>model</b> exploded" in steps["right"]["error"]
    assert steps["left"]["inputs"] == ["load"] and steps["total"]["inputs"] == ["left", "right"]
    assert steps["load"]["cache_hit"] is False and set(steps["load"]["outputs"]) == {"out"}
    assert steps["total"]["duration_s"] is None and steps["total"]["type"].endswith(".add")
    nodes = {n["step"]: n for n in data["dag"]["nodes"]}
    assert {name: n["depth"] for name, n in nodes.items()} == {"load": 0, "left": 1, "right": 1, "total": 2}
    assert nodes["left"]["x"] == nodes["right"]["x"] > nodes["load"]["x"]
    assert nodes["left"]["y"] != nodes["right"]["y"]
    edges = {(e["source"], e["target"]) for e in data["dag"]["edges"]}
    assert edges == {("load", "left"), ("load", "right"), ("left", "total"), ("right", "total")}

    page = runs_client.get(f"/ui/runs/{run_id}")
    assert page.status_code == 200
    text = page.text
    assert f"loopline run --resume {run_id}" in text
    assert "the &lt;b&gt;model&lt;/b&gt; exploded" in text and "<b>model</b>" not in text
    assert 'class="chart" id="run-dag"' in text
    option = json.loads(re.search(r'id="run-dag-option">(.*?)</script>', text).group(1))  # type: ignore[union-attr]
    series = option["series"][0]
    assert series["type"] == "graph" and len(series["links"]) == 4
    colours = {node["name"]: node["itemStyle"]["color"] for node in series["data"]}
    assert colours["right"] != colours["left"] and colours["total"] != colours["left"]
    assert option["legend"]["data"] == ["succeeded", "cached", "failed", "not run"]
    assert [series["categories"][node["category"]]["name"] for node in series["data"]] == [
        "succeeded", "succeeded", "failed", "not run",
    ]  # fmt: skip
    assert "seed" in text and ">7<" in text


def test_a_cached_rerun_counts_cache_hits_and_offers_no_resume(store: Store, runs_client: TestClient) -> None:
    run(store, diamond())
    again = run(store, diamond())
    data = runs_client.get(f"/api/runs/{again}").json()
    assert data["status"] == "succeeded" and data["resume"] is None and data["error"] is None
    assert all(s["status"] == "cached" and s["cache_hit"] for s in data["steps"])
    assert data["duration_s"] is not None and data["duration_s"] >= 0
    listed = runs_client.get("/api/runs").json()
    assert listed["runs"][0]["run_id"] == again
    assert listed["runs"][0]["steps"] == {"succeeded": 0, "cached": 4, "failed": 0}
    assert listed["runs"][1]["steps"] == {"succeeded": 4, "cached": 0, "failed": 0}
    assert "loopline run --resume" not in runs_client.get(f"/ui/runs/{again}").text


def test_the_history_is_newest_first_paginated_and_filtered(store: Store, runs_client: TestClient) -> None:
    ids = []
    for index in range(5):
        run_id = store.runs.create_run("odd" if index % 2 else "even", "h", {}, {"i": index})
        store.runs.set_status(run_id, "failed" if index == 3 else "succeeded", "boom" if index == 3 else None)
        ids.append(run_id)
    first = runs_client.get("/api/runs?per_page=2").json()
    assert first["pagination"] == {"page": 1, "per_page": 2, "total": 5, "pages": 3}
    assert [r["run_id"] for r in first["runs"]] == ids[:-3:-1]
    third = runs_client.get("/api/runs?per_page=2&page=3").json()
    assert [r["run_id"] for r in third["runs"]] == [ids[0]]
    assert first["pipelines"] == ["even", "odd"]

    odd = runs_client.get("/api/runs?pipeline=odd").json()
    assert [r["run_id"] for r in odd["runs"]] == [ids[3], ids[1]] and odd["pagination"]["total"] == 2
    failed = runs_client.get("/api/runs?status=failed&pipeline=odd").json()
    assert [(r["run_id"], r["error"]) for r in failed["runs"]] == [(ids[3], "boom")]
    assert failed["filters"] == {"pipeline": "odd", "status": "failed"}
    assert runs_client.get("/api/runs?pipeline=none").json()["runs"] == []

    page = runs_client.get("/ui/runs?per_page=2&page=2").text
    assert f"/ui/runs/{ids[2]}" in page and f"/ui/runs/{ids[4]}" not in page
    assert "page 2 of 3" in page and "/ui/runs?per_page=2&amp;page=3" in page
    assert "No run matches." in runs_client.get("/ui/runs?pipeline=none").text


def test_every_link_on_the_runs_pages_resolves(store: Store, runs_client: TestClient) -> None:
    run_id = run(store, diamond(fail=True))
    for index in range(3):
        store.runs.create_run(f"other{index}", "h", {}, {})
    seen, queue = {"/ui/runs?per_page=2"}, ["/ui/runs?per_page=2"]
    while queue:  # every page the runs pages lead to, once
        answer = runs_client.get(queue.pop())
        assert answer.status_code == 200, answer.url
        fresh = [href for href in links_in_main(answer.text) if href not in seen]
        seen.update(fresh)
        queue += fresh
    assert f"/ui/runs/{run_id}" in seen and "/ui/runs?pipeline=diamond" in seen
    assert "/ui/runs?status=failed" in seen


def test_names_from_data_are_escaped(store: Store, runs_client: TestClient) -> None:
    run_id = store.runs.create_run("<script>alert(1)</script>", "h", {}, {"<script>": "<img src=x>"})
    store.runs.set_status(run_id, "failed", error="<script>bad()</script>")
    for path in ("/ui/runs", f"/ui/runs/{run_id}"):
        text = runs_client.get(path).text
        assert "<script>alert(1)" not in text and "<script>bad()" not in text and "<img src=x>" not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert runs_client.get(f"/api/runs/{run_id}").json()["params"] == {"<script>": "<img src=x>"}


def test_a_run_with_steps_but_no_stored_pipeline_still_draws_them(store: Store, runs_client: TestClient) -> None:
    now = datetime.now(UTC)
    run_id = store.runs.create_run("bare", "h", {}, {})
    store.runs.record_steps(run_id, [StepRecord("only", "python", "succeeded", "k", now, now, 0.25, {}, {})])
    data = runs_client.get(f"/api/runs/{run_id}").json()
    assert data["status"] == "running" and data["owner"] and data["resume"] is None
    assert data["dag"] == {"nodes": [{"step": "only", "depth": 0, "x": 0, "y": 0}], "edges": []}


def test_unknown_run_is_404_and_bad_parameters_are_400(runs_client: TestClient) -> None:
    missing = runs_client.get("/api/runs/nope")
    assert missing.status_code == 404
    assert missing.json() == {"error": "run 'nope' does not exist.", "hint": "List runs with `loopline runs list`."}
    assert runs_client.get("/ui/runs/nope").status_code == 404
    bad = runs_client.get("/api/runs?status=stale")
    assert bad.status_code == 400
    assert "'status' must be one of running, succeeded, failed" in bad.json()["error"]
    assert "?status=running" in bad.json()["hint"]
    page = runs_client.get("/api/runs?page=0")
    assert page.status_code == 400 and "'page'" in page.json()["error"]
    assert runs_client.get("/ui/runs?per_page=x").status_code == 400


def test_runs_is_in_the_navigation_and_empty_history_says_how_to_start(runs_client: TestClient) -> None:
    text = runs_client.get("/ui/runs").text
    assert '<a href="/ui/runs" class=active>Runs</a>' in text
    assert "No run yet" in text
    assert runs_client.get("/api/runs").json()["pagination"]["total"] == 0


def test_a_stale_run_is_offered_the_resume_command_and_listed_under_running(
    store: Store, runs_client: TestClient
) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # its pid is now free: the run's owner is gone
    run_id = store.runs.create_run("p", "h", {}, {})
    with store.engine.begin() as conn:
        conn.execute(update(runs).where(runs.c.run_id == run_id).values(owner_pid=child.pid))
    data = runs_client.get(f"/api/runs/{run_id}").json()
    assert data["status"] == "stale" and f"pid {child.pid}" in data["owner"]
    assert data["resume"]["command"] == f"loopline run --resume {run_id}"
    listed = runs_client.get("/api/runs?status=running").json()["runs"]
    assert [(r["run_id"], r["status"]) for r in listed] == [(run_id, "stale")]
