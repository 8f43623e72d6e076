"""The README's benchmark table is generated from RESULTS.md, and stays equal to it."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).parents[2]


def _publish() -> ModuleType:
    spec = importlib.util.spec_from_file_location("publish", ROOT / "benchmarks" / "publish.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["publish"] = module
    spec.loader.exec_module(module)
    return module


publish = _publish()


def _results(**lines: dict) -> str:
    """A RESULTS.md text with one ``final`` line per bench plus an older, superseded one."""
    text = ["# Benchmark results", "", "```"]
    for bench, data in lines.items():
        old = {**data, "bench": bench, "ratios": {k: -1.0 for k in data.get("ratios", {})}}
        text.append("final " + json.dumps(old))
        text.append("base " + json.dumps({**data, "bench": bench}))  # an untagged line is never published
        text.append("final " + json.dumps({**data, "bench": bench}))
    text.append("```")
    return "\n".join(text)


def _complete() -> dict[str, dict]:
    lines: dict[str, dict] = {}
    for n, figure in enumerate(publish.FIGURES, start=1):
        data = lines.setdefault(figure.bench, {"ratios": {}, "spread": {}, "goals": {}, "labels": {}})
        data["ratios"][figure.key] = float(n)
        data["spread"][figure.key] = {"min": n - 0.5, "median": float(n), "max": n + 0.5}
        data["labels"][figure.key] = f"label {n}"
    lines["train"]["goals"]["fit_overhead_ratio"] = {
        "goal": 0.95,
        "worst": 0.81,
        "median": 0.9,
        "best": 1,
        "met": False,
    }
    return lines


def test_the_latest_final_line_of_each_bench_is_published_with_its_spread_label_and_goal() -> None:
    block = publish.render(_results(**_complete()))
    rows = {line.split(" | ")[0].lstrip("| "): line for line in block.splitlines() if line.startswith("| ")}
    train = rows["`train_candidate` vs the bare fit, worst of 4 cases"]
    n = 1 + [f.key for f in publish.FIGURES].index("fit_overhead_ratio")
    assert publish.FIGURES[n - 1].timed in train
    assert f"**{publish._number(float(n))}**" in train and publish._number(n - 0.5) in train
    assert "≥ 0.95: worst 0.81, **not met**" in train
    assert "-1" not in block  # the superseded final lines are not used


def test_a_missing_figure_is_an_error_that_says_how_to_fix_it() -> None:
    lines = _complete()
    del lines["serve"]["ratios"]["batch_vs_floor"]
    with pytest.raises(publish.PublishError, match=r"no ratio 'batch_vs_floor'.*bench_serve\.py"):
        publish.render(_results(**lines))
    del lines["prep"]
    with pytest.raises(publish.PublishError, match="no `final` line for bench 'prep'"):
        publish.render(_results(**lines))


def test_the_readme_block_is_what_results_md_gives() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    results = (ROOT / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8")
    assert publish.replace_block(readme, publish.render(results)) == readme, (
        "README.md's benchmark table differs from benchmarks/RESULTS.md: run python benchmarks/publish.py"
    )


def test_a_figure_awaiting_its_first_run_is_left_out_until_its_bench_has_a_final_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # every published figure has had its first run: a new benchmark's figure stands in for one that has not
    waiting = publish.Figure(
        "newbench", "speedup", "A new benchmark's figure", "what it times", awaiting_first_run=True
    )
    monkeypatch.setattr(publish, "FIGURES", (*publish.FIGURES, waiting))
    awaiting = [figure for figure in publish.FIGURES if figure.awaiting_first_run]
    assert awaiting == [waiting]
    lines = _complete()
    for figure in awaiting:
        lines.pop(figure.bench, None)
    block = publish.render(_results(**lines))
    assert all(figure.title not in block for figure in awaiting)
    assert publish.FIGURES[0].title in block
    lines = _complete()
    figure = awaiting[0]
    del lines[figure.bench]["ratios"][figure.key]  # once recorded, a missing ratio is an error as for any figure
    with pytest.raises(publish.PublishError, match=f"no ratio {figure.key!r}"):
        publish.render(_results(**lines))


def test_a_ratio_the_run_could_not_measure_is_published_as_not_measured() -> None:
    lines = _complete()
    figure = next(f for f in publish.FIGURES if f.goal is not None and f.bench == "monitor")
    lines[figure.bench]["ratios"][figure.key] = None
    rows = [line for line in publish.render(_results(**lines)).splitlines() if line.startswith(f"| {figure.title} ")]
    assert rows == [f"| {figure.title} | {figure.timed} | not measured | ≥ {figure.goal:g}: not measured |"]


def test_a_goal_missed_by_less_than_the_rounding_shows_the_digits_that_miss_it() -> None:
    figure = publish.Figure("monitor", "estimate_error_vs_nannyml", "estimate error", "what", goal=1.0)
    near = {"ratios": {"estimate_error_vs_nannyml": 0.99984}}
    _, ratio, verdict = publish._cell(figure, near)
    assert ratio == "**1**" and verdict == "≥ 1: worst 0.99984, **not met**"
    _, _, met = publish._cell(figure, {"ratios": {"estimate_error_vs_nannyml": 1.00004}})
    assert met == "≥ 1: worst 1, met"
