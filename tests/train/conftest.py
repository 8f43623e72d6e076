from __future__ import annotations

import palmerpenguins
import polars as pl
import pytest


@pytest.fixture(scope="session")
def penguins() -> pl.DataFrame:
    """Palmer penguins with a known sex, plus a bool and an int target."""
    df = pl.from_pandas(palmerpenguins.load_penguins()).filter(pl.col("sex").is_not_null())
    return df.with_columns(
        (pl.col("sex") == "male").alias("is_male"),
        pl.col("species").replace_strict({"Adelie": 0, "Chinstrap": 1, "Gentoo": 2}).alias("species_id"),
    )


@pytest.fixture(scope="session")
def halves(penguins: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A fixed train/valid cut with every class in both halves."""
    shuffled = penguins.sample(fraction=1.0, shuffle=True, seed=7)
    return shuffled[:220], shuffled[220:]
