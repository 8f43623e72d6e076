"""Ingest: sources (files, lakes, databases, brokers) behind one contract, schema contracts, file readers."""

from loopline.ingest._contract import POLICIES, ContractResult, apply_contract, infer_schema
from loopline.ingest._csv_records import CsvRecords
from loopline.ingest._files import DEFAULT_NULLS, FORMATS, detect_format, files_fingerprint, parse_datetimes, read_files
from loopline.ingest._samples import SAMPLES, sample_path
from loopline.ingest._source import SOURCES, Batch, Limits, Reject, Source, SourceConfig

__all__ = [
    "DEFAULT_NULLS",
    "FORMATS",
    "POLICIES",
    "SAMPLES",
    "SOURCES",
    "Batch",
    "ContractResult",
    "CsvRecords",
    "Limits",
    "Reject",
    "Source",
    "SourceConfig",
    "apply_contract",
    "detect_format",
    "files_fingerprint",
    "infer_schema",
    "parse_datetimes",
    "read_files",
    "sample_path",
]
