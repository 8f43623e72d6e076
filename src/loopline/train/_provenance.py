"""Where a model came from: the code version and the memory its fit took."""

from __future__ import annotations

import re
import subprocess
import sys

_COMMIT = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


def code_version(timeout_s: float = 2.0) -> str | None:
    """The git commit of the working directory (``git rev-parse HEAD``), or None outside a repository.

    None also when git is missing or slower than ``timeout_s``. Uncommitted changes are not reflected.
    """
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and _COMMIT.fullmatch(commit) else None


def peak_rss_mb() -> float | None:
    """The process's peak resident set size so far (``getrusage`` ``ru_maxrss``), in MiB; None on Windows.

    The peak is a high-water mark over the process's life: the increase across a fit is
    the memory the fit took beyond any earlier peak, so 0 means it stayed below one
    (a lower bound of its own use, not its total).
    """
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux
