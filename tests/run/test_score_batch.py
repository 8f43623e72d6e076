"""Batch scoring: file or dataset in, scores out, chunk by chunk, equal to scoring the whole table at once."""

from __future__ import annotations

import contextlib
import gzip
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from tests._candidates import put_dataset, register_bundle

from loopline.core.cpu import CoreBudget, use_core_budget
from loopline.core.errors import ConfigError, DataError, DiskFullError, NotFoundError
from loopline.run import ScoreProgress, score_batch
from loopline.store import Store
from loopline.train import ModelBundle, TrainSpec, train_candidate

TRANSFORMS = [
    {"type": "impute", "columns": ["amount", "qty"], "strategy": "median", "add_indicator": True},
    {"type": "derive", "columns": {"per_item": "amount / (qty + 1)", "hour": "hour(at)"}},
    {"type": "onehot", "columns": ["city"], "min_frequency": 5},
    {"type": "scale", "columns": ["amount", "per_item"], "method": "robust"},
    {"type": "drop", "columns": ["at"]},
]
START = datetime(2024, 1, 1, tzinfo=UTC)


def make_frame(rows: int, seed: int) -> pl.DataFrame:
    """Orders with nulls, an integer, a category and UTC timestamps; ``label`` is the target."""
    rng = np.random.default_rng(seed)
    amount = rng.gamma(2.0, 30.0, rows)
    amount[rng.random(rows) < 0.1] = np.nan
    qty = rng.integers(0, 6, rows)
    city = rng.choice(["lyon", "paris", "nice", "brest"], rows, p=[0.5, 0.3, 0.18, 0.02])
    at = [START + timedelta(minutes=int(m)) for m in rng.integers(0, 60 * 24 * 30, rows)]
    label = (np.nan_to_num(amount, nan=50) / (qty + 1) + (city == "paris") * 20 + rng.normal(0, 10, rows)) > 30
    return pl.DataFrame(
        {"order_id": np.arange(rows), "amount": amount, "qty": qty, "city": city, "at": at, "label": label},
        schema_overrides={"at": pl.Datetime("us", "UTC")},
    ).with_columns(pl.col("amount").fill_nan(None))


def register(store: Store, name: str, bundle: ModelBundle) -> int:
    return register_bundle(store, name, bundle).version


def train(estimator: str, *, transforms: bool, target: str = "label", seed: int = 1) -> ModelBundle:
    frame = make_frame(500, seed).drop("order_id")
    if target != "label":
        frame = frame.drop("label").with_columns(pl.col("amount").fill_null(0.0).alias(target))
    numeric, categorical = (["amount", "qty"], ["city", "at"]) if transforms else (["qty"], ["city"])
    if not transforms:
        frame = frame.select([*numeric, *categorical, target])
    result = train_candidate(
        frame.head(400),
        frame.tail(100),
        TrainSpec(
            target=target,
            numeric=numeric,
            categorical=categorical,
            estimator=estimator,
            transforms=TRANSFORMS if transforms else [],
        ),
    )
    return ModelBundle.from_bytes(result.bundle.to_bytes())  # as stored: what scoring loads


@pytest.fixture(scope="module")
def chained() -> ModelBundle:
    return train("logistic_regression", transforms=True)


@pytest.fixture
def store(tmp_path: Path, chained: ModelBundle) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'loopline.db'}", tmp_path / "artifacts")
    opened.models.promote("shop", register(opened, "shop", chained))
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def orders() -> pl.DataFrame:
    return make_frame(1_000, 7).drop("label")


def write(frame: pl.DataFrame, path: Path) -> Path:
    """``frame`` as CSV, Parquet or JSON Lines by ``path``'s name (.gz compressed)."""
    plain = path.with_suffix("") if path.suffix == ".gz" else path
    data = frame.write_csv() if plain.suffix == ".csv" else frame.write_ndjson() if plain.suffix == ".jsonl" else None
    if data is None:
        frame.write_parquet(path)
    elif path.suffix == ".gz":
        path.write_bytes(gzip.compress(data.encode()))
    else:
        path.write_text(data)
    return path


def expected(bundle: ModelBundle, frame: pl.DataFrame) -> dict[str, np.ndarray]:
    """Offline batch scoring: the bundle's one prediction function on the whole table."""
    out = bundle.predict_table(frame)
    return {
        "prediction": out["prediction"],
        **{f"proba_{c}": out["probability"][:, i] for i, c in enumerate(bundle.classes or [])},
    }


@pytest.mark.parametrize("name", ["in.csv", "in.parquet", "in.jsonl", "in.csv.gz", "in.jsonl.gz"])
def test_scores_equal_scoring_the_whole_table(
    store: Store, chained: ModelBundle, orders: pl.DataFrame, tmp_path: Path, name: str
) -> None:
    source = write(orders, tmp_path / name)
    done = score_batch(store, "shop", source, tmp_path / "out.parquet", chunk_rows=128, keep=["order_id"])
    out = pl.read_parquet(tmp_path / "out.parquet")
    assert out.columns == ["order_id", "prediction", "proba_False", "proba_True"]
    assert out["order_id"].to_list() == orders["order_id"].to_list()
    for column, values in expected(chained, orders).items():
        assert np.array_equal(out[column].to_numpy(), values), column  # bit for bit
    assert (done.rows, done.chunks, done.max_chunk_rows, done.version) == (1_000, 8, 128, 1)
    assert done.output == (tmp_path / "out.parquet").resolve()


def test_chunk_boundaries_do_not_change_the_output(store: Store, orders: pl.DataFrame, tmp_path: Path) -> None:
    source = write(orders, tmp_path / "in.csv")
    seen: list[ScoreProgress] = []
    small = score_batch(store, "shop", source, tmp_path / "small.csv", chunk_rows=7, progress=seen.append)
    score_batch(store, "shop", source, tmp_path / "large.csv", chunk_rows=10_000)
    assert (tmp_path / "small.csv").read_bytes() == (tmp_path / "large.csv").read_bytes()
    assert small.chunks == len(seen) == 16  # 7 rounded up to 64 rows, so BLAS gives the whole table's bits
    assert max(p.chunk_rows for p in seen) == 64
    assert [p.rows for p in seen][-2:] == [960, 1_000]
    assert all(p.total is None for p in seen)  # a CSV's length is not known before reading it


def test_output_formats_hold_the_same_scores(store: Store, orders: pl.DataFrame, tmp_path: Path) -> None:
    source = write(orders, tmp_path / "in.parquet")
    seen: list[ScoreProgress] = []
    score_batch(store, "shop", source, tmp_path / "out.parquet", chunk_rows=300, progress=seen.append)
    reference = pl.read_parquet(tmp_path / "out.parquet")
    assert [p.total for p in seen] == [1_000] * 4  # a Parquet file's length is in its footer
    for name in ("out.csv", "out.jsonl", "out.csv.gz", "out.jsonl.gz"):
        score_batch(store, "shop", source, tmp_path / name, chunk_rows=300)
        data = (tmp_path / name).read_bytes()
        data = gzip.decompress(data) if name.endswith(".gz") else data
        back = pl.read_csv(data) if ".csv" in name else pl.read_ndjson(data)
        assert back.equals(reference), name  # floats round-trip through text exactly


def test_model_without_a_chain_and_a_regressor(store: Store, orders: pl.DataFrame, tmp_path: Path) -> None:
    plain = train("logistic_regression", transforms=False)
    regressor = train("linear_regression", transforms=False, target="spend")
    register(store, "plain", plain)
    register(store, "spend", regressor)
    source = write(orders, tmp_path / "in.jsonl")
    score_batch(store, "plain", source, tmp_path / "plain.parquet", version=1, chunk_rows=64)
    score_batch(store, "spend", source, tmp_path / "spend.parquet", version=1, chunk_rows=64, keep=["city"])
    out = pl.read_parquet(tmp_path / "plain.parquet")
    assert np.array_equal(out["proba_True"].to_numpy(), expected(plain, orders)["proba_True"])
    spend = pl.read_parquet(tmp_path / "spend.parquet")
    assert spend.columns == ["city", "prediction"]
    assert np.array_equal(spend["prediction"].to_numpy(), regressor.predict_table(orders)["prediction"])


def test_a_dataset_version_is_an_input(
    store: Store, chained: ModelBundle, orders: pl.DataFrame, tmp_path: Path
) -> None:
    put_dataset(store, "orders", orders.head(600))
    second = put_dataset(store, "orders", orders.tail(400))  # a second part: version 2 holds both
    done = score_batch(store, "shop", f"dataset:orders@{second}", tmp_path / "all.parquet", chunk_rows=256)
    first = score_batch(store, "shop", "dataset:orders@1", tmp_path / "first.parquet", chunk_rows=256)
    out = pl.read_parquet(tmp_path / "all.parquet")
    assert np.array_equal(out["proba_True"].to_numpy(), expected(chained, orders)["proba_True"])
    assert (done.input, done.rows, done.chunks, first.rows) == ("dataset:orders@2", 1_000, 4, 600)  # across parts
    with pytest.raises(NotFoundError, match="Did you mean 'orders'"):
        score_batch(store, "shop", "dataset:order", tmp_path / "none.parquet")
    with pytest.raises(ConfigError, match="dataset:NAME@3"):
        score_batch(store, "shop", "dataset:orders@latest", tmp_path / "none.parquet")


def test_a_missing_column_is_named_before_anything_is_written(
    store: Store, orders: pl.DataFrame, tmp_path: Path
) -> None:
    source = write(orders.rename({"city": "citi"}), tmp_path / "in.parquet")
    with pytest.raises(DataError, match=r"no column 'city'.*Did you mean 'citi'\? Rename it to 'city'"):
        score_batch(store, "shop", source, tmp_path / "out.parquet")
    with pytest.raises(ConfigError, match="--keep 'order'.*Did you mean 'order_id'"):
        score_batch(store, "shop", write(orders, tmp_path / "ok.parquet"), tmp_path / "out.parquet", keep=["order"])
    with pytest.raises(ConfigError, match="clash"):
        renamed = orders.rename({"order_id": "prediction"})
        score_batch(
            store, "shop", write(renamed, tmp_path / "p.parquet"), tmp_path / "out.parquet", keep=["prediction"]
        )
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("out", ".out"))) == []


@pytest.mark.parametrize("name", ["out.txt", "out", "out.parquet.gz", "out.tsv"])
def test_an_output_name_without_a_known_format_is_refused(
    store: Store, orders: pl.DataFrame, tmp_path: Path, name: str
) -> None:
    with pytest.raises(ConfigError, match=r"cannot tell which format.*\.parquet, \.csv or \.jsonl"):
        score_batch(store, "shop", write(orders, tmp_path / "in.parquet"), tmp_path / name)
    assert not (tmp_path / name).exists()


def test_an_existing_output_is_replaced_only_with_force(store: Store, orders: pl.DataFrame, tmp_path: Path) -> None:
    source = write(orders, tmp_path / "in.parquet")
    (tmp_path / "out.csv").write_text("keep me\n")
    with pytest.raises(ConfigError, match="already exists. Pass --force"):
        score_batch(store, "shop", source, tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_text() == "keep me\n"
    score_batch(store, "shop", source, tmp_path / "out.csv", force=True)
    assert pl.read_csv(tmp_path / "out.csv").height == 1_000
    with pytest.raises(ConfigError, match="is the input file"):
        score_batch(store, "shop", source, source, force=True)
    with pytest.raises(ConfigError, match="inside the artifact store"):
        score_batch(store, "shop", source, tmp_path / "artifacts" / "scores.parquet")


def test_a_failure_midway_leaves_no_output(store: Store, orders: pl.DataFrame, tmp_path: Path) -> None:
    text = orders.with_columns(pl.col("at").dt.to_string("%Y-%m-%dT%H:%M:%S%z"))
    broken = text.with_columns(
        pl.when(pl.col("order_id") == 950).then(pl.lit("not a time")).otherwise(pl.col("at")).alias("at")
    )
    source = write(broken, tmp_path / "in.csv")
    seen: list[ScoreProgress] = []
    out = tmp_path / "out.parquet"
    with pytest.raises(DataError, match=r"row 951, column 'at': expected an ISO-8601 date-time.*in rows 897–1000"):
        score_batch(store, "shop", source, out, chunk_rows=128, progress=seen.append)
    assert not out.exists()
    out.write_bytes(b"old")
    with pytest.raises(DataError, match="rows 897–1000"):
        score_batch(store, "shop", source, out, chunk_rows=128, force=True)
    assert seen[6].rows == 896  # seven chunks were written before the eighth failed
    assert (tmp_path / "out.parquet").read_bytes() == b"old"  # the old file stays whole
    assert [p.name for p in tmp_path.iterdir() if "out" in p.name] == ["out.parquet"]  # no temporary file left


def test_model_versions_and_unknown_models(
    store: Store, chained: ModelBundle, orders: pl.DataFrame, tmp_path: Path
) -> None:
    source = write(orders, tmp_path / "in.parquet")
    register(store, "shop", train("logistic_regression", transforms=True, seed=5))  # v2, not promoted
    assert score_batch(store, "shop", source, tmp_path / "prod.parquet").version == 1  # production
    assert score_batch(store, "shop", source, tmp_path / "v2.parquet", version=2).version == 2
    prod, v2 = pl.read_parquet(tmp_path / "prod.parquet"), pl.read_parquet(tmp_path / "v2.parquet")
    assert not prod["proba_True"].equals(v2["proba_True"])
    with pytest.raises(NotFoundError, match="has no version 3; its versions are 1, 2"):
        score_batch(store, "shop", source, tmp_path / "x.parquet", version=3)
    with pytest.raises(NotFoundError, match="'shopp' does not exist. Did you mean 'shop'"):
        score_batch(store, "shopp", source, tmp_path / "x.parquet")
    register(store, "draft", chained)
    with pytest.raises(NotFoundError, match="no production version.*--version.*models promote draft 1"):
        score_batch(store, "draft", source, tmp_path / "x.parquet")
    with pytest.raises(DataError, match="does not exist"):
        score_batch(store, "shop", tmp_path / "nope.csv", tmp_path / "x.parquet")


RSS_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    from loopline.run import score_batch
    from loopline.store import Store
    home = sys.argv[1]
    store = Store.open(f"sqlite:///{home}/loopline.db", f"{home}/artifacts")
    done = score_batch(store, "wide", sys.argv[2], sys.argv[3], chunk_rows=10_000)
    print(json.dumps({"rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rows": done.rows}))
    """
)


def test_memory_stays_bounded_whatever_the_input_size(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    names = [f"f{i}" for i in range(8)]
    table = pl.DataFrame({n: rng.normal(size=1_200_000) for n in names})
    labelled = table.head(2_000).with_columns(label=pl.col("f0") > 0)
    result = train_candidate(
        labelled.head(1_500),
        labelled.tail(500),
        TrainSpec(target="label", numeric=names, categorical=[], estimator="logistic_regression"),
    )
    with Store.open(f"sqlite:///{tmp_path / 'loopline.db'}", tmp_path / "artifacts") as store:
        store.models.promote("wide", register(store, "wide", result.bundle))
    write(table.head(200_000), tmp_path / "small.csv")
    write(table, tmp_path / "large.csv")  # 6 times as many rows

    def peak(name: str) -> float:
        args = [
            sys.executable,
            "-c",
            RSS_SCRIPT,
            str(tmp_path),
            str(tmp_path / name),
            str(tmp_path / f"{name}.parquet"),
        ]
        done = json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)
        return float(done["rss_mb"])

    growth = peak("large.csv") - peak("small.csv")
    extra_mb = table.tail(1_000_000).estimated_size("mb")  # the rows only the large input has: 61 MB
    assert growth < 0.25 * extra_mb, f"peak RSS grew {growth:.0f} MB for {extra_mb:.0f} MB more rows"
    assert pl.read_parquet(tmp_path / "large.csv.parquet").height == 1_200_000


def test_scoring_runs_on_cores_leased_from_the_process_budget(
    store: Store, orders: pl.DataFrame, tmp_path: Path
) -> None:
    budget = CoreBudget(1, load_aware=False)
    previous = use_core_budget(budget)
    seen: list[int] = []
    try:
        score_batch(
            store,
            "shop",
            write(orders, tmp_path / "in.csv"),
            tmp_path / "out.parquet",
            chunk_rows=256,
            progress=lambda _: seen.append(budget.free),
        )
    finally:
        use_core_budget(previous)
    assert seen and set(seen) == {0} and budget.free == 1  # held while scoring, given back after


def test_a_full_disk_is_reported_with_the_output_path_and_leaves_no_output(
    store: Store, orders: pl.DataFrame, tmp_path: Path, tiny_disk: Path
) -> None:
    source = write(orders, tmp_path / "in.csv")
    filler = tiny_disk / "filler"
    with open(filler, "wb") as handle, contextlib.suppress(OSError):
        while True:
            handle.write(b"\0" * 65536)
            handle.flush()
    out = tiny_disk / "out.jsonl"
    with pytest.raises(DiskFullError, match=f"no space left on the device holding {out}"):
        score_batch(store, "shop", source, out, chunk_rows=128)
    assert [p.name for p in tiny_disk.iterdir()] == ["filler"]  # no output, no temporary file
