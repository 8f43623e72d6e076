"""Seeded tables with known drift: the five shift kinds of issue 13 beside unchanged columns.

``shifted_tables(rows, seed)`` returns a reference frame, a current frame and the names of the columns whose
distribution changed. A drift check should flag exactly those; the benchmarks reuse it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

NUMERIC = ["mean_shift", "scale", "mixture", "steady_normal", "steady_skewed", "steady_count"]
CATEGORICAL = ["mix_change", "top_share", "steady_colour", "steady_flag", "steady_city"]
SHIFTED = ["mean_shift", "scale", "mixture", "mix_change", "top_share"]

_COLOURS = ["red", "green", "blue", "grey"]
_COLOUR_MIX = (0.4, 0.3, 0.2, 0.1)
_MIX, _SHIFTED_MIX = (0.4, 0.3, 0.2, 0.1), (0.25, 0.3, 0.25, 0.2)
_CITIES = [f"city_{i:03d}" for i in range(200)]


@dataclass(frozen=True)
class ShiftedTables:
    """``reference`` and ``current`` frames with the same columns; ``shifted`` names the changed ones."""

    reference: pl.DataFrame
    current: pl.DataFrame
    shifted: list[str]
    numeric: list[str]
    categorical: list[str]


def shifted_tables(rows: int, seed: int, *, current_rows: int | None = None, drift: bool = True) -> ShiftedTables:
    """A reference frame of ``rows`` rows and a current one of ``current_rows`` (default: ``rows``), seeded:
    five shifted columns and six unchanged ones. ``drift=False`` draws the current frame like the reference
    (``shifted`` is then empty): a no-drift case with the same columns.

    Shifted: ``mean_shift`` (normal, mean +0.25 sd), ``scale`` (normal, sd x1.3), ``mixture`` (15% of rows
    from a normal 3 sd away), ``mix_change`` (four categories, shares 0.4/0.3/0.2/0.1 -> 0.25/0.3/0.25/0.2),
    ``top_share`` (50 Zipf-like categories whose most common one falls from about 22% to 8%). Unchanged:
    a normal, a log-normal, a Poisson count, four colours, a binary flag and 200 Zipf-like cities.
    """
    rng = np.random.default_rng(seed)
    return ShiftedTables(
        _frame(rng, rows, shifted=False),
        _frame(rng, rows if current_rows is None else current_rows, shifted=drift),
        list(SHIFTED) if drift else [],
        list(NUMERIC),
        list(CATEGORICAL),
    )


def _frame(rng: np.random.Generator, rows: int, *, shifted: bool) -> pl.DataFrame:
    mixed = rng.random(rows) < (0.15 if shifted else 0.0)
    return pl.DataFrame(
        {
            "mean_shift": rng.normal(0.25 if shifted else 0.0, 1.0, rows),
            "scale": rng.normal(0.0, 1.3 if shifted else 1.0, rows),
            "mixture": np.where(mixed, rng.normal(3.0, 1.0, rows), rng.normal(0.0, 1.0, rows)),
            "steady_normal": rng.normal(10.0, 2.0, rows),
            "steady_skewed": rng.lognormal(0.0, 1.0, rows),
            "steady_count": rng.poisson(4.0, rows).astype(np.int64),
            "mix_change": rng.choice(_COLOURS, rows, p=list(_SHIFTED_MIX if shifted else _MIX)),
            "top_share": rng.choice(_zipf_names(50), rows, p=_zipf(50, top=0.08 if shifted else None)),
            "steady_colour": rng.choice(_COLOURS, rows, p=list(_COLOUR_MIX)),
            "steady_flag": rng.random(rows) < 0.3,
            "steady_city": rng.choice(_CITIES, rows, p=_zipf(200)),
        }
    )


def _zipf_names(count: int) -> list[str]:
    return [f"item_{i:02d}" for i in range(count)]


def _zipf(count: int, *, top: float | None = None) -> list[float]:
    """Shares proportional to 1/rank; with ``top``, the first gets that share and the rest keep their ratios."""
    weights = 1.0 / np.arange(1, count + 1)
    shares = weights / weights.sum()
    if top is not None:
        rest = shares[1:] / shares[1:].sum() * (1.0 - top)
        shares = np.concatenate([[top], rest])
    return [float(share) for share in shares]
