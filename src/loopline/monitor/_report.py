"""The records of a drift check: :class:`FeatureDrift` per feature and the :class:`DriftReport`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from loopline.core.config import DriftConfig
from loopline.monitor._drift_tests import Kind

if TYPE_CHECKING:
    from loopline.monitor._multivariate import MultivariateDrift

Status = Literal["drift", "no drift", "not enough data", "not available"]
DRIFT: Status = "drift"
NO_DRIFT: Status = "no drift"
NOT_ENOUGH_DATA: Status = "not enough data"
NOT_AVAILABLE: Status = "not available"
"""The reference holds nothing to compare with (an output profile stored before output distributions)."""


@dataclass(frozen=True)
class FeatureDrift:
    """Drift of one feature. ``n_reference``/``n_current`` count rows, nulls included.

    ``test`` names the registered drift test that compared it (chosen by ``auto`` unless configured);
    ``p_value`` is None for a distance or when the test did not run. ``status`` is ``"drift"``,
    ``"no drift"``, ``"not enough data"`` (or ``"not available"``, see ``prediction_drift``); ``drifted`` is
    ``status == "drift"``. ``threshold``: the distance threshold, or the significance level of a p-value test;
    ``p_value_adjusted``: the p-value after the report's multiple-testing correction (what the verdict reads).
    ``missing_reference`` and ``missing_current`` are the null shares; ``missing_drifted`` says the
    missing share itself drifted. ``reason`` explains the verdict in words.
    """

    feature: str
    kind: Kind
    psi: float
    test: str
    statistic: float
    p_value: float | None
    drifted: bool
    n_reference: int
    n_current: int
    reason: str = ""
    status: str = ""
    threshold: float | None = None
    p_value_adjusted: float | None = None
    missing_reference: float = 0.0
    missing_current: float = 0.0
    missing_drifted: bool = False


@dataclass(frozen=True)
class DriftReport:
    """Drift of every feature; ``drifted`` names the drifted ones in feature order.

    ``dataset_drift`` is true when at least ``config.min_drifted_features`` features drifted, or the domain
    classifier (``multivariate``, when ``config.multivariate.enabled``) tells the samples apart. With p-value
    tests corrected by Holm (the default), the chance that a report on undrifted data flags any feature is at
    most ``config.p_value`` (twice that for ``dataset_drift`` with the domain classifier on).
    ``not_enough_data`` names the features without a verdict.
    """

    features: list[FeatureDrift]
    drifted: list[str]
    dataset_drift: bool
    config: DriftConfig = field(default_factory=DriftConfig)
    multivariate: MultivariateDrift | None = None

    @property
    def not_enough_data(self) -> list[str]:
        """Features whose samples were too small for a verdict."""
        return [feature.feature for feature in self.features if feature.status == NOT_ENOUGH_DATA]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; :meth:`from_dict` reads it back."""
        return {
            "features": [asdict(feature) for feature in self.features],
            "drifted": list(self.drifted),
            "dataset_drift": self.dataset_drift,
            "config": self.config.model_dump(),
            **({} if self.multivariate is None else {"multivariate": self.multivariate.to_dict()}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftReport:
        """Rebuild a report written by :meth:`to_dict` (older reports get a status from ``drifted``)."""
        features = [FeatureDrift(**feature) for feature in data["features"]]
        features = [f if f.status else replace(f, status=DRIFT if f.drifted else NO_DRIFT) for f in features]
        return cls(
            features=features,
            drifted=list(data["drifted"]),
            dataset_drift=bool(data["dataset_drift"]),
            config=DriftConfig(**data.get("config", {})),
            multivariate=_multivariate(data.get("multivariate")),
        )


def _multivariate(data: dict[str, Any] | None) -> MultivariateDrift | None:
    from loopline.monitor._multivariate import MultivariateDrift

    return None if data is None else MultivariateDrift.from_dict(data)
