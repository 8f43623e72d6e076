from __future__ import annotations

import subprocess
import sys

import loopline.monitor


def test_all_is_sorted_and_exported() -> None:
    names = loopline.monitor.__all__
    # isort style, as ruff's RUF022 keeps it: CONSTANTS, then Classes, then functions, each alphabetical
    assert names == sorted(names, key=lambda name: (not name.isupper(), not name[0].isupper(), name))
    assert all(hasattr(loopline.monitor, name) for name in names)


def test_import_does_not_load_matplotlib() -> None:
    code = "import sys, loopline.monitor; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
