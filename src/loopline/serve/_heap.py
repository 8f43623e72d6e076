"""The garbage collector in a serving process: what start-up loaded is frozen out of the full collections."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI


def freeze_after_startup(app: FastAPI) -> None:
    """Once ``app``'s lifespan has started (models loaded), collect once, then ``gc.freeze()``.

    Why: a full (generation 2) collection traverses every tracked object of the process, most of them the
    imported libraries and the loaded models (about 10^6 objects), while it holds the GIL: every request waits
    for it. Serving makes such collections frequent (the rows the prediction log buffers live long enough to be
    promoted to generation 2, and each promotion counts toward the next full collection), so they set the
    latency tail: at concurrency 32 every waiting request is held for the pause. Frozen objects are left out of
    every collection; they are still freed by reference counting, and only garbage cycles among them are kept
    (a model swapped out later is freed when its last reference goes, unless it holds a cycle).

    Only for a process the server owns (the CLI's server, a uvicorn worker), never for an app served inside
    someone else's process (``BackgroundServer``, tests): freezing is process-wide.
    """
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(started: Any) -> AsyncIterator[Any]:
        async with inner(started) as state:
            gc.collect()
            gc.freeze()
            yield state

    app.router.lifespan_context = lifespan
