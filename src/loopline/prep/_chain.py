"""A chain of transforms: fitted once on the training rows, then applied identically to tables and records.

    chain = Chain.from_config([
        {"type": "impute", "columns": ["amount"], "strategy": "median", "add_indicator": True},
        {"type": "derive", "columns": {"per_item": "amount / (qty + 1)"}},
        {"type": "onehot", "columns": ["city"], "min_frequency": 20},
        {"type": "scale", "columns": ["amount", "per_item"]},
    ])
    train_features = chain.fit_transform(train, target="label")   # fitted on train only
    chain.transform(test)                                          # the batch path
    chain.transform_record({"amount": 12.5, "qty": 2, "city": "Lyon"})   # the serving path: no DataFrame

The chain's state is JSON (``to_state`` / ``from_state``: type names, parameters, learned state), so a model
bundle carries it without pickle and rebuilds it only from registered transform types. ``lineage()`` says
which input columns each output column comes from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import polars as pl

from loopline.core.errors import ConfigError, DataError
from loopline.prep._transform import TRANSFORMS, Record, Transform, build_transform

STATE_VERSION = 1


class Chain:
    """Transforms in order (see the module docstring)."""

    def __init__(self, transforms: Sequence[Transform]) -> None:
        self.transforms = list(transforms)

    @classmethod
    def from_config(cls, specs: Iterable[Mapping[str, Any]]) -> Chain:
        """A chain from its YAML form: a list of ``{type: ..., option: value}``; errors name the position."""
        transforms = []
        for position, spec in enumerate(specs, start=1):
            try:
                transforms.append(build_transform(dict(spec)))
            except ConfigError as exc:
                raise ConfigError(f"transform #{position}: {exc.message}", key=exc.key, hint=exc.hint) from None
        return cls(transforms)

    # -- fitting -----------------------------------------------------------------------------------

    def fit_transform(self, frame: pl.DataFrame, target: str | None = None) -> pl.DataFrame:
        """Fit every transform in turn on the training rows and return them transformed.

        Sampling and augmentation (``train_only``) apply here and nowhere else. The target column, when
        given, travels through unchanged for the transforms that learn from it.
        """
        if frame.height == 0:
            raise DataError("cannot fit preprocessing on an empty table.", hint="Pass the training rows.")
        self.inputs_ = {name: str(dtype) for name, dtype in frame.schema.items() if name != target}
        lineage = {name: [name] for name in frame.columns}
        for transform in self.transforms:
            transform.check_params()
            frame = transform.fit_transform(frame, target)
            lineage = _compose(lineage, transform.lineage(), frame.columns)
        self.outputs_ = {name: str(dtype) for name, dtype in frame.schema.items() if name != target}
        self.lineage_ = {name: lineage.get(name, [name]) for name in self.outputs_}
        return frame

    def fit(self, frame: pl.DataFrame, target: str | None = None) -> Chain:
        """Fit on the training rows (see :meth:`fit_transform`)."""
        self.fit_transform(frame, target)
        return self

    # -- applying ----------------------------------------------------------------------------------

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The batch path: every transform but the training-only ones."""
        self._check_fitted()
        for transform in self.transforms:
            if not transform.train_only:
                frame = transform.transform(frame)
        return frame

    def transform_record(self, record: Mapping[str, Any]) -> Record:
        """The one-record path: the same values as :meth:`transform`, with no DataFrame."""
        self._check_fitted()
        out = dict(record)
        for transform in self.transforms:
            if not transform.train_only:
                out = transform.transform_record(out)
        return out

    def transform_records(self, records: Iterable[Mapping[str, Any]]) -> list[Record]:
        """:meth:`transform_record` over records."""
        return [self.transform_record(r) for r in records]

    # -- what it knows -----------------------------------------------------------------------------

    def lineage(self) -> dict[str, list[str]]:
        """Output column -> the input columns it comes from."""
        self._check_fitted()
        return {k: list(v) for k, v in self.lineage_.items()}

    def counts(self) -> dict[str, int]:
        """Serving-time events counted by the transforms (unseen categories, NaN...), by ``type: event``."""
        merged: dict[str, int] = {}
        for transform in self.transforms:
            for event, n in transform.counts().items():
                key = f"{transform.type_name}: {event}"
                merged[key] = merged.get(key, 0) + n
        return merged

    def is_fitted(self) -> bool:
        """Whether :meth:`fit` ran (or the state was loaded)."""
        return hasattr(self, "outputs_")

    def _check_fitted(self) -> None:
        if not self.is_fitted():
            raise ConfigError("the preprocessing chain is not fitted.", hint="Call fit(train) first.")

    # -- state -------------------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """JSON-able: every transform's type, parameters and learned state, and the chain's schemas."""
        self._check_fitted()
        return {
            "version": STATE_VERSION,
            "transforms": [
                {"type": t.type_name, "params": t.get_params(), "state": t.get_state()} for t in self.transforms
            ],
            "inputs": dict(self.inputs_),
            "outputs": dict(self.outputs_),
            "lineage": self.lineage(),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Chain:
        """Rebuild a fitted chain from :meth:`to_state` output; only registered transform types are built."""
        try:
            if state["version"] != STATE_VERSION:
                raise DataError(
                    f"preprocessing chain state version {state['version']!r} is not supported.",
                    hint="Re-train the model with this version of loopline.",
                )
            transforms = []
            for item in state["transforms"]:
                transform = TRANSFORMS.get(item["type"])(**item["params"])
                transforms.append(transform.set_state(item["state"]))
            chain = cls(transforms)
            chain.inputs_ = dict(state["inputs"])
            chain.outputs_ = dict(state["outputs"])
            chain.lineage_ = {k: list(v) for k, v in state["lineage"].items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(
                f"preprocessing chain state is malformed ({type(exc).__name__}: {exc}).",
                hint="Re-train the model; the bundle was not written by loopline or is damaged.",
            ) from None
        return chain

    def __repr__(self) -> str:
        return f"Chain({self.transforms!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Chain) and self.transforms == other.transforms

    __hash__ = None  # type: ignore[assignment]


def _compose(lineage: dict[str, list[str]], step: dict[str, list[str]], present: Sequence[str]) -> dict[str, list[str]]:
    """Lineage after one transform: its outputs trace back through what came before; gone columns drop out."""
    updated = dict(lineage)
    for output, inputs in step.items():
        sources: list[str] = []
        for name in inputs:
            sources.extend(lineage.get(name, [name]))
        updated[output] = list(dict.fromkeys(sources))
    return {name: updated.get(name, [name]) for name in present}
