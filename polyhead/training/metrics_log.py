"""metrics.jsonl: one JSON object per log step and per evaluation, appended as it happens."""

from __future__ import annotations

import json
from pathlib import Path

from ..fileio import atomic_file


class MetricsLog:
    """Appends JSON lines (flushed at once, so a crash loses at most the line being written)."""

    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path = path
        self.enabled = enabled

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def truncate_after(self, step: int) -> None:
        """Drop lines logged after `step` (work a resumed run will redo)."""
        if not self.enabled or not self.path.exists():
            return
        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by the crash
            if isinstance(record, dict) and int(record.get("step", 0)) <= step:
                kept.append(line)
        with atomic_file(self.path) as handle:
            handle.write("".join(f"{line}\n" for line in kept))
