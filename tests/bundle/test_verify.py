"""The check a bundle passes before a stage changes: a real load, once per process for the same bytes."""

from __future__ import annotations

import pytest
from tests._candidates import frame, refused_type_bundle

from loopline.bundle import ModelBundle, _verify, check_servable
from loopline.core.errors import DataError, UnsafeArtifactError
from loopline.train import TrainSpec, train_candidate


@pytest.fixture(scope="module")
def bundle() -> bytes:
    spec = TrainSpec(target="label", numeric=["x"], categorical=["group"], estimator="logistic_regression")
    return train_candidate(frame(200, 1), frame(80, 2), spec).candidate(spec, data_fingerprint="fp").bundle


def test_the_same_bytes_are_loaded_once(bundle: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[int] = []
    real = _verify.verify_bundle
    monkeypatch.setattr(_verify, "verify_bundle", lambda data: loads.append(len(data)) or real(data))
    monkeypatch.setattr(_verify, "_PASSED", type(_verify._PASSED)())
    for _ in range(3):
        check_servable(bundle)
    assert loads == [len(bundle)]  # a select step registering and gating on every run loads it once
    check_servable(bundle + b"")  # equal bytes: remembered
    assert len(loads) == 1


def test_a_refusal_is_never_remembered(bundle: bytes) -> None:
    refused = refused_type_bundle(ModelBundle.from_bytes(bundle))
    for _ in range(2):
        with pytest.raises(UnsafeArtifactError):
            check_servable(refused)
    with pytest.raises(DataError, match="not a valid loopline model bundle"):
        check_servable(b"not a bundle")
