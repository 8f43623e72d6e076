"""The bundle package's public surface, the names loopline.train still re-exports, and how light it imports."""

from __future__ import annotations

import json
import subprocess
import sys

import loopline.bundle
import loopline.train


def _isort_key(name: str) -> tuple[int, str]:
    """Constants, then classes, then functions (the order ruff's RUF022 keeps)."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_public_names_are_sorted_and_exist() -> None:
    assert loopline.bundle.__all__ == sorted(loopline.bundle.__all__, key=_isort_key)
    assert all(hasattr(loopline.bundle, name) for name in loopline.bundle.__all__)
    assert {
        "ESTIMATORS",
        "EstimatorSpec",
        "ModelBundle",
        "compute_metrics",
        "trusted_types_for",
    } <= set(loopline.bundle.__all__)


def test_loopline_train_re_exports_the_same_objects() -> None:
    """``from loopline.train import ModelBundle`` keeps working: the very objects, not copies."""
    moved = [
        "ESTIMATORS",
        "ESTIMATOR_TYPES",
        "FORMAT_VERSION",
        "METRIC_DIRECTION",
        "TRUSTED_TYPES",
        "EstimatorSpec",
        "ModelBundle",
        "compute_metrics",
        "resolve_estimator",
    ]
    assert set(moved) <= set(loopline.train.__all__)
    assert all(getattr(loopline.train, name) is getattr(loopline.bundle, name) for name in moved)


def test_importing_the_bundle_imports_no_trainer_and_no_estimator_library() -> None:
    """scikit-learn, skops, LightGBM and XGBoost load when a bundle is loaded or built, not on import."""
    code = (
        "import json, sys, loopline.bundle; "
        "print(json.dumps(sorted(m for m in ('loopline.train', 'loopline.store', 'sklearn', 'skops', 'lightgbm', "
        "'xgboost') if m in sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(done.stdout) == []
