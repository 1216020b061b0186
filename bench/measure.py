"""What the benches measure with: a free loopback port for a server under test,
nearest-rank percentiles of a list of timings, the rows a resumable bench wrote, and the JSON
report a bench writes."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

RowT = TypeVar("RowT", bound=BaseModel)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float | None:
    """The nearest-rank `q` quantile (0..1) of `values`; None for none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def read_rows(path: Path, row: type[RowT]) -> list[RowT]:
    """The rows of a JSONL file that a bench appends to as it goes (none when it is absent)."""
    if not path.exists():
        return []
    return [row.model_validate_json(line) for line in path.read_text().splitlines() if line.strip()]


def write_report(path: Path, report: dict) -> None:
    """A bench's figures as JSON at `path` (its folder made), and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    print(f"wrote {path}")
