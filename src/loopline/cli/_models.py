"""``loopline models list|show|leaderboard|compare|evaluate|export|promote|rollback`` (and, from
:mod:`loopline.cli._registry`, ``alias|unalias|archive|history|gc``)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.markup import escape

from loopline.cli import _registry
from loopline.cli._context import clear_errors, open_store
from loopline.cli._leaderboard import finding_lines, leaderboard_table
from loopline.cli._render import console, print_json, table, verdict_table
from loopline.core.records import GATE_VERDICT_KEY, CrossValidation, FeatureImportance, GateVerdict, SliceMetrics

app = typer.Typer(
    help="The model repository: candidates, aliases (production...), history, archive.", no_args_is_help=True
)
Home = Annotated[Path | None, typer.Option("--home")]
Json = Annotated[bool, typer.Option("--json")]
Split = Literal["valid", "test", "cv"]


def _valid(metrics: dict[str, Any], name: str) -> Any:
    return metrics.get("valid", {}).get(name)


@app.command("list")
def list_models(
    name: Annotated[str | None, typer.Argument(help="Only versions of this model.")] = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """List model versions with their stage, aliases and validation metrics."""
    with clear_errors(), open_store(home) as store:
        versions = store.models.list(name)
        if as_json:
            print_json([asdict(v) for v in versions])
            return
        console.print(
            table(
                "models",
                ["model", "version", "stage", "aliases", "algorithm", "valid roc_auc", "valid rmse", "created"],
                [
                    (
                        v.name,
                        v.version,
                        v.stage,
                        ", ".join(v.aliases),
                        v.algorithm,
                        _valid(v.metrics, "roc_auc"),
                        _valid(v.metrics, "rmse"),
                        v.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                    )
                    for v in versions
                ],
            )
        )


@app.command("show")
def show_model(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int | None, typer.Option(help="Version (default: latest).")] = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Show one version: metrics per split, params, input schema, training diagnostics' findings, feature
    importance, lineage."""
    from loopline.run import data_versions

    with clear_errors(), open_store(home) as store:
        found = store.models.get(name, version)
        lineage = data_versions(store, found.run_id)
        columns = column_lineage(found.config)
        if as_json:
            print_json({**asdict(found), "data_versions": lineage, "lineage": columns})
            return
        tags = f" @{', @'.join(found.aliases)}" if found.aliases else ""
        console.print(
            f"[bold]{found.name} v{found.version}[/] — {found.stage}{tags}, {found.algorithm}, run {found.run_id}"
        )
        splits = sorted(found.metrics)
        metric_names = sorted({m for s in splits for m in found.metrics[s]})
        console.print(
            table(
                "metrics", ["metric", *splits], [(m, *[found.metrics[s].get(m) for s in splits]) for m in metric_names]
            )
        )
        console.print(table("input schema", ["field", "type"], [(f["name"], f["dtype"]) for f in found.input_schema]))
        console.print(
            f"params: {found.params}\ndata fingerprint: {found.data_fingerprint}\nbundle: {found.bundle_digest}"
        )
        for item in lineage:
            console.print(
                f"trained on dataset {item['dataset']} v{item['version']} ({item['rows']:,} rows, "
                f"checksum {item['checksum'][:12]})"
            )
        trained = found.typed_config
        if trained.ensemble is not None:
            members = ", ".join(f"v{m.version} ({m.role})" for m in trained.ensemble.members)
            console.print(f"ensemble: the {trained.ensemble.combine} of {members}")
        for title, header, rows in _slice_tables(trained.slice_metrics):
            console.print(table(title, header, rows))
        if trained.cv:
            console.print(table(*_cv_table(trained.cv)))
        for item in _importance_table(trained.importance):
            console.print(item)
        for line in finding_lines([(found.version, trained.findings)]):
            console.print(line)
        verdict = GateVerdict.from_dict(found.config.get(GATE_VERDICT_KEY))
        if verdict is not None:
            console.print(verdict_table(verdict))
        if columns:
            rows = [(escape(feature), "←", escape(", ".join(inputs))) for feature, inputs in columns.items()]
            console.print(table("column lineage", ["feature", "", "input columns"], rows))
        else:
            console.print("column lineage: not recorded (no transform chain, or registered before lineage was kept)")


@app.command("leaderboard")
def leaderboard(
    name: Annotated[str, typer.Argument(help="Model name.")],
    run: Annotated[
        str | None, typer.Option("--run", help="Run id (default: the latest run that registered versions).")
    ] = None,
    metric: Annotated[str | None, typer.Option(help="Metric to rank by (default: the select step's).")] = None,
    split: Annotated[Split, typer.Option(help="Split to rank by (cv: the cross-validation mean).")] = "valid",
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Rank the versions one run compared: best first, with fit time, how the fit stopped, and marks."""
    from loopline.run import run_leaderboard

    with clear_errors(), open_store(home) as store:
        board = run_leaderboard(store, name, run_id=run, metric=metric, split=split)
        stages = {v.version: v.stage for v in store.models.list(name)}
    if as_json:
        rows = [{**row.to_dict(), "stage": stages.get(row.version)} for row in board.rows]
        print_json({**board.to_dict(), "rows": rows})
        return
    title = f"leaderboard {name}, run {board.run_id} — ranked by {board.split} {board.metric}"
    console.print(leaderboard_table(escape(title), board.metric, board.rows, stages=stages))
    for line in finding_lines([(row.version, row.findings) for row in board.rows]):
        console.print(line)


def _importance_table(importance: FeatureImportance | None) -> list[Any]:
    """The version's feature weights, heaviest first, with the score drop each stands for; a line when none."""
    if importance is None:
        return ["feature importance: not measured (importance: false, or registered before it was kept)"]
    if importance.skipped:
        return [f"feature importance: skipped, {escape(importance.skipped)} (the loop weighs features equally)"]
    how = f"{importance.method}, {importance.metric} drop on {importance.rows:,} valid rows x {importance.repeats}"
    note = f"; {importance.note}" if importance.note else ""
    rows = [
        (escape(name), f"{weight:.3f}", importance.drop.get(name), importance.std.get(name))
        for name, weight in importance.ranked()
    ]
    return [
        escape(f"feature importance ({how}{note}):"),
        table("feature importance", ["feature", "weight", "drop", "std"], rows),
    ]


def _slice_tables(slices: SliceMetrics | None) -> list[tuple[str, list[str], list[tuple[Any, ...]]]]:
    """One table per split and column of the version's metrics per slice: rows, then each metric."""
    tables = []
    for split, column, by_value in [] if slices is None else slices.tables():
        names = sorted({m for stats in by_value.values() for m in stats.metrics})
        rows = [(escape(v), stats.rows, *[stats.metrics.get(m) for m in names]) for v, stats in by_value.items()]
        tables.append((f"{split} metrics by {escape(column)}", [escape(column), "rows", *names], rows))
    return tables


def _cv_table(cv: CrossValidation) -> tuple[str, list[str], list[tuple[Any, ...]]]:
    """The cross-validation of a version: one row per fold (its rows and metrics), then mean and std."""
    names = sorted(cv.mean)
    rows: list[tuple[Any, ...]] = [
        (i, sizes["train"], sizes["valid"], *[metrics.get(m) for m in names])
        for i, (sizes, metrics) in enumerate(zip(cv.fold_rows, cv.fold_metrics, strict=True), start=1)
    ]
    rows += [
        ("mean", None, None, *[cv.mean.get(m) for m in names]),
        ("std", None, None, *[cv.std.get(m) for m in names]),
    ]
    where = cv.group_column or cv.time_column
    title = f"cross-validation: {cv.folds} {cv.method} folds{f' on {where}' if where else ''}, seed {cv.seed}"
    return escape(title), ["fold", "train rows", "held-out rows", *names], rows


def column_lineage(config: dict[str, Any]) -> dict[str, list[str]] | None:
    """Which input columns each model feature comes from, as the training report recorded it (None: unknown).

    A model trained with a transform chain has it; one without a chain, or registered before lineage was
    kept, does not.
    """
    lineage = config.get("lineage")
    return {str(feature): [str(c) for c in inputs] for feature, inputs in lineage.items()} if lineage else None


@app.command("promote")
def promote(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int, typer.Argument(help="Version to put in production.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the audit trail).")] = "manual promotion",
    expect: _registry.Expect = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Put a version in production (move the production alias); the previous production version is archived."""
    with clear_errors(), open_store(home) as store:
        promoted = store.models.promote(name, version, reason=reason, actor=_registry.actor(), expect=expect)
        if as_json:
            print_json(asdict(promoted))
        else:
            console.print(f"{name} v{promoted.version} is now in production")


@app.command("rollback")
def rollback(
    name: Annotated[str, typer.Argument(help="Model name.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the audit trail).")] = "manual rollback",
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Put the previous production version back in production."""
    with clear_errors(), open_store(home) as store:
        restored = store.models.rollback(name, reason=reason, actor=_registry.actor())
        if as_json:
            print_json(asdict(restored))
        else:
            console.print(f"{name} v{restored.version} is back in production")


_VERDICT_STYLE = {"better": "green", "worse": "red", "same": "dim"}


@app.command("compare")
def compare(
    name: Annotated[str, typer.Argument(help="Model name.")],
    a: Annotated[int, typer.Argument(help="First version (the baseline).")],
    b: Annotated[int, typer.Argument(help="Second version, compared with the first.")],
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Two versions side by side: changed params marked, metric deltas (b - a) judged better or worse."""
    from loopline.run import compare_models

    with clear_errors(), open_store(home) as store:
        result = compare_models(store, name, a, b)
    if as_json:
        print_json(result)
        return
    first, second = result["a"], result["b"]
    fields = ["stage", "algorithm", "data_fingerprint", "created_at"]
    rows = [(f, first[f], second[f]) for f in fields]
    rows.append(("data versions", _data_versions(first), _data_versions(second)))
    console.print(table(f"{name}: v{a} vs v{b}", ["", f"v{a}", f"v{b}"], rows))
    console.print(
        table(
            "params",
            ["", "param", f"v{a}", f"v{b}"],
            [("*" if p["changed"] else "", p["param"], p["a"], p["b"]) for p in result["params"]],
        )
    )
    console.print(table("metrics", ["split", "metric", f"v{a}", f"v{b}", "delta", ""], _metric_rows(result)))


def _data_versions(summary: dict[str, Any]) -> str:
    return ", ".join(f"{d['dataset']} v{d['version']}" for d in summary["data_versions"]) or "-"


def _metric_rows(result: dict[str, Any]) -> list[tuple[Any, ...]]:
    rows = []
    for m in result["metrics"]:
        style = _VERDICT_STYLE.get(m["verdict"] or "", "")
        delta = "-" if m["delta"] is None else f"{m['delta']:+.4g}"
        mark = f"[{style}]{m['verdict']}[/]" if style else "-"
        rows.append((m["split"], m["metric"], m["a"], m["b"], delta, mark))
    return rows


@app.command("evaluate")
def evaluate(
    name: Annotated[str, typer.Argument(help="Model name.")],
    data: Annotated[str, typer.Option("--data", help="Dataset to score on (must hold the target column).")],
    version: Annotated[int | None, typer.Option(help="Version (default: latest).")] = None,
    all_versions: Annotated[bool, typer.Option("--all", help="Every version of the model.")] = False,
    dataset_version: Annotated[int | None, typer.Option(help="Dataset version (default: latest).")] = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Re-score stored version(s) on a dataset version; the metrics are recorded as eval:DATASET@vN."""
    from loopline.run import evaluate_models

    if all_versions and version is not None:
        raise typer.BadParameter("give --version or --all, not both")
    with clear_errors(), open_store(home) as store:
        results = evaluate_models(
            store, name, data, version=version, all_versions=all_versions, dataset_version=dataset_version
        )
    if as_json:
        print_json([asdict(r) for r in results])
        return
    metric_names = sorted({m for r in results for m in r.metrics})
    title = f"{name} on {data} v{results[0].dataset_version} ({results[0].rows:,} rows), recorded as {results[0].key}"
    console.print(
        table(
            title, ["version", *metric_names], [(r.version, *[r.metrics.get(m) for m in metric_names]) for r in results]
        )
    )


@app.command("export")
def export(
    name: Annotated[str, typer.Argument(help="Model name.")],
    out: Annotated[Path, typer.Option("--out", help="Bundle file to write; the card goes to OUT.card.json.")],
    version: Annotated[int | None, typer.Option(help="Version (default: latest).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Write a version's bundle (digest verified) and a JSON card next to it."""
    from loopline.run import export_model

    with clear_errors(), open_store(home) as store:
        done = export_model(store, name, out, version=version, force=force)
    if as_json:
        print_json(asdict(done))
    else:
        console.print(f"{name} v{done.version} written to {done.bundle} (card: {done.card})")


app.command("alias")(_registry.alias)
app.command("unalias")(_registry.unalias)
app.command("archive")(_registry.archive)
app.command("history")(_registry.history)
app.command("gc")(_registry.gc)
