"""Column expressions written in YAML, compiled twice: to a polars expression and to a Python function.

    amount / (qty + 1)
    where(qty > 0, log1p(amount), 0.0)
    hour(ts) + minute(ts) / 60
    coalesce(city, "unknown")

The text is parsed by Python's ``ast`` and only the nodes below are accepted — column names, numbers,
strings, ``True``/``False``/``None``, ``+ - * / **``, comparisons, ``and``/``or``/``not`` and the functions of
:data:`FUNCTIONS` — so an expression can never run code. Both compilations follow polars' semantics, which is
what makes the table path and the one-record path agree: a null operand gives null (``and``/``or`` use
three-valued logic); ``a / b`` is computed as ``a * (1 / b)`` in both (polars itself does so whenever it holds
``b`` as a scalar, which depends on the batch; so ``x / 0`` is ``inf``, ``-inf`` or ``NaN``, and a quotient may
differ from true division in its last bit); comparisons order NaN above every number (and NaN == NaN);
``log`` of 0 is ``-inf`` and of a negative number ``NaN``; date parts and string lengths are Int64. A column
whose name is not an identifier is written ``col("unit price")``.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import polars as pl

from loopline.core.errors import ConfigError, did_you_mean

RecordFn = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class Compiled:
    """One expression, as polars and as Python, with the columns it reads."""

    text: str
    polars: pl.Expr
    python: RecordFn
    columns: tuple[str, ...]


def compile_expression(text: str) -> Compiled:
    """Parse and compile ``text``; a ConfigError points at the part that is not allowed."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ConfigError(
            f"expression {text!r} is not valid: {exc.msg}.",
            key="expr",
            hint="Write it like a Python expression over column names, e.g. amount / (qty + 1).",
        ) from None
    compiler = _Compiler(text)
    polars_expr, python_fn = compiler.visit(tree.body)
    return Compiled(text, polars_expr, python_fn, tuple(dict.fromkeys(compiler.columns)))


# -- Python-side operations with polars' semantics ------------------------------------------------


def _nullsafe(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def apply(a: Any, b: Any) -> Any:
        return None if a is None or b is None else op(a, b)

    return apply


def _times_reciprocal(a: Any, b: Any) -> float:
    b = float(b)
    return float(a) * (math.copysign(math.inf, b) if b == 0.0 else 1.0 / b)


def _ordered(value: Any) -> tuple[int, Any]:
    return (1, 0.0) if isinstance(value, float) and math.isnan(value) else (0, value)


def _power(a: Any, b: Any) -> Any:
    try:
        result = a**b
    except ZeroDivisionError:
        return math.inf
    except OverflowError:
        return math.inf
    return math.nan if isinstance(result, complex) else result


def _log(x: float) -> float:
    x = float(x)
    if x == 0.0:
        return -math.inf
    return math.nan if x < 0 or math.isnan(x) else math.log(x)


def _log1p(x: float) -> float:
    x = float(x)
    if x == -1.0:
        return -math.inf
    return math.nan if x < -1 or math.isnan(x) else math.log1p(x)


def _sqrt(x: float) -> float:
    x = float(x)
    return math.nan if x < 0 or math.isnan(x) else math.sqrt(x)


def _exp(x: float) -> float:
    try:
        return math.exp(float(x))
    except OverflowError:
        return math.inf


def _when(cond: Any, then: Any, otherwise: Any) -> Any:
    return then if cond is True else otherwise


def _coalesce(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _clip(x: Any, low: Any, high: Any) -> Any:
    if x is None:
        return None
    if isinstance(x, float) and math.isnan(x):
        return x
    return min(max(x, low), high)


def _part(name: str) -> Callable[[Any], Any]:
    def get(value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, date | datetime):
            raise ConfigError(f"{name}() needs a date or datetime, got {type(value).__name__}.", key="expr")
        if name == "weekday":
            return value.isoweekday()
        if name == "dayofyear":
            return value.timetuple().tm_yday
        return getattr(value, name)

    return get


#: name -> (arity or None for variadic, polars builder, Python function)
FUNCTIONS: dict[str, tuple[int | None, Callable[..., pl.Expr], Callable[..., Any]]] = {
    "log": (1, lambda x: x.log(), _log),
    "log1p": (1, lambda x: x.log1p(), _log1p),
    "exp": (1, lambda x: x.exp(), _exp),
    "sqrt": (1, lambda x: x.sqrt(), _sqrt),
    "abs": (1, lambda x: x.abs(), abs),
    "clip": (3, lambda x, lo, hi: x.clip(lo, hi), _clip),
    "where": (3, lambda c, a, b: pl.when(c).then(a).otherwise(b), _when),
    "coalesce": (None, lambda *xs: pl.coalesce(*xs), _coalesce),
    "is_null": (1, lambda x: x.is_null(), lambda x: x is None),
    "lower": (1, lambda x: x.str.to_lowercase(), str.lower),
    "upper": (1, lambda x: x.str.to_uppercase(), str.upper),
    "strip": (1, lambda x: x.str.strip_chars(), str.strip),
    "len": (1, lambda x: x.str.len_chars().cast(pl.Int64), len),
    "year": (1, lambda x: x.dt.year().cast(pl.Int64), _part("year")),
    "month": (1, lambda x: x.dt.month().cast(pl.Int64), _part("month")),
    "day": (1, lambda x: x.dt.day().cast(pl.Int64), _part("day")),
    "hour": (1, lambda x: x.dt.hour().cast(pl.Int64), _part("hour")),
    "minute": (1, lambda x: x.dt.minute().cast(pl.Int64), _part("minute")),
    "weekday": (1, lambda x: x.dt.weekday().cast(pl.Int64), _part("weekday")),
    "dayofyear": (1, lambda x: x.dt.ordinal_day().cast(pl.Int64), _part("dayofyear")),
}
_NULL_THROUGH = {"where", "coalesce", "is_null"}  # functions that see nulls themselves

_BINARY: dict[type[ast.operator], tuple[Callable[[Any, Any], Any], Callable[[Any, Any], Any]]] = {
    ast.Add: (operator.add, _nullsafe(operator.add)),
    ast.Sub: (operator.sub, _nullsafe(operator.sub)),
    ast.Mult: (operator.mul, _nullsafe(operator.mul)),
    ast.Pow: (operator.pow, _nullsafe(_power)),
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


class _Compiler:
    """Walks the accepted subset of Python's AST, building both compilations at once."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.columns: list[str] = []

    def visit(self, node: ast.AST) -> tuple[pl.Expr, RecordFn]:
        method = getattr(self, f"_{type(node).__name__.lower()}", None)
        if method is None:
            raise self._refuse(node, f"{type(node).__name__} is not allowed")
        result: tuple[pl.Expr, RecordFn] = method(node)
        return result

    def _name(self, node: ast.Name) -> tuple[pl.Expr, RecordFn]:
        if node.id in ("True", "False", "None"):
            return self._constant(ast.Constant({"True": True, "False": False, "None": None}[node.id]))
        return self._column(node.id)

    def _column(self, name: str) -> tuple[pl.Expr, RecordFn]:
        self.columns.append(name)
        return pl.col(name), lambda r: r.get(name)

    def _constant(self, node: ast.Constant) -> tuple[pl.Expr, RecordFn]:
        value = node.value
        if not isinstance(value, int | float | str | bool | type(None)):
            raise self._refuse(node, f"constant {value!r} is not allowed")
        return pl.lit(value), lambda r: value

    def _binop(self, node: ast.BinOp) -> tuple[pl.Expr, RecordFn]:
        if type(node.op) not in _BINARY and not isinstance(node.op, ast.Div):
            raise self._refuse(node, f"operator {type(node.op).__name__} is not allowed (use + - * / **)")
        (left, lf), (right, rf) = self.visit(node.left), self.visit(node.right)
        if isinstance(node.op, ast.Div):
            # a / b is a * (1 / b) in both compilations: polars turns a division by a value it holds as a
            # scalar (a literal, or a column it stores as one constant) into that multiplication itself, so
            # only this form gives the same bits for every batch and every column representation
            reciprocal = pl.lit(1.0) / right
            return left * reciprocal, lambda r: _nullsafe(_times_reciprocal)(lf(r), rf(r))
        on_expr, on_value = _BINARY[type(node.op)]
        return on_expr(left, right), lambda r: on_value(lf(r), rf(r))

    def _unaryop(self, node: ast.UnaryOp) -> tuple[pl.Expr, RecordFn]:
        operand, fn = self.visit(node.operand)
        if isinstance(node.op, ast.USub):
            return -operand, lambda r: None if (v := fn(r)) is None else -v
        if isinstance(node.op, ast.Not):
            return ~operand, lambda r: None if (v := fn(r)) is None else not v
        if isinstance(node.op, ast.UAdd):
            return operand, fn
        raise self._refuse(node, f"operator {type(node.op).__name__} is not allowed")

    def _compare(self, node: ast.Compare) -> tuple[pl.Expr, RecordFn]:
        if len(node.ops) != 1 or type(node.ops[0]) not in _COMPARE:
            raise self._refuse(node, "use one comparison at a time (<, <=, >, >=, ==, !=), joined by and/or")
        (left, lf), (right, rf) = self.visit(node.left), self.visit(node.comparators[0])
        op = _COMPARE[type(node.ops[0])]

        def compare(a: Any, b: Any) -> bool:  # polars orders NaN above every number, and NaN == NaN
            return bool(op(_ordered(a), _ordered(b)))

        return op(left, right), lambda r: _nullsafe(compare)(lf(r), rf(r))

    def _boolop(self, node: ast.BoolOp) -> tuple[pl.Expr, RecordFn]:
        parts = [self.visit(v) for v in node.values]
        exprs, fns = [p[0] for p in parts], [p[1] for p in parts]
        if isinstance(node.op, ast.And):
            combined = exprs[0]
            for e in exprs[1:]:
                combined = combined & e
            return combined, lambda r: _kleene_and([f(r) for f in fns])
        combined = exprs[0]
        for e in exprs[1:]:
            combined = combined | e
        return combined, lambda r: _kleene_or([f(r) for f in fns])

    def _call(self, node: ast.Call) -> tuple[pl.Expr, RecordFn]:
        if not isinstance(node.func, ast.Name) or node.keywords:
            raise self._refuse(node, "only calls of the known functions, with positional arguments, are allowed")
        name = node.func.id
        if name == "col":
            if (
                len(node.args) != 1
                or not isinstance(node.args[0], ast.Constant)
                or not isinstance(node.args[0].value, str)
            ):
                raise self._refuse(node, 'col() takes one column name in quotes: col("unit price")')
            return self._column(node.args[0].value)
        if name not in FUNCTIONS:
            hint = did_you_mean(name, [*FUNCTIONS, "col"]) or f"Functions: {', '.join(sorted(FUNCTIONS))}, col."
            raise ConfigError(f"expression {self.text!r}: unknown function {name!r}.", key="expr", hint=hint)
        arity, on_expr, on_value = FUNCTIONS[name]
        if arity is not None and len(node.args) != arity:
            raise self._refuse(node, f"{name}() takes {arity} argument(s), got {len(node.args)}")
        parts = [self.visit(a) for a in node.args]
        exprs, fns = [p[0] for p in parts], [p[1] for p in parts]
        if name in _NULL_THROUGH:
            return on_expr(*exprs), lambda r: on_value(*(f(r) for f in fns))

        def apply(r: dict[str, Any]) -> Any:
            values = [f(r) for f in fns]
            return None if any(v is None for v in values) else on_value(*values)

        return on_expr(*exprs), apply

    def _refuse(self, node: ast.AST, why: str) -> ConfigError:
        piece = ast.get_source_segment(self.text.strip(), node) or type(node).__name__
        return ConfigError(
            f"expression {self.text!r}: {why} (at {piece!r}).",
            key="expr",
            hint="Expressions use column names, numbers, strings, + - * / **, comparisons, and/or/not and "
            f"the functions {', '.join(sorted(FUNCTIONS))}.",
        )


def _kleene_and(values: list[Any]) -> Any:
    if any(v is False for v in values):
        return False
    return None if any(v is None for v in values) else True


def _kleene_or(values: list[Any]) -> Any:
    if any(v is True for v in values):
        return True
    return None if any(v is None for v in values) else False
