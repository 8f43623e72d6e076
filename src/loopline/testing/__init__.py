"""Conformance checks every component of a kind must pass; plugin authors run them on their own.

from loopline.testing import check_step_type
check_step_type(MyStep())
"""

from loopline.testing._steps import check_step_type

__all__ = ["check_step_type"]
