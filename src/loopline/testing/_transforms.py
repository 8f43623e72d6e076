"""The transform contract, as checks (see ``loopline.prep._transform``)."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from typing import Any

import polars as pl

from loopline.prep import TRANSFORMS, Transform


def check_transform(
    make: Callable[[], Transform], train: pl.DataFrame, test: pl.DataFrame, *, target: str | None = None
) -> None:
    """Raise AssertionError naming the first broken rule of the transform contract.

    ``make()`` builds an unfitted transform; it is fitted on ``train`` (whose ``target`` column, if any, is the
    label) and applied to ``test``, which may hold values training never saw.
    """
    transform = make()
    name = getattr(transform, "type_name", None)
    _require(isinstance(name, str) and name in TRANSFORMS, f"type_name {name!r} is not registered in TRANSFORMS")
    try:
        params = transform.get_params()
    except AttributeError as exc:
        raise AssertionError(f"{name}: get_params() failed ({exc}); store each argument under its own name") from None
    _require(json.dumps(params, default=str) is not None, f"{name}: parameters must be JSON-able")
    _require(
        type(transform)(**params) == transform, f"{name}: rebuilding from get_params() must give an equal transform"
    )
    original = train.clone()
    transform.fit(train, target)
    _require(train.equals(original), f"{name}: fit must not change its input")
    state = transform.get_state()
    _require(_json_round_trip(state), f"{name}: the state (attributes ending in _) must be JSON")
    _require(transform.is_fitted(), f"{name}: is_fitted() must be true after fit")
    before = copy.deepcopy(state)
    if transform.train_only:
        _check_train_only(transform, test)
        return
    table = transform.transform(test).to_dicts()
    records = [transform.transform_record(r) for r in test.to_dicts()]
    _require(
        json.dumps(transform.get_state(), sort_keys=True, default=str)
        == json.dumps(before, sort_keys=True, default=str),
        f"{name}: transforming must not change the state",
    )
    _require(len(table) == len(records), f"{name}: the record path must give one record per row")
    for row, (batch, record) in enumerate(zip(table, records, strict=True)):
        _require(
            list(batch) == list(record),
            f"{name}: row {row}: columns differ: table {list(batch)} vs record {list(record)}",
        )
        for column, value in batch.items():
            _require(
                _same(value, record[column]),
                f"{name}: row {row}, column {column!r}: table gives {value!r}, record gives {record[column]!r}",
            )
    rebuilt = type(transform)(**json.loads(json.dumps(params, default=str))).set_state(json.loads(json.dumps(state)))
    _require(
        rebuilt.transform(test).equals(transform.transform(test)),
        f"{name}: a transform rebuilt from its state must give the same table",
    )
    for output, inputs in transform.lineage().items():
        _require(
            isinstance(output, str) and all(isinstance(i, str) for i in inputs),
            f"{name}: lineage maps names to lists of names",
        )


def _check_train_only(transform: Transform, test: pl.DataFrame) -> None:
    name = transform.type_name
    _require(transform.transform(test).equals(test), f"{name}: a train_only transform is the identity outside training")
    for record in test.to_dicts():
        _require(transform.transform_record(record) == record, f"{name}: a train_only transform leaves records alone")


def _json_round_trip(value: Any) -> bool:
    try:
        return bool(json.loads(json.dumps(value, allow_nan=False)) == value)
    except (TypeError, ValueError):
        return False


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) else a == b


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)
