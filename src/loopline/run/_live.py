"""Champion against challenger on live traffic: what a shadow or a canary did in a window, as gate evidence.

The service logs a challenger's answers in the prediction log (:mod:`loopline.serve._challenger`):

- a **shadow** row has the champion row's id plus ``:shadow`` (and ``output["role"] == "shadow"``), the
  champion row's ``created_at`` and the shadow's version: both answers of one request pair up by id, and the
  label sent for the champion's id is the shadow row's label too;
- a **canary** row is an ordinary row of the canary's version (``output["role"] == "canary"``), answering a
  share of the requests on its own.

:func:`compare_live` reads the window's rows (with their labels) and returns a :class:`LiveComparison`: rows
and model-call latency (per record, in milliseconds) of each side, the prediction distributions' distance
(classification: total variation distance of the predicted classes; regression: the two-sample
Kolmogorov–Smirnov statistic), and for a shadow the agreement on the same requests. Realised metrics
(:func:`loopline.monitor.performance_figures`) come from the labelled rows: for a shadow on the labelled
requests both answered (a like-for-like comparison), for a canary on each side's own traffic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from scipy import stats

from loopline.core.errors import DataError, NotFoundError, did_you_mean
from loopline.core.records import ProbationEvidence
from loopline.monitor import PerformanceFigures, performance_figures
from loopline.run._evaluate import load_bundle
from loopline.store.feedback import SHADOW_ID_SUFFIX

if TYPE_CHECKING:
    from loopline.store import Store


SHADOW, CANARY, NONE = "shadow", "canary", "none"
MIN_LABELS = 30
"""Labelled rows a side needs for realised metrics (the monitor's own default)."""


@dataclass(frozen=True)
class LiveSide:
    """One version's logged traffic in the window: ``rows`` answers (for a shadow: scored requests' records),
    the per-record model-call latency percentiles in milliseconds (None without rows), and ``realised``: its
    metrics on the labelled rows (see the module doc)."""

    version: int
    role: str
    rows: int
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    realised: PerformanceFigures


@dataclass(frozen=True)
class LiveComparison:
    """Champion against challenger in [start, end) for ``model`` (``task``); ``mode`` is ``"shadow"``,
    ``"canary"`` or ``"none"`` (the challenger logged nothing in the window).

    ``paired``: requests both versions answered (a shadow's); ``agreement``: the share of them with the same
    predicted class (classification; None for a regression or without pairs); ``mean_abs_difference``: the
    mean absolute difference of paired regression predictions. ``distribution_distance`` compares the
    prediction distributions of all rows of each side, by ``distribution_test`` (``"total_variation"`` or
    ``"ks"``); None when a side has no rows.
    """

    model: str
    start: datetime
    end: datetime
    task: str
    mode: str
    champion: LiveSide
    challenger: LiveSide
    paired: int
    agreement: float | None
    mean_abs_difference: float | None
    distribution_distance: float | None
    distribution_test: str

    def evidence(self, metric: str) -> tuple[ProbationEvidence, ProbationEvidence] | None:
        """(champion, challenger) as the gate's evidence on ``metric`` (realised, from labels), or None when a
        side lacks enough labelled rows or the metric."""
        sides = (self.champion, self.challenger)
        if any(side.realised.status != "ok" or metric not in side.realised.metrics for side in sides):
            return None
        champion, challenger = (
            ProbationEvidence(side.version, metric, side.realised.metrics[metric], side.realised.labelled)
            for side in sides
        )
        return champion, challenger


def compare_live(
    store: Store,
    model: str,
    start: datetime,
    end: datetime,
    *,
    challenger: int | None = None,
    champion: int | None = None,
    min_labels: int = MIN_LABELS,
) -> LiveComparison:
    """Compare the champion (default: the production version) with the challenger (default: the version of
    the window's shadow rows, else the most frequent other version) on ``model``'s traffic in [start, end)."""
    if end <= start:
        raise DataError(f"the window ends ({end}) before it starts ({start}).", hint="Pass start < end.")
    champion = _champion(store, model, champion)
    bundle = load_bundle(store, store.models.get(model, champion))
    task, classes = bundle.task, bundle.classes
    frame = _window(store, model, start, end)
    shadow = pl.col("prediction_id").str.ends_with(SHADOW_ID_SUFFIX)
    challenger = challenger if challenger is not None else _challenger(frame, champion, model)
    if challenger == champion:
        raise DataError(
            f"the challenger of {model!r} is version {champion}, the champion itself.",
            hint="Pass another version as challenger.",
        )
    mine = frame.filter(~shadow & (pl.col("model_version") == champion))
    shadows = frame.filter(shadow & (pl.col("model_version") == challenger))
    canary = frame.filter(~shadow & (pl.col("model_version") == challenger))
    mode = SHADOW if shadows.height else CANARY if canary.height else NONE
    theirs = shadows if mode == SHADOW else canary
    pairs = _pairs(mine, shadows)
    kind = (task, classes, min_labels)
    if mode == SHADOW:
        labelled_mine = pairs.select(pl.exclude("^challenger:.*$"))
        labelled_theirs = pairs.select(pl.col("^challenger:.*$").name.map(lambda c: c[len("challenger:") :]))
    else:
        labelled_mine, labelled_theirs = mine, theirs
    return LiveComparison(
        model=model,
        start=start,
        end=end,
        task=task,
        mode=mode,
        champion=_side(champion, "champion", mine, labelled_mine, kind),
        challenger=_side(challenger, mode if mode != NONE else "challenger", theirs, labelled_theirs, kind),
        paired=pairs.height,
        agreement=_agreement(pairs, task),
        mean_abs_difference=_mean_abs_difference(pairs, task),
        distribution_distance=_distance(mine, theirs, task),
        distribution_test="ks" if task == "regression" else "total_variation",
    )


def _champion(store: Store, model: str, version: int | None) -> int:
    if version is not None:
        return store.models.get(model, version).version  # NotFoundError names the known versions
    production = store.models.production(model)
    if production is None:
        hint = did_you_mean(model, store.models.names()) or "Pass champion=VERSION, or promote a version first."
        raise NotFoundError(f"model {model!r} has no production version to compare with.", hint=hint)
    return production.version


def _window(store: Store, model: str, start: datetime, end: datetime) -> pl.DataFrame:
    """The window's rows with their labels and per-record latency (one frame, oldest first)."""
    chunks = list(store.feedback.labelled(model, start, end, inputs=False, shadows=True))
    if not chunks:
        schema = {"prediction_id": pl.String, "model_version": pl.Int64, "prediction": pl.Null, "label": pl.Null}
        return pl.DataFrame(schema={**schema, "latency_ms": pl.Float64})
    frame = pl.concat(chunks, how="diagonal_relaxed")
    latency = store.predictions.read(model, since=start).select("prediction_id", "latency_ms")
    return frame.join(latency, on="prediction_id", how="left")


def _challenger(frame: pl.DataFrame, champion: int, model: str) -> int:
    others = frame.filter(pl.col("model_version") != champion)
    if others.height == 0:
        raise DataError(
            f"no challenger of {model!r} logged any traffic in the window.",
            hint="Pass challenger=VERSION, or serve one with `loopline serve --shadow NAME=VERSION`.",
        )
    shadow = others.filter(pl.col("prediction_id").str.ends_with(SHADOW_ID_SUFFIX))
    counts = (shadow if shadow.height else others)["model_version"].value_counts(sort=True)
    return int(counts["model_version"][0])


def _pairs(mine: pl.DataFrame, shadows: pl.DataFrame) -> pl.DataFrame:
    """One row per request both answered: the champion's columns, the shadow's prefixed ``challenger:``; the
    label is the champion id's (or, failing that, one sent for the shadow's own id)."""
    base = pl.col("prediction_id").str.strip_suffix(SHADOW_ID_SUFFIX)
    theirs = shadows.with_columns(base).select(
        pl.col("prediction_id"), pl.exclude("prediction_id").name.prefix("challenger:")
    )
    pairs = mine.join(theirs, on="prediction_id", how="inner")
    if "challenger:label" in pairs.columns:
        pairs = pairs.with_columns(
            pl.coalesce(pl.col("label"), pl.col("challenger:label")).alias("label"),
            pl.coalesce(pl.col("label"), pl.col("challenger:label")).alias("challenger:label"),
        )
    return pairs


def _side(version: int, role: str, rows: pl.DataFrame, labelled: pl.DataFrame, kind: tuple[str, Any, int]) -> LiveSide:
    task, classes, min_labels = kind
    latency = rows["latency_ms"].drop_nulls().to_numpy() if "latency_ms" in rows.columns else np.array([])
    p50, p99 = (float(np.percentile(latency, q)) for q in (50, 99)) if latency.size else (None, None)
    realised = performance_figures(labelled, task, classes, min_labels=min_labels)
    return LiveSide(version, role, rows.height, p50, p99, realised)


def _agreement(pairs: pl.DataFrame, task: str) -> float | None:
    if task == "regression" or pairs.height == 0:
        return None
    same = pairs["prediction"].cast(pl.String) == pairs["challenger:prediction"].cast(pl.String)
    return float(np.mean(same.fill_null(False).to_numpy()))


def _mean_abs_difference(pairs: pl.DataFrame, task: str) -> float | None:
    if task != "regression" or pairs.height == 0:
        return None
    diff = (pairs["prediction"].cast(pl.Float64) - pairs["challenger:prediction"].cast(pl.Float64)).abs()
    values = diff.drop_nulls().to_numpy()
    return float(values.mean()) if values.size else None


def _distance(mine: pl.DataFrame, theirs: pl.DataFrame, task: str) -> float | None:
    if mine.height == 0 or theirs.height == 0:
        return None
    if task == "regression":
        a, b = (f["prediction"].cast(pl.Float64).drop_nulls().to_numpy() for f in (mine, theirs))
        return float(stats.ks_2samp(a, b).statistic) if a.size and b.size else None
    shares = [f["prediction"].cast(pl.String).value_counts(normalize=True, name="share") for f in (mine, theirs)]
    joined = shares[0].join(shares[1], on="prediction", how="full", coalesce=True).fill_null(0.0)
    return float(0.5 * np.abs((joined["share"] - joined["share_right"]).to_numpy()).sum())
