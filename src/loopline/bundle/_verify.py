"""The one check that a model bundle can be served: the store runs it before any stage changes, a service when
it loads a model."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

from loopline.bundle._bundle import ModelBundle
from loopline.core.errors import DataError, LooplineError


def verify_bundle(data: bytes) -> ModelBundle:
    """Load ``data`` exactly as a service does and return the bundle: the archive is read, a skops estimator's
    types are checked against the allowlist (:mod:`loopline.bundle._safety`), the estimator and preprocessing
    are rebuilt and the compiled fast path is built.

    Raises a :class:`~loopline.core.errors.LooplineError`: ``UnsafeArtifactError`` for a refused type,
    ``DataError`` for damage or any other failure to load. The digest is the artifact store's to check: it
    verifies the bytes on every read.
    """
    try:
        bundle = ModelBundle.from_bytes(data)
        bundle.compiled()
    except LooplineError:
        raise
    except Exception as exc:  # a library's own error on bytes that passed the checks: still "does not load"
        reason = " ".join(str(exc).split())
        raise DataError(
            f"the model bundle does not load ({type(exc).__name__}: {reason}).",
            hint="Re-train the model with this loopline and its libraries, then register it again.",
        ) from None
    return bundle


def check_servable(data: bytes) -> None:
    """:func:`verify_bundle` for a store's check before a stage changes, remembering what passed: the same bytes
    (by SHA-256) are loaded once per process, however often they are registered or promoted (a pipeline's
    select step registers and gates on every run). A refusal is never remembered, so a bundle whose trainer
    was registered since is checked again."""
    key = hashlib.sha256(data).digest()
    with _PASSED_LOCK:
        if key in _PASSED:
            _PASSED.move_to_end(key)
            return
    verify_bundle(data)
    with _PASSED_LOCK:
        _PASSED[key] = None
        while len(_PASSED) > _PASSED_MAX:
            _PASSED.popitem(last=False)


_PASSED: OrderedDict[bytes, None] = OrderedDict()
_PASSED_LOCK = threading.Lock()
_PASSED_MAX = 256
