"""The one exception hierarchy of loopline.

Every error loopline raises on purpose derives from :class:`LooplineError` and
says what went wrong, which thing it concerns, and how to fix it::

    LooplineError
    ├── ConfigError            a pipeline file or config value is wrong (file, line, key, hint)
    ├── DataError              input data is missing or unusable (file, column, row)
    │   └── SourceUnavailableError  a source cannot be reached right now (retried by ingestion)
    ├── StepError              a pipeline step failed (step name, the cause)
    ├── StoreError             the metadata or artifact store refused an operation
    │   ├── NotFoundError      a run, model, version or artifact does not exist
    │   ├── ConflictError      a concurrent change or an invalid stage transition
    │   │   └── UnservableModelError  a version whose artifact cannot be served may not change stage
    │   └── IntegrityError     an artifact's bytes do not match its digest, or a path escapes the root
    ├── UnsafeArtifactError    an artifact would need untrusted code or types to load
    ├── SchemaValidationError  records do not match a model's input schema (field, reason)
    └── MissingExtraError      an optional dependency is not installed (names the extra)
"""

from __future__ import annotations

from collections.abc import Iterable
from difflib import get_close_matches


class LooplineError(Exception):
    """Root of every error loopline raises on purpose.

    ``hint`` is the fix, appended to the message so that users see it in any log.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message} {hint}" if hint else message)


class ConfigError(LooplineError):
    """A pipeline definition or config value is invalid."""

    def __init__(
        self,
        message: str,
        *,
        key: str | None = None,
        file: str | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.key = key
        self.file = file
        self.line = line
        where = ""
        if file:
            where = f"{file}:{line}: " if line else f"{file}: "
        elif line:
            where = f"line {line}: "
        super().__init__(f"{where}{message}", hint=hint)


class DataError(LooplineError):
    """Input data is missing or cannot be used as configured."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        column: str | None = None,
        row: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.file = file
        self.column = column
        self.row = row
        super().__init__(message, hint=hint)


class SourceUnavailableError(DataError):
    """A source (database, broker) cannot be reached right now: a refused, dropped or timed-out connection.

    Transient by nature: the ingestion engine retries it with backoff from the last checkpoint.
    """


class StepError(LooplineError):
    """A pipeline step failed; ``__cause__`` holds the original error."""

    def __init__(self, step: str, message: str, *, hint: str | None = None) -> None:
        self.step = step
        super().__init__(f"step {step!r} failed: {message}", hint=hint)


class StoreError(LooplineError):
    """The metadata or artifact store refused an operation."""


class NotFoundError(StoreError):
    """A run, model, version or artifact does not exist."""


class ConflictError(StoreError):
    """A concurrent change or an invalid stage transition."""


class UnservableModelError(ConflictError):
    """A model version's artifact cannot be served (missing, corrupt, refused type, fails to load), so it may not
    be registered, promoted or rolled back to; ``reason`` is the one-line cause."""

    def __init__(self, name: str, version: int | None, reason: str, *, hint: str | None = None) -> None:
        self.name = name
        self.version = version
        self.reason = reason
        which = f"model {name!r}" if version is None else f"model {name!r} version {version}"
        super().__init__(f"{which} cannot be served: {reason}", hint=hint)


class IntegrityError(StoreError):
    """Stored bytes do not match their digest, or a name/path escapes its root."""


class UnsafeArtifactError(LooplineError):
    """Loading an artifact would need types or code loopline does not trust."""


class SchemaValidationError(LooplineError):
    """Records do not match a model's input schema.

    ``errors`` lists one ``{"field", "reason", "record"}`` mapping per problem.
    """

    def __init__(self, errors: list[dict[str, object]]) -> None:
        self.errors = errors
        first = errors[0] if errors else {"field": "?", "reason": "invalid"}
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"field {first['field']!r}: {first['reason']}{more}")


class MissingExtraError(LooplineError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, module: str, extra: str) -> None:
        self.module = module
        self.extra = extra
        super().__init__(
            f"{module!r} is not installed.",
            hint=f"Install it with: pip install 'loopline[{extra}]'",
        )


def did_you_mean(name: str, choices: Iterable[str]) -> str | None:
    """Return ``"Did you mean 'x'?"`` for the closest choice, or None."""
    match = get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"Did you mean {match[0]!r}?" if match else None
