"""The ensemble bundle: a model version that serves the mean of its members' predictions.

Its members are single bundles of the same model (same task, target, classes and input fields), each with its own
fitted preprocessing; a classifier's probability is the mean of the members' probabilities, ``(p1 + ... + pn) / n``
in member order (its label: the class of the highest mean probability), a regressor's prediction the mean of their
predictions. On disk it is a bundle archive of format version 3: ``bundle.json`` (``"ensemble"``: the members and
how they combine) and each member's own bundle bytes under ``members/<i>.bundle``. Every member is loaded as any
bundle is (:meth:`ModelBundle.from_bytes`: nothing unpickled, types checked against the allowlist); the member
files' names come from their position, never from the manifest, and a member may not be an ensemble itself.

An ensemble predicts through its members' own paths (each member's compiled fast path included): a table and
records give the same numbers, as a single bundle's do.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from loopline.bundle._bundle import FORMAT, ModelBundle, _not_a_bundle, _write, library_versions
from loopline.core.errors import DataError

ENSEMBLE_FORMAT_VERSION = 3
MAX_MEMBERS = 16
"""The most members an ensemble holds (each is a whole model served for every request)."""
_COMBINE = "mean"


def _member_file(index: int) -> str:
    return f"members/{index}.bundle"


def _check_members(members: Sequence[Any]) -> None:
    """DataError unless ``members`` are 1..MAX_MEMBERS single bundles of the same model."""
    if not members:
        raise DataError("an ensemble needs at least one member.", hint="Pass the member bundles to average.")
    if len(members) > MAX_MEMBERS:
        raise DataError(
            f"an ensemble holds at most {MAX_MEMBERS} members, not {len(members)}.",
            hint="Average fewer versions.",
        )
    first = members[0]
    for index, member in enumerate(members):
        if isinstance(member, EnsembleBundle):
            raise DataError(
                f"ensemble member {index} is an ensemble itself.",
                hint="Build the ensemble from its members' single bundles instead.",
            )
        for name in ("task", "target", "classes"):
            if getattr(member, name) != getattr(first, name):
                raise DataError(
                    f"ensemble member {index} has {name} {getattr(member, name)!r}, member 0 has "
                    f"{getattr(first, name)!r}: the members of an ensemble must be versions of the same model.",
                    hint="Average only versions trained on the same target, task and classes.",
                )
        if _fields(member.input_schema) != _fields(first.input_schema):
            theirs, ours = _fields(member.input_schema), _fields(first.input_schema)
            diff = sorted(set(theirs) ^ set(ours)) or sorted(theirs)
            raise DataError(
                f"ensemble member {index} takes other inputs than member 0 (they differ in: "
                f"{', '.join(f'{n} ({d})' for n, d in diff[:10])}).",
                hint="Average only versions trained on the same input fields and types.",
            )


def _fields(schema: Sequence[Mapping[str, Any]]) -> tuple[tuple[str, str], ...]:
    return tuple((str(item.get("name")), str(item.get("dtype"))) for item in schema)


def _mean(parts: Sequence[np.ndarray]) -> np.ndarray:
    total = np.array(parts[0], dtype=np.float64, copy=True)
    for part in parts[1:]:
        total += part
    return total / len(parts)


def _make(members: Sequence[Any], metadata: Mapping[str, Any] | None) -> EnsembleBundle:
    _check_members(members)
    first = members[0]
    return EnsembleBundle(
        preprocessor=first.preprocessor,
        estimator=None,
        target=first.target,
        task=first.task,
        classes=None if first.classes is None else list(first.classes),
        input_schema=[dict(item) for item in first.input_schema],
        metadata=dict(metadata or {}),
        chain=None,
        members=list(members),
    )


def ensemble_of(members: Sequence[Any], *, metadata: Mapping[str, Any] | None = None) -> EnsembleBundle:
    """An ensemble of ``members`` (single :class:`ModelBundle` objects); DataError when they are not versions of
    the same model (task, target, classes, input fields and types), when there are none or more than
    :data:`MAX_MEMBERS`, or when one is an ensemble itself. ``metadata`` is stored with it (loopline's retrain
    records the member versions there)."""
    return _make(members, metadata)


def load_ensemble(manifest: Mapping[str, Any], archive: zipfile.ZipFile) -> EnsembleBundle:
    """The ensemble described by ``manifest`` in ``archive``: each member loaded as a bundle is, checked again."""
    entry = manifest.get("ensemble")
    if not isinstance(entry, Mapping) or entry.get("combine") != _COMBINE:
        raise _not_a_bundle(f"bundle.json's ensemble is not a {_COMBINE!r} of members")
    count = entry.get("members")
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_MEMBERS:
        raise _not_a_bundle(f"bundle.json's ensemble has {count!r} members (1 to {MAX_MEMBERS})")
    members = []
    for index in range(count):
        try:
            data = archive.read(_member_file(index))
        except KeyError:
            raise _not_a_bundle(f"the archive has no {_member_file(index)}") from None
        if _is_ensemble(data):
            raise _not_a_bundle(f"ensemble member {index} is an ensemble itself")
        members.append(ModelBundle.from_bytes(data))
    made = _make(members, manifest.get("metadata") or {})
    if made.task != manifest.get("task") or made.classes != manifest.get("classes"):
        raise _not_a_bundle("bundle.json's task or classes differ from its members'")
    return made


def _is_ensemble(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            manifest = json.loads(archive.read("bundle.json"))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError):
        return False  # the member's own load says what is wrong
    return isinstance(manifest, dict) and "ensemble" in manifest


@dataclass
class EnsembleBundle(ModelBundle):
    """A :class:`ModelBundle` whose prediction is the mean of its ``members``' (see the module docstring).

    Built by :func:`ensemble_of`; ``preprocessor`` and ``input_schema`` are member 0's (the members take the same
    inputs), ``estimator`` and ``chain`` are None: each member transforms the rows with its own.
    """

    members: list[ModelBundle] = field(default_factory=list)

    def predict_table(self, df: pl.DataFrame) -> dict[str, np.ndarray]:
        """``{"prediction": (n,), "probability": (n, k)}``: the members' mean (no probability for regression)."""
        return self._combined([member.predict_table(df) for member in self.members])

    def predict_records(self, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The serving path: each member's own record path (its fast path included), then the mean; the same
        shape of results as :meth:`ModelBundle.predict_records` and the numbers of :meth:`predict_table`."""
        if not records:
            return []
        out = self._combined([member.predict_matrix(member.features_records(records)) for member in self.members])
        if "probability" not in out:
            return [{"prediction": value} for value in out["prediction"].tolist()]
        labels = self.classes or []
        keys = [str(c) for c in labels]
        return [
            {"prediction": labels[row.index(max(row))], "probabilities": dict(zip(keys, row, strict=True))}
            for row in out["probability"].tolist()
        ]

    def _combined(self, outputs: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        if self.classes is None:
            return {"prediction": _mean([out["prediction"] for out in outputs])}
        probability = _mean([out["probability"] for out in outputs])
        labels = np.asarray(self.classes)
        return {"prediction": labels[probability.argmax(axis=1)], "probability": probability}

    def features_records(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        raise DataError(
            "an ensemble has no single feature matrix: each member transforms the rows with its own preprocessing.",
            hint="Use predict_records or predict_table, or a member's features_records.",
        )

    def predict_matrix(self, features: np.ndarray) -> dict[str, np.ndarray]:
        raise DataError(
            "an ensemble has no single feature matrix: each member transforms the rows with its own preprocessing.",
            hint="Use predict_records or predict_table, or a member's predict_matrix.",
        )

    def compiled(self) -> None:
        """Builds every member's compiled fast path (what a service does on load); the ensemble has none."""
        for member in self.members:
            member.compiled()

    def to_bytes(self) -> bytes:
        """The ensemble as bundle zip bytes, format version 3 (see the module docstring); never pickled."""
        manifest = {
            "format": FORMAT,
            "format_version": ENSEMBLE_FORMAT_VERSION,
            "task": self.task,
            "target": self.target,
            "classes": self.classes,
            "input_schema": self.input_schema,
            "ensemble": {"combine": _COMBINE, "members": len(self.members)},
            "metadata": {**self.metadata, "versions": library_versions()},
        }
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            _write(archive, "bundle.json", json.dumps(manifest, separators=(",", ":"), default=str).encode())
            for index, member in enumerate(self.members):
                _write(archive, _member_file(index), member.to_bytes())
        return buffer.getvalue()
