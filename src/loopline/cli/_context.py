"""Opening the store from CLI options and turning loopline errors into clear exits."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from loopline.cli._render import err_console
from loopline.core.errors import ConfigError, LooplineError
from loopline.core.settings import Settings

if TYPE_CHECKING:
    from loopline.store import Store


@contextlib.contextmanager
def open_store(home: Path | None = None) -> Iterator[Store]:
    """The store of ``home`` (or LOOPLINE_HOME / LOOPLINE_STORE_URL / LOOPLINE_ARTIFACTS_URL), closed afterwards."""
    from loopline.store import Store

    settings = Settings.from_env(home)
    store = Store.open(settings.store_url, settings.artifacts, local_dir=settings.home, check_bundle=check_bundle)
    try:
        yield store
    finally:
        store.close()


def check_bundle(data: bytes) -> None:
    """The store's bundle check in every command: :func:`loopline.bundle.check_servable` (a real load, once per
    process for the same bytes), imported when a version is registered or made production."""
    from loopline.bundle import check_servable

    check_servable(data)


@contextlib.contextmanager
def clear_errors() -> Iterator[None]:
    """Print a LooplineError as one readable message and exit 2 (config) or 1 (anything else)."""
    try:
        yield
    except LooplineError as exc:
        err_console.print("error:", style="bold red", end=" ")
        err_console.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2 if isinstance(exc, ConfigError) else 1) from None
