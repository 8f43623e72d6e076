"""loopline.prep: transforms fitted on training rows only, carried in the model bundle as plain JSON.

A :class:`Chain` of :class:`Transform` steps (registered by ``type:`` name in :data:`TRANSFORMS`) runs the
same function over a table and over one record; :class:`Preprocessor` turns the result into the estimator's
matrix (imputation, scaling, encoding of what is left).
"""

from loopline.prep._chain import Chain
from loopline.prep._expr import compile_expression
from loopline.prep._preprocessor import MISSING_CATEGORY, Preprocessor
from loopline.prep._profile import PROFILE_FORMAT, profile_table
from loopline.prep._transform import TRANSFORMS, Record, Transform, build_transform

__all__ = [
    "MISSING_CATEGORY",
    "PROFILE_FORMAT",
    "TRANSFORMS",
    "Chain",
    "Preprocessor",
    "Record",
    "Transform",
    "build_transform",
    "compile_expression",
    "profile_table",
]
