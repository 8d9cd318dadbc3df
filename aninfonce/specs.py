"""Run specifications: a frozen dataclass holds everything that determines one
run, and its key is a hash of its canonical JSON."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, ClassVar

_UNSET = object()


def _norm(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """Base of every run spec. Subclasses add their fields (all with defaults)."""

    experiment: str
    seed: int = 0

    # fields that change nothing about the numbers (kept out of the key)
    NOT_IN_KEY: ClassVar[tuple[str, ...]] = ()
    # fields a ``--speed`` preset may set (aninfonce.speed); none by default
    SPEED_FIELDS: ClassVar[tuple[str, ...]] = ()

    def fields(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    @property
    def key(self) -> str:
        """Hash of the fields that differ from their defaults (plus experiment
        and seed), so adding a new field with a default keeps old keys valid."""
        defaults = {f.name: f.default for f in dataclasses.fields(self) if f.default is not dataclasses.MISSING}
        payload = {k: v for k, v in self.fields().items()
                   if k not in self.NOT_IN_KEY and (k in ("experiment", "seed") or _norm(defaults.get(k, _UNSET)) != v)}
        payload["_type"] = type(self).__name__
        blob = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def columns(self) -> dict[str, Any]:
        """The spec as flat CSV columns (tuples as JSON strings)."""
        return {k: json.dumps(v) if isinstance(v, list) else v for k, v in self.fields().items()}

    def label(self) -> str:
        return f"{self.experiment}:{self.key}"
