"""What is kept of a text longer than `max_seq_length`, and how many texts are long.

`head` keeps the first tokens (the usual choice), `tail` the last, `head+tail` the first
quarter and the last three quarters of the budget: Sun et al. (2019, "How to Fine-Tune
BERT for Text Classification?") found head 128 + tail 382 best on long IMDb reviews,
where a review's verdict tends to sit at its end. Special tokens ([CLS] ... [SEP]) are
always kept. Pure Python and NumPy: a config naming a side is checked without torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

TRUNCATION_SIDES = ("head", "tail", "head+tail")
HEAD_SHARE = 0.25
"""The head's share of the token budget under `head+tail` (128 of 510 in Sun et al.)."""
CUT_SHARE_WORTH_A_NOTE = 0.05
"""Above this share of cut texts, the run start suggests what to change."""


def check_side(side: str) -> str:
    if side not in TRUNCATION_SIDES:
        raise ValueError(f"unknown truncation {side!r}; choose one of {', '.join(TRUNCATION_SIDES)}")
    return side


def cut_ids(ids: Sequence[int], special_mask: Sequence[int], max_length: int, side: str) -> list[int]:
    """Token ids cut to `max_length`, keeping the leading and trailing special tokens.

    `special_mask` marks special tokens with 1 (the tokenizer's special_tokens_mask).
    """
    ids = list(ids)
    if len(ids) <= max_length:
        return ids
    lead = 0
    while lead < len(ids) and special_mask[lead]:
        lead += 1
    trail = 0
    while trail < len(ids) - lead and special_mask[len(ids) - 1 - trail]:
        trail += 1
    body = ids[lead : len(ids) - trail]
    budget = max(max_length - lead - trail, 0)
    if side == "head":
        kept = body[:budget]
    elif side == "tail":
        kept = body[len(body) - budget :] if budget else []
    else:
        head = int(budget * HEAD_SHARE)
        tail = budget - head
        kept = body[:head] + (body[len(body) - tail :] if tail else [])
    return ids[:lead] + kept + ids[len(ids) - trail :]


@dataclass
class LengthSummary:
    """Token lengths (before truncation) of one split's texts."""

    texts: int
    over: int
    """Texts longer than max_seq_length (cut)."""
    p50: int
    p90: int
    p99: int
    longest: int
    max_seq_length: int

    @property
    def share_cut(self) -> float:
        return self.over / self.texts if self.texts else 0.0

    def to_dict(self) -> dict:
        return {"texts": self.texts, "truncated": self.over, "share_truncated": round(self.share_cut, 4), "p50": self.p50,
                "p90": self.p90, "p99": self.p99, "longest": self.longest, "max_seq_length": self.max_seq_length}


def summarize_lengths(lengths: Sequence[int] | np.ndarray, max_seq_length: int) -> LengthSummary:
    values = np.asarray(lengths, dtype=np.int64)
    if values.size == 0:
        return LengthSummary(0, 0, 0, 0, 0, 0, max_seq_length)
    p50, p90, p99 = (int(np.ceil(np.percentile(values, q))) for q in (50, 90, 99))
    return LengthSummary(int(values.size), int((values > max_seq_length).sum()), p50, p90, p99, int(values.max()), max_seq_length)


def suggestion(task: str, split: str, summary: LengthSummary, side: str, model_limit: int | None) -> str | None:
    """What to change when more than a few percent of a split's texts are cut; None otherwise."""
    if summary.share_cut <= CUT_SHARE_WORTH_A_NOTE:
        return None
    longer = f"raise model.max_seq_length (p90 is {summary.p90} tokens"
    longer += f"; the backbone takes at most {model_limit})" if model_limit else ")"
    if side == "head":
        longer += ", or try model.truncation: head+tail (or tail) if the end of a text says more than its start"
    return f"{summary.share_cut:.0%} of {task}'s {split} texts are cut at {summary.max_seq_length} tokens: {longer}"


def length_report(texts: dict[str, dict[str, list[str]]], token_lengths, max_seq_length: int) -> dict[str, dict[str, dict]]:
    """task -> split -> LengthSummary.to_dict(), from `token_lengths(texts) -> lengths`."""
    return {
        task: {split: summarize_lengths(token_lengths(items), max_seq_length).to_dict() for split, items in splits.items() if items}
        for task, splits in texts.items()
    }


LENGTH_HEADERS = ["task", "split", "texts", "cut", "cut %", "p50", "p90", "p99", "longest"]


def length_rows(report: dict[str, dict[str, dict]]) -> list[list[str]]:
    return [
        [task, split, str(s["texts"]), str(s["truncated"]), f"{100 * s['share_truncated']:.1f}", str(s["p50"]), str(s["p90"]),
         str(s["p99"]), str(s["longest"])]
        for task, splits in report.items() for split, s in splits.items()
    ]


def length_notes(report: dict[str, dict[str, dict]], side: str, model_limit: int | None) -> list[str]:
    """One suggestion per task and split where more than a few percent of texts are cut."""
    notes = []
    for task, splits in report.items():
        for split, s in splits.items():
            summary = LengthSummary(s["texts"], s["truncated"], s["p50"], s["p90"], s["p99"], s["longest"], s["max_seq_length"])
            note = suggestion(task, split, summary, side, model_limit)
            if note:
                notes.append(note)
    return notes


def format_length_table(report: dict[str, dict[str, dict]]) -> str:
    """The report as an aligned plain-text table for the console."""
    rows = [LENGTH_HEADERS, *length_rows(report)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(LENGTH_HEADERS))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def length_summary_lines(report: dict[str, dict[str, dict]], max_seq_length: int | None, side: str, model_limit: int | None) -> list[str]:
    """What training and evaluation print about text lengths: the table, then a note per split where many texts are cut."""
    lines = [f"text lengths in tokens (max_seq_length {max_seq_length}, truncation: {side}):", format_length_table(report)]
    return lines + [f"note: {note}" for note in length_notes(report, side, model_limit)]
