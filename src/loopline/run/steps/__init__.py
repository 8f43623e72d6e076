"""Built-in step types, registered when the step registry is first used (never at ``import loopline``)."""

from loopline.run.steps import _ingest, _models, _sources, _tables

__all__ = ["_ingest", "_models", "_sources", "_tables"]
