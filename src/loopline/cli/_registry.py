"""``loopline models alias|unalias|archive|history|gc``: aliases, the audit trail and pruning of the repository.

Registered on the ``models`` command group by :mod:`loopline.cli._models`. Every change is recorded with the OS
user as its actor (``LOOPLINE_ACTOR`` overrides it, e.g. a CI job's name).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from loopline.cli._context import clear_errors, open_store
from loopline.cli._render import console, print_json, table
from loopline.core.errors import ConfigError

ACTOR_ENV = "LOOPLINE_ACTOR"
Home = Annotated[Path | None, typer.Option("--home")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
Name = Annotated[str, typer.Argument(help="Model name.")]
Reason = Annotated[str, typer.Option(help="Why (kept in the audit trail).")]
Expect = Annotated[
    int | None,
    typer.Option(
        "--expect",
        help="Compare-and-set: change only if the alias points at this version now (0: at none); else exit 1.",
    ),
]


def actor() -> str | None:
    """``LOOPLINE_ACTOR`` if set (None: the store records the OS user)."""
    return os.environ.get(ACTOR_ENV) or None


def alias(
    name: Name,
    version: Annotated[int, typer.Argument(help="Version the alias points at.")],
    alias_name: Annotated[str, typer.Argument(metavar="ALIAS", help="production, staging, shadow, canary, or yours.")],
    reason: Reason = "manual alias",
    expect: Expect = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Point ALIAS at a version (set or move it); `production` is the same as `models promote`."""
    from dataclasses import asdict

    with clear_errors(), open_store(home) as store:  # the store checks the bundle loads before the alias moves
        found = store.models.set_alias(name, alias_name, version, reason, actor=actor(), expect=expect)
    if as_json:
        print_json(asdict(found))
    else:
        console.print(f"{escape(name)}@{alias_name} -> v{found.version}")


def unalias(
    name: Name,
    alias_name: Annotated[str, typer.Argument(metavar="ALIAS", help="The alias to remove (not production).")],
    reason: Reason = "manual unalias",
    expect: Expect = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Remove an alias (production cannot be removed: promote another version or roll back)."""
    with clear_errors(), open_store(home) as store:
        version = store.models.remove_alias(name, alias_name, reason, actor=actor(), expect=expect)
    if as_json:
        print_json({"name": name, "alias": alias_name, "removed_from": version})
    else:
        console.print(f"{escape(name)}@{alias_name} removed (it pointed at v{version})")


def archive(
    name: Name,
    version: Annotated[int, typer.Argument(help="Version to retire.")],
    reason: Reason = "manual archive",
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Retire a version (stage archived), so that `models gc` may delete it; an aliased version is refused."""
    from dataclasses import asdict

    with clear_errors(), open_store(home) as store:
        found = store.models.archive(name, version, reason, actor=actor())
    if as_json:
        print_json(asdict(found))
    else:
        console.print(f"{escape(name)} v{found.version} is archived")


def history(name: Name, home: Home = None, as_json: Json = False) -> None:
    """The audit trail: every alias change, promotion, rollback, archive and gc, with who, when and why."""
    with clear_errors(), open_store(home) as store:
        events = store.models.history(name)
    if as_json:
        print_json([e.to_dict() for e in events])
        return
    rows = [
        (
            e.at.strftime("%Y-%m-%d %H:%M:%S"),
            e.action,
            e.alias or "",
            _version(e.from_version),
            _version(e.to_version),
            escape(e.actor or "?"),
            escape(e.reason),
        )
        for e in events
    ]
    console.print(
        table(f"history of {escape(name)}", ["at (UTC)", "action", "alias", "from", "to", "who", "why"], rows)
    )


def gc(
    name: Name,
    keep: Annotated[int, typer.Option("--keep", help="Archived versions to keep, newest first.")] = 5,
    older_than: Annotated[
        str | None, typer.Option("--older-than", help="Only delete versions archived longer ago, e.g. 30d, 12h.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would go; change nothing.")] = False,
    grace: Annotated[
        str,
        typer.Option(
            "--grace",
            help="Leave artifacts written or re-stored this recently (a registration in progress may be about to "
            "reference them); 0 for none.",
        ),
    ] = "10m",
    reason: Reason = "manual gc",
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Delete archived versions beyond the retention rule and their orphaned artifacts (never a version an alias
    points at, never production, never a candidate)."""
    age, recent = _age("--older-than", older_than), _age("--grace", grace)
    with clear_errors(), open_store(home) as store:
        report = store.models.gc(
            name,
            keep=keep,
            older_than=age,
            dry_run=dry_run,
            reason=reason,
            actor=actor(),
            grace=recent or timedelta(0),
        )
    if as_json:
        print_json(report.to_dict())
        return
    verb = "would delete" if dry_run else "deleted"
    gone = ", ".join(f"v{v}" for v in report.removed) or "no version"
    console.print(
        f"{escape(name)}: {verb} {gone}; {len(report.artifacts_removed)} artifact(s), {report.bytes_freed:,} bytes"
    )
    if report.kept:
        console.print(f"kept by the retention rule: {', '.join(f'v{v}' for v in report.kept)}")
    if report.protected:
        console.print(f"kept, an alias points at them: {', '.join(f'v{v}' for v in report.protected)}")
    shared = len(report.artifacts_kept)
    if shared:
        console.print(f"{shared} of their artifact(s) stay: still referenced elsewhere, or written within --grace")


def _age(flag: str, text: str | None) -> timedelta | None:
    if text is None or text.strip() in ("0", "0s"):
        return None
    from loopline.core.config import parse_duration

    with clear_errors():
        try:
            return parse_duration(text)
        except ValueError as exc:
            raise ConfigError(f"{flag}: {exc}.", hint=f"Write it like {flag} 30d.") from None


def _version(value: int | None) -> str:
    return "-" if value is None else f"v{value}"
