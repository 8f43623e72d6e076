"""The monitoring half of the loop from the command line, and the pieces quickstart reuses."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from loopline.cli._leaderboard import finding_lines
from loopline.cli._progress import run_with_progress
from loopline.cli._render import console, print_json, table, verdict_table
from loopline.cli._windows import ALERT_EXIT_CODE, check_json, follow_windows, parse_time, print_check
from loopline.core.errors import ConfigError

if TYPE_CHECKING:
    from loopline.core.pipeline import Pipeline
    from loopline.core.records import RetrainDecision, Selection
    from loopline.monitor import DriftReport
    from loopline.report import ReportData
    from loopline.run import MonitorResult, RunResult, WindowCheck
    from loopline.run.policy import RunPipeline
    from loopline.store import Store


def monitor_command(
    store: Store,
    pipeline_path: Path,
    *,
    retrain: bool,
    end: str | None,
    report: Path | None,
    as_json: bool,
    windows: WindowOptions | None = None,
) -> int:
    """Drift check of the production model's traffic; retrain + gate when asked and needed. With
    ``windows.window``: the windowed check (:func:`windowed_command`). Returns the exit code."""
    from loopline.core.yamlfile import load_pipeline
    from loopline.run import monitor_model, retrain_and_gate

    pipeline = load_pipeline(pipeline_path)
    if pipeline.monitor is None:
        raise ConfigError(
            f"{str(pipeline_path)!r} has no 'monitor:' section.",
            key="monitor",
            hint="Add one, e.g. monitor: {model: my-model}.",
        )
    windows = windows or WindowOptions()
    if windows.window is not None:
        return windowed_command(store, pipeline, windows, retrain=retrain, end=end, report=report, as_json=as_json)
    windows.refuse_without_window()
    result = monitor_model(store, pipeline.monitor, since=parse_time(windows.since, "--since"))
    selection = None
    if retrain and result.decision.retrain:
        window_end = datetime.fromisoformat(end) if end else datetime.now(UTC)
        selection = retrain_and_gate(store, pipeline, window_end, run=progress_runner(quiet=as_json))
    if as_json:
        print_json(
            {
                "drift": result.report.to_dict(),
                "retrain": result.decision.to_dict(),
                "selection": None if selection is None else selection.to_dict(),
            }
        )
    else:
        print_drift(result.report)
        console.print(
            f"retrain decision: [bold]{'retrain' if result.decision.retrain else 'keep'}[/] — {result.decision.reason}"
        )
        if selection is not None:
            print_selection(selection)
    if report is not None:
        write_report(report, store, pipeline, result, [selection] if selection else [], notes=[], with_timeline=True)
        if not as_json:
            console.print(f"report: {report}")
    return 0


@dataclass(frozen=True)
class WindowOptions:
    """``loopline monitor``'s window flags: ``--window``, ``--since``, ``--until``, ``--fail-on-alert``,
    ``--follow`` and ``--interval``."""

    window: str | None = None
    since: str | None = None
    until: str | None = None
    fail_on_alert: bool = False
    follow: bool = False
    interval: float = 60.0

    def refuse_without_window(self) -> None:
        """ConfigError for a flag that only a windowed check takes."""
        for flag, given in (
            ("--until", self.until),
            ("--fail-on-alert", self.fail_on_alert),
            ("--follow", self.follow),
        ):
            if given:
                raise ConfigError(f"{flag} needs --window.", hint=f"Add a window, e.g. --window 1d {flag}.")


def _retrain_on_windows(
    store: Store, pipeline: Pipeline, check: WindowCheck, *, end: str | None, quiet: bool
) -> tuple[RetrainDecision | None, Selection | None]:
    """The retrain decision on the newest closed window's drift, and the gated retrain when it says so."""
    from loopline.run import decide_retrain, retrain_and_gate

    config = pipeline.monitor
    drifts = [w.drift for w in check.closed if w.drift is not None]
    if config is None or not drifts:
        if not quiet:
            console.print("retrain decision: none (no window with a drift report closed by this check)")
        return None, None
    decision = decide_retrain(drifts[-1], config.retrain, config.drift)
    if not quiet:
        verdict = "retrain" if decision.retrain else "keep"
        console.print(f"retrain decision on the newest closed window: [bold]{verdict}[/] — {escape(decision.reason)}")
    if not decision.retrain:
        return decision, None
    window_end = datetime.fromisoformat(end) if end else datetime.now(UTC)
    selection = retrain_and_gate(store, pipeline, window_end, run=progress_runner(quiet=quiet))
    if not quiet:
        print_selection(selection)
    return decision, selection


def windowed_command(
    store: Store,
    pipeline: Pipeline,
    options: WindowOptions,
    *,
    retrain: bool,
    end: str | None,
    report: Path | None,
    as_json: bool,
) -> int:
    """Close the complete windows (once, or ``--follow``); retrain on the newest closed window's drift when asked.

    Returns :data:`ALERT_EXIT_CODE` when ``--fail-on-alert`` and an alert fired, else 0.
    """
    config = pipeline.monitor
    if config is None or options.window is None:  # pragma: no cover - monitor_command checked both
        raise ConfigError("the windowed check needs a monitor: section and --window.")
    if report is not None and options.follow:
        raise ConfigError("--report draws a check once.", hint="Leave out --follow with --report.")
    since, until = parse_time(options.since, "--since"), parse_time(options.until, "--until")
    if options.follow:
        if until is not None or retrain:
            raise ConfigError("--follow runs until stopped.", hint="Leave out --until and --retrain with --follow.")
        fired = follow_windows(store, config, options.window, since=since, interval=options.interval, as_json=as_json)
        return ALERT_EXIT_CODE if options.fail_on_alert and fired else 0
    from loopline.run import check_windows
    from loopline.run._window_accuracy import refresh_window_labels

    check = check_windows(store, config, options.window, since=since, until=until)
    refreshed, late = refresh_window_labels(store, config, options.window, horizon=config.loop.label_horizon_td)
    check = dataclasses.replace(check, alerts=[*check.alerts, *late])
    if not as_json:
        print_check(check)
        if refreshed:
            console.print(f"{len(refreshed)} closed window(s) refreshed: their labels arrived since they closed")
    decision, selection = (
        _retrain_on_windows(store, pipeline, check, end=end, quiet=as_json) if retrain else (None, None)
    )
    if as_json:
        retrained = {"retrain": None if decision is None else decision.to_dict()} if retrain else {}
        if retrain:
            retrained["selection"] = None if selection is None else selection.to_dict()
        print_json({**check_json(check), "refreshed": [w.to_dict() for w in refreshed], **retrained})
    if report is not None:
        write_window_report(report, store, pipeline, check.spec, retrain=decision, selection=selection)
        if not as_json:
            console.print(f"report: {report}")
    return ALERT_EXIT_CODE if options.fail_on_alert and check.alerts else 0


def progress_runner(*, quiet: bool = False) -> RunPipeline:
    """Runs a pipeline for :func:`~loopline.run.retrain_and_gate` with one progress line per step (its select
    step only ranks: :func:`print_selection` shows the retrain gate's decision afterwards)."""

    def run(store: Store, pipeline: Pipeline, params: Mapping[str, Any]) -> RunResult:
        return run_with_progress(store, pipeline, params, quiet=quiet, leaderboards=False)

    return run


def print_selection(selection: Selection) -> None:
    """Candidates with their metrics, and what was promoted and why."""
    metric_names = ["roc_auc", "pr_auc", "log_loss", "accuracy", "rmse", "mae", "r2"]
    present = [m for m in metric_names if any(m in c.metrics.get("valid", {}) for c in selection.candidates)]
    rows = []
    for c in selection.candidates:
        best = " *" if c.version == selection.best else ""
        rows.append(
            (
                f"v{c.version}{best}",
                c.algorithm,
                *[c.metrics.get("valid", {}).get(m) for m in present],
                c.metrics.get("test", {}).get(present[0]) if present else None,
            )
        )
    console.print(
        table(
            f"{selection.model}: candidates (validation metrics; * = best)",
            ["version", "algorithm", *present, f"test {present[0] if present else ''}"],
            rows,
        )
    )
    gate = selection.gate
    if gate and gate.contenders:
        console.print(
            table(
                f"the repository on the recent holdout ({gate.metric}, min improvement {gate.min_improvement:g})",
                ["rank", "version", "role", gate.metric, "note"],
                [(c.rank, f"v{c.version}", c.role, c.score, c.note) for c in gate.contenders],
            )
        )
    elif gate and gate.champion is not None and not math.isnan(gate.champion_score):
        console.print(
            f"gate on the recent holdout ({gate.metric}, min improvement {gate.min_improvement:g}): champion "
            f"v{gate.champion} {gate.champion_score:.4f} vs challenger v{gate.challenger} {gate.challenger_score:.4f}"
        )
    if gate and gate.verdict is not None:
        console.print(verdict_table(gate.verdict))
    for line in finding_lines([(row.version, row.findings) for row in selection.leaderboard]):
        console.print(line)
    verdict = "[green]promoted[/]" if selection.promote else "[yellow]not promoted[/]"
    console.print(f"v{selection.best}: {verdict} — {escape(selection.reason)}")
    if selection.ensemble is not None and selection.promoted is not None:
        console.print(f"in production: ensemble v{selection.promoted}")
    elif selection.refit is not None and selection.promoted is not None:
        console.print(f"in production: v{selection.promoted} ({escape(selection.refit.reason)})")


def print_drift(report: DriftReport) -> None:
    """The drift verdict per feature."""
    console.print(
        table(
            "drift per feature (training reference vs served traffic)",
            ["feature", "kind", "PSI", "test", "p-value", "verdict"],
            [
                (f.feature, f.kind, f.psi, f.test, f.p_value, "[red]DRIFT[/]" if f.drifted else "[green]ok[/]")
                for f in report.features
            ],
        )
    )


def write_report(
    path: Path,
    store: Store,
    pipeline: Pipeline,
    monitored: MonitorResult | None,
    selections: list[Selection],
    *,
    notes: list[str],
    latencies_ms: list[float] | None = None,
    with_timeline: bool = False,
) -> Path:
    """The HTML report of a loop: candidates, production, drift, decisions, service figures; ``with_timeline``:
    the decision timeline of the pipeline's loop and its model's audit trail too."""
    from loopline.monitor import service_stats
    from loopline.report import write_html_report

    data = report_data(store, pipeline, selections, notes=notes)
    if monitored is not None:
        data.drift, data.reference, data.current = monitored.report, monitored.reference, monitored.current
        data.retrain, data.service = monitored.decision, service_stats(monitored.current)
    data.latencies_ms = latencies_ms
    if with_timeline:
        from loopline.cli._report_data import REPORT_EVENTS, timeline

        model = pipeline.monitor.model if pipeline.monitor else pipeline.name
        data.timeline, data.timeline_truncated = timeline(store, pipeline.name, model, limit=REPORT_EVENTS)
    return write_html_report(path, data)


def write_window_report(
    path: Path,
    store: Store,
    pipeline: Pipeline,
    spec: str,
    *,
    retrain: RetrainDecision | None,
    selection: Selection | None,
) -> Path:
    """The report of a windowed check: the one-shot sections with the newest drift window as "current", drift,
    accuracy and service over the ``spec`` windows, and the decision timeline of the pipeline's loop."""
    from loopline.cli._report_data import REPORT_EVENTS, timeline, window_frames, windows_view
    from loopline.report import window_label, write_html_report

    model = pipeline.monitor.model if pipeline.monitor else pipeline.name
    data = report_data(store, pipeline, [selection] if selection else [], notes=[])
    data.windows = windows_view(store, model, spec)
    frames = window_frames(store, store.models.production(model), list(data.windows.windows))
    if frames is not None:
        data.drift, data.reference, data.current = frames.window.drift, frames.reference, frames.current
        label = window_label(frames.window)
        data.notes.append(f"Drift and distributions: the {spec} window {label}, the newest with a drift report.")
    data.retrain = retrain
    data.timeline, data.timeline_truncated = timeline(store, pipeline.name, model, limit=REPORT_EVENTS)
    return write_html_report(path, data)


def report_data(store: Store, pipeline: Pipeline, selections: list[Selection], *, notes: list[str]) -> ReportData:
    """The parts of a report every check has: candidates and their findings, production, the last gate."""
    from loopline.report import ReportData

    model = pipeline.monitor.model if pipeline.monitor else pipeline.name
    versions = store.models.list(model)
    candidates = [
        {
            "model": v.name,
            "version": v.version,
            "stage": v.stage,
            "algorithm": v.algorithm,
            **{
                f"{split}_{m}": value
                for split in ("valid", "test")
                for m, value in v.metrics.get(split, {}).items()
                if m in ("roc_auc", "pr_auc", "log_loss", "accuracy", "rmse", "r2")
            },
            **({"flags": ", ".join(f.label for f in v.typed_config.findings)} if v.typed_config.findings else {}),
        }
        for v in versions
    ]
    findings = [(v.version, finding) for v in versions for finding in v.typed_config.findings]
    production = store.models.production(model)
    gated = [s for s in selections if s.gate is not None]
    return ReportData(
        title=f"loopline — {pipeline.name}",
        candidates=candidates,
        production={"model": production.name, "version": production.version, "algorithm": production.algorithm}
        if production
        else None,
        drift=None,
        gate=gated[-1].gate if gated else None,
        notes=list(notes),
        findings=findings,
    )
