"""Infrastructure validation: the bundle loads in a fresh process with no network and reproduces its golden
predictions bit for bit (TFX's InfraValidator, without a container).

The fresh process is ``python -I`` (isolated: no ``PYTHONPATH``, no user site, not the working directory) with
a minimal environment (no credentials). Its network is off twice: inside a new unprivileged user and network
namespace (``unshare -rn``) where the kernel allows one, and always by a guard installed before anything is
imported that makes every socket connect, send and name lookup raise. It runs :mod:`loopline.bundle._golden`
on a private folder holding the bundle's bytes and golden table, and the outputs it writes are compared here.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from loopline.bundle import first_difference, golden_expected
from loopline.bundle._golden import BUNDLE_FILE, GOLDEN_FILE, PATHS, RESULT_FILE

INFRA_TIMEOUT_S = 120.0
"""How long the fresh process may take to load the bundle and predict."""

_GUARD = """
import socket
def _no_network(*args, **kwargs):
    raise OSError("network is disabled during loopline's infrastructure validation")
for _name in ("connect", "connect_ex", "sendto", "sendmsg"):
    setattr(socket.socket, _name, _no_network)
socket.create_connection = socket.getaddrinfo = socket.gethostbyname = _no_network
import runpy, sys
sys.argv = ["loopline.bundle._golden", sys.argv[1]]
runpy.run_module("loopline.bundle._golden", run_name="__main__", alter_sys=True)
"""


@dataclass(frozen=True)
class InfraResult:
    """What the fresh process did: ``passed``, ``detail`` (the exact reason of a failure), its wall time."""

    passed: bool
    detail: str
    seconds: float


def validate_infra(bundle: bytes, golden: pl.DataFrame | None, *, timeout_s: float = INFRA_TIMEOUT_S) -> InfraResult:
    """Load ``bundle`` in a fresh process without network and compare its outputs on ``golden``'s rows (None:
    the version has no golden predictions; the load alone is checked, and the detail says so)."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="loopline-infra-") as tmp:
        folder = Path(tmp)
        (folder / BUNDLE_FILE).write_bytes(bundle)
        if golden is not None:
            golden.write_parquet(folder / GOLDEN_FILE)
        failure = _run(folder, timeout_s)
        if failure is None:
            failure = _compare(folder, golden)
    seconds = time.perf_counter() - started
    if failure is not None:
        return InfraResult(False, failure, seconds)
    where = f"a fresh python -I process, network off ({network_isolation()})"
    if golden is None:
        return InfraResult(True, f"loaded in {where}; no golden predictions stored with it to compare", seconds)
    paths = " and ".join(PATHS)
    return InfraResult(True, f"{golden.height} golden rows reproduced bit for bit ({paths} paths) in {where}", seconds)


def _run(folder: Path, timeout_s: float) -> str | None:
    command = [*_unshare(), sys.executable, "-I", "-c", _GUARD, str(folder)]
    try:
        done = subprocess.run(
            command, cwd=folder, env=_environment(folder), capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        return f"the fresh process did not load and predict within {timeout_s:g} s"
    result_path = folder / RESULT_FILE
    if not result_path.exists():
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return f"the fresh process exited with {done.returncode} before it reported: {tail}"
    result = json.loads(result_path.read_text())
    if not result.get("ok"):
        return f"the bundle does not load and predict in a fresh process: {result.get('error')}"
    return None


def _compare(folder: Path, golden: pl.DataFrame | None) -> str | None:
    if golden is None:
        return None
    expected = golden_expected(golden)
    for path in PATHS:
        difference = first_difference(expected, pl.read_parquet(folder / f"{path}.parquet"))
        if difference is not None:
            return f"the {path} path does not reproduce the golden predictions: {difference}"
    return None


def _environment(folder: Path) -> dict[str, str]:
    """What the fresh process sees: a path, a locale, a home and temporary folder of its own, nothing else."""
    keep = {name: os.environ[name] for name in ("PATH", "LD_LIBRARY_PATH", "SYSTEMROOT") if name in os.environ}
    return {**keep, "HOME": str(folder), "TMPDIR": str(folder), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


def network_isolation() -> str:
    """How the fresh process is cut off: ``unshare -rn + socket guard`` or ``socket guard``."""
    return "unshare -rn + socket guard" if _unshare() else "socket guard"


@functools.cache
def _unshare() -> tuple[str, ...]:
    """``("unshare", "-rn")`` when an unprivileged network namespace can be made here, else ``()``."""
    tool = shutil.which("unshare")
    if tool is None:
        return ()
    try:
        done = subprocess.run([tool, "-rn", "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return (tool, "-rn") if done.returncode == 0 else ()
