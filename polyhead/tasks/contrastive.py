"""An embedding objective: (anchor, positive) text pairs trained with in-batch negatives.

Multiple-negatives ranking loss (Henderson et al. 2017; sentence-transformers'
MultipleNegativesRankingLoss): in a batch of pairs, each anchor must find its own positive
among every positive of the batch, by cosine similarity times a scale. It trains the shared
embedding space itself, so it makes the encoder better at retrieval instead of only
preserving it, and it mixes with the other tasks like any task. There is no head: the
task's "answer" is the embedding, which `encode` and `/v1/embeddings` already give.

Evaluation retrieves each test anchor's positive among all distinct positives of the split
(recall@1, recall@10, mean reciprocal rank).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from .base import TargetColumns, TaskKind, Where, register_kind

SCALE = 20.0
"""Cosine similarities are multiplied by this before the softmax (sentence-transformers' default)."""


@register_kind
class Contrastive(TaskKind):
    name = "contrastive"
    text_columns = 2
    answers_single_texts = False
    reads_label_column = False
    score_metric = "mrr"
    table_metrics = (("recall_at_1", "recall@1"), ("recall_at_10", "recall@10"), ("mrr", "MRR"), ("corpus", "corpus"),
                     ("support", "support"))
    outputs_meaning = "none of its own: the task trains the embedding, which the encoder outputs"
    output_noun = "outputs"

    def parse(self, record: dict[str, Any], columns: TargetColumns, where: Where) -> str:
        """The target is the positive text (the pair column, checked by the reader)."""
        return record[columns.pair]

    def fit(self, targets: list, columns: TargetColumns, where: Where, lines: list[int] | None = None) -> tuple[list[str], dict]:
        if len(set(targets)) < 2:
            raise InputError("a contrastive task needs at least 2 distinct positives in training", file=where.file, field=columns.pair)
        return [], {}

    def index(self, targets: list, labels: list[str]) -> list[int]:
        """Each pair's positive as the index of its text's first occurrence in the split: the retrieval corpus's id."""
        first: dict[str, int] = {}
        return [first.setdefault(text, i) for i, text in enumerate(targets)]

    def names(self, stored: list, labels: list[str]) -> list:
        raise InputError("a contrastive task's targets are its positive texts; evaluate it on its data files")

    def make_head(self, config, input_dim: int, labels: list[str]):
        from torch import nn

        return nn.Identity()

    def target_tensor(self, targets: list, spec):
        import torch

        return torch.tensor(targets, dtype=torch.long)

    def logits(self, head, embeddings: list):
        """Scaled cosine similarity of every anchor (rows) to every positive (columns) of the batch."""
        import torch.nn.functional as F

        anchors, positives = (F.normalize(e.float(), p=2, dim=-1) for e in embeddings)
        return SCALE * anchors @ positives.T

    def loss(self, logits, targets, spec, weights=None):
        """Cross-entropy of each anchor over the batch's positives; a repeated positive is not its own negative."""
        import torch
        import torch.nn.functional as F

        same = targets.unsqueeze(0) == targets.unsqueeze(1)
        own = torch.eye(len(targets), dtype=torch.bool, device=logits.device)
        masked = logits.masked_fill(same & ~own, float("-inf"))
        return F.cross_entropy(masked, torch.arange(len(targets), device=logits.device))

    def outputs(self, logits, spec):
        return logits

    def metrics(self, outputs: np.ndarray, targets: list, spec) -> dict[str, Any]:
        """Rank of each anchor's positive among the split's distinct positives (ties count against it)."""
        similarity = np.asarray(outputs, dtype=np.float64)
        ids = np.asarray(targets)
        corpus = np.flatnonzero(ids == np.arange(len(ids)))  # first occurrences: one column per distinct positive
        scores = similarity[:, corpus]
        own = similarity[np.arange(len(ids)), ids]
        ranks = 1 + (scores > own[:, None]).sum(axis=1) + ((scores == own[:, None]).sum(axis=1) - 1)
        recall_1, recall_10, mrr = float(np.mean(ranks <= 1)), float(np.mean(ranks <= 10)), float(np.mean(1.0 / ranks))
        return {"kind": self.name, "score": mrr, "recall_at_1": recall_1, "recall_at_10": recall_10, "mrr": mrr,
                "median_rank": float(np.median(ranks)), "corpus": int(len(corpus)), "support": int(len(ids))}

    def answer(self, row: list[float], spec) -> dict[str, Any]:
        raise TypeError("a contrastive task has no per-text answer; its use is the encoder's embeddings")
