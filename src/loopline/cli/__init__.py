"""The ``loopline`` command line (typer)."""

from loopline.cli._app import app, main

__all__ = ["app", "main"]
