"""The floor on how many tests a full run collects, so that a narrowed test command fails instead of passing.

CI (``.ci/run``) sets ``LOOPLINE_MIN_TESTS`` before it runs the README's test command; ``tests/conftest.py`` stops
the session after collection when fewer tests were selected (a path, ``-k`` or ``-m`` that narrows the run).
Without the variable nothing is checked, so running one file during development is unaffected.
"""

from __future__ import annotations

FLOOR_ENV = "LOOPLINE_MIN_TESTS"
COUNT_FILE_ENV = "LOOPLINE_COLLECTED_FILE"


def floor_error(collected: int, floor: str | None) -> str | None:
    """Why a session of ``collected`` tests breaks the floor ``floor`` (the variable's text), or None when it holds.

    No floor (unset or blank) holds; a floor that is not a non-negative integer is an error, never ignored.
    """
    if floor is None or not floor.strip():
        return None
    try:
        minimum = int(floor)
    except ValueError:
        return f"{FLOOR_ENV}={floor!r} is not a whole number of tests"
    if minimum < 0:
        return f"{FLOOR_ENV}={floor!r} is negative"
    if collected < minimum:
        return (
            f"collected {collected} tests, under the floor of {minimum} ({FLOOR_ENV}): the test command runs part "
            "of the suite (a path, -k or -m narrows it). Run the whole suite, or lower the floor in .ci/run if "
            "tests were removed on purpose."
        )
    return None
