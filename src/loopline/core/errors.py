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
    │   ├── IntegrityError     an artifact's bytes do not match its digest, or a path escapes the root
    │   └── DiskFullError      a write found no space left (names the path, the space needed and free)
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
        self.detail = message
        where = ""
        if file:
            where = f"{file}:{line}: " if line else f"{file}: "
        elif line:
            where = f"line {line}: "
        super().__init__(f"{where}{message}", hint=hint)

    def under(self, prefix: str, *, file: str | None = None) -> ConfigError:
        """The same error for a key nested under ``prefix`` (``source.pth`` -> ``steps.load.source.pth``).

        Validators of nested config (a source, an estimator's params) raise with keys relative to their
        mapping; whoever validates the enclosing mapping re-raises with the full path, and the quoted key in
        the message follows.
        """
        key = f"{prefix}.{self.key}" if self.key else prefix
        if self.detail.startswith(_KEYED) and self.key and repr(self.key) in self.detail:
            message = self.detail.replace(repr(self.key), repr(key), 1)
        elif self.key and self.detail.startswith(f"{self.key}: "):
            message = f"{key}: {self.detail.removeprefix(f'{self.key}: ')}"
        else:
            message = f"{key}: {self.detail}"
        return ConfigError(message, key=key, file=file or self.file, line=self.line, hint=self.hint)


_KEYED = ("unknown key ", "missing required key ", "invalid value for ")
"""How messages that quote their full key begin (see ``config_error_from_validation``)."""


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


class DiskFullError(StoreError):
    """A write found no space left on the device (or the quota) holding ``path``; ``needed`` and ``free`` are
    in bytes when known. Nothing partial is left visible by the write that failed."""

    def __init__(self, path: str, *, needed: int | None = None, free: int | None = None) -> None:
        self.path = path
        self.needed = needed
        self.free = free
        sizes = ", ".join(
            f"{what} {_size(value)}" for what, value in (("needs about", needed), ("free", free)) if value is not None
        )
        super().__init__(
            f"no space left on the device holding {path}" + (f" ({sizes})" if sizes else "") + ".",
            hint="Free space there (or move the store: LOOPLINE_HOME, LOOPLINE_ARTIFACTS_URL, LOOPLINE_STORE_URL), "
            "then try again (a failed run resumes with `loopline run --resume RUN_ID`).",
        )


def _size(value: int) -> str:
    """Bytes for people: ``512 B``, ``3.2 MiB``."""
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")


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
