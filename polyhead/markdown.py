"""Markdown tables for reports and model cards (no heavy imports: model cards are written wherever models are saved)."""

from __future__ import annotations

from collections.abc import Sequence


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table: first column left, the rest (numbers) right-aligned."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    rule = "| --- | " + " | ".join("---:" for _ in headers[1:]) + " |"
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])
