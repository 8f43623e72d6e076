"""The golden corpus: every valid file loads, every invalid one gives its expected error and line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from loopline import ConfigError, Pipeline, load_pipeline

CORPUS = Path(__file__).parents[1] / "resources" / "pipelines"
EXPECTED = yaml.safe_load((CORPUS / "invalid" / "expected.yaml").read_text())


@pytest.mark.parametrize("path", sorted((CORPUS / "valid").glob("*.yaml")), ids=lambda p: p.name)
def test_valid_files_load(path: Path) -> None:
    pipeline = load_pipeline(path)
    assert isinstance(pipeline, Pipeline)
    assert pipeline.steps
    assert pipeline.bind()  # every step validates and the DAG orders


def test_every_invalid_file_has_an_expectation() -> None:
    files = {p.name for p in (CORPUS / "invalid").glob("*.yaml")} - {"expected.yaml"}
    assert files == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_invalid_files_fail_clearly(name: str) -> None:
    expected = EXPECTED[name]
    with pytest.raises(ConfigError) as caught:
        load_pipeline(CORPUS / "invalid" / name)
    error = caught.value
    assert expected["message"] in str(error)
    if "hint" in expected:
        assert error.hint is not None and expected["hint"] in error.hint
    assert error.line == expected["line"]
    assert name in str(error)  # the file is named


def test_missing_file_says_how_to_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist.*loopline init"):
        load_pipeline(tmp_path / "nope.yaml")
