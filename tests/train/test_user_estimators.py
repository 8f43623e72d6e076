"""A user's own estimator plugs in like a built-in: registered in code or by entry point, its bundle loads;
unregistered, refused.

The trust comes from the spec registered in the running process, never from the artifact: a bundle naming a
type no registered spec declares is refused, and the module it names is never imported.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import skops.io as sio
from _user_trainer import SPEC, Centroid, Other, OtherClassifier, Prototypes

from loopline import Pipeline
from loopline.core.errors import ConfigError, UnsafeArtifactError
from loopline.run import Runner
from loopline.store import Store
from loopline.testing import check_trainer
from loopline.train import ESTIMATORS, EstimatorSpec, ModelBundle, TrainSpec, train_candidate

NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm"]
Register = Callable[[EstimatorSpec], EstimatorSpec]


@pytest.fixture
def register(monkeypatch: pytest.MonkeyPatch) -> Iterator[Register]:
    """Registers specs for one test only (the registry has no removal; monkeypatch restores its table)."""
    ESTIMATORS.names()  # built-ins and entry points first, so the restore leaves them in place

    def add(spec: EstimatorSpec) -> EstimatorSpec:
        monkeypatch.setitem(ESTIMATORS._items, spec.name, spec)
        return spec

    yield add


def train(halves: tuple[pl.DataFrame, pl.DataFrame], spec: EstimatorSpec, **kwargs: Any) -> ModelBundle:
    return train_candidate(
        *halves, TrainSpec(target="species", numeric=NUMERIC, categorical=["island"], estimator=spec.name, **kwargs)
    ).bundle


def test_an_estimator_no_registered_spec_declares_is_refused(
    halves: tuple[pl.DataFrame, pl.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What happened to every user estimator before trusted_types: it trains, but its bundle never loads."""
    with monkeypatch.context() as patch:
        ESTIMATORS.names()
        patch.setitem(ESTIMATORS._items, SPEC.name, SPEC)
        data = train(halves, SPEC).to_bytes()
    assert SPEC.name not in ESTIMATORS
    with pytest.raises(UnsafeArtifactError, match=r"holds a '_user_trainer\.Centroid', which is not an estimator"):
        ModelBundle.from_bytes(data)


def test_a_registered_spec_s_bundle_loads_and_predicts_the_same(
    halves: tuple[pl.DataFrame, pl.DataFrame], register: Register
) -> None:
    bundle = train(halves, register(SPEC), seed=3)
    loaded = ModelBundle.from_bytes(bundle.to_bytes())
    assert isinstance(loaded.estimator, Centroid) and isinstance(loaded.estimator.prototypes_, Prototypes)
    valid = halves[1]
    expected = bundle.predict_table(valid)["probability"]
    np.testing.assert_array_equal(loaded.predict_table(valid)["probability"], expected)
    assert loaded.predict_records(valid.to_dicts()) == bundle.predict_records(valid.to_dicts())
    assert loaded.evaluate(valid)["accuracy"] > 0.7


def test_an_undeclared_inner_type_is_refused(halves: tuple[pl.DataFrame, pl.DataFrame], register: Register) -> None:
    """The spec must declare every type its fitted estimator holds; the hint says how."""
    spec = register(EstimatorSpec("undeclared", SPEC.classes))
    data = train(halves, spec).to_bytes()
    with pytest.raises(UnsafeArtifactError, match=r"untrusted type '_user_trainer\.Prototypes'") as caught:
        ModelBundle.from_bytes(data)
    assert "trusted_types" in str(caught.value.hint)


def test_types_outside_the_declared_list_are_refused(
    halves: tuple[pl.DataFrame, pl.DataFrame], register: Register
) -> None:
    bundle = train(halves, register(SPEC))
    bundle.estimator.smuggled_ = Other(1)  # same module, not declared
    with pytest.raises(UnsafeArtifactError, match=r"untrusted type '_user_trainer\.Other'"):
        ModelBundle.from_bytes(_with_estimator(bundle, sio.dumps(bundle.estimator)))
    other = OtherClassifier().fit(np.eye(3), np.array(["a", "b", "c"]))  # a classifier no spec names
    with pytest.raises(UnsafeArtifactError, match=r"'_user_trainer\.OtherClassifier', which is not an estimator"):
        ModelBundle.from_bytes(_with_estimator(bundle, sio.dumps(other)))
    helper = Prototypes(np.eye(2))  # declared, but only as an inner type: never the model itself
    with pytest.raises(UnsafeArtifactError, match=r"'_user_trainer\.Prototypes', which is not an estimator"):
        ModelBundle.from_bytes(_with_estimator(bundle, sio.dumps(helper)))


@pytest.mark.parametrize("where", ["top", "inner"])
def test_a_bundle_naming_an_undeclared_module_never_imports_it(
    halves: tuple[pl.DataFrame, pl.DataFrame], register: Register, where: str
) -> None:
    """The artifact's type names are compared with the declared ones; importing them would run their code."""
    bundle = train(halves, register(SPEC))
    payload = sio.dumps(bundle.estimator)
    renamed = _rename_type(payload, "Centroid" if where == "top" else "Prototypes", "_never_imported")
    with pytest.raises(UnsafeArtifactError, match=r"'_never_imported\.(Centroid|Prototypes)'"):
        ModelBundle.from_bytes(_with_estimator(bundle, renamed))
    assert "_never_imported" not in sys.modules


def test_a_class_re_exported_by_the_declared_module_is_trusted_by_its_own_path(
    halves: tuple[pl.DataFrame, pl.DataFrame], register: Register
) -> None:
    """skops writes where a class is defined (``pkg._impl``); a spec may name its public module (``pkg``)."""
    spec = register(
        EstimatorSpec(
            "reexported",
            {"multiclass": "_user_reexport:Centroid"},
            trusted_types=("_user_reexport:Prototypes",),
        )
    )
    bundle = train(halves, spec)
    loaded = ModelBundle.from_bytes(bundle.to_bytes())
    assert loaded.evaluate(halves[1]) == bundle.evaluate(halves[1])


@pytest.mark.parametrize(
    ("trusted", "hint"),
    [
        ("_user_trainer.Prototypes", "Write it as '_user_trainer:Prototypes'"),
        ("_user_trainer:", "with a colon before the class"),
        ("os; rm:x", "with a colon before the class"),
    ],
)
def test_a_malformed_trusted_type_is_a_config_error(trusted: str, hint: str) -> None:
    with pytest.raises(ConfigError, match=f"trusted type {trusted!r} is not a 'module:Class' name") as caught:
        EstimatorSpec("bad", SPEC.classes, trusted_types=(trusted,))
    assert hint in str(caught.value.hint)


def test_trusted_types_must_be_a_tuple_of_names() -> None:
    with pytest.raises(ConfigError, match="must be a tuple of 'module:Class' strings"):
        EstimatorSpec("bad", SPEC.classes, trusted_types="_user_trainer:Prototypes")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("trusted", "message"),
    [
        ("_no_such_module_here:Thing", r"'_no_such_module_here:Thing' cannot be imported"),
        ("_user_trainer:Missing", r"module '_user_trainer' has no class 'Missing'"),
        ("_user_trainer:SPEC", r"module '_user_trainer' has no class 'SPEC'"),
    ],
)
def test_a_trusted_type_that_does_not_import_fails_before_training(
    halves: tuple[pl.DataFrame, pl.DataFrame], register: Register, trusted: str, message: str
) -> None:
    spec = register(EstimatorSpec("wrong_types", SPEC.classes, trusted_types=(trusted,)))
    with pytest.raises(ConfigError, match=message):
        train(halves, spec)


def test_unknown_parameters_of_kwargs_estimators_are_refused() -> None:
    """LightGBM and XGBoost take ``**kwargs``: their params come from get_params() (and LightGBM's own table)."""
    for alias, task in [("lightgbm", "binary"), ("xgboost", "regression")]:
        with pytest.raises(ConfigError, match=f"estimator {alias!r} has no parameter 'n_estimator'") as caught:
            ESTIMATORS.get(alias).resolve_params(task, {"n_estimator": 5})
        assert "n_estimators" in str(caught.value.hint)
    native = ESTIMATORS.get("lightgbm").resolve_params("binary", {"min_data_in_leaf": 3, "bagging_fraction": 0.5})
    assert native["min_data_in_leaf"] == 3 and native["verbose"] == -1


def _with_estimator(bundle: ModelBundle, payload: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(bundle.to_bytes())) as archive:
        contents = {name: archive.read(name) for name in archive.namelist()}
    contents["estimator.skops"] = payload
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, member in contents.items():
            archive.writestr(name, member)
    return buffer.getvalue()


def _rename_type(payload: bytes, class_name: str, module: str) -> bytes:
    """The skops file with every ``class_name`` object re-labelled as coming from ``module``."""
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        contents = {name: archive.read(name) for name in archive.namelist()}
    schema = json.loads(contents["schema.json"])

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("__class__") == class_name:
                node["__module__"] = module
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    contents["schema.json"] = json.dumps(schema).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, member in contents.items():
            archive.writestr(name, member)
    return buffer.getvalue()


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_the_user_trainer_passes_the_trainer_checks(register: Register, task: str) -> None:
    check_trainer(register(SPEC), task)


def test_a_user_trainer_runs_in_a_pipeline_and_only_its_registration_lets_the_bundle_load(
    tmp_path: Path, register: Register
) -> None:
    register(SPEC)
    rng = np.random.default_rng(5)
    x = rng.normal(size=600)
    data = pl.DataFrame(
        {"x": x, "g": rng.choice(["a", "b"], 600), "y": np.where(x < -0.5, "low", np.where(x > 0.5, "high", "mid"))}
    )
    pipeline = (
        Pipeline("user_trainer")
        .add("data", lambda: data)
        .add("split", "split", inputs=["data"], target="y", method="random")
        .add(
            "fit",
            "train",
            inputs=["split.train", "split.valid"],
            target="y",
            numeric=["x"],
            categorical=["g"],
            estimator=SPEC.name,
        )
        .add("best", "select", inputs=["fit"], model="user_trainer")
    )
    store = Store.open(f"sqlite:///{tmp_path / 'loopline.db'}", tmp_path / "artifacts")
    try:
        Runner(store).run(pipeline)
        [version] = store.models.list("user_trainer")
        payload = store.artifacts.get_bytes(version.bundle_digest)
    finally:
        store.close()
    assert version.algorithm == SPEC.name and version.metrics["valid"]["accuracy"] > 0.8
    bundle = ModelBundle.from_bytes(payload)
    assert isinstance(bundle.estimator, Centroid)
    assert [r["prediction"] for r in bundle.predict_records([{"x": -2.0, "g": "a"}, {"x": 2.0, "g": "b"}])] == [
        "low",
        "high",
    ]
    path = tmp_path / "bundle.zip"
    path.write_bytes(payload)
    # another process: the class imports, but no spec is registered there, so the bundle is refused
    refused = _load_elsewhere(path)
    assert refused.startswith("refused: the model bundle holds a '_user_trainer.Centroid', which is not an estimator")
    # the same process with the plugin installed: its entry point registers the spec, and the bundle loads
    site = tmp_path / "site"
    dist_info = site / "user_trainer_plugin-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: user-trainer-plugin\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(f"[loopline.estimators]\n{SPEC.name} = _user_trainer:SPEC\n")
    assert _load_elsewhere(path, site) == "loaded: low, high"


_LOADER = """
import sys
import _user_trainer  # importable here: a refusal is about the registration, not a missing module
from loopline.core.errors import UnsafeArtifactError
from loopline.train import ModelBundle
try:
    bundle = ModelBundle.from_bytes(open(sys.argv[1], "rb").read())
except UnsafeArtifactError as exc:
    print("refused:", exc)
else:
    records = [{"x": -2.0, "g": "a"}, {"x": 2.0, "g": "b"}]
    print("loaded:", ", ".join(r["prediction"] for r in bundle.predict_records(records)))
"""


def _load_elsewhere(bundle: Path, *paths: Path) -> str:
    """What a fresh Python process says when it loads ``bundle`` with ``paths`` (and this folder) importable."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, [*paths, Path(__file__).parent]))}
    done = subprocess.run(
        [sys.executable, "-c", _LOADER, str(bundle)], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()
