"""Built-in table and model steps: join, derive, split, train, select (with the gate)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from loopline import ConfigError, DataError, Pipeline
from loopline.core import STEP_TYPES, StepContext, parse_pipeline
from loopline.run import Runner, retrain_params
from loopline.store import Store


def run_step(type_name: str, inputs: list[object], store: Store | None = None, **config: object) -> object:
    step_type = STEP_TYPES.get(type_name)
    ctx = StepContext(run_id="test-run", step="s", params={}, store=store)
    return step_type.run(step_type.Config.model_validate(config), inputs, ctx)


def test_join_takes_only_named_columns_and_keeps_left_rows() -> None:
    left = pl.DataFrame({"k": [1, 2, 3], "a": [10, 20, 30]})
    right = pl.DataFrame({"k": [1, 1, 2], "b": [5, 6, 7], "noise": [0, 0, 0]})
    out = run_step("join", [left, right], on=["k"], columns=["b"])["out"]  # type: ignore[index]
    assert out.columns == ["k", "a", "b"]
    assert out["b"].to_list() == [5, 7, None]  # duplicate right keys do not multiply rows


def test_join_names_a_missing_key() -> None:
    with pytest.raises(DataError, match="column 'kk' is not in the second input.*Did you mean 'k'"):
        run_step("join", [pl.DataFrame({"kk": [1]}), pl.DataFrame({"k": [1]})], on=["kk"])


def test_derive_columns_filter_window_and_drop() -> None:
    frame = pl.DataFrame({"t": [datetime(2024, m, 1, tzinfo=UTC) for m in (1, 2, 3)], "d": [5, 20, None]})
    out = run_step(
        "derive",
        [frame],
        columns={"late": "d > 15", "month": "EXTRACT(month FROM t)"},
        filter="d IS NOT NULL",
        window={"column": "t", "start": "2024-01-15"},
        drop=["d"],
    )["out"]  # type: ignore[index]
    assert out.to_dicts() == [{"t": datetime(2024, 2, 1, tzinfo=UTC), "late": True, "month": 2}]


def test_derive_expression_errors_name_the_column() -> None:
    with pytest.raises(DataError, match="Did you mean 'delay'"):
        run_step("derive", [pl.DataFrame({"delay": [1]})], columns={"late": "delya > 15"})


def test_window_needs_a_timestamp_column() -> None:
    with pytest.raises(DataError, match="parse_dates"):
        run_step("derive", [pl.DataFrame({"t": ["2024-01-01"]})], window={"column": "t", "start": "2024-01-01"})


def labelled(rows: int, seed: int, shift: float = 0.0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows) + shift
    return pl.DataFrame(
        {"x": x, "g": rng.choice(["a", "b"], rows), "y": (x - shift + rng.normal(scale=0.7, size=rows)) > 0}
    )


def test_select_registers_promotes_and_gates(tmp_path: object, store: Store) -> None:
    data = labelled(1200, 0)
    pipeline = (
        Pipeline("gate")
        .add("data", lambda: data)
        .add("split", "split", inputs=["data"], target="y", method="random")
        .add(
            "lin",
            "train",
            inputs=["split.train", "split.valid", "split.test"],
            target="y",
            numeric=["x"],
            categorical=["g"],
            estimator="logistic_regression",
        )
        .add("best", "select", inputs=["lin", "split.test"], model="gated")
    )
    first = Runner(store).run(pipeline).output("best")
    assert first["promote"] and first["reason"] == "no production model yet"
    production = store.models.production("gated")
    assert production is not None and production.version == 1
    assert store.artifacts.get_table(production.reference_digest).columns == ["x", "g"]  # type: ignore[arg-type]
    # a worse challenger (trained on noise) must not replace the champion
    noise = data.with_columns(pl.Series("y", np.random.default_rng(5).random(data.height) > 0.5))
    worse = (
        Pipeline("gate")
        .add("data", lambda: noise)
        .add("split", "split", inputs=["data"], target="y", method="random")
        .add(
            "lin",
            "train",
            inputs=["split.train", "split.valid"],
            target="y",
            numeric=["x"],
            categorical=["g"],
            estimator="logistic_regression",
        )
        .add("holdout", lambda: data.tail(300))
        .add("best", "select", inputs=["lin", "holdout"], model="gated")
    )
    second = Runner(store).run(worse).output("best")
    assert second["promote"] is False
    assert second["gate"]["champion_score"] > second["gate"]["challenger_score"]
    assert store.models.production("gated").version == 1  # type: ignore[union-attr]
    # re-running the same pipeline registers nothing new
    Runner(store).run(pipeline)
    assert len(store.models.list("gated")) == 2


def test_select_refuses_an_input_that_is_not_a_candidate_naming_it(store: Store) -> None:
    split_outputs = {"train": labelled(5, 1), "report": {"method": "random", "rows": {"input": 5}}}
    with pytest.raises(ConfigError, match=r"steps.s.inputs\[0\] is not a candidate: it lacks bundle") as info:
        run_step("select", [split_outputs, labelled(5, 2)], store, model="m")
    assert info.value.key == "steps.s.inputs[0]"
    with pytest.raises(ConfigError, match=r"steps.s.inputs\[0\] is not a candidate: it has outputs out, not a"):
        run_step("select", [{"out": {"model": "m"}}], store, model="m")
    with pytest.raises(ConfigError, match=r"step 's' has no candidate among its inputs"):
        run_step("select", [labelled(5, 2)], store, model="m")
    assert store.models.names() == []


def test_select_names_its_metric_key_when_candidates_lack_the_metric(store: Store) -> None:
    data = labelled(400, 3).with_columns(pl.col("x").mul(2).alias("y"))  # a regression: no roc_auc
    pipeline = (
        Pipeline("metric")
        .add("data", lambda: data)
        .add("split", "split", inputs=["data"], target="y", method="random")
        .add("lin", "train", inputs=["split.train", "split.valid"], target="y", numeric=["x"], estimator="ridge")
        .add("best", "select", inputs=["lin"], model="metric", metric="roc_auc")
    )
    result = Runner(store).run(pipeline, raise_on_error=False)
    assert result.steps["lin"].status == "succeeded"
    error = result.steps["best"].error or ""
    assert "candidates have no valid metric 'roc_auc'" in error and "Set steps.best.metric to one of" in error


def test_retrain_params_move_the_window() -> None:
    assert retrain_params(datetime(2013, 7, 1, tzinfo=UTC), 3) == {
        "start": "2013-04-01T00:00:00Z",
        "valid_from": "2013-06-01T00:00:00Z",
        "test_from": "2013-06-16T00:00:00Z",
        "end": "2013-07-01T00:00:00Z",
    }


def test_split_step_by_group_reports_its_rows_and_seed(store: Store) -> None:
    data = labelled(300, 1).with_columns(pl.Series("customer", np.arange(300) % 30))
    pipeline = (
        Pipeline("grouped")
        .add("data", lambda: data)
        .add("split", "split", inputs=["data"], target="y", method="group", group_column="customer", seed=7)
        .add(
            "lin",
            "train",
            inputs=["split.train", "split.valid"],
            target="y",
            numeric=["x"],
            estimator="logistic_regression",
        )
    )
    result = Runner(store).run(pipeline)
    parts = [set(result.output("split", name)["customer"].to_list()) for name in ("train", "valid", "test")]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    report = result.output("split", "report")
    assert report["method"] == "group" and report["seed"] == 7
    assert report["rows"]["input"] == 300 and sum(report["rows"][n] for n in ("train", "valid", "test")) == 300
    assert report["dropped"] == {"null_target": 0, "gap": 0}
    assert result.output("lin", "report")["rows"]["train"] == report["rows"]["train"]


def test_split_step_time_gap_drops_and_counts_rows() -> None:
    days = pl.datetime_range(datetime(2024, 1, 1), datetime(2024, 1, 30), "1d", time_zone="UTC", eager=True)
    frame = pl.DataFrame({"t": days, "y": [i % 2 if i != 3 else None for i in range(30)]})
    out = run_step(
        "split", [frame], target="y", time_column="t", valid_from="2024-01-21", test_from="2024-01-26", gap="2d"
    )
    report = out["report"]  # type: ignore[index]
    assert report["rows"] == {"input": 30, "train": 17, "valid": 3, "test": 5}  # day 4 has no label
    assert report["dropped"] == {"null_target": 1, "gap": 4}
    assert report["step_config"]["gap"] == "P2D"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"method": "group"}, "method 'group' needs group_column"),
        ({"method": "random", "group_column": "x"}, "group_column only applies to method 'group'"),
        ({"method": "random", "gap": "1d"}, "gap only applies to method 'time'"),
        ({"gap": "a week"}, "gap 'a week' is not a duration"),
        ({"gap": "-P1D"}, "is negative"),
    ],
)
def test_split_step_config_refuses_options_that_do_not_fit(config: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Pipeline("bad").add("data", lambda: labelled(10, 0)).add(
            "split", "split", inputs=["data"], target="y", **config
        ).bind()


def test_a_pipeline_splits_on_an_integer_year() -> None:
    """``valid_from: 2013`` stays the year 2013 (pydantic alone reads a number as 1970-01-01T00:33:33)."""
    pipeline = parse_pipeline(
        "name: yearly\nsteps:\n  data: {type: file, path: data.csv}\n"
        "  split: {type: split, inputs: [data], target: y, time_column: year, valid_from: 2013, test_from: 2014}\n"
    )
    split = pipeline.bind()["split"].config
    assert split.valid_from == 2013 and split.test_from == 2014  # type: ignore[attr-defined]
    data = labelled(200, 3).with_columns(pl.Series("year", 2010 + np.arange(200) % 5))
    out = run_step("split", [data], **split.model_dump(mode="json"))
    assert out["report"]["rows"] == {"input": 200, "train": 120, "valid": 40, "test": 40}  # type: ignore[index]
    assert {part: sorted(set(out[part]["year"])) for part in ("valid", "test")} == {  # type: ignore[index]
        "valid": [2013],
        "test": [2014],
    }


def leaky_pipeline(data: pl.DataFrame, **select: object) -> Pipeline:
    """``late_minutes`` is the label in disguise (minutes late, known only once the label is)."""
    return (
        Pipeline("leak")
        .add("data", lambda: data)
        .add("split", "split", inputs=["data"], target="y", method="random")
        .add(
            "lin",
            "train",
            inputs=["split.train", "split.valid", "split.test"],
            target="y",
            numeric=["x", "late_minutes", "sensor"],
            categorical=["g"],
            estimator="logistic_regression",
        )
        .add("best", "select", inputs=["lin", "split.test"], model="leak", **select)
    )


def leaky(rows: int) -> pl.DataFrame:
    data = labelled(rows, 0)
    noise = np.random.default_rng(1).normal(scale=3.0, size=rows)
    return data.with_columns(
        pl.Series("late_minutes", np.where(data["y"].to_numpy(), 30.0, 0.0) + noise),
        pl.lit(None, dtype=pl.Float64).alias("sensor"),
    )


def test_select_refuses_a_candidate_trained_on_a_target_derived_feature(store: Store) -> None:
    result = Runner(store).run(leaky_pipeline(leaky(3000)))
    selection = result.output("best")
    assert selection["promote"] is False and store.models.production("leak") is None
    reason = selection["reason"]
    assert reason.startswith("v1 is suspicious, not promoted: feature 'late_minutes' alone predicts the target")
    assert "set steps.best.allow_suspicious: true to promote it anyway" in reason
    (row,) = selection["leaderboard"]
    flagged = {(f["kind"], f["feature"], f["action"]) for f in row["findings"]}
    assert flagged == {
        ("target_leakage", "late_minutes", "flagged"),
        ("perfect_score", None, "flagged"),
        ("all_null", "sensor", "dropped"),
    }
    version = store.models.get("leak", 1)
    assert [f.feature for f in version.typed_config.suspicious] == ["late_minutes", None]
    assert result.output("lin", "report")["findings"] == row["findings"]


def test_select_promotes_a_suspicious_candidate_it_is_allowed_to_and_keeps_the_flags(store: Store) -> None:
    selection = Runner(store).run(leaky_pipeline(leaky(3000), allow_suspicious=True)).output("best")
    assert selection["promote"] is True and store.models.production("leak").version == 1  # type: ignore[union-attr]
    assert "promoted as steps.best.allow_suspicious is true" in selection["reason"]
    assert {f["kind"] for f in selection["leaderboard"][0]["findings"]} == {
        "target_leakage",
        "perfect_score",
        "all_null",
    }


def test_allow_suspicious_is_validated() -> None:
    with pytest.raises(ConfigError, match="allow_suspicious"):
        leaky_pipeline(leaky(200), allow_suspicious="sometimes").bind({})
