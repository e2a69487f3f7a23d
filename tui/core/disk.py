"""Probe a disk image: format, variant, sizes, problems. (Placeholder: issue 3 replaces the body.)"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

GIB = 1 << 30


@dataclass
class ProbeResult:
    path: str
    format: str | None  # "VMDK" | "VHD" | "RAW" | None
    variant: str | None
    file_bytes: int
    virtual_bytes: int
    volume_size_gib: int
    importable: bool
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def probe(path: str | os.PathLike[str]) -> ProbeResult:
    p = Path(path)
    size = p.stat().st_size
    return ProbeResult(str(p), "RAW", None, size, size, max(1, -(-size // GIB)), True)
