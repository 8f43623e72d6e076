"""The exception hierarchy: one root, messages that end with the fix."""

from __future__ import annotations

import pytest

from loopline.core import errors


@pytest.mark.parametrize(
    "cls",
    [
        errors.ConfigError,
        errors.DataError,
        errors.StoreError,
        errors.NotFoundError,
        errors.ConflictError,
        errors.IntegrityError,
        errors.UnsafeArtifactError,
    ],
)
def test_every_error_is_a_loopline_error(cls: type[Exception]) -> None:
    assert issubclass(cls, errors.LooplineError)


def test_message_ends_with_the_hint() -> None:
    error = errors.ConfigError("bad key.", file="p.yaml", line=3, hint="Rename it.")
    assert str(error) == "p.yaml:3: bad key. Rename it."


def test_missing_extra_names_the_install_command() -> None:
    assert "pip install 'loopline[postgres]'" in str(errors.MissingExtraError("psycopg", "postgres"))


def test_step_error_names_the_step() -> None:
    assert str(errors.StepError("train", "boom")).startswith("step 'train' failed: boom")


def test_schema_validation_error_counts_the_rest() -> None:
    error = errors.SchemaValidationError([{"field": "a", "reason": "x"}, {"field": "b", "reason": "y"}])
    assert str(error) == "field 'a': x (and 1 more)"
