"""What tasks pass each other and what a version records: refs, lineage, fingerprints."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from quantlab.codeversion import code_version


@dataclass(frozen=True)
class DatasetRef:
    """A pointer to one immutable version of a dataset; what tasks pass to each other."""

    name: str
    version: int

    def __str__(self) -> str:
        return f"{self.name}@v{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetRef:
        return cls(name=str(data["name"]), version=int(data["version"]))


@dataclass(frozen=True)
class Lineage:
    """What one version was made from and how.

    `extra` holds the producer's facts as stored JSON; read the ones other stages need
    through the dataset's typed model (`Catalog.extra`, `quantlab.catalog.datasets`).
    """

    stage: str
    inputs: dict[str, int]
    config_hash: str
    code_version: str
    row_count: int
    created_at: str
    fingerprint: str
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, text: str) -> Lineage:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class VersionInfo:
    ref: DatasetRef
    operation: str
    lineage: Lineage | None


def fingerprint(stage: str, inputs: Sequence[DatasetRef], config_hash: str) -> str:
    """Identity of a stage's output: same inputs, config and code give the same fingerprint."""
    payload = json.dumps(
        {
            "stage": stage,
            "inputs": sorted((r.name, r.version) for r in inputs),
            "config": config_hash,
            "code": code_version(),
        }
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:20]
