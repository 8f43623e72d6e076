"""The tuning pages: the studies in the store's database, and one study's history, importances, per-set scores
and trials. Studies are made with the library (``loopline.tune.tune``) in the store's own database."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect

from loopline.store import Store
from loopline.tune import TuneSpec, load_study, tune
from loopline.ui import create_ui_app
from loopline.ui.pages import tuning as tuning_page

from .conftest import crawl, get_html, get_json, toy_frame

SEARCH = "churn <script>alert(1)</script>"
SEARCH_PATH = "churn%20%3Cscript%3Ealert%281%29%3C%2Fscript%3E"


def url_of(store: Store) -> str:
    return store.engine.url.render_as_string(hide_password=False)


def run_study(store: Store, name: str, n_trials: int = 4, **options: Any) -> None:
    """A small logistic-regression study over C, scored on the valid split and each ``group`` slice."""
    spec = TuneSpec.parse(
        {
            "target": "label",
            "numeric": ["x", "n"],
            "categorical": ["group"],
            "estimator": "logistic_regression",
            "params": {},
            "space": {"model.C": {"float": [0.001, 10], "log": True}},
            "n_trials": n_trials,
            "importance": False,
            "sets": [{"type": "valid"}, {"type": "slices", "column": "group"}],
            "sampler": "random",
            "seed": 3,
            **options,
        }
    )
    tune(toy_frame(300, 0), toy_frame(200, 1), spec, storage=url_of(store), study=name)


@pytest.fixture
def studied(ui_store: Store) -> Store:
    """``ui_store`` with a four-trial study named :data:`SEARCH` and a one-trial study ``quick``."""
    run_study(ui_store, SEARCH)
    run_study(ui_store, "quick", n_trials=1, aggregate="worst")
    return ui_store


def test_a_store_without_studies_shows_an_empty_state_and_creates_no_table(client: TestClient, ui_store: Store) -> None:
    data = get_json(client, "/tuning")
    assert data["available"] is False and data["studies"] == [] and "No study yet" in data["note"]
    assert "loopline tune PIPELINE STEP" in get_html(client, "/tuning")
    assert not inspect(ui_store.engine).has_table("studies")
    answer = get_json(client, "/tuning/anything", 404)
    assert "no study 'anything'" in answer["error"]


def test_without_the_tune_extra_the_page_names_it(
    client: TestClient, ui_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)  # `import optuna` now fails as when it is not installed
    data = get_json(client, "/tuning")
    assert data["available"] is False and "pip install 'loopline[tune]'" in data["note"]
    assert "loopline[tune]" in get_html(client, "/tuning")


def test_the_studies_list_shows_trials_per_state_and_the_best_trial(client: TestClient, studied: Store) -> None:
    data = get_json(client, "/tuning")
    assert data["available"] is True and data["pagination"]["total"] == 2
    search, quick = data["studies"]
    record = load_study(url_of(studied), SEARCH)
    assert record.best is not None and record.best.values is not None
    assert search["name"] == SEARCH and search["directions"] == ["maximize"] and search["metric"] == "roc_auc"
    assert (search["trials"], search["counts"]) == (4, {"complete": 4})
    assert search["best_value"] == record.best.values[0] and search["best_params"] == record.best.params
    assert search["best_trial"] == record.best.number and search["started"]
    assert quick["name"] == "quick" and quick["trials"] == 1
    html = get_html(client, "/tuning")
    assert f'href="/ui/tuning/{SEARCH_PATH}"' in html and 'href="/ui/tuning/quick"' in html
    assert "churn &lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    assert "model.C=" in html


def test_the_studies_list_paginates(client: TestClient, studied: Store) -> None:
    first = get_json(client, "/tuning?per_page=1")
    second = get_json(client, "/tuning?per_page=1&page=2")
    assert [s["name"] for s in first["studies"]] == [SEARCH] and [s["name"] for s in second["studies"]] == ["quick"]
    assert first["pagination"] == {"page": 1, "per_page": 1, "total": 2, "pages": 2}
    assert "page 1 of 2" in get_html(client, "/tuning?per_page=1")
    assert "'page'" in get_json(client, "/tuning?page=0", 400)["error"]


def test_a_study_shows_history_importances_per_set_scores_and_trials(client: TestClient, studied: Store) -> None:
    record = load_study(url_of(studied), SEARCH)
    data = get_json(client, f"/tuning/{SEARCH_PATH}")
    assert data["name"] == SEARCH and data["counts"] == {"complete": 4}
    assert data["settings"]["metric"] == "roc_auc" and data["settings"]["sampler"] == "random"
    values = [t.values[0] for t in record.trials if t.values]
    assert data["history"]["trial"] == [0, 1, 2, 3] and data["history"]["value"] == values
    assert data["history"]["best"] == [max(values[: i + 1]) for i in range(4)]
    assert list(data["importances"]) == ["model.C"] and data["importances"]["model.C"] == pytest.approx(1.0)
    assert data["importance_note"] == "fANOVA (16 trees) on the 4 complete trials."
    sets = data["set_scores"]
    assert sets["sets"] == ["group=a", "group=b", "group=c", "valid"] and sets["trial"] == [0, 1, 2, 3]
    assert sets["scores"]["valid"] == [t.scores["valid"] for t in record.trials]
    assert data["best"]["scores"] == record.best.scores if record.best else False
    assert [t["number"] for t in data["trials"]] == [3, 2, 1, 0]
    assert data["trials"][0]["params"] == record.trials[3].params
    html = get_html(client, f"/tuning/{SEARCH_PATH}")
    for element in ('id="history"', 'id="importances"', 'id="set-scores"', 'id="best-scores"', 'id="trials-table"'):
        assert element in html
    assert "Study churn &lt;script&gt;" in html and "<script>alert(1)" not in html
    assert "best so far" in html and "badge good" in html


def test_the_trials_table_paginates_newest_first(client: TestClient, studied: Store) -> None:
    first = get_json(client, f"/tuning/{SEARCH_PATH}?per_page=3")
    second = get_json(client, f"/tuning/{SEARCH_PATH}?per_page=3&page=2")
    assert [t["number"] for t in first["trials"]] == [3, 2, 1] and [t["number"] for t in second["trials"]] == [0]
    assert first["pagination"] == {"page": 1, "per_page": 3, "total": 4, "pages": 2}
    assert f'href="/ui/tuning/{SEARCH_PATH}?page=2"' in get_html(client, f"/tuning/{SEARCH_PATH}?per_page=3")


def test_importances_need_two_complete_trials_and_are_capped(
    client: TestClient, studied: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    quick = get_json(client, "/tuning/quick")
    assert quick["importances"] is None and "at least two complete trials" in quick["importance_note"]
    assert "at least two complete trials" in get_html(client, "/tuning/quick")
    assert quick["set_scores"]["sets"] == ["group=a", "group=b", "group=c", "valid"]
    monkeypatch.setattr(tuning_page, "IMPORTANCE_TRIALS", 3)
    tuning_page._importances.clear()
    capped = get_json(client, f"/tuning/{SEARCH_PATH}")
    assert capped["importance_note"] == "fANOVA (16 trees) on the newest 3 complete trials."
    assert list(capped["importances"]) == ["model.C"]


def test_an_unknown_study_is_a_404_naming_the_known_ones(client: TestClient, studied: Store) -> None:
    answer = get_json(client, "/tuning/quik", 404)
    assert answer["error"] == "no study 'quik'." and "quick" in answer["hint"]
    assert "no study" in get_html(client, "/tuning/quik", 404)


def test_every_tuning_link_resolves(studied: Store) -> None:
    with TestClient(create_ui_app(studied, hosts=["testserver"])) as client:
        seen, _ = crawl(client, ["/ui/tuning"], ("/ui/tuning",))
    assert {"/ui/tuning", f"/ui/tuning/{SEARCH_PATH}", "/ui/tuning/quick"} <= seen


def test_a_study_that_gains_trials_is_read_again(client: TestClient, studied: Store) -> None:
    from loopline.tune import storage_at, study_stamps

    assert get_json(client, "/tuning")["studies"][0]["trials"] == 4
    assert len(get_json(client, f"/tuning/{SEARCH_PATH}")["history"]["trial"]) == 4
    with storage_at(url_of(studied)) as storage:
        before = study_stamps(storage)
    run_study(studied, SEARCH, n_trials=5)  # resumes: one more trial
    with storage_at(url_of(studied)) as storage:
        after = study_stamps(storage)
    assert before is not None and after is not None
    assert [s.name for s in after] == [SEARCH, "quick"] and after[0].stamp != before[0].stamp
    assert after[1].stamp == before[1].stamp and after[0].running == 0 and after[0].started
    assert get_json(client, "/tuning")["studies"][0]["trials"] == 5
    data = get_json(client, f"/tuning/{SEARCH_PATH}")
    assert data["history"]["trial"] == [0, 1, 2, 3, 4] and data["importance_note"].endswith("on the 5 complete trials.")


def test_the_warm_up_fills_the_cache_with_every_study_and_never_raises(studied: Store) -> None:
    url = url_of(studied)
    for cache in (tuning_page._records, tuning_page._importances):
        for key in [k for k in cache if url in k]:
            del cache[key]
    tuning_page.warm_up(studied)
    assert {(url, SEARCH), (url, "quick")} <= set(tuning_page._records)
    assert any(url in key for key in tuning_page._importances)  # the four-trial study's importances
    studied.close()
    tuning_page.warm_up(studied)  # a closed store: logged, not raised (it runs on a background thread)
