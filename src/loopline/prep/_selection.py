"""Feature selection: variance threshold, mutual information, k-best, model importance, recursive elimination."""

from __future__ import annotations
