"""The transform contract: one step of preprocessing, fitted once, applied identically to tables and records.

    class Clip(Transform):
        type_name = "clip"

        def __init__(self, columns: list[str], upper: float = 1.0) -> None:   # stores, never validates
            self.columns = columns
            self.upper = upper

        def fit(self, frame, target=None):          # learns state: attributes ending in "_"
            self.limit_ = ...
            return self

        def transform(self, frame):                 # the batch path: polars, vectorised
            ...

        def transform_record(self, record):         # the one-record path: a dict in, a dict out, no DataFrame
            ...

Guarantees every transform keeps (``loopline.testing.check_transform`` checks them):

- The constructor stores its keyword arguments as given; :meth:`get_params` returns them, so a transform is
  rebuilt from its YAML form (``{type: clip, columns: [...], upper: 1.0}``) and from a bundle.
- :meth:`fit` learns from the training rows only and returns ``self``; :meth:`transform` and
  :meth:`transform_record` never change the learned state.
- The learned state (every public attribute ending in ``_``) is JSON: :meth:`get_state` / :meth:`set_state`
  round-trip it, so a bundle holds no pickle.
- The two paths agree: ``transform_record(row)`` equals the row of ``transform(frame)`` for every row.
- :meth:`lineage` maps each column the transform creates or changes to the input columns it comes from.
- ``train_only`` transforms (sampling, augmentation) change the training rows in :meth:`fit_transform` and are
  the identity everywhere else, so validation, test and live data are never resampled.

Errors name the transform, the column and a did-you-mean (:meth:`require_columns`). What a transform meets at
serving time that training did not show it (an unseen category, NaN, a wrong type) follows the transform's
documented policy and is counted (:meth:`count`), so monitoring can report it.
"""

from __future__ import annotations

import inspect
import json
from collections import Counter
from collections.abc import Iterable
from typing import Any, ClassVar

import polars as pl

from loopline.core.errors import ConfigError, DataError, did_you_mean
from loopline.core.registry import Registry

Record = dict[str, Any]


class Transform:
    """Base class of preprocessing transforms (see the module docstring for the contract)."""

    type_name: ClassVar[str]
    #: sampling and augmentation: applied to training rows in fit_transform only
    train_only: ClassVar[bool] = False
    #: whether fit learns anything (stateless transforms skip it)
    stateful: ClassVar[bool] = True

    # -- the contract ------------------------------------------------------------------------------

    def check_params(self) -> None:
        """Raise ConfigError for invalid parameters (called when built from config and before fitting)."""

    def fit(self, frame: pl.DataFrame, target: str | None = None) -> Transform:
        """Learn the state from training rows (``target`` names the label column, when there is one)."""
        return self

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The batch path."""
        raise NotImplementedError

    def transform_record(self, record: Record) -> Record:
        """The one-record path; the default goes through a one-row frame (built-ins override it)."""
        rows = self.transform(pl.DataFrame([record])).to_dicts()
        return rows[0] if rows else record

    def fit_transform(self, frame: pl.DataFrame, target: str | None = None) -> pl.DataFrame:
        """Fit, then transform the training rows (encoders fitted out-of-fold override this).

        Events counted while transforming the training rows are not serving-time events: they are cleared.
        """
        out = self.fit(frame, target).transform(frame)
        self.__dict__.pop("_counts", None)
        return out

    def lineage(self) -> dict[str, list[str]]:
        """Output column -> the input columns it comes from, for the columns this transform creates or changes."""
        return {}

    # -- parameters and state ----------------------------------------------------------------------

    def get_params(self) -> dict[str, Any]:
        """The constructor's arguments, as given."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    def get_state(self) -> dict[str, Any]:
        """The learned state: public attributes ending in ``_``."""
        return {k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}

    def set_state(self, state: dict[str, Any]) -> Transform:
        """Restore :meth:`get_state` output."""
        for key, value in state.items():
            if not key.endswith("_") or key.startswith("_"):
                raise DataError(
                    f"transform {self.type_name!r}: {key!r} is not a state attribute.",
                    hint="The bundle was not written by loopline or is damaged; re-train the model.",
                )
            setattr(self, key, value)
        return self

    def is_fitted(self) -> bool:
        """Whether the transform holds learned state (stateless ones always do)."""
        return not self.stateful or bool(self.get_state())

    # -- helpers for transforms --------------------------------------------------------------------

    def require_columns(self, frame: pl.DataFrame | Record, columns: Iterable[str]) -> None:
        """A DataError naming this transform and the first missing column, with a did-you-mean."""
        present = list(frame.columns if isinstance(frame, pl.DataFrame) else frame)
        for name in columns:
            if name not in present:
                hint = did_you_mean(name, present) or f"Columns present: {', '.join(map(str, present))}."
                raise DataError(f"{self.type_name}: column {name!r} is missing.", column=name, hint=hint)

    def count(self, event: str, n: int = 1) -> None:
        """Count a serving-time event (``"city: unseen category"``) for monitoring."""
        if n:
            counts: Counter[str] = self.__dict__.setdefault("_counts", Counter())
            counts[event] += n

    def counts(self) -> dict[str, int]:
        """The events counted so far."""
        return dict(self.__dict__.get("_counts", {}))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and self.get_params() == other.get_params()  # type: ignore[attr-defined]
            and _json(self.get_state()) == _json(other.get_state())  # type: ignore[attr-defined]
        )

    __hash__ = None  # type: ignore[assignment]


TRANSFORMS: Registry[type[Transform]] = Registry(
    "transform",
    "loopline.transforms",
)


def build_transform(spec: dict[str, Any]) -> Transform:
    """A transform from its mapping form ``{type: impute, columns: [...], ...}``, arguments checked."""
    if "type" not in spec:
        raise ConfigError(
            "a transform needs a 'type'.", key="type", hint=f"Known transform types: {', '.join(TRANSFORMS.names())}."
        )
    cls = TRANSFORMS.get(str(spec["type"]))
    params = {k: v for k, v in spec.items() if k != "type"}
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    for key in params:
        if key not in accepted:
            hint = did_you_mean(key, accepted) or f"{cls.type_name} takes: {', '.join(accepted)}."
            raise ConfigError(f"transform {cls.type_name!r} has no option {key!r}.", key=key, hint=hint)
    try:
        transform = cls(**params)
    except TypeError as exc:
        raise ConfigError(
            f"transform {cls.type_name!r}: {exc}", key=cls.type_name, hint=f"It takes: {', '.join(accepted)}."
        ) from None
    transform.check_params()
    return transform


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
