"""Text transforms: lengths, token counts, feature hashing."""

from __future__ import annotations
