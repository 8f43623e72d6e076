"""Tuning studies (Optuna, kept in the store's database): every study with its trials per state and best trial;
one study's optimisation history, parameter importances, per-set scores and trials.

Studies are read through :mod:`loopline.tune` (which alone imports Optuna, lazily). A store without the
``tune`` extra, or without any study yet, shows an empty state: the page never creates Optuna's tables.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from loopline.core.errors import ConfigError
from loopline.ui._html import Markup, badge, chart, join, link, muted, pager, pairs, section, table, tag
from loopline.ui._page import Data, Page, Params, UIError, View

if TYPE_CHECKING:
    from loopline.store import Store
    from loopline.tune import StudyRecord, StudyStamp

IMPORTANCE_TRIALS = 500
"""Parameter importances are computed on this many newest complete trials at most."""
HISTORY_POINTS = 500
"""The history and per-set charts show this many newest complete trials (the running best counts them all)."""
log = logging.getLogger(__name__)
_CACHE_SIZE = 64
_importances: OrderedDict[tuple[Any, ...], dict[str, float]] = OrderedDict()
"""Importances already computed, by (database, study, complete trials, newest of them): a study that did not
change is not analysed again."""
_records: OrderedDict[tuple[str, str], tuple[tuple[Any, ...], StudyRecord]] = OrderedDict()
"""Studies already loaded, by (database, study), with the stamp they had: reloaded only when it changed."""


_STORAGES = 4
_storages: OrderedDict[str, Any] = OrderedDict()
"""Optuna storages already opened, by database URL (opening one checks Optuna's schema: tens of ms)."""
_storages_lock = threading.Lock()
_caches_lock = threading.Lock()


@contextmanager
def _storage(url: str) -> Iterator[Any]:
    """Optuna's storage on ``url``, kept open between requests (the least recently used beyond
    :data:`_STORAGES` is closed); this thread's session is released after each use."""
    from loopline.tune import open_storage

    with _storages_lock:
        storage = _storages.get(url)
        if storage is None:
            storage = _storages[url] = open_storage(url)
            while len(_storages) > _STORAGES:
                _close(_storages.popitem(last=False)[1])
        _storages.move_to_end(url)
    try:
        yield storage
    finally:
        storage.remove_session()


def _close(storage: Any) -> None:
    storage.remove_session()
    storage.engine.dispose()


def _url(store: Store) -> str:
    """The store database's URL, where studies live (Optuna opens its own connection)."""
    return store.engine.url.render_as_string(hide_password=False)


def _unavailable(store: Store) -> str | None:
    """Why this store can show no study (None: it can)."""
    from sqlalchemy import inspect

    try:
        from loopline.tune._optuna import optuna

        optuna()
    except ConfigError as error:
        return f"{error.message} {error.hint or ''}".strip()
    if not inspect(store.engine).has_table("studies"):
        return "No study yet: a pipeline's tune step (loopline tune PIPELINE STEP) keeps its study here."
    return None


def _study_link(view: View, name: str) -> Markup:
    return link(view.url(f"/tuning/{quote(name, safe='')}"), name)


# --- /tuning ---------------------------------------------------------------------------------------------------


def studies_data(store: Store, params: Params) -> Data:
    """One page of the studies: name, directions, trials per state, best value and parameters, started."""
    pagination = params.pagination()
    note = _unavailable(store)
    if note is not None:
        return {"available": False, "note": note, "studies": [], "pagination": pagination.describe(0)}
    from loopline.tune import study_page, study_stamps, summarise

    url = _url(store)
    with _storage(url) as storage:
        stamps = study_stamps(storage)
        if stamps is not None:
            shown = stamps[pagination.offset : pagination.offset + pagination.per_page]
            studies = [summarise(_load(storage, url, s.name, s), s.started) for s in shown]
            total = len(stamps)
    if stamps is None:  # not a database Optuna's schema reads: load each study of the page
        total, studies = study_page(url, pagination.offset, pagination.per_page)
    return {"available": True, "note": None, "studies": studies, "pagination": pagination.describe(total)}


def _load(storage: Any, url: str, name: str, stamp: StudyStamp | None) -> StudyRecord:
    """The study ``name``, from the cache while its stamp is unchanged and none of its trials runs."""
    from loopline.tune import load_study

    key = (url, name)
    cached = _records.get(key)
    if stamp is not None and cached is not None and cached[0] == stamp.stamp and not stamp.running:
        return cached[1]
    record = load_study(storage, name)  # ConfigError naming the known studies when there is none
    if stamp is not None and not stamp.running:
        _remember(_records, key, (stamp.stamp, record))
    return record


def _remember(cache: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    """Keep ``value`` under ``key``, forgetting the oldest entries beyond :data:`_CACHE_SIZE` (threads take
    turns)."""
    with _caches_lock:
        cache[key] = value
        while len(cache) > _CACHE_SIZE:
            cache.popitem(last=False)


def render_studies(data: Data, view: View) -> Markup:
    """The studies table, or why there is none."""
    if not data["studies"]:
        return muted(data["note"] or "No study yet: a pipeline's tune step keeps its study here.")
    rows = [
        [
            _study_link(view, s["name"]),
            s["metric"],
            "/".join(s["directions"]),
            s["trials"],
            *[s["counts"].get(state, 0) for state in ("complete", "pruned", "fail")],
            s["best_value"],
            _params_text(s["best_params"]),
            (s["started"] or "")[:19].replace("T", " ") or None,
        ]
        for s in data["studies"]
    ]
    headers = ["study", "metric", "direction", "trials", "complete", "pruned", "failed", "best", "best params"]
    paging = data["pagination"]
    return join(
        [
            table([*headers, "started"], rows, id_="studies"),
            pager(view.url("/tuning"), {}, paging["page"], paging["pages"]),
        ]
    )


def _params_text(values: Mapping[str, Any] | None) -> str | None:
    if not values:
        return None
    return ", ".join(
        f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}" for key, value in values.items()
    )


# --- /tuning/{study} -------------------------------------------------------------------------------------------


def study_data(store: Store, params: Params) -> Data:
    """One study: settings, best trial, history, importances, per-set scores and a page of trials."""
    name = params.required("study")
    pagination = params.pagination()
    note = _unavailable(store)
    if note is not None:
        raise UIError(404, f"no study {name!r}: {note}", hint="See the studies at /ui/tuning.")
    from loopline.tune import study_stamps

    url = _url(store)
    with _storage(url) as storage:
        stamp = next((s for s in study_stamps(storage) or [] if s.name == name), None)
        try:
            record = _load(storage, url, name, stamp)
        except ConfigError as error:
            raise UIError(404, error.message, hint=error.hint) from None
        study = record.to_dict()
        importances, importance_note = _importances_of(storage, url, study)
    trials = study["trials"]
    newest_first = trials[::-1][pagination.offset : pagination.offset + pagination.per_page]
    return {
        "name": name,
        "directions": study["directions"],
        "settings": study["settings"],
        "counts": study["counts"],
        "best": study["best"],
        "history": history(trials, study["directions"]),
        "importances": importances,
        "importance_note": importance_note,
        "set_scores": set_scores(trials),
        "trials": newest_first,
        "pagination": pagination.describe(len(trials)),
    }


def history(trials: Sequence[Mapping[str, Any]], directions: Sequence[str]) -> Data:
    """:func:`loopline.report.optimisation_history`, the newest :data:`HISTORY_POINTS` points of it (the best so
    far counts the older ones too)."""
    from loopline.report import optimisation_history

    whole = optimisation_history(trials, directions)
    return {key: values[-HISTORY_POINTS:] for key, values in whole.items()}


def set_scores(trials: Sequence[Mapping[str, Any]]) -> Data:
    """The score per evaluation set of the newest :data:`HISTORY_POINTS` complete trials: ``{"sets",
    "trial", "scores": {set: [score or None per trial]}}``."""
    done = [t for t in trials if t["state"] == "complete" and t["scores"]][-HISTORY_POINTS:]
    names = sorted({key for t in done for key in t["scores"]})
    return {
        "sets": names,
        "trial": [t["number"] for t in done],
        "scores": {key: [t["scores"].get(key) for t in done] for key in names},
    }


def _importances_of(storage: Any, url: str, study: Data) -> tuple[dict[str, float] | None, str]:
    """The study's parameter importances (cached while it does not change) and a note on how they were had."""
    from loopline.tune import param_importances

    complete = [t["number"] for t in study["trials"] if t["state"] == "complete"]
    if len(complete) < 2:
        return None, "Parameter importances need at least two complete trials."
    key = (url, study["name"], len(complete), complete[-1])
    found = _importances.get(key)
    if found is None:
        found = param_importances(storage, study["name"], newest=IMPORTANCE_TRIALS, quick=True)
        _remember(_importances, key, found)
    used = min(len(complete), IMPORTANCE_TRIALS)
    note = f"fANOVA (16 trees) on the {'newest ' if used < len(complete) else ''}{used:,} complete trials"
    if not found:
        note += ": no parameter varied enough to be weighed"
    return found, note + "."


def render_study(data: Data, view: View) -> Markup:
    """Settings and best trial, history, importances, per-set scores, the trials."""
    settings, best = data["settings"], data["best"]
    metric = settings.get("metric") or "objective"
    facts = {
        "metric": metric,
        "directions": "/".join(data["directions"]),
        "aggregate over the sets": settings.get("aggregate"),
        "sampler": settings.get("sampler"),
        "pruner": settings.get("pruner"),
        "trials": ", ".join(f"{n} {state}" for state, n in sorted(data["counts"].items())) or "none",
        "best trial": None if best is None else f"#{best['number']}: {_values(best['values'])}",
        "best params": None if best is None else _params_text(best["params"]),
    }
    parts = [pairs(facts), tag("p", link(view.url("/tuning"), "all studies"))]
    if data["history"]["trial"]:
        parts.append(section("Optimisation history", chart("history", history_chart(data["history"], metric))))
    parts.append(_importance_section(data))
    parts.append(_scores_section(data, metric))
    parts.append(section("Trials", *_trials(data, view), id_="trials"))
    return join(parts)


def _values(values: Sequence[float] | None) -> str:
    return ", ".join(f"{v:.4g}" for v in values or []) or "—"


def _importance_section(data: Data) -> Markup:
    found = data["importances"]
    body: list[Any] = []
    if found:
        body.append(chart("importances", bars_chart("parameter importances", found), height=80 + 28 * len(found)))
    body.append(muted(data["importance_note"]))
    return section("Parameter importances", *body, id_="importances")


def _scores_section(data: Data, metric: str) -> Markup:
    best = data["best"]
    scores = data["set_scores"]
    body: list[Any] = []
    if best is not None and best["scores"]:
        body.append(table(["set", f"best trial's {metric}"], best["scores"].items(), id_="best-scores"))
    if len(scores["sets"]) > 1:
        body.append(chart("set-scores", sets_chart(scores, metric)))
    if not body:
        body.append(muted("No per-set score recorded."))
    return section("Scores per evaluation set", *body, id_="set-scores-section")


def _trials(data: Data, view: View) -> list[Markup]:
    rows = [
        [
            t["number"],
            badge(t["state"], _STATE_KIND.get(t["state"], "neutral")),
            _values(t["values"]) if t["values"] else None,
            t["duration_s"],
            _params_text(t["params"]),
            _params_text(t["scores"]),
            t["worker"],
            t["error"],
        ]
        for t in data["trials"]
    ]
    headers = ["#", "state", "value", "seconds", "params", "per-set scores", "worker", "error"]
    paging = data["pagination"]
    return [
        table(headers, rows, id_="trials-table", empty="No trial yet."),
        pager(view.url(f"/tuning/{quote(data['name'], safe='')}"), {}, paging["page"], paging["pages"]),
    ]


_STATE_KIND = {"complete": "good", "pruned": "warn", "fail": "bad"}


# --- charts ----------------------------------------------------------------------------------------------------


def history_chart(points: Data, metric: str) -> dict[str, Any]:
    """Each trial's value (dots) and the best so far (a step line)."""
    return {
        "title": {"text": f"{metric} per trial", "left": "center", "textStyle": {"fontSize": 13}},
        "tooltip": {"trigger": "axis"},
        "legend": {"bottom": 0},
        "grid": {"left": 60, "right": 30, "top": 40, "bottom": 60},
        "xAxis": {"type": "value", "name": "trial", "minInterval": 1},
        "yAxis": {"type": "value", "name": metric, "scale": True},
        "series": [
            {"type": "scatter", "name": "trial", "data": list(zip(points["trial"], points["value"], strict=True))},
            {
                "type": "line",
                "name": "best so far",
                "step": "end",
                "showSymbol": False,
                "data": list(zip(points["trial"], points["best"], strict=True)),
            },
        ],
    }


def bars_chart(title: str, values: Mapping[str, float]) -> dict[str, Any]:
    """Horizontal bars, the largest on top."""
    names = list(values)[::-1]
    return {
        "title": {"text": title, "left": "center", "textStyle": {"fontSize": 13}},
        "tooltip": {"trigger": "axis", "axisPointer": {"type": "shadow"}},
        "grid": {"left": 160, "right": 30, "top": 40, "bottom": 30},
        "xAxis": {"type": "value"},
        "yAxis": {"type": "category", "data": names},
        "series": [{"type": "bar", "data": [values[n] for n in names]}],
    }


def sets_chart(scores: Data, metric: str) -> dict[str, Any]:
    """Each evaluation set's score per complete trial, one line per set."""
    return {
        "title": {"text": f"{metric} per evaluation set", "left": "center", "textStyle": {"fontSize": 13}},
        "tooltip": {"trigger": "axis"},
        "legend": {"bottom": 0, "type": "scroll"},
        "grid": {"left": 60, "right": 30, "top": 40, "bottom": 60},
        "xAxis": {"type": "category", "name": "trial", "data": scores["trial"]},
        "yAxis": {"type": "value", "name": metric, "scale": True},
        "series": [
            {"type": "line", "name": name, "data": values, "connectNulls": True}
            for name, values in scores["scores"].items()
        ],
    }


def warm_up(store: Store, limit: int = 50) -> None:
    """Load the newest ``limit`` studies and their importances into the pages' cache, swallowing any error.

    A study's first view costs seconds on a big study (importing Optuna's importance code, reading every trial);
    ``loopline ui`` calls this on a background thread as it starts, so that a person's first view does not pay it.
    """
    try:
        listed = studies_data(store, Params({}, {"per_page": str(limit)}))
        for study in listed["studies"]:
            study_data(store, Params({"study": study["name"]}, {}))
    except Exception:  # a warm-up only: the page itself reports any error when it is asked for
        log.debug("warming the tuning pages failed", exc_info=True)


PAGES = [
    Page("/tuning", "Tuning", studies_data, render_studies, nav="Tuning", order=70),
    Page("/tuning/{study:path}", lambda data: f"Study {data['name']}", study_data, render_study, order=71),
]
