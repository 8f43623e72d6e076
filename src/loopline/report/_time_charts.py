"""Charts over monitoring windows, as base64 PNG data URIs (matplotlib on first use).

One x position per window (its end); a None figure is a gap in its line. Alerts are dotted red vertical lines at
the end of the window that fired them. The figures drawn are embedded beside each chart as JSON (see
:func:`loopline.report._html.json_script`), so tests read the data, not the pixels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from loopline.report._figures import date_numbers, new_figure, plot_label, png_data_uri

ALERT_COLOUR = "#c0392b"
_LEGEND_CHARS = 30


@dataclass(frozen=True)
class Band:
    """A shaded interval per window (e.g. an estimate's band), None where a window has none."""

    label: str
    lower: Sequence[float | None]
    upper: Sequence[float | None]


@dataclass(frozen=True)
class TimeChart:
    """What :func:`time_chart` draws: lines by label, bands, alert times, the y label and whether y is a share."""

    ends: Sequence[datetime]
    lines: Mapping[str, Sequence[float | None]]
    ylabel: str
    bands: Sequence[Band] = ()
    alerts: Sequence[datetime] = ()
    share: bool = False


def _values(values: Sequence[float | None]) -> list[float]:
    return [math.nan if v is None else float(v) for v in values]


def drawable(chart: TimeChart) -> bool:
    """Whether the chart has at least one finite figure."""
    series = [*chart.lines.values(), *(b.lower for b in chart.bands)]
    return any(v is not None and math.isfinite(v) for values in series for v in values)


def time_chart(chart: TimeChart) -> str | None:
    """Lines (markers at each window) and bands over the windows' ends; None when nothing is drawable."""
    if not drawable(chart):
        return None
    figure, axes = new_figure(7.5, 2.8)
    ends = date_numbers(list(chart.ends))
    for band in chart.bands:
        axes.fill_between(ends, _values(band.lower), _values(band.upper), alpha=0.2, label=plot_label(band.label, 40))
    for label, values in chart.lines.items():
        axes.plot(ends, _values(values), marker="o", markersize=3, label=plot_label(label, _LEGEND_CHARS))
    for i, moment in enumerate(date_numbers(list(chart.alerts))):
        axes.axvline(moment, color=ALERT_COLOUR, linestyle=":", linewidth=1, label="alert" if i == 0 else None)
    if chart.share:
        axes.set_ylim(-0.02, 1.02)
    axes.xaxis_date()
    axes.set_ylabel(plot_label(chart.ylabel))
    axes.legend(loc="best", fontsize="small")
    figure.autofmt_xdate()
    return png_data_uri(figure)
