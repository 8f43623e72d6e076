"""The input policy: the same conversions for records (the service) and tables (batch scoring)."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from loopline.bundle import (
    FieldRule,
    InputPolicy,
    conform_records,
    conform_table,
    convert_value,
    field_rules,
    plan_columns,
    with_training_types,
)
from loopline.core.errors import ConfigError, DataError, SchemaValidationError

SCHEMA = [
    {"name": "code", "dtype": "string", "nullable": True, "train_dtype": "Int64"},
    {"name": "small", "dtype": "number", "nullable": True, "train_dtype": "UInt8"},
    {"name": "amount", "dtype": "number", "nullable": True, "train_dtype": "Float64"},
    {"name": "city", "dtype": "string", "nullable": True, "train_dtype": "String"},
    {"name": "flag", "dtype": "boolean", "nullable": True, "train_dtype": "Boolean"},
    {"name": "at", "dtype": "datetime", "nullable": True, "train_dtype": "Datetime(time_unit='us', time_zone='UTC')"},
    {"name": "old", "dtype": "string", "nullable": True},
]
RULES = {rule.name: rule for rule in field_rules(SCHEMA)}

ACCEPTED = [
    ("code", 3, 3),
    ("code", 3.0, 3),
    ("code", "3", 3),
    ("code", "-3.0", -3),
    ("small", 255, 255),
    ("amount", 2, 2.0),
    ("amount", "2.5", 2.5),
    ("amount", "1e3", 1000.0),
    ("city", "Lyon", "Lyon"),
    ("city", 7, "7"),
    ("flag", True, True),
    ("flag", "False", False),
    ("flag", 1, True),
    ("flag", "0", False),
    ("at", "2024-03-10T17:45:00Z", "2024-03-10T17:45:00Z"),
    ("old", 12, "12"),
    ("code", None, None),
]
REFUSED = [
    ("code", 2.5, "expected a whole number (the model was trained on Int64), got 2.5"),
    ("code", True, "got a boolean"),
    ("code", "3 ", "got the text '3 '"),
    ("code", 2**63, "expected a whole number"),
    ("small", 256, "trained on UInt8"),
    ("small", -1, "trained on UInt8"),
    ("amount", "nan", "got the text 'nan'"),
    ("amount", float("inf"), "expected a finite number"),
    ("amount", True, "got a boolean"),
    ("city", 1.5, "expected text"),
    ("city", False, "expected text"),
    ("flag", 2, "expected true or false"),
    ("flag", "yes", "expected true or false"),
    ("at", "tomorrow", "ISO-8601"),
    ("at", 1700000000, "ISO-8601"),
    ("city", ["a"], "got an array"),
    ("city", "x" * 1025, "text of 1025 characters; the limit is 1024 characters"),
    ("code", "1" * 5000, "text of 5000 characters"),  # before any parse: int() of 5000 digits would raise
]


def test_long_numeric_text_under_a_raised_limit_is_refused_not_a_crash() -> None:
    rule = FieldRule("code", "integer", True, 10_000, "Int64")
    assert "expected a whole number" in str(convert_value("1" * 5000, rule)[1])
    assert "expected a number" in str(convert_value("9" * 5000, FieldRule("x", "float", True, 10_000, None))[1])


@pytest.mark.parametrize(("name", "value", "expected"), ACCEPTED)
def test_accepted_values_convert_to_the_training_type(name: str, value: Any, expected: Any) -> None:
    converted, reason = convert_value(value, RULES[name])
    assert reason is None and converted == expected and type(converted) is type(expected)


@pytest.mark.parametrize(("name", "value", "reason"), REFUSED)
def test_refused_values_say_why_and_the_fix(name: str, value: Any, reason: str) -> None:
    _, problem = convert_value(value, RULES[name])
    assert problem is not None and reason in problem
    assert problem.rstrip().endswith(".")
    assert len(problem) < 300  # a long value is never echoed whole


def _column(name: str, values: list[Any]) -> pl.Series:
    kinds = {type(v) for v in values if v is not None}
    dtype = {int: pl.Int64, float: pl.Float64, str: pl.String, bool: pl.Boolean}[kinds.pop()]
    return pl.Series(name, values, dtype=dtype)


@pytest.mark.parametrize(("name", "value", "expected"), [a for a in ACCEPTED if a[1] is not None])
def test_a_table_converts_as_records_do(name: str, value: Any, expected: Any) -> None:
    table = conform_table(pl.DataFrame([_column(name, [value, None])]), [RULES[name]])
    got = table[name][0]
    if name == "at":
        assert got.isoformat() == "2024-03-10T17:45:00+00:00"
    else:
        assert got == expected and table[name][1] is None


@pytest.mark.parametrize(
    ("name", "value"),
    [(n, v) for n, v, _ in REFUSED if n != "at" and not isinstance(v, list) and v != 2**63 and v != float("inf")],
)
def test_a_table_refuses_what_records_refuse(name: str, value: Any) -> None:
    frame = pl.DataFrame([_column(name, [None, value])])
    with pytest.raises(DataError, match=rf"row 12, column '{name}'"):
        conform_table(frame, [RULES[name]], first_row=10)


def test_records_keep_the_schema_fields_only_and_count_the_rest() -> None:
    rules = field_rules(SCHEMA[:2])
    done = conform_records([{"code": "4", "small": 1, "id": 9, "label": True}, {"code": 5}], rules)
    assert done.records == [{"code": 4, "small": 1}, {"code": 5, "small": None}]
    assert done.extra_fields == 2 and done.missing_fields == {"small": 1}


def test_missing_fields_follow_the_policy_and_the_schema() -> None:
    rules = field_rules(SCHEMA[:2])
    with pytest.raises(SchemaValidationError, match="send null for a missing value"):
        conform_records([{"code": 1}], rules, InputPolicy(missing_as_null=False))
    with pytest.raises(SchemaValidationError, match=r"Did you mean 'smal'\? Name it 'small'"):
        conform_records([{"code": 1, "smal": 2}], rules)
    required = field_rules([{**SCHEMA[0], "nullable": False}])
    with pytest.raises(SchemaValidationError, match="cannot impute it"):
        conform_records([{}], required)
    with pytest.raises(SchemaValidationError, match="null is not allowed"):
        conform_records([{"code": None}], required)


def test_errors_are_bounded_per_request() -> None:
    with pytest.raises(SchemaValidationError) as caught:
        conform_records([{"code": "x"}] * 500, field_rules(SCHEMA[:1]))
    assert len(caught.value.errors) == 20 and caught.value.errors[-1]["record"] == 19


def test_max_length_comes_from_the_schema_then_the_policy() -> None:
    schema = with_training_types([{"name": "city", "dtype": "string"}], {"city": "String"}, {"city": 3})
    assert schema == [{"name": "city", "dtype": "string", "train_dtype": "String", "max_length": 3}]
    assert field_rules(schema, InputPolicy(max_string_length=10))[0].max_length == 3
    assert field_rules(SCHEMA, InputPolicy(max_string_length=10))[0].max_length == 10
    with pytest.raises(ConfigError, match=r"max_lengths names 'cty'.*Did you mean 'city'"):
        with_training_types(schema, {}, {"cty": 3})
    with pytest.raises(ConfigError, match="at least 1"):
        InputPolicy(max_string_length=0).check()


def test_table_columns_are_planned_by_the_same_rules() -> None:
    rules = field_rules(SCHEMA[:2])
    plan = plan_columns(rules, ["id", "code"])
    assert plan.read == ["code"] and plan.missing == ["small"] and plan.ignored == ["id"]
    with pytest.raises(DataError, match=r"no column 'small'.*Did you mean 'smal'\? Rename it to 'small'"):
        plan_columns(rules, ["code", "smal"])
    with pytest.raises(DataError, match="no column 'small'"):
        plan_columns(rules, ["code"], InputPolicy(missing_as_null=False))
    added = conform_table(pl.DataFrame({"code": [1, 2]}), rules)
    assert added.schema["small"] == pl.UInt8 and added["small"].null_count() == 2


def test_a_float_column_for_an_integer_input_is_not_truncated() -> None:
    """polars' strict cast truncates 2.5 to 2; the policy refuses it and keeps whole floats."""
    rule = FieldRule("code", "integer", True, 1024, "Int64")
    assert conform_table(pl.DataFrame({"code": [2.0, None, float("nan")]}), [rule])["code"].to_list() == [
        2,
        None,
        None,
    ]
    with pytest.raises(DataError, match=r"row 2, column 'code'.*got 2\.5"):
        conform_table(pl.DataFrame({"code": [2.0, 2.5]}), [rule])
