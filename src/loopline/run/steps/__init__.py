"""Built-in step types. Each is an entry point of the ``loopline.steps`` group in ``pyproject.toml``, loaded
when the step registry is first used (never at ``import loopline``), exactly like a user's step types."""
