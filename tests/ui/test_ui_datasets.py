"""The datasets pages: every dataset at a glance, one dataset (versions, schema, sources, dead letters, the
stored profile) and one version."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator, Sequence

import polars as pl
import pytest
from fastapi.testclient import TestClient

from loopline.run import dataset_profile
from loopline.store import Rejected, Store
from loopline.ui import create_ui_app

from .conftest import ADMIN_TOKEN

SCHEMA = {"x": "Float64", "n": "Int64", "group": "String"}


@pytest.fixture
def datasets_client(store: Store) -> Iterator[TestClient]:
    """The dashboard over an empty ``store`` (both backends)."""
    with TestClient(create_ui_app(store, token=ADMIN_TOKEN, hosts=["testserver"])) as test_client:
        yield test_client


def ingest(store: Store, dataset: str, source: str, offset: int, rows: int, rejects: Sequence[Rejected] = ()) -> None:
    """Commit ``rows`` rows from ``source`` at position ``offset``, as ingestion does."""
    frame = pl.DataFrame(
        {
            "x": [float(i) / 2 for i in range(rows)],
            "n": list(range(rows)),
            "group": ["a", "b"] * (rows // 2) + ["a"] * (rows % 2),
        }
    )
    store.datasets.set_schema(dataset, SCHEMA)
    digest = store.artifacts.put_table(frame)
    store.datasets.commit_batch(
        dataset, source, digest=digest, rows=rows, size=int(frame.estimated_size()), position={"offset": offset},
        rejects=list(rejects),
    )  # fmt: skip


def flights(store: Store) -> str:
    """``flights``: two versions from two sources (the latest profiled), three dead letters; and a run."""
    run_id = store.runs.create_run("ingest", "h", {}, {})
    ingest(
        store,
        "flights",
        "kafka",
        10,
        20,
        [Rejected("n: not an integer <script>x()</script>", {"offset": 3}, '{"n": "<b>"}')],
    )
    store.datasets.create_version("flights", run_id=run_id)
    ingest(store, "flights", "files", 1, 10, [Rejected(f"bad {i}", {"line": i}, "y" * 300) for i in range(2)])
    store.datasets.create_version("flights", run_id=run_id)
    dataset_profile(store, "flights")
    return run_id


def test_the_list_shows_each_dataset_aggregated(store: Store, datasets_client: TestClient) -> None:
    flights(store)
    ingest(store, "weather", "api", 5, 4)
    data = datasets_client.get("/api/datasets").json()
    assert data["pagination"] == {"page": 1, "per_page": 50, "total": 2, "pages": 1}
    by_name = {d["name"]: d for d in data["datasets"]}
    flight = by_name["flights"]
    assert (flight["version"], flight["rows"], flight["parts"], flight["columns"], flight["dead_letters"]) == (
        2, 30, 2, 3, 3,
    )  # fmt: skip
    assert flight["last_ingest_at"] == max(s.updated_at for s in store.datasets.sources("flights")).isoformat()
    weather = by_name["weather"]
    assert (weather["version"], weather["rows"], weather["parts"], weather["part_rows"]) == (None, None, 1, 4)

    page = datasets_client.get("/ui/datasets").text
    assert '<a href="/ui/datasets/flights">flights</a>' in page and "3 waiting" in page
    assert '<a href="/ui/datasets" class=active>Datasets</a>' in page
    second = datasets_client.get("/api/datasets?per_page=1&page=2").json()
    assert [d["name"] for d in second["datasets"]] == ["weather"] and second["pagination"]["pages"] == 2
    assert "/ui/datasets?per_page=1&amp;page=2" in datasets_client.get("/ui/datasets?per_page=1").text


def test_a_dataset_shows_versions_schema_sources_dead_letters_and_profile(
    store: Store, datasets_client: TestClient
) -> None:
    run_id = flights(store)
    data = datasets_client.get("/api/datasets/flights").json()
    assert data["schema"] == SCHEMA
    versions = data["versions"]["items"]
    assert [(v["version"], v["rows"], v["parts"], v["profiled"], v["run_id"]) for v in versions] == [
        (2, 30, 2, True, run_id),
        (1, 20, 1, False, run_id),
    ]
    assert versions[0]["positions"] == {"kafka": {"offset": 10}, "files": {"offset": 1}}
    assert versions[0]["checksum"] == store.datasets.version("flights", 2).checksum
    sources = {s["source"]: s for s in data["sources"]}
    assert sources["kafka"]["position"] == {"offset": 10} and sources["kafka"]["rows"] == 20
    assert sources["files"]["parts"] == 1 and sources["files"]["checkpoint_at"]
    letters = data["dead_letters_list"]
    assert letters["pagination"]["total"] == 3
    assert [d["reason"] for d in letters["items"]] == ["bad 1", "bad 0", "n: not an integer <script>x()</script>"]
    assert letters["items"][0]["raw_excerpt"] == "y" * 200 and letters["items"][0]["raw_chars"] == 300
    assert letters["items"][0]["position"] == {"line": 1}

    profile = data["profile"]
    assert (profile["version"], profile["rows"], profile["n_columns"]) == (2, 30, 3)
    columns = {c["name"]: c for c in profile["columns"]}
    assert columns["n"]["min"] == 0 and columns["n"]["max"] == 19 and columns["n"]["kind"] == "numeric"
    assert columns["group"]["top"][0] == {"value": "a", "count": 15}
    assert [h["column"] for h in profile["histograms"]] == ["x", "n"]
    stored = dataset_profile(store, "flights")
    n_stored = next(c for c in stored["columns"] if c["name"] == "n")
    assert profile["histograms"][1]["counts"] == n_stored["histogram"]["counts"]

    text = datasets_client.get("/ui/datasets/flights").text
    assert "n: not an integer &lt;script&gt;x()&lt;/script&gt;" in text and "<script>x()" not in text
    assert "{&quot;n&quot;: &quot;&lt;b&gt;&quot;}" in text
    assert "loopline datasets replay flights" in text
    assert 'id="histogram-0"' in text and 'id="histogram-1"' in text and 'id="histogram-2"' not in text
    option = json.loads(re.search(r'id="histogram-1-option">(.*?)</script>', text).group(1))  # type: ignore[union-attr]
    assert option["series"][0]["type"] == "bar" and option["series"][0]["data"] == n_stored["histogram"]["counts"]
    assert option["title"]["text"] == "n"
    assert f'href="/ui/runs/{run_id}"' in text and 'href="/ui/datasets/flights/versions/1"' in text


def test_a_dataset_without_a_profile_says_how_to_compute_one(store: Store, datasets_client: TestClient) -> None:
    ingest(store, "plain", "src", 0, 4)
    store.datasets.create_version("plain")
    data = datasets_client.get("/api/datasets/plain").json()
    assert data["profile"] is None and data["dead_letters_list"]["items"] == []
    text = datasets_client.get("/ui/datasets/plain").text
    assert "loopline datasets profile plain" in text and "No dead letter" in text
    version = datasets_client.get("/ui/datasets/plain/versions/1").text
    assert "loopline datasets profile plain --version 1" in version


def test_versions_and_dead_letters_paginate_separately(store: Store, datasets_client: TestClient) -> None:
    for offset in range(3):
        ingest(store, "many", "src", offset, 2, [Rejected(f"bad {offset}", offset, "raw")])
        store.datasets.create_version("many")
    first = datasets_client.get("/api/datasets/many?per_page=2").json()
    assert [v["version"] for v in first["versions"]["items"]] == [3, 2]
    assert [d["reason"] for d in first["dead_letters_list"]["items"]] == ["bad 2", "bad 1"]
    assert first["profile"] is None
    later = datasets_client.get("/api/datasets/many?per_page=2&page=2&letters_page=2").json()
    assert [v["version"] for v in later["versions"]["items"]] == [1]
    assert [d["reason"] for d in later["dead_letters_list"]["items"]] == ["bad 0"]
    assert later["dead_letters_list"]["pagination"] == {"page": 2, "per_page": 2, "total": 3, "pages": 2}
    text = datasets_client.get("/ui/datasets/many?per_page=2").text
    assert "/ui/datasets/many?per_page=2&amp;page=2" in text
    assert "/ui/datasets/many?per_page=2&amp;letters_page=2#dead-letters" in text


def test_a_version_page_shows_its_snapshot_and_profile(store: Store, datasets_client: TestClient) -> None:
    run_id = flights(store)
    data = datasets_client.get("/api/datasets/flights/versions/2").json()
    assert (data["name"], data["version"], data["rows"], data["run_id"]) == ("flights", 2, 30, run_id)
    assert data["schema"] == SCHEMA and data["profile"]["rows"] == 30
    old = datasets_client.get("/api/datasets/flights/versions/1").json()
    assert old["rows"] == 20 and old["profile"] is None
    text = datasets_client.get("/ui/datasets/flights/versions/2").text
    assert "<title>Dataset flights v2 · loopline</title>" in text and 'id="profile-table"' in text


def test_every_link_on_the_datasets_pages_resolves(store: Store, datasets_client: TestClient) -> None:
    flights(store)
    seen, queue = {"/ui/datasets"}, ["/ui/datasets"]
    while queue:
        answer = datasets_client.get(queue.pop())
        assert answer.status_code == 200, answer.url
        main = answer.text.split("<main>", 1)[1]
        fresh = [html.unescape(h) for h in re.findall(r'href="([^"]+)"', main) if html.unescape(h) not in seen]
        seen.update(fresh)
        queue += fresh
    assert {"/ui/datasets/flights", "/ui/datasets/flights/versions/1", "/ui/datasets/flights/versions/2"} <= seen


def test_names_from_data_are_escaped(store: Store, datasets_client: TestClient) -> None:
    store.datasets.set_schema("evil", {"<script>col</script>": "Int64"})
    digest = store.artifacts.put_table(pl.DataFrame({"<script>col</script>": [1, 2]}))
    store.datasets.commit_batch("evil", "<img src=x>", digest=digest, rows=2, size=16, position="<script>p</script>")
    store.datasets.create_version("evil")
    dataset_profile(store, "evil")
    text = datasets_client.get("/ui/datasets/evil").text
    assert "<script>col" not in text and "<img src=x>" not in text and "<script>p" not in text
    assert "&lt;script&gt;col&lt;/script&gt;" in text and "&lt;img src=x&gt;" in text


def test_unknown_datasets_and_versions_are_404_and_bad_parameters_400(
    store: Store, datasets_client: TestClient
) -> None:
    ingest(store, "flights", "src", 0, 2)
    store.datasets.create_version("flights")
    missing = datasets_client.get("/api/datasets/flight")
    assert missing.status_code == 404
    assert missing.json() == {"error": "dataset 'flight' does not exist.", "hint": "Did you mean 'flights'?"}
    assert datasets_client.get("/ui/datasets/nope").status_code == 404
    assert datasets_client.get("/api/datasets/nope/versions/1").status_code == 404
    no_version = datasets_client.get("/api/datasets/flights/versions/9")
    assert no_version.status_code == 404 and "has no version 9" in no_version.json()["error"]
    bad = datasets_client.get("/api/datasets/flights/versions/x")
    assert bad.status_code == 400 and "'version' must be an integer" in bad.json()["error"]
    letters = datasets_client.get("/api/datasets/flights?letters_page=0")
    assert letters.status_code == 400 and "'letters_page'" in letters.json()["error"]
    assert datasets_client.get("/api/datasets?per_page=501").status_code == 400


def test_no_dataset_yet_says_how_to_ingest(datasets_client: TestClient) -> None:
    assert datasets_client.get("/api/datasets").json()["datasets"] == []
    assert "loopline ingest" in datasets_client.get("/ui/datasets").text


def test_a_profile_of_an_older_format_is_not_shown_nor_computed(store: Store, datasets_client: TestClient) -> None:
    ingest(store, "old", "src", 0, 4)
    store.datasets.create_version("old")
    outdated = store.artifacts.put_json({"format": 0, "rows": 4, "columns": []})
    store.datasets.set_profile("old", 1, outdated)
    assert datasets_client.get("/api/datasets/old").json()["profile"] is None
    assert "loopline datasets profile old" in datasets_client.get("/ui/datasets/old").text
    assert store.datasets.version("old", 1).profile_digest == outdated  # the page computed nothing
    assert dataset_profile(store, "old")["rows"] == 4  # the command does
