"""Dataset profiles, computed when first asked for and kept with the dataset version they describe.

A version is a snapshot of every part ingested so far, so profiling it means reading the whole dataset:
doing that at the end of every ingest would make each small append cost as much as the dataset is big.
Instead a version is profiled the first time someone asks (``loopline datasets profile``), and the profile
is stored as a JSON artifact that the version references; a version's rows never change, so neither does
its profile, and later requests read it back. A profile of an older format (``PROFILE_FORMAT``) or whose
artifact has gone missing is computed again.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from loopline.core.errors import IntegrityError, NotFoundError
from loopline.prep import PROFILE_FORMAT, profile_table

if TYPE_CHECKING:
    from loopline.store import DatasetVersion, Store

log = logging.getLogger("loopline.profile")


def dataset_profile(store: Store, dataset: str, version: int | None = None, *, refresh: bool = False) -> dict[str, Any]:
    """The profile of ``version`` of ``dataset`` (None: the latest), computed and stored on first request.

    The result is :func:`loopline.prep.profile_table`'s dict plus ``dataset``, ``version`` and ``checksum``.
    ``refresh`` computes it again even when one is stored. Raises NotFoundError for an unknown dataset or
    version.
    """
    found = store.datasets.version(dataset, version)
    stored = None if refresh else stored_profile(store, found)
    if stored is not None:
        return stored
    started = time.perf_counter()
    profile = {
        "dataset": found.dataset,
        "version": found.version,
        "checksum": found.checksum,
        **profile_table(store.datasets.read(dataset, found.version)),
    }
    store.datasets.set_profile(dataset, found.version, store.artifacts.put_json(profile))
    log.info("profiled %r v%d (%d rows) in %.2f s", dataset, found.version, found.rows, time.perf_counter() - started)
    return profile


def stored_profile(store: Store, found: DatasetVersion) -> dict[str, Any] | None:
    """The profile stored with the version ``found`` (as :func:`dataset_profile` returns it), never computing
    one: None when the version has none, or when it must be computed again (missing artifact, older format)."""
    if found.profile_digest is None:
        return None
    try:
        profile: dict[str, Any] = store.artifacts.get_json(found.profile_digest)
    except (NotFoundError, IntegrityError) as exc:
        log.warning(
            "the stored profile of %r v%d is unreadable (%s); profiling again", found.dataset, found.version, exc
        )
        return None
    return profile if profile.get("format") == PROFILE_FORMAT else None
