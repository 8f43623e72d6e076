"""The pipeline templates ``loopline init`` writes: every ``*.yaml`` shipped in :mod:`loopline.templates`."""

from __future__ import annotations

from importlib.resources import files

from loopline.core.errors import ConfigError, did_you_mean


def templates() -> dict[str, str]:
    """Template name -> its summary (the first comment line, less a leading "Template: ")."""
    found = {}
    for entry in sorted(files("loopline.templates").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            first = entry.read_text(encoding="utf-8").splitlines()[0] if entry.is_file() else ""
            found[entry.name.removesuffix(".yaml")] = first.lstrip("# ").removeprefix("Template: ")
    return found


def template_text(name: str) -> str:
    """The text of template ``name``; ConfigError with a did-you-mean for an unknown one."""
    known = templates()
    if name not in known:
        hint = did_you_mean(name, known) or f"Templates: {', '.join(known)} (loopline init --list)."
        raise ConfigError(f"unknown template {name!r}.", key="template", hint=hint)
    return files("loopline.templates").joinpath(f"{name}.yaml").read_text(encoding="utf-8")
