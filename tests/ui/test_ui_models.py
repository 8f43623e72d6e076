"""The model repository pages: the models list, a model's versions and audit trail, one version, a comparison."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from loopline.store import ModelVersion, Store
from loopline.store.runs import StepRecord
from loopline.ui.pages import models as models_page

from .conftest import crawl, get_html, get_json, sign_in

CURVE = {"train": [0.7 - 0.001 * i for i in range(1200)], "valid": [0.72 - 0.0008 * i for i in range(1200)]}
SLICES = {"valid": {"group": {"a": {"rows": 40, "roc_auc": 0.91}, "b": {"rows": 35, "roc_auc": 0.62}}}}


def like(store: Store, name: str = "toy", **overrides: Any) -> ModelVersion:
    """Register another version of ``name`` reusing toy v1's bundle (fast: no training), with ``overrides``."""
    first = store.models.get("toy", 1)
    fields: dict[str, Any] = {
        "name": name,
        "algorithm": "lightgbm",
        "bundle_digest": first.bundle_digest,
        "reference_digest": None,
        "metrics": {"train": {"roc_auc": 0.99}, "valid": {"roc_auc": 0.5, "log_loss": 0.7}},
        "params": {"num_leaves": 31, "learning_rate": 0.1},
        "config": {"target": "label", "task": "binary", "slice_metrics": SLICES},
        "input_schema": first.input_schema,
        "data_fingerprint": "fp-like",
        "run_id": None,
        "timings": {"fit_s": 1.5, "total_s": 2.0, "training": {"metric": "binary_logloss", "learning_curve": CURVE}},
    }
    return store.models.register(**{**fields, **overrides})


def run_with_data(store: Store) -> str:
    """A run whose ingest step read dataset ``orders`` version 4."""
    run_id = store.runs.create_run("train", "h" * 64, {}, {})
    digest = store.artifacts.put_json({"dataset": "orders", "version": 4, "rows": 1234, "checksum": "c" * 64})
    now = datetime.now(UTC)
    step = StepRecord("ingest", "ingest", "succeeded", None, now, now, 0.1, {}, {"version": {"digest": digest}})
    store.runs.record_steps(run_id, [step])
    store.runs.set_status(run_id, "succeeded")
    return run_id


# --- /models ---------------------------------------------------------------------------------------------------


def test_the_repository_lists_each_model_with_its_production_version_and_best_candidate(
    client: TestClient, ui_store: Store
) -> None:
    like(ui_store, metrics={"valid": {"roc_auc": 1.0}})  # v3: the best
    like(ui_store, "other", metrics={"valid": {"rmse": 3.0}})
    like(ui_store, "other", metrics={"valid": {"rmse": 2.0}})
    ui_store.models.set_alias("toy", "staging", 2)
    data = get_json(client, "/models")
    assert data["pagination"] == {"page": 1, "per_page": 50, "total": 2, "pages": 1}
    other, toy = data["models"]
    assert toy["name"] == "toy" and toy["production"] == 1 and toy["aliases"] == {"production": 1, "staging": 2}
    assert (toy["versions"], toy["archived"], toy["latest_version"]) == (3, 0, 3)
    assert toy["best"] == {"version": 3, "value": 1.0, "split": "valid", "metric": "roc_auc", "higher_is_better": True}
    assert toy["last_registered"] == ui_store.models.get("toy", 3).created_at.isoformat()
    assert other["best"]["version"] == 2 and other["best"]["metric"] == "rmse" and other["production"] is None
    html = get_html(client, "/models")
    assert 'href="/ui/models/toy"' in html and 'href="/ui/models/other"' in html
    assert "@staging → v2" in html and "valid roc_auc 1" in html


def test_the_repository_paginates_its_names(client: TestClient, ui_store: Store) -> None:
    like(ui_store, "alpha")
    first = get_json(client, "/models?per_page=1")
    second = get_json(client, "/models?per_page=1&page=2")
    assert [m["name"] for m in first["models"]] == ["alpha"] and [m["name"] for m in second["models"]] == ["toy"]
    assert first["pagination"]["pages"] == 2
    assert "page 1 of 2" in get_html(client, "/models?per_page=1")
    assert "'per_page'" in get_json(client, "/models?per_page=0", 400)["error"]


def test_an_empty_repository_says_how_to_register_a_model(store: Store) -> None:
    from loopline.ui import create_ui_app

    with TestClient(create_ui_app(store, hosts=["testserver"])) as client:
        assert get_json(client, "/models")["models"] == []
        assert "No model yet" in get_html(client, "/models")


# --- /models/{name} --------------------------------------------------------------------------------------------


def test_a_model_lists_its_versions_newest_first_with_metrics_chart_and_audit_trail(
    client: TestClient, ui_store: Store
) -> None:
    like(ui_store)
    ui_store.models.promote("toy", 2, reason="better <script>alert(1)</script>")
    data = get_json(client, "/models/toy")
    assert [v["version"] for v in data["versions"]] == [3, 2]  # v1 archived by the promotion
    assert data["counts"] == {"active": 2, "all": 3} and data["production"] == 2
    assert data["main_metric"] == {"split": "valid", "metric": "roc_auc", "higher_is_better": True}
    v3, v2 = data["versions"]
    assert v3["metrics"]["valid"]["roc_auc"] == 0.5 and v3["stage"] == "candidate" and v3["algorithm"] == "lightgbm"
    assert v2["stage"] == "production" and v2["aliases"] == ["production"] and v2["promoted_at"] is not None
    assert data["splits"] == ["train", "valid"]
    series = {p["version"]: p["value"] for p in data["metric_series"]}
    assert series == {v.version: v.metrics["valid"]["roc_auc"] for v in ui_store.models.list("toy")}
    assert [p["version"] for p in data["metric_series"]] == [1, 2, 3]
    events = data["events"]
    assert [(e["action"], e["from_version"], e["to_version"]) for e in events] == [
        ("promote", 1, 2),
        ("promote", None, 1),
    ]
    html = get_html(client, "/models/toy")
    assert 'id="metric-per-version"' in html and "valid roc_auc per version" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    assert 'href="/ui/models/toy/3"' in html and "badge good" in html
    assert 'action="/ui/models/toy/compare"' in html and 'value="3,2"' in html


def test_archived_versions_are_listed_on_request_and_the_list_paginates(client: TestClient, ui_store: Store) -> None:
    for _ in range(5):
        like(ui_store)
    ui_store.models.archive("toy", 4)
    data = get_json(client, "/models/toy?per_page=2&page=2")
    assert [v["version"] for v in data["versions"]] == [5, 3]
    assert data["pagination"] == {"page": 2, "per_page": 2, "total": 6, "pages": 3}
    every = get_json(client, "/models/toy?archived=1&per_page=3")
    assert [v["version"] for v in every["versions"]] == [7, 6, 5] and every["pagination"]["total"] == 7
    archived = get_json(client, "/models/toy?archived=1&per_page=3&page=2")["versions"]
    assert archived[0]["version"] == 4 and archived[0]["stage"] == "archived" and archived[0]["archived_at"]
    html = get_html(client, "/models/toy?archived=1&per_page=3")
    assert 'href="/ui/models/toy?archived=1&amp;page=2"' in html and "hide archived versions" in html
    assert "'archived'" in get_json(client, "/models/toy?archived=2", 400)["error"]


def test_the_chart_shows_only_the_newest_versions(
    client: TestClient, ui_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(4):
        like(ui_store)
    monkeypatch.setattr(models_page, "CHART_VERSIONS", 3)
    assert [p["version"] for p in get_json(client, "/models/toy")["metric_series"]] == [4, 5, 6]


def test_an_unknown_model_is_a_404_with_a_suggestion(client: TestClient) -> None:
    answer = get_json(client, "/models/tyo", 404)
    assert "model 'tyo' does not exist" in answer["error"] and "toy" in answer["hint"]
    assert "does not exist" in get_html(client, "/models/tyo", 404)


def test_actions_are_shown_to_the_admin_only_and_a_promotion_changes_the_page(client: TestClient) -> None:
    html = get_html(client, "/models/toy")
    assert "/ui/actions/promote" not in html and "/ui/actions/rollback" not in html
    csrf = sign_in(client)
    html = get_html(client, "/models/toy")
    assert html.count('action="/ui/actions/promote"') == 1  # v2 only: v1 is production
    assert 'action="/ui/actions/rollback"' in html
    answer = client.post(
        "/ui/actions/promote",
        data={"csrf": csrf, "model": "toy", "version": "2", "reason": "from the test"},
        follow_redirects=False,
    )
    assert answer.status_code == 303 and answer.headers["location"].startswith("/ui/models/toy?notice=")
    data = get_json(client, "/models/toy")
    assert data["production"] == 2 and data["events"][0]["reason"] == "from the test"
    assert data["events"][0]["actor"].startswith("ui:")


# --- /models/{name}/{version} ----------------------------------------------------------------------------------


def test_a_version_shows_metrics_slices_params_timings_schema_curve_and_lineage(
    client: TestClient, ui_store: Store
) -> None:
    run_id = run_with_data(ui_store)
    like(ui_store, run_id=run_id, params={"num_leaves": "<b>31</b>"})
    ui_store.models.set_alias("toy", "canary", 3)
    ui_store.models.record_evaluation("toy", 3, "eval:orders@v5", {"roc_auc": 0.77})
    data = get_json(client, "/models/toy/3")
    assert data["splits"] == ["train", "valid", "eval:orders@v5"]
    assert data["metrics"]["eval:orders@v5"] == {"roc_auc": 0.77}
    assert data["slices"] == [
        {
            "split": "valid",
            "column": "group",
            "values": [
                {"value": "a", "rows": 40, "metrics": {"roc_auc": 0.91}},
                {"value": "b", "rows": 35, "metrics": {"roc_auc": 0.62}},
            ],
        }
    ]
    assert data["params"] == {"num_leaves": "<b>31</b>"}
    assert data["timings"] == {"fit_s": 1.5, "total_s": 2.0} and data["training"]["metric"] == "binary_logloss"
    curve = data["learning_curve"]
    assert set(curve) == {"train", "valid"} and len(curve["valid"]) <= 501
    assert curve["valid"][0] == [1, 0.72] and curve["valid"][-1] == [1200, pytest.approx(CURVE["valid"][-1])]
    assert [f["name"] for f in data["input_schema"]] == ["x", "n", "group"]
    assert data["lineage"] == {
        "run_id": run_id,
        "run_found": True,
        "datasets": [{"dataset": "orders", "version": 4, "rows": 1234, "checksum": "c" * 64}],
        "data_fingerprint": "fp-like",
        "aliases": ["canary"],
    }
    html = get_html(client, "/models/toy/3")
    assert f'href="/ui/runs/{run_id}"' in html and 'href="/ui/datasets/orders"' in html and "orders v4" in html
    assert 'id="learning-curve"' in html and "valid by group" in html and "&lt;b&gt;31&lt;/b&gt;" in html
    assert "@canary" in html and "eval:orders@v5" in html


def test_a_version_without_run_or_curve_says_so(client: TestClient, ui_store: Store) -> None:
    like(ui_store, run_id="0" * 32, timings={})
    data = get_json(client, "/models/toy/3")
    assert data["learning_curve"] is None and data["training"] is None
    assert data["lineage"]["run_found"] is False and data["lineage"]["datasets"] == []
    html = get_html(client, "/models/toy/3")
    assert "no longer in the store" in html and 'id="learning-curve"' not in html
    assert "registered outside a run" in get_html(client, "/models/toy/1")


def test_an_unknown_version_is_a_404_and_a_bad_one_a_400(client: TestClient) -> None:
    answer = get_json(client, "/models/toy/9", 404)
    assert "has no version 9" in answer["error"] and "1, 2" in answer["error"]
    assert "'version'" in get_json(client, "/models/toy/x", 400)["error"]
    assert "'version'" in get_json(client, "/models/toy/0", 400)["error"]


# --- /models/{name}/compare ------------------------------------------------------------------------------------


def test_versions_side_by_side_mark_the_best_metric_and_the_differing_params(
    client: TestClient, ui_store: Store
) -> None:
    like(ui_store, params={"num_leaves": 31, "learning_rate": 0.1})
    like(ui_store, params={"num_leaves": 63, "learning_rate": 0.1}, metrics={"valid": {"roc_auc": 0.6}})
    data = get_json(client, "/models/toy/compare?versions=3,4")
    assert [v["version"] for v in data["versions"]] == [3, 4]
    roc = next(m for m in data["metrics"] if (m["split"], m["metric"]) == ("valid", "roc_auc"))
    assert roc == {"split": "valid", "metric": "roc_auc", "values": [0.5, 0.6], "best": 1}
    loss = next(m for m in data["metrics"] if m["metric"] == "log_loss")
    assert loss["values"] == [0.7, None] and loss["best"] is None
    params = {p["param"]: p for p in data["params"]}
    assert params["num_leaves"] == {"param": "num_leaves", "values": [31, 63], "differs": True}
    assert params["learning_rate"]["differs"] is False
    assert [c["version"] for c in data["learning_curves"]] == [3, 4]
    assert data["versions"][0]["data_fingerprint"] == "fp-like"
    html = get_html(client, "/models/toy/compare?versions=3,4")
    assert '<strong class="differs">num_leaves</strong>' in html and 'id="learning-curves"' in html
    assert "toy: v3 vs v4" in html


def test_comparing_toy_versions_trained_for_real(client: TestClient, ui_store: Store) -> None:
    first, second = ui_store.models.get("toy", 1), ui_store.models.get("toy", 2)
    data = get_json(client, "/models/toy/compare?versions=2, 1")
    assert [v["algorithm"] for v in data["versions"]] == [second.algorithm, first.algorithm]
    assert all(p["differs"] for p in data["params"] if p["values"][0] != p["values"][1])
    assert data["learning_curves"] == [] and "Learning curves" not in get_html(
        client, "/models/toy/compare?versions=1,2"
    )


@pytest.mark.parametrize(
    ("versions", "message"),
    [
        ("1", "2 to 10 versions, not 1"),
        ("1,x", "must list version numbers"),
        ("1,1", "distinct positive"),
        ("0,1", "distinct positive"),
        (",".join(str(i) for i in range(1, 12)), "not 11"),
    ],
)
def test_bad_versions_to_compare_are_a_400_naming_the_parameter(
    client: TestClient, versions: str, message: str
) -> None:
    answer = get_json(client, f"/models/toy/compare?versions={versions}", 400)
    assert "'versions'" in answer["error"] and message in answer["error"] and "?versions=3,5,7" in answer["hint"]


def test_comparing_an_unknown_version_is_a_404(client: TestClient) -> None:
    assert "has no version 7" in get_json(client, "/models/toy/compare?versions=1,7", 404)["error"]
    assert "'versions' is missing" in get_json(client, "/models/toy/compare", 400)["error"]


# --- every link resolves ---------------------------------------------------------------------------------------


def test_every_model_page_link_resolves(client: TestClient, ui_store: Store) -> None:
    like(ui_store)
    ui_store.models.promote("toy", 3)
    sign_in(client)
    seen, _ = crawl(client, ["/ui/models"], ("/ui/models",))
    assert {"/ui/models", "/ui/models/toy", "/ui/models/toy/1", "/ui/models/toy/3"} <= seen
    assert any(path.startswith("/ui/models/toy?archived=1") for path in seen)
