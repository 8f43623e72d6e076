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
