"""Datasets: each dataset at a glance; one dataset's versions, schema, source checkpoints, dead letters and the
profile stored with its latest version; one version with its profile. Profiles are read as stored (``loopline
datasets profile`` computes them), never computed here: a page never reads a dataset's rows."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from loopline.core.errors import NotFoundError, did_you_mean
from loopline.ui._html import Markup, badge, chart, join, link, muted, pager, pairs, query_url, section, table, tag
from loopline.ui._page import PER_PAGE, Data, Page, Pagination, Params, UIError, View

if TYPE_CHECKING:
    from loopline.store import DatasetVersion, DeadLetter, Store
    from loopline.store.datasets import DatasetSummary, SourceCheckpoint

HISTOGRAMS = 4
"""Numeric columns whose histogram a profile section draws (the first ones)."""
EXCERPT = 200
"""Characters of a dead letter's raw row shown (the API gives them too; the whole row is in the store)."""
_STATS = ("min", "max", "mean", "std")


# -- every dataset ---------------------------------------------------------------------------------------------
def datasets_data(store: Store, params: Params) -> Data:
    """One page of datasets by name, each aggregated in SQL: latest version, rows, parts, last ingest, dead
    letters waiting."""
    pages = params.pagination()
    total = len(store.datasets.names())
    summaries = store.datasets.summaries(offset=pages.offset, limit=pages.per_page)
    return {"pagination": pages.describe(total), "datasets": [_summary(s) for s in summaries]}


def _summary(summary: DatasetSummary) -> Data:
    return {
        "name": summary.dataset,
        "version": summary.version,
        "rows": summary.rows,
        "parts": summary.parts,
        "part_rows": summary.part_rows,
        "columns": summary.columns,
        "last_ingest_at": _iso(summary.last_ingest_at),
        "dead_letters": summary.dead_letters,
    }


def render_datasets(data: Data, view: View) -> Markup:
    """The datasets table and its pager."""
    rows = (
        [
            link(view.url(f"/datasets/{_path(d['name'])}"), d["name"]),
            d["version"],
            d["rows"],
            d["parts"],
            d["columns"],
            _time(d["last_ingest_at"]),
            _letters_badge(d["dead_letters"]),
        ]
        for d in data["datasets"]
    )
    listing = table(
        ["dataset", "latest version", "rows", "parts", "columns", "last ingest", "dead letters"],
        rows,
        id_="datasets",
        empty="No dataset yet: ingest one with `loopline ingest PIPELINE STEP` (or run a pipeline that ingests).",
    )
    pagination = data["pagination"]
    more = pager(view.url("/datasets"), _kept(pagination), pagination["page"], pagination["pages"])
    return join([muted(f"{pagination['total']:,} dataset(s)"), listing, more])


# -- one dataset -----------------------------------------------------------------------------------------------
def dataset_data(store: Store, params: Params) -> Data:
    """The dataset ``{name}``: its summary, versions (``?page=``), schema contract, each source's checkpoint,
    dead letters (newest first, ``?letters_page=``) and the profile stored with its latest version."""
    name = params.required("name")
    found = store.datasets.summaries(name=name, limit=1)
    if not found:
        raise _unknown(store, name)
    pages = params.pagination()
    letters = Pagination(params.integer("letters_page", 1, minimum=1), pages.per_page)
    versions = store.datasets.versions_page(name, offset=pages.offset, limit=pages.per_page)
    latest = versions[0] if pages.page == 1 and versions else _latest(store, name)
    return {
        **_summary(found[0]),
        "schema": store.datasets.schema(name) or {},
        "sources": [_source(s) for s in store.datasets.sources(name)],
        "versions": {
            "pagination": pages.describe(store.datasets.version_count(name)),
            "items": [_version(v) for v in versions],
        },
        "dead_letters_list": {
            "pagination": letters.describe(store.datasets.dead_letter_count(name)),
            "items": [_letter(d) for d in _letters_page(store, name, letters)],
        },
        "profile": _profile(store, latest),
    }


def _unknown(store: Store, name: str) -> UIError:
    hint = did_you_mean(name, store.datasets.names()) or "See the datasets at /ui/datasets."
    return UIError(404, f"dataset {name!r} does not exist.", hint=hint)


def _latest(store: Store, name: str) -> DatasetVersion | None:
    try:
        return store.datasets.version(name)
    except NotFoundError:
        return None


def _letters_page(store: Store, name: str, letters: Pagination) -> list[DeadLetter]:
    return store.datasets.dead_letters_page(name, offset=letters.offset, limit=letters.per_page)


def _source(source: SourceCheckpoint) -> Data:
    return {
        "source": source.source,
        "position": source.position,
        "rows": source.rows,
        "checkpoint_at": _iso(source.updated_at),
        "parts": source.parts,
        "newest_part_at": _iso(source.newest_part_at),
    }


def _version(version: DatasetVersion) -> Data:
    return {
        "version": version.version,
        "rows": version.rows,
        "parts": version.upto_seq,
        "checksum": version.checksum,
        "positions": version.positions,
        "run_id": version.run_id,
        "created_at": _iso(version.created_at),
        "profiled": version.profile_digest is not None,
    }


def _letter(letter: DeadLetter) -> Data:
    return {
        "id": letter.id,
        "source": letter.source,
        "reason": letter.reason,
        "position": letter.position,
        "raw_excerpt": letter.raw[:EXCERPT],
        "raw_chars": len(letter.raw),
        "created_at": _iso(letter.created_at),
        "replayed_at": _iso(letter.replayed_at),
    }


def render_dataset(data: Data, view: View) -> Markup:
    """Summary, profile, versions, schema, sources and dead letters."""
    name = data["name"]
    facts = {
        "latest version": data["version"],
        "rows": data["rows"],
        "parts": data["parts"],
        "columns": data["columns"],
        "last ingest": _time(data["last_ingest_at"]),
        "dead letters waiting": _letters_badge(data["dead_letters"]),
    }
    return join(
        [
            pairs(facts),
            section("Versions", _versions(data, view), id_="versions"),
            section("Schema contract", _schema(data["schema"]), id_="schema"),
            section("Sources", _sources(data["sources"]), id_="sources"),
            section("Dead letters", _letters(data, view), id_="dead-letters"),
            section("Profile", _profile_section(name, data["profile"]), id_="profile"),
        ]
    )


def _versions(data: Data, view: View) -> Markup:
    name = data["name"]
    rows = (
        [
            link(view.url(f"/datasets/{_path(name)}/versions/{v['version']}"), f"v{v['version']}"),
            v["rows"],
            v["parts"],
            v["checksum"][:12],
            _positions(v["positions"]),
            link(view.url(f"/runs/{v['run_id']}"), v["run_id"][:12]) if v["run_id"] else None,
            _time(v["created_at"]),
            v["profiled"],
        ]
        for v in data["versions"]["items"]
    )
    listing = table(
        ["version", "rows", "parts", "checksum", "source positions", "run", "created", "profiled"],
        rows,
        id_="versions-table",
        empty="No version yet.",
    )
    pagination = data["versions"]["pagination"]
    path = view.url(f"/datasets/{_path(name)}")
    more = pager(path, _kept(pagination), pagination["page"], pagination["pages"])
    return join([listing, more])


def _schema(schema: dict[str, str]) -> Markup:
    return table(["column", "type"], schema.items(), id_="schema-table", empty="No schema contract yet.")


def _sources(sources: list[Data]) -> Markup:
    rows = (
        [
            s["source"],
            _json(s["position"]),
            s["rows"],
            s["parts"],
            _time(s["checkpoint_at"]),
            _time(s["newest_part_at"]),
        ]
        for s in sources
    )
    headers = ["source", "checkpoint (resumes from)", "rows", "parts", "checkpoint moved", "newest part"]
    return table(headers, rows, id_="sources-table", empty="No source has committed a checkpoint.")


def _letters(data: Data, view: View) -> Markup:
    listing = data["dead_letters_list"]
    rows = (
        [
            d["id"],
            d["source"],
            d["reason"],
            _json(d["position"]),
            tag("code", d["raw_excerpt"] + ("…" if d["raw_chars"] > EXCERPT else "")),
            _time(d["created_at"]),
            _time(d["replayed_at"]) or badge("waiting", "warn"),
        ]
        for d in listing["items"]
    )
    shown = table(
        ["id", "source", "error", "position", "row", "received", "replayed"],
        rows,
        id_="dead-letters-table",
        empty="No dead letter: every row ingested so far met the contract.",
    )
    pagination = listing["pagination"]
    pages = _kept({"per_page": pagination["per_page"]})
    path = view.url(f"/datasets/{_path(data['name'])}")
    more = _letters_pager(path, pages, pagination["page"], pagination["pages"])
    command = tag("code", f"loopline datasets replay {data['name']}")
    note = muted(Markup(f"Replay the waiting ones once the contract or the source is fixed: {command}"))
    return join([shown, more, note if data["dead_letters"] else ""])


def _letters_pager(path: str, params: Data, page: int, pages: int) -> Markup:
    """The dead letters' pager: the same links as :func:`pager`, on ``?letters_page=``."""
    if pages <= 1:
        return Markup("")
    parts: list[Any] = []
    if page > 1:
        parts.append(link(query_url(path, {**params, "letters_page": page - 1}) + "#dead-letters", "← newer"))
    parts.append(f"page {page} of {pages}")
    if page < pages:
        parts.append(link(query_url(path, {**params, "letters_page": page + 1}) + "#dead-letters", "older →"))
    return tag("nav", join(parts, " · "), class_="pager")


# -- one version ------------------------------------------------------------------------------------------------
def version_data(store: Store, params: Params) -> Data:
    """Version ``{version}`` of dataset ``{name}``: its snapshot and the profile stored with it."""
    name = params.required("name")
    if store.datasets.schema(name) is None:
        raise _unknown(store, name)
    found = store.datasets.version(name, params.integer("version", minimum=1))
    return {"name": name, **_version(found), "schema": found.schema, "profile": _profile(store, found)}


def render_version(data: Data, view: View) -> Markup:
    """The version's facts, schema and profile."""
    facts = {
        "dataset": link(view.url(f"/datasets/{_path(data['name'])}"), data["name"]),
        "rows": data["rows"],
        "parts": data["parts"],
        "checksum": data["checksum"],
        "source positions": _positions(data["positions"]),
        "run": link(view.url(f"/runs/{data['run_id']}"), data["run_id"]) if data["run_id"] else None,
        "created": _time(data["created_at"]),
    }
    return join(
        [
            pairs(facts),
            section("Schema", _schema(data["schema"]), id_="schema"),
            section("Profile", _profile_section(data["name"], data["profile"], data["version"]), id_="profile"),
        ]
    )


# -- profiles ---------------------------------------------------------------------------------------------------
def _profile(store: Store, version: DatasetVersion | None) -> Data | None:
    """What the page shows of the profile stored with ``version`` (None: none stored, or one to compute again)."""
    from loopline.run import stored_profile

    profile = None if version is None else stored_profile(store, version)
    if profile is None:
        return None
    columns = profile.get("columns") or []
    numeric = [c for c in columns if c.get("kind") == "numeric" and (c.get("histogram") or {}).get("counts")]
    return {
        "version": profile.get("version"),
        "rows": profile.get("rows"),
        "n_columns": profile.get("n_columns"),
        "columns": [_column(c) for c in columns],
        "histograms": [_histogram(c) for c in numeric[:HISTOGRAMS]],
    }


def _column(column: dict[str, Any]) -> Data:
    return {
        "name": column.get("name"),
        "dtype": column.get("dtype"),
        "kind": column.get("kind"),
        "missing_share": column.get("missing_share"),
        "distinct": column.get("distinct"),
        "distinct_exact": column.get("distinct_exact"),
        **{stat: column.get(stat) for stat in _STATS},
        "top": [{"value": t.get("value"), "count": t.get("count")} for t in (column.get("top") or [])[:3]],
    }


def _histogram(column: dict[str, Any]) -> Data:
    histogram = column["histogram"]
    return {"column": column["name"], "edges": histogram.get("edges", []), "counts": histogram["counts"]}


def _profile_section(name: str, profile: Data | None, version: int | None = None) -> Markup:
    if profile is None:
        which = f" --version {version}" if version is not None else ""
        command = tag("code", f"loopline datasets profile {name}{which}")
        return muted(Markup(f"No profile stored for this version. Compute it (reads the version once) with {command}"))
    rows = (
        [
            c["name"],
            c["kind"],
            c["dtype"],
            None if c["missing_share"] is None else f"{c['missing_share']:.1%}",
            _distinct(c),
            *(c[stat] for stat in _STATS),
            ", ".join(f"{t['value']!r} ({t['count']:,})" for t in c["top"]) or None,
        ]
        for c in profile["columns"]
    )
    headers = ["column", "kind", "type", "missing", "distinct", *_STATS, "top values"]
    summary = muted(f"v{profile['version']}: {profile['rows']:,} rows, {profile['n_columns']} columns (as profiled)")
    charts = [
        chart(f"histogram-{index}", _histogram_option(h), height=220) for index, h in enumerate(profile["histograms"])
    ]
    return join([summary, table(headers, rows, id_="profile-table"), tag("div", join(charts), class_="cards")])


def _histogram_option(histogram: Data) -> Data:
    """A bar chart of a numeric column's fixed-width bins (labelled by their lower edge)."""
    edges, counts = histogram["edges"], histogram["counts"]
    labels = [_edge(edges[index]) if index < len(edges) else str(index) for index in range(len(counts))]
    return {
        "title": {"text": str(histogram["column"]), "textStyle": {"fontSize": 13}},
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 50, "right": 10, "top": 40, "bottom": 30},
        "xAxis": {"type": "category", "data": labels, "name": "from"},
        "yAxis": {"type": "value", "name": "rows"},
        "series": [{"type": "bar", "data": counts, "barCategoryGap": "5%", "itemStyle": {"color": "#4c72b0"}}],
    }


def _edge(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _distinct(column: Data) -> str | None:
    if column["distinct"] is None:
        return None
    return f"{column['distinct']:,}" if column["distinct_exact"] else f"≈{column['distinct']:,}"


# -- helpers ----------------------------------------------------------------------------------------------------
def _iso(value: Any) -> str | None:
    return None if value is None else str(value.isoformat())


def _time(value: str | None) -> str | None:
    return None if value is None else value[:19].replace("T", " ")


def _json(value: Any) -> str:
    return json.dumps(value, default=str)[:120]


def _positions(positions: dict[str, Any]) -> str:
    return "; ".join(f"{source}: {_json(position)}" for source, position in positions.items())


def _letters_badge(count: int) -> Markup:
    return badge(f"{count:,} waiting", "warn") if count else badge("none", "good")


def _kept(pagination: Data) -> Data:
    per_page = pagination["per_page"]
    return {"per_page": None if per_page == PER_PAGE else per_page}


def _path(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")


def _dataset_title(data: Data) -> str:
    return f"Dataset {data['name']}"


def _version_title(data: Data) -> str:
    return f"Dataset {data['name']} v{data['version']}"


PAGES = [
    Page("/datasets", "Datasets", datasets_data, render_datasets, nav="Datasets", order=20),
    Page("/datasets/{name}", _dataset_title, dataset_data, render_dataset, order=20),
    Page("/datasets/{name}/versions/{version}", _version_title, version_data, render_version, order=20),
]
