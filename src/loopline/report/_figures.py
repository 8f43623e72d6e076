"""matplotlib, imported on first use, drawing on the Agg canvas into base64 PNG data URIs.

Figures are ``matplotlib.figure.Figure`` objects attached to their own ``FigureCanvasAgg``: no pyplot, no
backend switch, no rcParams change — nothing global is touched, at import or later. matplotlib comes with
the ``report`` extra; without it, drawing raises :class:`~loopline.core.errors.MissingExtraError` naming it.
"""

from __future__ import annotations

import base64
import importlib
import importlib.util
import io
from datetime import datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any

from loopline.core.errors import MissingExtraError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 80
EXTRA = "report"


def plotting_available() -> bool:
    """Whether matplotlib can be imported (the ``report`` extra is installed); imports nothing."""
    try:
        return importlib.util.find_spec("matplotlib") is not None
    except (ImportError, ValueError):  # a broken or blocked installation counts as missing
        return False


def require_plotting() -> None:
    """Raise :class:`MissingExtraError` naming the ``report`` extra unless matplotlib is installed.

    For a command to call before long work whose last step draws a report.
    """
    if not plotting_available():
        raise MissingExtraError("matplotlib", EXTRA)


def _matplotlib(module: str) -> ModuleType:
    """``matplotlib.<module>``, or MissingExtraError naming the extra."""
    try:
        return importlib.import_module(f"matplotlib.{module}")
    except ImportError:
        raise MissingExtraError("matplotlib", EXTRA) from None


def new_figure(width: float, height: float) -> tuple[Figure, Axes]:
    """A figure with one axes, on its own Agg canvas."""
    figure: Figure = _matplotlib("figure").Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    _matplotlib("backends.backend_agg").FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def png_data_uri(figure: Figure) -> str:
    """The figure as a ``data:image/png;base64,...`` URI (no software stamp: equal plots, equal bytes)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def date_numbers(moments: list[datetime]) -> list[float]:
    """``moments`` as matplotlib's date numbers (days since its epoch), for an x axis of dates."""
    return [float(v) for v in _matplotlib("dates").date2num(moments)]


def whole_numbers(axis: Any) -> None:
    """Counts on ``axis`` are whole numbers: no 0.5 ticks."""
    axis.set_major_locator(_matplotlib("ticker").MaxNLocator(integer=True))


def plot_label(text: str, max_chars: int | None = None) -> str:
    """A label for a plot: shortened to ``max_chars``, ``$`` escaped so it is never parsed as mathtext."""
    short = text if max_chars is None or len(text) <= max_chars else text[: max_chars - 1] + "…"
    return short.replace("$", r"\$")
