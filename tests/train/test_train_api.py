from __future__ import annotations

import loopline.train


def _isort_key(name: str) -> tuple[int, str]:
    """Constants, then classes, then functions (the order ruff's RUF022 keeps)."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_public_names_are_sorted_and_exist() -> None:
    assert loopline.train.__all__ == sorted(loopline.train.__all__, key=_isort_key)
    assert all(hasattr(loopline.train, name) for name in loopline.train.__all__)
    assert {
        "ESTIMATORS",
        "METRIC_DIRECTION",
        "ModelBundle",
        "TrainResult",
        "compute_metrics",
        "split_table",
        "train_candidate",
    } <= set(loopline.train.__all__)
