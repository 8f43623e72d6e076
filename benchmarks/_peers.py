"""Peers whose requirements clash with loopline's: a virtualenv of their own under .bench/, driven as a subprocess.

A peer script answers each command with one line ``@@{json}`` on stdout (anything else it prints is ignored), so
a persistent peer can load its data once and time its own call on request, alternating with loopline's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

REPLY = "@@"
"""A peer's answers start with this, so a library's own printing is never read as one."""
PEER_ENV = {"NML_DISABLE_USAGE_LOGGING": "1", "DO_NOT_TRACK": "1", "EVIDENTLY_DISABLE_TELEMETRY": "1"}
"""No usage reporting from the peers (there is no network on the benchmark machines anyway)."""


def peer_python(venv: Path, pins: list[str], create: bool) -> str | None:
    """The virtualenv's interpreter, created with pip (``pins``) on first use when ``create``; None when absent."""
    python, ready = venv / "bin" / "python", venv / ".ready"
    if ready.exists():
        return str(python)
    if not create:
        return None
    print(f"creating {venv} ({', '.join(pins)}) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *pins], check=True)
    ready.touch()
    return str(python)


class Peer:
    """A peer process: one JSON command per stdin line, one ``@@{json}`` answer per command.

    ``hello`` is the first answer, given when the script has started (versions, or a one-shot script's result).
    """

    def __init__(self, python: str, code: str, args: tuple[str, ...] = ()) -> None:
        self._log: IO[str] = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 (lives as long as the peer)
        self._process = subprocess.Popen(
            [python, "-c", code, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env={**os.environ, **PEER_ENV},
        )
        self.hello = self._answer()

    def ask(self, **command: Any) -> dict[str, Any]:
        """Send one command; its answer (SystemExit with the peer's stderr when it died)."""
        if self._process.stdin is None:
            raise SystemExit("peer process: its stdin is closed")
        self._process.stdin.write(json.dumps(command) + "\n")
        self._process.stdin.flush()
        return self._answer()

    def _answer(self) -> dict[str, Any]:
        if self._process.stdout is not None:
            for line in self._process.stdout:
                if line.startswith(REPLY):
                    answer: dict[str, Any] = json.loads(line[len(REPLY) :])
                    return answer
        self._log.seek(0)
        raise SystemExit(f"peer process died (exit {self._process.wait()}):\n{self._log.read()[-3000:]}")

    def close(self) -> None:
        """End the peer (its stdin closed: the command loop ends) and wait for it."""
        for pipe in (self._process.stdin, self._process.stdout):
            if pipe is not None:
                pipe.close()
        self._process.wait(timeout=60)
        self._log.close()
