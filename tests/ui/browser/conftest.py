"""The dashboard in a real headless Chromium, over a store filled the way a person fills it.

One store per session: ``loopline quickstart`` (ingest, train, serve, replay July's traffic, retrain, gate), then
what the quickstart leaves out so every page has something to show — labels for the logged predictions
(``loopline feedback load``), closed monitoring windows with alerts (``loopline monitor --window``), a loop tick
(``loopline loop --once``) and a three-trial study (``loopline tune``). The dashboard runs as real processes:
``loopline ui`` and ``loopline serve --ui``. One browser per session: the system's Chromium (installed by
``scripts/setup.sh --dev``) driven by Playwright, with a fresh profile; no browser is ever downloaded.

Screenshots of every page go to ``$LOOPLINE_UI_SCREENSHOTS`` (default ``test-output/ui-screenshots``); the
session's summary prints the folder.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCREENSHOTS_ENV = "LOOPLINE_UI_SCREENSHOTS"
CHROMIUM_ENV = "LOOPLINE_CHROMIUM"
CHROMIUM = "/usr/bin/chromium"
ADMIN_TOKEN = "browser-test-admin-token"
MODEL = "flights-delay"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SETUP_HINT = "`bash scripts/setup.sh --dev` installs both (Chromium from the system packages, Playwright from PyPI)"
_SHOTS = pytest.StashKey["Shots"]()

# What the quickstart's pipeline gains for the test: a tune step (three quick trials), alerts its windows fire, and
# the loop's window. The rest is the packaged template, verbatim.
TUNE_STEP = """\
  tuned:
    type: tune
    inputs: [split.train, split.valid, split.test]
    target: delayed
    numeric: [distance, hour, temp]
    categorical: [carrier]
    estimator: logistic_regression
    params: {max_iter: 50}
    space:
      model.C: {float: [0.01, 10.0], log: true}
    metric: roc_auc
    n_trials: 3
"""
MONITOR_EXTRA = """\
  alerts:
    - {when: estimated.roc_auc, below: 0.7}
  loop: {window: 1d, cooldown: 6h}
"""


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Name the screenshots' folder at the end of the session (CI prints it for the people who read the log)."""
    shots = config.stash.get(_SHOTS, None)
    if shots is not None:
        kept = sum(path.is_file() for path in shots.saved)
        terminalreporter.write_line(f"dashboard screenshots: {kept} pages in {shots.folder}")


@dataclass
class Dashboard:
    """A dashboard process: its base URL and the log it writes."""

    url: str
    log: Path

    @property
    def origin(self) -> str:
        return self.url.rstrip("/")


@dataclass
class Filled:
    """The session's store and what the test put in it."""

    home: Path
    pipeline: Path
    labels: int
    log: list[str] = field(default_factory=list)


def _env() -> dict[str, str]:
    """This process's environment without any LOOPLINE_ setting (the store is always named by --home)."""
    return {key: value for key, value in os.environ.items() if not key.startswith("LOOPLINE_")}


def loopline(*args: str, cwd: Path, timeout: float = 600) -> str:
    """Run ``loopline ARGS`` as a person would; its output, or a failure showing it."""
    command = [sys.executable, "-m", "loopline.cli", *args]
    done = subprocess.run(command, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        pytest.fail(
            f"`loopline {' '.join(args)}` exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return done.stdout


def _quickstart_pipeline(home: Path) -> str:
    """The quickstart's pipeline YAML with its sources under ``home`` and the test's tune step and monitoring."""
    from importlib.resources import files

    text = files("loopline.templates").joinpath("quickstart.yaml").read_text(encoding="utf-8")
    text = text.replace("sources: .loopline/quickstart/sources", f"sources: {home / 'quickstart' / 'sources'}")
    assert "\nmonitor:\n" in text and text.endswith("\n"), "the quickstart template changed shape"
    return text.replace("\nmonitor:\n", f"\n{TUNE_STEP}monitor:\n", 1) + MONITOR_EXTRA


def _write_labels(home: Path, path: Path) -> int:
    """Labels for every logged prediction (the served answer, one in four flipped), as a person's CSV export."""
    import polars as pl

    from loopline.cli._context import open_store

    with open_store(home) as store:
        logged = store.predictions.read(MODEL)
    flipped = pl.int_range(pl.len()) % 4 == 0
    labels = logged.select("prediction_id", ((pl.col("prediction").cast(pl.Utf8) == "True") ^ flipped).alias("delayed"))
    labels.write_csv(path)
    return labels.height


@pytest.fixture(scope="session")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Filled:
    """A store filled by the quickstart, then labels, windows, a loop tick and a study."""
    work = tmp_path_factory.mktemp("ui-browser")
    home = work / "home"
    done = Filled(home=home, pipeline=work / "pipeline.yaml", labels=0)
    loopline("quickstart", "--home", str(home), "--report", str(work / "quickstart.html"), cwd=work)
    done.pipeline.write_text(_quickstart_pipeline(home), encoding="utf-8")
    done.labels = _write_labels(home, work / "labels.csv")
    pipeline, at = str(done.pipeline), ("--home", str(home))
    loopline("feedback", "load", pipeline, str(work / "labels.csv"), "--id-column", "prediction_id",
             "--label-column", "delayed", *at, cwd=work)  # fmt: skip
    loopline("monitor", pipeline, "--window", "500", *at, cwd=work)
    loopline("loop", pipeline, "--once", *at, cwd=work)
    loopline("tune", pipeline, "tuned", *at, cwd=work)
    return done


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(process: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the dashboard exited {process.returncode} before answering:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    pytest.fail(f"the dashboard did not answer {url} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def start_dashboard(filled: Filled, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Start ``loopline ARGS --home HOME --port P`` with the admin token; stopped at the session's end."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> Dashboard:
        port = _free_port()
        log = tmp_path_factory.mktemp("dashboard") / "dashboard.log"
        command = [sys.executable, "-m", "loopline.cli", *args, "--home", str(filled.home), "--port", str(port)]
        with log.open("wb") as out:
            process = subprocess.Popen(
                command, env={**_env(), "LOOPLINE_TOKEN": ADMIN_TOKEN}, stdout=out, stderr=subprocess.STDOUT
            )
        processes.append(process)
        dashboard = Dashboard(f"http://127.0.0.1:{port}/", log)
        _wait_until_up(process, f"{dashboard.origin}/ui/", log)
        return dashboard

    yield start
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def dashboard(start_dashboard: Any) -> Dashboard:
    """``loopline ui`` over the filled store."""
    result: Dashboard = start_dashboard("ui")
    return result


@pytest.fixture(scope="session")
def served_dashboard(start_dashboard: Any) -> Dashboard:
    """``loopline serve --ui``: the prediction service with the dashboard mounted."""
    result: Dashboard = start_dashboard("serve", "--ui")
    return result


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The system Chromium, headless, with a fresh profile (a Playwright persistent context)."""
    executable = os.environ.get(CHROMIUM_ENV, CHROMIUM)
    if not Path(executable).is_file():
        pytest.fail(f"no Chromium at {executable} for the dashboard's browser tests: {SETUP_HINT}.", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(f"the browser tests need the Python package playwright: {SETUP_HINT}.", pytrace=False)
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as driver:
        context = driver.chromium.launch_persistent_context(
            str(profile), executable_path=executable, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900}, timeout=60_000,
        )  # fmt: skip
        context.set_default_timeout(30_000)
        try:
            yield context
        finally:
            context.close()


@dataclass
class Shots:
    """Where the page screenshots go, and those saved so far (the session's summary counts them)."""

    folder: Path
    saved: list[Path] = field(default_factory=list)

    def path_for(self, name: str) -> Path:
        """The file a screenshot named ``name`` is saved to (counted in the summary)."""
        path = self.folder / name
        self.saved.append(path)
        return path


@pytest.fixture(scope="session")
def screenshots(request: pytest.FixtureRequest) -> Shots:
    """The folder the page screenshots go to, emptied of an earlier session's pictures."""
    folder = Path(os.environ.get(SCREENSHOTS_ENV) or ROOT / "test-output" / "ui-screenshots").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    shots = Shots(folder)
    request.config.stash[_SHOTS] = shots
    return shots
