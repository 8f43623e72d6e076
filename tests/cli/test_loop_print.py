"""What ``print_selection`` shows of a retrain: every contender of the repository, the verdict, the refit."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from loopline.cli._loop import print_selection
from loopline.core.records import CandidateSummary, Contender, GateDecision, RefitDecision, Selection


def plain(text: str) -> str:
    """The printed text without the table's box drawing, whitespace collapsed."""
    return " ".join(re.sub("[\u2500-\u257f]", " ", text).split())


def selection(refit: RefitDecision | None) -> Selection:
    contenders = (
        Contender(1, "earlier", 0.81, rank=1),
        Contender(4, "challenger", 0.74, rank=2),
        Contender(3, "champion", 0.69, rank=3),
        Contender(2, "earlier", None, note="sits out: its bundle does not load"),
    )
    gate = GateDecision(True, "v1 (earlier) scores best", "roc_auc", 0.69, 0.81, 0.0, 3, 1, contenders)
    return Selection(
        model="m",
        candidates=(CandidateSummary(4, "logistic_regression", {"valid": {"roc_auc": 0.7}}),),
        best=1,
        promote=True,
        reason="v1 (earlier) scores best on the holdout; promote",
        gate=gate,
        metric="roc_auc",
        refit=refit,
    )


def test_every_contender_is_shown_with_its_role_and_why_one_sat_out(capsys: pytest.CaptureFixture[str]) -> None:
    print_selection(selection(RefitDecision(False, "v1 is an earlier version: it comes back as it was trained", 1)))
    out = plain(capsys.readouterr().out)
    assert "the repository on the recent holdout (roc_auc, min improvement 0)" in out
    for row in ("1 v1 earlier 0.81", "2 v4 challenger 0.74", "3 v3 champion 0.69"):
        assert row in out
    assert "sits out: its bundle does not load" in out
    assert "v1: promoted — v1 (earlier) scores best on the holdout; promote" in out
    assert "in production: v1 (v1 is an earlier version: it comes back as it was trained)" in out


def test_a_refit_names_the_version_in_production(capsys: pytest.CaptureFixture[str]) -> None:
    refit = RefitDecision(True, "refitted v4 on train + valid (10 + 5 rows) as v5", of=4, version=5)
    chosen = selection(refit)
    assert chosen.promoted == 5 and not math.isnan(chosen.gate.challenger_score)  # type: ignore[union-attr]
    print_selection(chosen)
    assert "in production: v5 (refitted v4 on train + valid (10 + 5 rows) as v5)" in plain(capsys.readouterr().out)


def test_history_lists_a_drift_warning_with_its_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from loopline.cli import app
    from loopline.store import Store
    from loopline.store.loop import LoopStore

    url, artifacts = f"sqlite:///{tmp_path / 'loopline.db'}", tmp_path / "artifacts"
    monkeypatch.setenv("LOOPLINE_STORE_URL", url)
    monkeypatch.setenv("LOOPLINE_ARTIFACTS_URL", str(artifacts))
    with Store.open(url, artifacts) as store:
        reason = "1 feature(s) drifted (x), 75% of the model's feature importance >= 20%, but 400 labelled rows"
        LoopStore(store.engine).record("rainy", "warning", reason, model="m", details={"weights": {"x": 0.75}})
    listed = CliRunner().invoke(app, ["loop", "history", "rainy", "--json", "--home", str(tmp_path / "h")])
    assert listed.exit_code == 0, listed.output
    [event] = json.loads(listed.output)
    assert (event["kind"], event["details"]["weights"]) == ("warning", {"x": 0.75})
