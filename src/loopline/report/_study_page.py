"""A tuning study as one HTML page: optimisation history, parameter importances, the best trial's per-set scores,
and every trial. It renders the study record it is given (``loopline.tune.StudyRecord.to_dict()``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from loopline.report._figures import new_figure, plot_label, png_data_uri, whole_numbers
from loopline.report._html import html_img, html_table, json_script, page, write_html


def write_study_html(path: str | Path, study: dict[str, Any], importances: dict[str, float]) -> Path:
    """Write :func:`render_study_html` to ``path``."""
    return write_html(path, render_study_html(study, importances))


def render_study_html(study: dict[str, Any], importances: dict[str, float]) -> str:
    """The page: a summary, the three charts (with their figures as JSON) and the trials table."""
    settings = study.get("settings", {})
    best = study.get("best")
    summary = html_table(
        ["study", "metric", "directions", "aggregate", "sampler", "pruner", "trials", "best trial"],
        [
            [
                study["name"],
                settings.get("metric"),
                "/".join(study.get("directions", [])),
                settings.get("aggregate"),
                settings.get("sampler"),
                settings.get("pruner"),
                len(study.get("trials", [])),
                None if best is None else best["number"],
            ]
        ],
    )
    history = optimisation_history(study.get("trials", []), study.get("directions") or [])
    scores = dict((best or {}).get("scores") or {})
    sections = [
        summary,
        "<h2>Optimisation history</h2>" + html_img(_history_chart(history, settings.get("metric")), "history"),
        json_script("history", history),
        "<h2>Parameter importances</h2>"
        + (html_img(_bars(importances, "importance"), "importances") if importances else "<p class=muted>—</p>"),
        json_script("importances", importances),
        "<h2>Best trial: score per evaluation set</h2>"
        + (html_img(_bars(scores, settings.get("metric") or "score"), "scores") if scores else "<p class=muted>—</p>"),
        json_script("scores", scores),
        "<h2>Trials</h2>"
        + html_table(
            ["#", "state", "value", "seconds", "params"],
            [
                [
                    t["number"],
                    t["state"],
                    None if not t["values"] else t["values"][0],
                    t["duration_s"],
                    ", ".join(f"{k}={v!r}" for k, v in t["params"].items()),
                ]
                for t in study.get("trials", [])
            ],
        ),
    ]
    return page(f"Study {study['name']}", sections)


def optimisation_history(trials: Sequence[Mapping[str, Any]], directions: Sequence[str]) -> dict[str, list[Any]]:
    """Complete trials' numbers, first objective values and the best so far (by the first of ``directions``;
    Optuna's default, minimize, when there is none)."""
    maximize = (list(directions) or ["minimize"])[0] == "maximize"
    numbers: list[int] = []
    values: list[float] = []
    best: list[float] = []
    for trial in trials:
        if trial["state"] != "complete" or not trial["values"]:
            continue
        value = float(trial["values"][0])
        numbers.append(trial["number"])
        values.append(value)
        best.append(value if not best else (max if maximize else min)(best[-1], value))
    return {"trial": numbers, "value": values, "best": best}


def _history_chart(history: dict[str, list[Any]], metric: str | None) -> str | None:
    if not history["trial"]:
        return None
    figure, axes = new_figure(7, 3)
    axes.scatter(history["trial"], history["value"], s=14, label="trial")
    axes.step(history["trial"], history["best"], where="post", color="black", label="best so far")
    axes.set_xlabel("trial")
    axes.set_ylabel(plot_label(metric or "objective"))
    whole_numbers(axes.xaxis)
    axes.legend(loc="best")
    return png_data_uri(figure)


def _bars(values: dict[str, float], label: str) -> str:
    names = list(values)
    figure, axes = new_figure(7, 0.5 + 0.35 * len(names))
    axes.barh([plot_label(n, 40) for n in names], [float(values[n]) for n in names])
    axes.invert_yaxis()
    axes.set_xlabel(plot_label(label))
    return png_data_uri(figure)
