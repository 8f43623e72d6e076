"""Two candidates trained at once in a fresh process: the first lazy import of scikit-learn is safe."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import threading
import numpy as np, polars as pl
from loopline.train import TrainSpec, train_candidate

rng = np.random.default_rng(0)
frame = pl.DataFrame({"x": rng.normal(size=300), "g": rng.choice(["a", "b"], 300)})
frame = frame.with_columns(y=pl.col("x") > 0)
errors = []
barrier = threading.Barrier(4)

def fit(estimator):
    barrier.wait()
    try:
        spec = TrainSpec(target="y", numeric=["x"], categorical=["g"], estimator=estimator)
        result = train_candidate(frame, frame, spec)
        type(result.bundle).from_bytes(result.bundle.to_bytes())
    except Exception as exc:
        errors.append(repr(exc))

threads = [threading.Thread(target=fit, args=(name,)) for name in
           ("logistic_regression", "hist_gradient_boosting", "random_forest", "extra_trees")]
for t in threads: t.start()
for t in threads: t.join()
assert not errors, errors
"""


def test_parallel_first_use_of_scikit_learn() -> None:
    for _ in range(3):
        subprocess.run([sys.executable, "-c", CODE], check=True, timeout=120)
