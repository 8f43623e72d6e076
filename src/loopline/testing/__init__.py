"""Conformance checks every component of a kind must pass; plugin authors run them on their own.

from loopline.testing import check_broker_source, check_source, check_step_type
check_step_type(MyStep())
check_source(make_source, produce, key="id", rows=make_rows)
check_broker_source(make_source, produce, produce_raw, key="id", rows=make_rows)   # brokers: redelivery
check_transform(lambda: MyTransform(columns=["x"]), train, test, target="y")
check_trainer("my_estimator", task="binary")   # a registered EstimatorSpec, on generated data
check_drift_test("my_test")                     # a registered drift test, on generated samples of its kinds
tables = shifted_tables(100_000, seed=1)        # reference/current frames with five known shifted columns
"""

from loopline.testing._broker_sources import check_broker_source
from loopline.testing._drift import check_drift_test
from loopline.testing._shifts import ShiftedTables, shifted_tables
from loopline.testing._sources import check_source
from loopline.testing._steps import check_step_type
from loopline.testing._trainers import check_trainer
from loopline.testing._transforms import check_transform

__all__ = [
    "ShiftedTables",
    "check_broker_source",
    "check_drift_test",
    "check_source",
    "check_step_type",
    "check_trainer",
    "check_transform",
    "shifted_tables",
]
