"""Augmentation transforms (training rows only): over/under-sampling, SMOTE and variants, Gaussian noise."""

from __future__ import annotations
