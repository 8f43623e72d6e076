"""The floor on collected tests (tests/_floor.py): unset means no check; a narrowed CI run fails, loudly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests._floor import COUNT_FILE_ENV, FLOOR_ENV, floor_error

ROOT = Path(__file__).parents[1]


@pytest.mark.parametrize("floor", [None, "", "  "])
def test_no_floor_checks_nothing(floor: str | None) -> None:
    assert floor_error(0, floor) is None


def test_a_run_at_or_over_the_floor_holds() -> None:
    assert floor_error(2100, "2100") is None
    assert floor_error(2131, " 2100 ") is None


def test_a_run_under_the_floor_is_named_with_both_counts() -> None:
    error = floor_error(11, "2100")
    assert error is not None
    assert error.startswith(f"collected 11 tests, under the floor of 2100 ({FLOOR_ENV})")


@pytest.mark.parametrize(("floor", "why"), [("many", "is not a whole number"), ("-1", "is negative")])
def test_a_malformed_floor_is_an_error_never_ignored(floor: str, why: str) -> None:
    error = floor_error(5000, floor)
    assert error is not None and why in error


def pytest_run(tmp_path: Path, *args: str, floor: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    count_file = tmp_path / "collected"
    env = {**os.environ, FLOOR_ENV: floor, COUNT_FILE_ENV: str(count_file)}
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300), count_file


def test_a_shrunken_run_fails_before_running_anything(tmp_path: Path) -> None:
    """What CI sees when the README's test command narrows the suite: exit 4, the counts, no test run."""
    result, count_file = pytest_run(tmp_path, "tests/core/test_errors.py", floor="2100")
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert "under the floor of 2100 (LOOPLINE_MIN_TESTS)" in result.stdout
    assert " passed" not in result.stdout
    assert not count_file.exists()


def test_a_run_over_the_floor_runs_and_records_its_count(tmp_path: Path) -> None:
    result, count_file = pytest_run(tmp_path, "tests/core/test_errors.py", "-k", "not extra", floor="3")
    assert result.returncode == 0, result.stdout + result.stderr
    collected = int(count_file.read_text())
    assert collected >= 3 and f"{collected} passed" in result.stdout
