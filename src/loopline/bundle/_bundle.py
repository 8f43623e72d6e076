"""The model bundle: the one object that is trained, stored, promoted and served.

On disk it is a zip of ``bundle.json`` (format version, task, target, classes, the
fitted transform chain and preprocessor state, input schema, metadata) and the
estimator: ``estimator.skops`` for scikit-learn models, the library's own model file
for LightGBM and XGBoost (``estimator.lightgbm.txt``, ``estimator.xgboost.json``; see
:mod:`loopline.bundle._native`). Nothing in it is pickled; loading checks a skops
estimator's types against loopline's allowlist and rebuilds transforms only from
registered types. Format version 2 added the native files; version 1 bundles (always
skops) still load.

Prediction runs one function in every path: rows -> transform chain -> preprocessor
-> estimator. A table goes through the chain's polars path, records (the service)
through its dict path, and both give the same numbers. The estimator's compiled form
(:mod:`loopline.bundle._compiled`), built on first use and never stored, answers each row
independently of its batch: gradient boosting through it for small batches (no per-call
overhead; the estimator's numbers bit for bit), linear models through it for every batch (no
BLAS, whose rounding depends on the row count; the estimator's numbers to rounding). So a
record served alone, in a micro-batch, or in a batch-scoring chunk gets the same bits.
"""

from __future__ import annotations

import io
import json
import platform
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
import polars as pl

from loopline.bundle._compiled import COMPILED_MAX_ROWS as COMPILED_MAX_ROWS  # re-exported
from loopline.bundle._compiled import CompiledEstimator, compile_estimator
from loopline.bundle._lazy import load
from loopline.bundle._metrics import compute_metrics
from loopline.bundle._native import NATIVE_FILES, dump_native, load_native, native_format, source_class
from loopline.bundle._safety import fast_trusted_types, trusted_types_for
from loopline.core.errors import DataError, did_you_mean
from loopline.prep import Chain, Preprocessor

FORMAT = "loopline.bundle"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2, 3)
"""Bundle format versions this loopline loads: 1 (skops only), 2 (native LightGBM/XGBoost files) and 3 (ensembles
of bundles: :mod:`loopline.bundle._ensemble`; single bundles are still written as version 2)."""
_ENSEMBLE = "ensemble"
_MANIFEST = "bundle.json"
_ESTIMATOR = "estimator.skops"
_ESTIMATOR_FILES = {"skops": _ESTIMATOR, **NATIVE_FILES}
_EPOCH = (1980, 1, 1, 0, 0, 0)
_COMPRESS_LEVEL = 1
"""zlib level of the bundle's members: a skops estimator of a 100-tree model is ~1 MB, which level 1 deflates in a
third of level 6's time into a file ~15% larger (the bundle is written once per training, read on every load)."""


@dataclass
class ModelBundle:
    """Fitted preprocessing + estimator + input schema + metadata.

    ``classes`` holds the class labels (bool, str or int, as in the target column)
    in the column order of the probabilities; None for regression. ``input_schema``
    defaults to the preprocessor's.
    """

    preprocessor: Preprocessor
    estimator: Any
    target: str
    task: str
    classes: list[Any] | None = None
    input_schema: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    chain: Chain | None = None
    _compiled: tuple[Any, CompiledEstimator | None] | None = field(default=None, init=False, repr=False, compare=False)
    """Derived state: (the estimator it was compiled from, its compiled form or None)."""

    def __post_init__(self) -> None:
        if not self.input_schema:
            self.input_schema = (
                chain_input_schema(self.chain) if self.chain is not None else self.preprocessor.input_schema()
            )

    # -- prediction ------------------------------------------------------------------------------

    def predict_table(self, df: pl.DataFrame) -> dict[str, np.ndarray]:
        """``{"prediction": (n,), "probability": (n, k)}``; no probability for regression."""
        if self.chain is not None:
            df = self.chain.transform(df)
        return self.predict_matrix(self.preprocessor.transform(df))

    def features_records(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The estimator's matrix for records: the chain's record path, then the preprocessor's."""
        if self.chain is not None:
            typed = [_typed_record(r, self.chain.inputs_) for r in records]
            return self.preprocessor.transform_records(self.chain.transform_records(typed))
        return self.preprocessor.transform_records(records)

    def predict_records(self, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The serving path: one model call for the batch, no DataFrame.

        Each result is ``{"prediction": label, "probabilities": {str(label): p}}`` for
        classification and ``{"prediction": value}`` for regression, as plain Python
        values; the numbers equal :meth:`predict_table`'s. Predictions are
        single-threaded under ``threadpoolctl.threadpool_limits(1)``.
        """
        if not records:
            return []
        out = self.predict_matrix(self.features_records(records))
        if "probability" not in out:
            return [{"prediction": value} for value in out["prediction"].tolist()]
        labels = self.classes or []
        keys = [str(c) for c in labels]
        return [
            {"prediction": labels[row.index(max(row))], "probabilities": dict(zip(keys, row, strict=True))}
            for row in out["probability"].tolist()
        ]

    def predict_matrix(self, features: np.ndarray) -> dict[str, np.ndarray]:
        """Predictions for an already preprocessed feature matrix.

        The matrix is made C-contiguous first: BLAS sums in an order that depends on the memory layout,
        so a table (column-major from polars) and records (row-major) would differ in the last bit.
        When the estimator compiles, batches of up to the compiled form's ``max_rows`` rows go
        through :meth:`compiled`: gradient boosting up to :data:`COMPILED_MAX_ROWS` rows (its
        numbers are the estimator's own, bit for bit), linear models at every size (their numbers
        are the estimator's to rounding, and the same for a row whatever its batch).
        """
        features = np.ascontiguousarray(features, dtype=np.float64)
        model = self._model_for(features)
        if self.classes is None:
            return {"prediction": np.asarray(model.predict(features), dtype=np.float64)}
        probability = np.asarray(model.predict_proba(features), dtype=np.float64)
        labels = np.asarray(self.classes)
        return {"prediction": labels[probability.argmax(axis=1)], "probability": probability}

    def _model_for(self, features: np.ndarray) -> Any:
        """The compiled estimator for a batch within its ``max_rows``, else the estimator itself."""
        if features.ndim != 2 or features.shape[0] == 0:
            return self.estimator
        compiled = self.compiled()
        if compiled is None or features.shape[1] != compiled.n_features:
            return self.estimator  # which raises its own error on a wrong width
        if compiled.max_rows is not None and features.shape[0] > compiled.max_rows:
            return self.estimator
        return compiled

    def compiled(self) -> CompiledEstimator | None:
        """The estimator's compiled form (see :func:`compile_estimator`), built on first use.

        None when the estimator does not compile. Rebuilt if ``estimator`` is replaced; never
        stored in the bundle's bytes nor pickled. Concurrent first calls may each compile;
        they build equal objects and one is kept. The first call costs tens of milliseconds
        (flattening, then a check against the estimator): a server can make it when it loads.
        """
        cached = self._compiled
        if cached is None or cached[0] is not self.estimator:
            cached = (self.estimator, compile_estimator(self.estimator))
            self._compiled = cached
        return cached[1]

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_compiled": None}

    def evaluate(self, df: pl.DataFrame) -> dict[str, float]:
        """Metrics of the model on a labelled table (see ``compute_metrics``)."""
        truth = target_values(df, self.target)
        out = self.predict_table(df)
        return compute_metrics(self.task, truth, out["prediction"], out.get("probability"), classes=self.classes)

    # -- serialisation ---------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The bundle as zip bytes (see the module docstring); never pickled."""
        estimator_format = native_format(self.estimator) or "skops"
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "task": self.task,
            "target": self.target,
            "classes": self.classes,
            "preprocessor": self.preprocessor.to_state(),
            "chain": self.chain.to_state() if self.chain is not None else None,
            "input_schema": self.input_schema,
            "estimator": {
                "file": _ESTIMATOR_FILES[estimator_format],
                "format": estimator_format,
                "class": source_class(self.estimator),
            },
            "metadata": {**self.metadata, "versions": library_versions(self.estimator)},
        }
        payload = _dump_estimator(estimator_format, self.estimator)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            # key order kept (not canonical JSON): a chain's derived columns are evaluated in their order
            _write(archive, _MANIFEST, json.dumps(manifest, separators=(",", ":"), default=str).encode())
            _write(archive, _ESTIMATOR_FILES[estimator_format], payload)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> ModelBundle:
        """Load bundle bytes; untrusted types raise UnsafeArtifactError, damage raises DataError."""
        manifest, estimator_format, estimator_bytes = _read_archive(data)
        if estimator_format == _ENSEMBLE:
            from loopline.bundle._ensemble import load_ensemble  # imports this module

            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                return load_ensemble(manifest, archive)
        try:
            estimator = _load_estimator(estimator_format, estimator_bytes, manifest)
            return cls(
                preprocessor=Preprocessor.from_state(manifest["preprocessor"]),
                estimator=estimator,
                target=manifest["target"],
                task=manifest["task"],
                classes=manifest["classes"],
                input_schema=manifest["input_schema"],
                metadata=manifest["metadata"],
                chain=Chain.from_state(manifest["chain"]) if manifest.get("chain") else None,
            )
        except KeyError as exc:
            raise _not_a_bundle(f"bundle.json lacks {exc}") from None


def _dump_estimator(estimator_format: str, estimator: Any) -> bytes:
    if estimator_format == "skops":
        return _skops_dumps(estimator)
    return dump_native(estimator)


def _skops_dumps(estimator: Any) -> bytes:
    """``skops.io.dumps(estimator)`` with schema.json written compactly: skops indents it, which makes ``json``
    use its pure-Python encoder (a third of the dump for a 100-tree model). The same archive otherwise, read by
    ``skops.io.loads`` as any other; when skops' internals differ from what this expects, skops' own dumps."""
    sio = load("skops.io")  # imported on use: it loads every scikit-learn estimator
    try:
        skops = load("skops")
        utils = load("skops.io._utils")
        save_context, get_state = utils.SaveContext, utils.get_state
    except (ImportError, AttributeError):
        return bytes(sio.dumps(estimator))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        context = save_context(zip_file=archive)
        state = get_state(estimator, context)
        context.clear_memo()
        state["protocol"] = context.protocol
        state["_skops_version"] = skops.__version__
        archive.writestr("schema.json", json.dumps(state))
    return buffer.getvalue()


def _load_estimator(estimator_format: str, data: bytes, manifest: dict[str, Any]) -> Any:
    if estimator_format == "skops":
        sio = load("skops.io")  # imported on use: it loads every scikit-learn estimator
        try:  # one skops pass: the allowlist applied to the types schema.json names (see fast_trusted_types)
            return sio.loads(data, trusted=fast_trusted_types(data))
        except load("skops.io.exceptions").UntrustedTypesFoundException:
            # skops met a type that list lacks: the full check names a refused type, or lists every type it needs
            return sio.loads(data, trusted=trusted_types_for(data))
    classes = manifest["classes"]
    n_classes = len(classes) if classes is not None else 0
    return load_native(estimator_format, data, n_classes=n_classes, class_path=manifest["estimator"]["class"])


def chain_input_schema(chain: Chain) -> list[dict[str, Any]]:
    """The service's input schema from the raw columns a chain was fitted on (with their training types)."""
    return [
        {"name": name, "dtype": _schema_dtype(dtype), "nullable": True, "train_dtype": dtype}
        for name, dtype in chain.inputs_.items()
    ]


def _schema_dtype(dtype: str) -> str:
    if dtype.startswith(("Int", "UInt", "Float", "Decimal")):
        return "number"
    if dtype == "Boolean":
        return "boolean"
    if dtype.startswith(("Datetime", "Date")):
        return "datetime"
    return "string"


def _typed_record(record: Mapping[str, Any], inputs: Mapping[str, str]) -> dict[str, Any]:
    """A JSON record with the training table's types: ISO text to datetimes, whole floats to ints."""
    out = dict(record)
    for name, dtype in inputs.items():
        value = out.get(name)
        if value is None:
            continue
        if dtype.startswith("Datetime") and isinstance(value, str):
            out[name] = _instant(value, aware="time_zone=" in dtype and "time_zone=None" not in dtype)
        elif dtype.startswith(("Int", "UInt")) and isinstance(value, float) and value.is_integer():
            out[name] = int(value)
        elif dtype.startswith("Float") and isinstance(value, int) and not isinstance(value, bool):
            out[name] = float(value)
    return out


def _instant(text: str, *, aware: bool) -> Any:
    from datetime import UTC, datetime

    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if aware:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value


def target_values(df: pl.DataFrame, target: str) -> np.ndarray:
    """The target column as numpy; DataError when missing or holding nulls."""
    if target not in df.columns:
        raise DataError(
            f"target column {target!r} is missing from the table.",
            column=target,
            hint=did_you_mean(target, df.columns) or f"Columns present: {', '.join(df.columns)}.",
        )
    column = df.get_column(target)
    if column.null_count():
        raise DataError(
            f"target column {target!r} has {column.null_count()} null rows.",
            column=target,
            hint="Drop rows with a null target before training or scoring.",
        )
    return column.to_numpy()


def library_versions(estimator: Any = None) -> dict[str, str]:
    """Versions of the libraries a bundle depends on."""
    versions = {
        "loopline": _version("loopline"),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "skops": _version("skops"),
        "sklearn": _version("scikit-learn"),
    }
    library = native_format(estimator) if estimator is not None else None
    if library is not None:
        versions[library] = _version(library)
    return versions


def _version(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "unknown"


def _write(archive: zipfile.ZipFile, name: str, payload: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, payload, compresslevel=_COMPRESS_LEVEL)


def _read_archive(data: bytes) -> tuple[dict[str, Any], str, bytes]:
    """The manifest, the estimator's format ("skops", "lightgbm", "xgboost") and its file; for an ensemble
    ("ensemble" in the manifest), the format "ensemble" and no file (its members are read by its loader)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            manifest = _check_manifest(json.loads(archive.read(_MANIFEST)))
            if _ENSEMBLE in manifest:
                return manifest, _ENSEMBLE, b""
            estimator_format = _estimator_format(manifest)
            estimator_bytes = archive.read(_ESTIMATOR_FILES[estimator_format])
    except zipfile.BadZipFile:
        raise _not_a_bundle("it is not a zip archive") from None
    except KeyError as exc:
        raise _not_a_bundle(f"the archive has no {exc}") from None
    except (ValueError, zipfile.LargeZipFile, OSError) as exc:
        raise _not_a_bundle(f"{type(exc).__name__}: {exc}") from None
    return manifest, estimator_format, estimator_bytes


def _check_manifest(manifest: Any) -> dict[str, Any]:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _not_a_bundle("bundle.json does not describe a loopline bundle")
    if manifest.get("format_version") not in READABLE_VERSIONS:
        raise DataError(
            f"model bundle format version {manifest.get('format_version')!r} is not supported "
            f"(this loopline reads versions {', '.join(map(str, READABLE_VERSIONS))}).",
            hint="Upgrade loopline, or re-train the model with this version.",
        )
    return manifest


def _estimator_format(manifest: dict[str, Any]) -> str:
    entry = manifest.get("estimator")
    estimator_format = entry.get("format", "skops") if isinstance(entry, dict) else None  # version 1: skops
    if estimator_format not in _ESTIMATOR_FILES:
        raise _not_a_bundle(f"bundle.json names an unknown estimator format {estimator_format!r}")
    return str(estimator_format)


def _not_a_bundle(reason: str) -> DataError:
    return DataError(
        f"these bytes are not a valid loopline model bundle: {reason}.",
        hint="Fetch the bundle again, or re-train the model; bundles come from ModelBundle.to_bytes().",
    )
