"""``type: ingest`` — a source into a versioned dataset (incrementally, exactly once); outputs the dataset."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from loopline.core.errors import ConfigError
from loopline.core.pipeline import config_error_from_validation
from loopline.core.step import DatasetRef, StepConfig, StepContext, StepType
from loopline.core.yamlfile import tagged_union
from loopline.ingest import SOURCES, Limits, Source


class IngestConfig(StepConfig):
    """Ingest a source (``source: {type: postgres, ...}``) into a dataset; output its latest version."""

    source: Annotated[dict[str, Any], Field(description="The source: its 'type' and the type's own keys.")]
    dataset: Annotated[str | None, Field(description="Dataset name (default: the step's name).")] = None
    policy: Literal["fail", "coerce", "quarantine"] = "fail"
    batch_rows: Annotated[int, Field(ge=1)] = 100_000
    batch_seconds: Annotated[float, Field(gt=0)] = 1.0
    follow: Annotated[
        bool | None,
        Field(
            description="Keep this source ingesting under `loopline sources` (one supervised process). "
            "Default: yes for streaming sources (brokers), no for files and databases."
        ),
    ] = None

    @model_validator(mode="after")
    def _check_source(self) -> IngestConfig:
        build_source(self.source)  # its errors are keyed under `source` already
        return self

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The step's schema, ``source`` a union tagged by the registered source types (editor completion)."""
        schema = cls.model_json_schema()
        defs = schema.setdefault("$defs", {})
        sources = {name: SOURCES.get(name).Config for name in SOURCES.names()}
        source = schema["properties"]["source"]
        schema["properties"]["source"] = {
            "description": source.get("description", ""),
            "oneOf": tagged_union(sources, defs),
        }
        return schema


def build_source(spec: dict[str, Any], *, where: str = "source") -> Source:
    """A source from its mapping form ``{type: ..., key: value}``, validated against its type's own config.

    ConfigError names the key under ``where`` (``source.pth``), with a did-you-mean from that type's keys.
    """
    if "type" not in spec:
        raise ConfigError(
            "the source needs a 'type'.", key=f"{where}.type", hint=f"Use one of: {', '.join(SOURCES.names())}."
        )
    try:
        source_type = SOURCES.get(str(spec["type"]))
    except ConfigError as exc:  # key "type"
        raise exc.under(where) from None
    config = {k: v for k, v in spec.items() if k != "type"}
    try:
        return source_type(source_type.Config.model_validate(config))
    except ValidationError as exc:
        raise config_error_from_validation(exc, prefix=where, model=source_type.Config) from None
    except ConfigError as exc:
        raise exc.under(where) from None


class Ingest(StepType[IngestConfig]):
    """Runs the ingestion engine for one source; never cached (the source moves), cheap when nothing is new.

    Outputs ``out``, the rows of the dataset's latest version, and ``version``, that version (id, rows,
    checksum, source positions): recorded with the run, so every model trained from it names the data it saw.
    ``out`` is a :class:`DatasetRef`: the runner stores no copy of the rows, and a consumer reads them only when
    it runs. With nothing new the version, hence the reference, stays the same and consumers come from the cache:
    a re-run costs the source's check for new data, never a read of the dataset.
    """

    type_name = "ingest"
    Config = IngestConfig
    outputs = ("out", "version")
    max_inputs = 0
    cacheable = False

    def run(self, config: IngestConfig, inputs: list[Any], ctx: StepContext) -> dict[str, Any]:
        from loopline.run._ingest import ingest_source

        dataset = config.dataset or ctx.step
        source = build_source(config.source)
        report = ingest_source(
            ctx.store,
            source,
            dataset=dataset,
            source_name=ctx.step,
            policy=config.policy,
            limits=Limits(config.batch_rows, config.batch_seconds),
            run_id=ctx.run_id,
        )
        ctx.log.info("ingested %d rows into %r (v%s)", report.rows, dataset, report.version)
        version = ctx.store.datasets.version(dataset, report.version)
        lineage = {
            "dataset": dataset,
            "version": version.version,
            "rows": version.rows,
            "checksum": version.checksum,
            "positions": version.positions,
            "ingested": {"rows": report.rows, "rejected": report.rejected},
        }
        return {"out": DatasetRef(dataset, version.version, version.checksum), "version": lineage}
