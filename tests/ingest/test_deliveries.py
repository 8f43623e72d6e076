"""Delivery counts in a local SQLite file: durable across processes, bounded by what is unacknowledged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from loopline.core.errors import ConfigError
from loopline.ingest._deliveries import DeliveryCounts


def test_counts_rise_once_per_hand_off_and_go_when_acknowledged(tmp_path: Path) -> None:
    path = tmp_path / "state" / "c.sqlite"
    counts = DeliveryCounts(path)
    assert counts.count("a") == 0
    assert counts.record(["a", "b", "a"]) == {"a": 1, "b": 1}  # a key counts once per hand-off
    assert counts.record(["a"]) == {"a": 2}
    counts.forget(["a", "unknown"])
    assert (counts.count("a"), counts.count("b"), len(counts)) == (0, 1, 1)
    counts.close()
    reopened = DeliveryCounts(path)
    assert reopened.count("b") == 1  # the file stays while it holds a count
    reopened.close()
    counts.forget_all()
    assert len(counts) == 0
    counts.close()
    counts.close()
    assert list(path.parent.iterdir()) == []  # nothing left to count: no file


def test_a_count_survives_a_killed_process(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from loopline.ingest._deliveries import DeliveryCounts\n"
        "DeliveryCounts(Path(sys.argv[1])).record(['poison', 'other'])\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, timeout=60)
        assert done.returncode == -9, done.stderr
    reopened = DeliveryCounts(path)
    assert (reopened.count("poison"), reopened.count("other")) == (2, 2)
    reopened.close()


def test_an_unwritable_state_dir_says_which_key_to_fix(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match="cannot keep delivery counts.*Point 'state_dir' at a writable"):
        DeliveryCounts(blocker / "c.sqlite").count("a")
