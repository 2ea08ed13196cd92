"""The training split as token streams: one per text column of each task (`task`, and `task.pair` for pair kinds).

Each stream is embedded separately by the shared encoder (and cached separately when the
encoder's lower part is frozen); a batch draws the same examples from every stream of its task.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .data import TaskData


@dataclass
class TrainStreams:
    ids: dict[str, list]
    """stream -> token ids of each training example."""
    targets: dict[str, torch.Tensor]
    """task -> its training targets as the kind's tensor, indexed by example."""
    truncated: dict[str, int]
    """task -> training texts cut at max_seq_length (first text column)."""
    sizes: dict[str, int]
    """task -> training examples."""
    lengths: dict[str, list[int]]
    """task -> each example's longest text in tokens (what length grouping and padding see)."""


def tokenize_streams(task_data: dict[str, TaskData], tokenizer, specs: dict) -> TrainStreams:
    ids: dict[str, list] = {}
    targets, truncated = {}, {}
    for name, data in task_data.items():
        for stream, texts in zip(data.streams(), data.columns("train")):
            tokenized = tokenizer.tokenize(texts)
            ids[stream] = tokenized.ids
            truncated.setdefault(name, tokenized.truncated)
        targets[name] = data.task_kind.target_tensor(data.targets["train"], specs[name])
    sizes = {name: len(ids[name]) for name in task_data}
    lengths = {name: [max(row) for row in zip(*([len(x) for x in ids[s]] for s in data.streams()))] for name, data in task_data.items()}
    return TrainStreams(ids, targets, truncated, sizes, lengths)


def length_event(task_data: dict[str, TaskData], token_lengths, encoder) -> tuple[dict, str]:
    """The run's `lengths` event (per task and split: texts cut at max_seq_length, token length percentiles) and its
    printed summary, so truncation is never silent."""
    from ..truncation import length_report, length_summary_lines

    texts = {name: {split: data.texts.get(split, []) for split in ("train", "validation", "test")} for name, data in task_data.items()}
    report = length_report(texts, token_lengths, encoder.max_seq_length)
    event = {"type": "lengths", "step": 0, "max_seq_length": encoder.max_seq_length, "truncation": encoder.truncation, "tasks": report}
    return event, "\n".join(length_summary_lines(report, encoder.max_seq_length, encoder.truncation, encoder._model_max_length()))
