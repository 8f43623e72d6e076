"""A plugin package's public module re-exporting classes defined elsewhere (as ``pkg`` re-exports ``pkg._impl``)."""

from _user_trainer import Centroid, Prototypes

__all__ = ["Centroid", "Prototypes"]
