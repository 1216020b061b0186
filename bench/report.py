"""`bench/report.md`: every bench appends a dated section (a table and its pictures) here, so
the report reads as a log of runs, newest last. Pictures live under `bench/results/`."""

from __future__ import annotations

import time
from pathlib import Path

REPORT = Path(__file__).with_name("report.md")
HEADER = ("# Council benchmark report\n\nSections are appended by the `council bench …` commands, "
          "newest last; each names its machine and settings. Ratios compare figures measured in "
          "the same run.\n\n")


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def append(title: str, body: str, pictures: list[Path] = (), report: Path | None = None) -> Path:
    report = report or REPORT
    if not report.exists():
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(HEADER)
    links = []
    for p in pictures:
        p = Path(p).resolve()
        try:
            shown = p.relative_to(report.resolve().parent)
        except ValueError:
            shown = p
        links.append(f"![{p.stem}]({shown})")
    with report.open("a") as sink:
        sink.write(f"## {title} ({time.strftime('%Y-%m-%d %H:%M')})\n\n{body.strip()}\n\n")
        if links:
            sink.write("\n".join(links) + "\n\n")
    return report
