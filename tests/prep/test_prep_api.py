from __future__ import annotations

import loopline.prep


def _isort_key(name: str) -> tuple[int, str]:
    """Constants, then classes, then functions (the order ruff's RUF022 keeps)."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_public_names_are_sorted_and_exist() -> None:
    assert loopline.prep.__all__ == sorted(loopline.prep.__all__, key=_isort_key)
    assert all(hasattr(loopline.prep, name) for name in loopline.prep.__all__)
    assert "Preprocessor" in loopline.prep.__all__
