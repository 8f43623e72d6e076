"""MLflow's scoring protocol (``mlflow models serve``): request bodies -> records, predictions -> response.

A request is JSON (``application/json``) holding exactly one of four input keys, or CSV (``text/csv``)
with a header row:

- ``dataframe_split``: ``{"columns": [...], "data": [[...], ...], "index": [...]}`` (``index`` is ignored);
- ``dataframe_records``: ``[{"column": value, ...}, ...]``;
- ``instances``: a list of rows (TF-serving row format);
- ``inputs``: a list of rows, or ``{"column": [values...]}`` (TF-serving columnar format).

A row is an object naming its fields or a list of values in the model's input-schema order (the order
``GET /v2/models/NAME`` lists). The answer is ``{"predictions": [...]}``: one label (classifier) or
value (regressor) per row, what MLflow's sklearn flavour returns for ``predict``.

Probabilities: send ``"params": {"predict_method": "predict_proba"}``, the convention of MLflow's
"Customizing a Model's predict method" tutorial; each prediction is then the list of class
probabilities in the order of the model's classes. The plain ``POST /predict`` endpoint returns
labels and probabilities (keyed by class) together.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loopline.core.errors import SchemaValidationError
from loopline.serve._validation import BadRequest, decode_body, loads_json

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
PREDICT_METHODS = ("predict", "predict_proba")
_ACCEPTED = f"expected exactly one of {', '.join(FORMATS)}"
_CONTENT_TYPES = ("application/json", "text/csv")


@dataclass(frozen=True)
class MlflowRequest:
    """The records of one request and the ``predict_method`` it asks for."""

    records: list[dict[str, Any]]
    predict_method: str = "predict"


def parse_request(
    body: bytes, content_type: str | None, *, schema: Sequence[Mapping[str, Any]], classifier: bool
) -> MlflowRequest:
    """Decode a scoring request; raise ``BadRequest`` (400/415/422) or ``SchemaValidationError`` (422).

    ``schema`` is the model's input schema (names, dtypes and order); ``classifier`` tells whether
    ``predict_proba`` can be asked for. NaN/Infinity literals are read as floats so that the schema
    check names the field they sit in.
    """
    media, charset = _media_type(content_type)
    if media not in _CONTENT_TYPES:
        raise BadRequest(415, f"content type {media or 'none'!r} is not accepted; send application/json or text/csv.")
    if charset not in ("utf-8", "utf8"):
        raise BadRequest(415, f"charset {charset!r} is not accepted; send UTF-8.")
    text = decode_body(body, expected="a JSON object or CSV with a header row")
    if media == "text/csv":
        return MlflowRequest(records_from_csv(text))
    payload = loads_json(text, allow_constants=True)
    columns = [str(field["name"]) for field in schema]
    method = predict_method(payload.get("params") if isinstance(payload, dict) else None, classifier=classifier)
    return MlflowRequest(records_from_mlflow(payload, columns=columns), method)


def records_from_mlflow(payload: Any, *, columns: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Turn one of MLflow's four JSON input formats into records.

    ``columns`` (the model's input names, in order) lets rows come as plain lists of values; without
    it such rows are refused. Values are not checked here: the input policy does that.
    """
    if not isinstance(payload, dict):
        raise BadRequest(400, f"the body is a JSON {_kind(payload)}; {_ACCEPTED} as the keys of an object.")
    given = [key for key in payload if key in FORMATS]
    unknown = [key for key in payload if key not in FORMATS and key != "params"]
    if unknown:
        raise BadRequest(400, f"unknown key {unknown[0]!r}; {_ACCEPTED} (and optionally params).")
    if len(given) != 1:
        found = f"got {', '.join(given)}" if given else "got none"
        raise BadRequest(400, f"{_ACCEPTED}; {found}.")
    key = given[0]
    value = payload[key]
    if key == "dataframe_split":
        return _from_split(value)
    if key == "dataframe_records":
        return _from_rows(value, key, columns=None)
    if key == "inputs" and isinstance(value, dict):
        return _from_columns(value, key)
    return _from_rows(value, key, columns=columns)


def predict_method(params: Any, *, classifier: bool) -> str:
    """The ``params.predict_method`` asked for (``predict`` when absent); other params are refused."""
    if params is None:
        return "predict"
    if not isinstance(params, dict):
        raise _invalid("params", f"expected an object, got {_kind(params)}")
    for name in params:
        if name != "predict_method":
            raise _invalid(f"params.{name}", "unknown parameter; the only one accepted is predict_method")
    method = params.get("predict_method", "predict")
    if method not in PREDICT_METHODS:
        raise _invalid("params.predict_method", f"{method!r} is not one of {', '.join(PREDICT_METHODS)}")
    if method == "predict_proba" and not classifier:
        raise _invalid("params.predict_method", "predict_proba needs a classifier; this model is a regressor")
    return str(method)


def records_from_csv(text: str) -> list[dict[str, Any]]:
    """CSV with a header row -> records of text cells (an empty cell is null).

    The input policy converts each cell by its field's rule (numeric text to a number, ``true`` or ``1`` to a
    boolean), as it converts the values of every other request.
    """
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if not header:
            raise BadRequest(400, "the CSV body has no header row; the first line must name the columns.")
        for position, name in enumerate(header):
            if not name:
                raise _invalid(
                    f"header[{position}]",
                    "a column has no name; write the CSV without the index (DataFrame.to_csv(index=False))",
                )
        records = []
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                raise _invalid(f"line {reader.line_num}", f"has {len(row)} values; the header has {len(header)}")
            records.append({name: _cell(cell) for name, cell in zip(header, row, strict=True)})
    except csv.Error as exc:
        raise BadRequest(400, f"malformed CSV at line {reader.line_num}: {exc}.") from None
    if not records:
        raise _invalid("data", "the CSV body has a header but no rows")
    return records


def mlflow_response(outputs: Sequence[Mapping[str, Any]], method: str, classes: Sequence[Any] | None) -> dict[str, Any]:
    """``{"predictions": [...]}``: labels or values, or per-class probabilities for ``predict_proba``."""
    if method == "predict_proba":
        keys = [str(c) for c in classes or []]
        return {"predictions": [[o["probabilities"][k] for k in keys] for o in outputs]}
    return {"predictions": [o["prediction"] for o in outputs]}


def mlflow_error(content: Mapping[str, Any], status: int) -> dict[str, Any]:
    """An error body with MLflow's ``error_code`` and ``message`` keys added to loopline's own."""
    code = {404: "RESOURCE_DOES_NOT_EXIST", 503: "TEMPORARILY_UNAVAILABLE"}.get(status, "BAD_REQUEST")
    return {"error_code": code, "message": content.get("error", ""), **content}


def _from_split(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, dict):
        raise _invalid("dataframe_split", f"expected an object with columns and data, got {_kind(value)}")
    extra = sorted(set(value) - {"columns", "data", "index"})
    if extra:
        raise _invalid(f"dataframe_split.{extra[0]}", "unknown key; expected columns, data and optionally index")
    columns, data = value.get("columns"), value.get("data")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise _invalid("dataframe_split.columns", "expected a list of column names (strings)")
    if len(set(columns)) != len(columns):
        twice = next(c for c in columns if columns.count(c) > 1)
        raise _invalid("dataframe_split.columns", f"column {twice!r} is named twice")
    if not isinstance(data, list):
        raise _invalid("dataframe_split.data", f"expected a list of rows, got {_kind(data)}")
    index = value.get("index")
    if index is not None and (not isinstance(index, list) or len(index) != len(data)):
        raise _invalid("dataframe_split.index", f"expected a list of {len(data)} labels, one per row of data")
    return [_positional(row, columns, f"dataframe_split.data[{i}]") for i, row in enumerate(data)]


def _from_rows(value: Any, key: str, *, columns: Sequence[str] | None) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise _invalid(key, f"expected a list of rows, got {_kind(value)}")
    records = []
    for i, row in enumerate(value):
        if isinstance(row, dict):
            records.append(row)
        elif isinstance(row, list) and columns is not None:
            records.append(_positional(row, columns, f"{key}[{i}]"))
        else:
            shape = "an object" if columns is None else "an object or a list of values in input-schema order"
            raise _invalid(f"{key}[{i}]", f"expected {shape}, got {_kind(row)}")
    return records


def _from_columns(value: dict[str, Any], key: str) -> list[dict[str, Any]]:
    rows: int | None = None
    for name, values in value.items():
        if not isinstance(values, list):
            raise _invalid(f"{key}.{name}", f"expected a list of values (one per row), got {_kind(values)}")
        if rows is not None and len(values) != rows:
            raise _invalid(f"{key}.{name}", f"has {len(values)} values; the other columns have {rows}")
        rows = len(values)
    return [{name: values[i] for name, values in value.items()} for i in range(rows or 0)]


def _positional(row: Any, columns: Sequence[str], where: str) -> dict[str, Any]:
    if not isinstance(row, list):
        raise _invalid(where, f"expected a list of {len(columns)} values, got {_kind(row)}")
    if len(row) != len(columns):
        raise _invalid(where, f"has {len(row)} values; expected {len(columns)} ({', '.join(columns)})")
    return dict(zip(columns, row, strict=True))


def _cell(text: str) -> str | None:
    """A CSV cell as the input policy reads it: text (numbers and booleans are converted by the field's rule),
    null when empty."""
    return None if text == "" else text


def _media_type(content_type: str | None) -> tuple[str, str]:
    media, *options = (part.strip() for part in (content_type or "").split(";"))
    charset = "utf-8"
    for option in options:
        key, _, value = option.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    return media.lower(), charset


def _invalid(field: str, reason: str) -> SchemaValidationError:
    return SchemaValidationError([{"field": field, "reason": reason}])


def _kind(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number" if isinstance(value, int | float) else type(value).__name__)
