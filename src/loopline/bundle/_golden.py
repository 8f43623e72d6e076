"""Golden predictions: a few validation rows and a bundle's outputs on them, to be reproduced bit for bit.

A golden table holds the bundle's input columns for :data:`GOLDEN_ROWS` rows and its outputs under
:data:`OUTPUT_PREFIX`: ``prediction`` and, for a classifier, one ``probability_<i>`` column per class (float64).
It is made when a candidate is trained and stored with its version; the deployment gate's infrastructure
validation loads the bundle in a fresh process (``python -m loopline.bundle._golden DIR``, see
:mod:`loopline.run.policy._infra`), which writes what the batch path (:meth:`ModelBundle.predict_table`) and
the serving path (:meth:`ModelBundle.predict_records`) give on the same rows; :func:`first_difference` compares
them with the stored outputs bit for bit.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from loopline.bundle._bundle import ModelBundle

GOLDEN_ROWS = 32
"""Validation rows kept as golden predictions (all of them when there are fewer)."""

OUTPUT_PREFIX = "__golden__"
"""The prefix of the output columns in a golden table."""

BUNDLE_FILE, GOLDEN_FILE, RESULT_FILE = "bundle.llb", "golden.parquet", "result.json"
PATHS = ("table", "records")
"""The prediction paths the fresh process reproduces: the batch path and the serving path."""


def golden_sample(bundle: ModelBundle, valid: pl.DataFrame, *, seed: int = 0, rows: int = GOLDEN_ROWS) -> pl.DataFrame:
    """A fixed sample of ``valid``'s input columns (the bundle's input schema) with the bundle's outputs."""
    names = [str(item["name"]) for item in bundle.input_schema if item.get("name") in valid.columns]
    inputs = valid.select(names)
    if inputs.height > rows:
        inputs = inputs.sample(n=rows, seed=seed)
    return inputs.hstack(table_outputs(bundle, inputs).get_columns())


def golden_inputs(golden: pl.DataFrame) -> pl.DataFrame:
    """The input rows of a golden table."""
    return golden.select([c for c in golden.columns if not c.startswith(OUTPUT_PREFIX)])


def golden_expected(golden: pl.DataFrame) -> pl.DataFrame:
    """The stored outputs of a golden table."""
    return golden.select([c for c in golden.columns if c.startswith(OUTPUT_PREFIX)])


def table_outputs(bundle: ModelBundle, inputs: pl.DataFrame) -> pl.DataFrame:
    """The batch path's outputs as golden columns."""
    out = bundle.predict_table(inputs)
    probability = out.get("probability")
    return _columns(out["prediction"].tolist(), None if probability is None else np.asarray(probability))


def record_outputs(bundle: ModelBundle, inputs: pl.DataFrame) -> pl.DataFrame:
    """The serving path's outputs (one call per record, as a served request) as golden columns."""
    results = [bundle.predict_records([record])[0] for record in inputs.to_dicts()]
    predictions = [r["prediction"] for r in results]
    if bundle.classes is None:
        return _columns(predictions, None)
    keys = [str(label) for label in bundle.classes]
    probability = np.array([[r["probabilities"][k] for k in keys] for r in results], dtype=np.float64)
    return _columns(predictions, probability.reshape(len(results), len(keys)))


def _columns(predictions: list[Any], probability: np.ndarray | None) -> pl.DataFrame:
    columns: dict[str, Any] = {f"{OUTPUT_PREFIX}prediction": predictions}
    if probability is not None:
        for index in range(probability.shape[1]):
            columns[f"{OUTPUT_PREFIX}probability_{index}"] = probability[:, index].astype(np.float64)
    return pl.DataFrame(columns, strict=False)


def first_difference(expected: pl.DataFrame, got: pl.DataFrame) -> str | None:
    """Where ``got`` first differs from ``expected`` bit for bit (floats compared by their bits), or None."""
    if expected.columns != got.columns:
        return f"output columns {got.columns} instead of {expected.columns}"
    if expected.height != got.height:
        return f"{got.height} output rows instead of {expected.height}"
    for name in expected.columns:
        want, have = expected.get_column(name), got.get_column(name)
        row = _first_unequal(want, have)
        if row is not None:
            column = name.removeprefix(OUTPUT_PREFIX)
            return f"row {row}, {column}: expected {_show(want[row])}, got {_show(have[row])}"
    return None


def _first_unequal(want: pl.Series, have: pl.Series) -> int | None:
    if want.dtype.is_float() or have.dtype.is_float():
        try:
            left = want.cast(pl.Float64).to_numpy().view(np.uint64)
            right = have.cast(pl.Float64).to_numpy().view(np.uint64)
        except pl.exceptions.PolarsError:
            left, right = np.asarray(want.to_list(), dtype=object), np.asarray(have.to_list(), dtype=object)
    else:
        left, right = np.asarray(want.to_list(), dtype=object), np.asarray(have.to_list(), dtype=object)
    unequal = np.flatnonzero(left != right)
    return int(unequal[0]) if unequal.size else None


def _show(value: Any) -> str:
    return f"{value!r} ({float(value).hex()})" if isinstance(value, float) else repr(value)


def reproduce(folder: Path) -> dict[str, Any]:
    """In the fresh process: load ``folder``'s bundle and write each path's outputs on the golden rows."""
    started = time.perf_counter()
    bundle = ModelBundle.from_bytes((folder / BUNDLE_FILE).read_bytes())
    loaded_s = time.perf_counter() - started
    golden_path = folder / GOLDEN_FILE
    if not golden_path.exists():
        bundle.compiled()
        return {"loaded_s": loaded_s, "paths": []}
    inputs = golden_inputs(pl.read_parquet(golden_path))
    table_outputs(bundle, inputs).write_parquet(folder / "table.parquet")
    record_outputs(bundle, inputs).write_parquet(folder / "records.parquet")
    return {"loaded_s": loaded_s, "paths": list(PATHS)}


def main(argv: list[str]) -> int:
    """``python -m loopline.bundle._golden FOLDER``: :func:`reproduce`, its result (or the error) as JSON."""
    folder = Path(argv[1])
    try:
        result: dict[str, Any] = {"ok": True, **reproduce(folder)}
    except BaseException as exc:  # everything the load can raise is the verdict's reason
        last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
        where = f" (at {last[0].filename}:{last[0].lineno})" if last else ""
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}{where}"}
    (folder / RESULT_FILE).write_text(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
