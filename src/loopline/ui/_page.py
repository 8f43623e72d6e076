"""What a dashboard page is: a path, a title, a data function and a renderer.

Every page exists twice: ``/api{path}`` answers its data as JSON (for scripts and tests) and ``/ui{path}`` the
same data rendered as HTML. The data function reads the store through the library functions the CLI uses;
lists are paginated and aggregated in SQL, so a page costs the same on a big store as on a small one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from loopline.core.errors import LooplineError

if TYPE_CHECKING:
    from loopline.store import Store

PER_PAGE = 50
"""Rows of a paginated list by default (``?per_page=`` up to :data:`MAX_PER_PAGE`)."""
MAX_PER_PAGE = 500


class UIError(LooplineError):
    """A request the dashboard cannot answer: ``status`` is its HTTP status (400 bad parameter, 404, 409...)."""

    def __init__(self, status: int, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class Params:
    """A request's path and query parameters, read with their types; a bad value is a 400 naming it."""

    def __init__(self, path: Mapping[str, str], query: Mapping[str, str]) -> None:
        self.path = dict(path)
        self.query = dict(query)

    def text(self, key: str, default: str | None = None) -> str | None:
        """A path or query parameter as text (path first), or ``default``."""
        value = self.path.get(key, self.query.get(key))
        return default if value in (None, "") else value

    def required(self, key: str) -> str:
        """A parameter that must be there."""
        value = self.text(key)
        if value is None:
            raise UIError(400, f"the parameter {key!r} is missing.", hint=f"Add ?{key}=... to the address.")
        return value

    def integer(self, key: str, default: int | None = None, *, minimum: int = 0, maximum: int | None = None) -> int:
        """An integer parameter within [minimum, maximum]."""
        value = self.text(key)
        if value is None:
            if default is None:
                raise UIError(400, f"the parameter {key!r} is missing.", hint=f"Add ?{key}=N to the address.")
            return default
        try:
            number = int(value)
        except ValueError:
            raise UIError(400, f"the parameter {key!r} must be an integer, not {value[:40]!r}.") from None
        if number < minimum or (maximum is not None and number > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            raise UIError(400, f"the parameter {key!r} must be {bound}, not {number}.")
        return number

    def time(self, key: str) -> datetime | None:
        """An ISO 8601 time parameter (UTC when it names no zone), or None."""
        value = self.text(key)
        if value is None:
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise UIError(400, f"the parameter {key!r} must be an ISO 8601 time, not {value[:40]!r}.") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    def pagination(self) -> Pagination:
        """``?page=`` (from 1) and ``?per_page=``."""
        return Pagination(
            self.integer("page", 1, minimum=1), self.integer("per_page", PER_PAGE, minimum=1, maximum=MAX_PER_PAGE)
        )


@dataclass(frozen=True)
class Pagination:
    """One page of a list: ``page`` counts from 1."""

    page: int
    per_page: int

    @property
    def offset(self) -> int:
        """Rows before this page."""
        return (self.page - 1) * self.per_page

    def describe(self, total: int) -> dict[str, int]:
        """``{"page", "per_page", "total", "pages"}`` for a list of ``total`` rows."""
        return {
            "page": self.page,
            "per_page": self.per_page,
            "total": total,
            "pages": max(1, -(-total // self.per_page)),
        }


@dataclass(frozen=True)
class View:
    """What a renderer needs besides the data: where the app lives and who is looking.

    ``admin``: the viewer signed in with the admin token (action forms are shown); ``csrf``: the token those forms
    carry."""

    prefix: str = "/ui"
    admin: bool = False
    csrf: str | None = None

    def url(self, path: str) -> str:
        """The address of a dashboard page (``path`` starts with ``/``)."""
        return f"{self.prefix}{path}"

    def action(self, name: str) -> str:
        """The address an action form posts to."""
        return f"{self.prefix}/actions/{name}"


Data = dict[str, Any]
DataFunction = Callable[["Store", Params], Data]
Renderer = Callable[[Data, View], Any]


@dataclass(frozen=True)
class Page:
    """A dashboard page: ``path`` (FastAPI style, ``/models/{name}``), ``title`` (text, or made from the data),
    ``data`` (store, params -> JSON-able dict), ``render`` (data, view -> HTML), ``nav``: its label in the
    navigation bar (top-level pages only)."""

    path: str
    title: str | Callable[[Data], str]
    data: DataFunction
    render: Renderer
    nav: str | None = None
    order: int = field(default=100, compare=False)

    def title_for(self, data: Data) -> str:
        """The page's title for ``data``."""
        return self.title if isinstance(self.title, str) else self.title(data)
