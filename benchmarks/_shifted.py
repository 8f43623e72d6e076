"""Two seeded tables, reference and current, with five columns of ``current`` shifted on purpose (bench_monitor).

14 numeric and 6 categorical columns of varied shapes (normal, skewed, heavy-tailed, bimodal, counts, a 200-level
Zipf categorical; a few nulls). :data:`SHIFTS` lists the shifted columns and how; the other 15 are drawn from the
same distributions on both sides, so any drift flagged there is a false alarm.
(``loopline.testing.shifted_tables`` may replace this one; the lead unifies them.)
"""

from __future__ import annotations

import numpy as np
import polars as pl

NUMERIC = [f"n{i:02d}" for i in range(14)]
CATEGORICAL = [f"c{i}" for i in range(6)]
SHIFTS = {
    "n00": "mean shifted by 0.25 sd (normal 100, 15)",
    "n01": "scale x1.3 about the mean (gamma 4, 2.5)",
    "n02": "15% of rows from a component 2 sd away (normal 0, 1)",
    "c0": "4 levels, shares 40/30/20/10% -> 30/30/20/20%",
    "c1": "12 levels (Zipf), the second level's share doubled",
}
"""The deliberately shifted columns of ``current``; every other column is drawn as in ``reference``."""


def _zipf(levels: int, power: float = 1.0) -> np.ndarray:
    weights = 1.0 / np.arange(1, levels + 1) ** power
    share: np.ndarray = weights / weights.sum()
    return share


def _numeric(rng: np.random.Generator, rows: int, shifted: bool) -> dict[str, np.ndarray]:
    """14 numeric columns: n00-n02 shifted when ``shifted``, n03-n13 always drawn alike (a few with nulls)."""
    mix = rng.random(rows) < (0.15 if shifted else 0.0)
    columns = {
        "n00": rng.normal(100 + (0.25 * 15 if shifted else 0.0), 15, rows),
        "n01": 10 + (1.3 if shifted else 1.0) * (rng.gamma(4, 2.5, rows) - 10),
        "n02": np.where(mix, rng.normal(2, 1, rows), rng.normal(0, 1, rows)),
        "n03": rng.lognormal(3, 0.8, rows),
        "n04": rng.exponential(2.0, rows),
        "n05": rng.uniform(-1, 1, rows),
        "n06": rng.poisson(3, rows).astype(float),
        "n07": np.where(rng.random(rows) < 0.4, rng.normal(-2, 0.5, rows), rng.normal(3, 1, rows)),
        "n08": rng.normal(0, 1, rows),
        "n09": rng.beta(2, 5, rows),
        "n10": rng.standard_t(3, rows),
        "n11": rng.integers(0, 24, rows).astype(float),
        "n12": rng.normal(1e6, 2e5, rows),
        "n13": rng.normal(20, 4, rows),
    }
    for name in ("n08", "n13"):  # 2% nulls, alike on both sides
        columns[name][rng.random(rows) < 0.02] = np.nan
    return columns


def _categorical(rng: np.random.Generator, rows: int, shifted: bool) -> dict[str, np.ndarray]:
    """6 categorical columns: c0-c1 shifted when ``shifted``, c2-c5 always drawn alike (c5 with nulls)."""
    c1 = _zipf(12)
    if shifted:
        c1[1] *= 2
        c1 /= c1.sum()
    levels = {
        "c0": (np.array([0.3, 0.3, 0.2, 0.2] if shifted else [0.4, 0.3, 0.2, 0.1]), "a"),
        "c1": (c1, "b"),
        "c2": (np.array([0.7, 0.3]), "yes"),
        "c3": (np.full(7, 1 / 7), "d"),
        "c4": (_zipf(30), "e"),
        "c5": (_zipf(200, 1.1), "f"),
    }
    columns: dict[str, np.ndarray] = {}
    for name, (share, prefix) in levels.items():
        names = np.array([f"{prefix}{i}" for i in range(len(share))], dtype=object)
        columns[name] = names[rng.choice(len(share), rows, p=share)]
    columns["c5"][rng.random(rows) < 0.01] = None
    return columns


def shifted_tables(rows: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(reference, current): ``rows`` x 20 each, seeded; ``current`` shifted in the :data:`SHIFTS` columns only."""
    rng = np.random.default_rng(seed)
    frames = []
    for shifted in (False, True):
        data = {**_numeric(rng, rows, shifted), **_categorical(rng, rows, shifted)}
        frame = pl.DataFrame({name: pl.Series(name, values, strict=False) for name, values in data.items()})
        frames.append(frame.with_columns(pl.col(NUMERIC).fill_nan(None)))
    return frames[0], frames[1]
