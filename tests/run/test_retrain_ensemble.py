"""monitor.retrain.strategy: ensemble end to end on a small time-windowed pipeline: the retrain promotes a version
serving the mean of the initial version, the window refit and the expanding refit, with its members recorded;
strategy best is unchanged."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from test_retrain import hourly  # tests/run has no __init__: its modules import by basename

from loopline import Pipeline
from loopline.bundle import EnsembleBundle, ModelBundle
from loopline.core.config import EnsembleConfig, MonitorConfig, RetrainConfig
from loopline.core.errors import ConfigError
from loopline.core.records import PERFORMANCE_REFERENCE_KEY
from loopline.core.yamlfile import parse_pipeline
from loopline.run import Runner, retrain_and_gate
from loopline.store import Store

END = datetime(2013, 6, 1, tzinfo=UTC)


def windowed(retrain: RetrainConfig, categorical: tuple[str, ...] = ("g",)) -> Pipeline:
    data = hourly()
    return (
        Pipeline(
            "ens",
            params={"start": "2013-01-01", "valid_from": "2013-03-01", "test_from": "2013-03-16", "end": "2013-04-01"},
            monitor=MonitorConfig(model="ens", retrain=retrain),
        )
        .add("data", lambda: data)
        .add(
            "window",
            "derive",
            inputs=["data"],
            window={"column": "at", "start": "${params.start}", "end": "${params.end}"},
        )
        .add(
            "split",
            "split",
            inputs=["window"],
            target="y",
            method="time",
            time_column="at",
            valid_from="${params.valid_from}",
            test_from="${params.test_from}",
        )
        .add(
            "lin",
            "train",
            inputs=["split.train", "split.valid", "split.test"],
            target="y",
            numeric=["x"],
            categorical=list(categorical),
            estimator="logistic_regression",
        )
        .add("best", "select", inputs=["lin", "split.test"], model="ens", metric="roc_auc")
    )


def bundle_of(store: Store, version: int) -> ModelBundle:
    return ModelBundle.from_bytes(store.artifacts.get_bytes(store.models.get("ens", version).bundle_digest))


def test_the_ensemble_strategy_promotes_the_mean_of_initial_window_and_expanding(store: Store) -> None:
    pipeline = windowed(RetrainConfig(strategy="ensemble", min_improvement=1e9))  # the gate would keep v1
    Runner(store).run(pipeline)
    assert store.models.production("ens").version == 1  # type: ignore[union-attr]
    selection = retrain_and_gate(store, pipeline, END)  # window 3 months: March-May; expanding: January-May
    assert selection.promote and selection.ensemble is not None
    assert "promoted without selection" in selection.reason and "keep the champion" in selection.reason
    production = store.models.production("ens")
    assert production is not None and production.version == selection.promoted == selection.ensemble
    lineage = production.typed_config.ensemble
    assert lineage is not None and [m.role for m in lineage.members] == ["initial", "window", "expanding"]
    initial, window, expanding = (store.models.get("ens", v) for v in lineage.versions)
    assert initial.version == 1 and production.algorithm == "ensemble"
    assert window.typed_config.refit is not None and expanding.typed_config.refit is not None
    assert window.typed_config.refit.of == expanding.typed_config.refit.of == selection.best
    # the expanding refit saw January-May, the window refit March-May
    assert sum(expanding.typed_config.refit.rows.values()) > sum(window.typed_config.refit.rows.values()) * 1.5
    assert store.models.events("ens")[-1]["reason"] == selection.reason
    served = bundle_of(store, production.version)
    assert isinstance(served, EnsembleBundle) and served.metadata["ensemble"] == lineage.to_dict()
    rows = hourly().tail(300)
    members = [bundle_of(store, v).predict_table(rows)["probability"] for v in lineage.versions]
    np.testing.assert_array_equal(served.predict_table(rows)["probability"], (members[0] + members[1] + members[2]) / 3)
    # its performance reference: the members before any refit (v1, the gated version twice), on the holdout (the
    # window's test split moved with it: May 16-31)
    reference = store.artifacts.get_table(production.config[PERFORMANCE_REFERENCE_KEY])
    unseen = [bundle_of(store, v) for v in (1, selection.best, selection.best)]
    holdout = hourly().filter((pl.col("at") >= datetime(2013, 5, 16, tzinfo=UTC)) & (pl.col("at") < END))
    assert reference.columns == ["probability", "label"] and reference.height == holdout.height
    mean = sum(b.predict_table(holdout)["probability"][:, 1] for b in unseen) / 3
    assert sorted(reference["probability"].to_list()) == pytest.approx(sorted(mean.tolist()))
    # the next retrain's initial member is still v1, not the ensemble
    again = retrain_and_gate(store, pipeline, datetime(2013, 7, 1, tzinfo=UTC))
    newest = store.models.get("ens", again.promoted)  # type: ignore[arg-type]
    assert newest.typed_config.ensemble is not None and newest.typed_config.ensemble.versions[0] == 1


def test_the_ensemble_gate_keeps_the_champion_when_the_gate_does(store: Store) -> None:
    pipeline = windowed(RetrainConfig(strategy="ensemble", min_improvement=1e9, ensemble=EnsembleConfig(gate=True)))
    Runner(store).run(pipeline)
    selection = retrain_and_gate(store, pipeline, END)
    assert not selection.promote and selection.ensemble is None and "no ensemble built" in selection.reason
    assert store.models.production("ens").version == 1  # type: ignore[union-attr]
    assert all(v.typed_config.ensemble is None for v in store.models.list("ens"))


def test_strategy_best_is_unchanged(store: Store) -> None:
    pipeline = windowed(RetrainConfig(min_improvement=-1.0))  # the challenger always wins
    Runner(store).run(pipeline)
    selection = retrain_and_gate(store, pipeline, END)
    assert selection.ensemble is None and selection.refit is not None and selection.refit.refitted
    production = store.models.production("ens")
    assert production is not None and production.version == selection.refit.version
    assert production.typed_config.ensemble is None and "ensemble" not in production.config
    assert not isinstance(bundle_of(store, production.version), EnsembleBundle)


def test_members_named_alone(store: Store) -> None:
    pipeline = windowed(RetrainConfig(strategy="ensemble", ensemble=EnsembleConfig(members=("initial", "window"))))
    Runner(store).run(pipeline)
    selection = retrain_and_gate(store, pipeline, END)
    lineage = store.models.get("ens", selection.promoted).typed_config.ensemble  # type: ignore[arg-type]
    assert lineage is not None and [m.role for m in lineage.members] == ["initial", "window"]


@pytest.mark.parametrize(
    ("retrain", "message"),
    [
        ({"strategy": "ensembel"}, "Did you mean 'ensemble'?"),
        ({"strategy": "ensemble", "ensemble": {"members": ["initial", "windw"]}}, "Did you mean 'window'?"),
        ({"ensemble": {"members": ["window", "window"]}}, "named once"),
        ({"ensemble": {"members": []}}, "at least 1"),
        ({"ensemble": {"membres": ["window"]}}, "Did you mean 'members'?"),
    ],
)
def test_config_errors_name_the_key_and_the_fix(retrain: dict[str, object], message: str) -> None:
    text = json.dumps(
        {
            "name": "p",
            "monitor": {"model": "m", "retrain": retrain},
            "steps": {"data": {"type": "file", "path": "x.csv"}},
        }
    )
    with pytest.raises(ConfigError, match=message) as caught:
        parse_pipeline(text)
    assert "monitor.retrain" in str(caught.value)


def test_models_show_names_the_members(
    store: Store, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from loopline.cli import app

    pipeline = windowed(RetrainConfig(strategy="ensemble", ensemble=EnsembleConfig(members=("initial", "window"))))
    Runner(store).run(pipeline)
    selection = retrain_and_gate(store, pipeline, END)
    monkeypatch.setenv("LOOPLINE_HOME", str(tmp_path))  # the store fixture's artifacts: tmp_path / "artifacts"
    monkeypatch.setenv("LOOPLINE_STORE_URL", store_url)
    result = CliRunner().invoke(app, ["models", "show", "ens", "--version", str(selection.promoted)])
    assert result.exit_code == 0, result.output
    window = store.models.get("ens", selection.promoted).typed_config.ensemble.versions[1]  # type: ignore[arg-type,union-attr]
    assert f"ensemble: the mean of v1 (initial), v{window} (window)" in result.output


def test_members_trained_on_other_inputs_are_a_config_error(store: Store) -> None:
    Runner(store).run(windowed(RetrainConfig()))  # v1 takes x and g
    later = windowed(RetrainConfig(strategy="ensemble"), categorical=())  # the features changed: x only
    with pytest.raises(ConfigError, match="initial.*takes other inputs") as caught:
        retrain_and_gate(store, later, END)
    assert caught.value.key == "monitor.retrain.ensemble.members" and "Leave out the member" in str(caught.value)
    assert store.models.production("ens").version == 1  # type: ignore[union-attr]
