"""Lazy imports of heavy libraries, serialised by one lock.

scikit-learn and skops are imported on first use to keep ``import loopline.bundle`` (and so a service) and
``import loopline.train`` light. Two steps training in parallel threads, or a training step and a bundle being
loaded, may both trigger that first import; scikit-learn's internal import cycles then fail with "partially
initialized module" errors, so every lazy import of both packages goes through this one lock
(``loopline.train`` imports :func:`load` from here).
"""

from __future__ import annotations

import importlib
import threading
from types import ModuleType

_LOCK = threading.RLock()


def load(module: str) -> ModuleType:
    """Import ``module`` (once, under the lock) and return it."""
    with _LOCK:
        return importlib.import_module(module)
