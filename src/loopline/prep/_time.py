"""Time transforms: date/time parts, cyclic encodings, lags and rolling windows per key (from the past only)."""

from __future__ import annotations
