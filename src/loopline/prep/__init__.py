"""loopline.prep: fitted preprocessing that travels inside the model bundle as plain JSON."""

from loopline.prep._preprocessor import MISSING_CATEGORY, Preprocessor

__all__ = ["MISSING_CATEGORY", "Preprocessor"]
