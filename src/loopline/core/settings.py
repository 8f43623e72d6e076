"""Where loopline keeps its state, read from the environment when asked (never at import)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "LOOPLINE_HOME"
STORE_URL_ENV = "LOOPLINE_STORE_URL"
ARTIFACTS_URL_ENV = "LOOPLINE_ARTIFACTS_URL"
TOKEN_ENV = "LOOPLINE_TOKEN"


@dataclass(frozen=True)
class Settings:
    """Resolved locations: ``home`` holds ``loopline.db``, ``artifacts/`` and local state by default.

    ``artifacts`` is a folder, or a URL (``s3://bucket/prefix``, any fsspec URL) from
    ``LOOPLINE_ARTIFACTS_URL``; ``home`` stays the place for state that is local to this machine.
    """

    home: Path
    store_url: str
    artifacts: Path | str
    token: str | None

    @property
    def local_default(self) -> bool:
        """Whether the store is the default layout inside ``home`` (``loopline.db`` and ``artifacts/``)."""
        return self.store_url == f"sqlite:///{self.home / 'loopline.db'}" and self.artifacts == self.home / "artifacts"

    @classmethod
    def from_env(cls, home: str | Path | None = None) -> Settings:
        """Read ``LOOPLINE_HOME``, ``LOOPLINE_STORE_URL``, ``LOOPLINE_ARTIFACTS_URL`` and ``LOOPLINE_TOKEN``."""
        root = Path(home or os.environ.get(HOME_ENV) or ".loopline").resolve()
        url = os.environ.get(STORE_URL_ENV) or f"sqlite:///{root / 'loopline.db'}"
        return cls(
            home=root,
            store_url=url,
            artifacts=os.environ.get(ARTIFACTS_URL_ENV) or root / "artifacts",
            token=os.environ.get(TOKEN_ENV) or None,
        )
