"""Reduction transforms: sampling, PCA / truncated SVD, dropping near-constant and highly correlated columns."""

from __future__ import annotations
