"""Sentence-pair kinds: both texts go through the shared encoder.

- `pair_classification`: the head sees (u, v, |u - v|, u * v), the features of
  sentence-transformers' SoftmaxLoss (Reimers & Gurevych 2019, after InferSent), and is
  trained with cross-entropy; metrics and answers are classification's.
- `pair_regression`: no head; the pair's cosine similarity is the prediction, trained with
  CoSENT (Su 2022): every pair rated higher than another in the batch must have the higher
  cosine. It trains the embedding space itself, so its score (Spearman of cosine against the
  ratings) is what similarity search sees.

Both answer pairs of texts, not single texts: `MultiTaskModel.predict_pairs` answers them,
while `predict`, the server and the exported graph leave them out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from .base import TargetColumns, TaskKind, Where, register_kind
from .classification import Classification, single_column
from .regression import _number

COSENT_SCALE = 20.0


def pair_features(embeddings: list):
    """(u, v, |u - v|, u * v) along the last axis."""
    import torch

    u, v = embeddings
    return torch.cat([u, v, (u - v).abs(), u * v], dim=-1)


@register_kind
class PairClassification(Classification):
    name = "pair_classification"
    text_columns = 2
    answers_single_texts = False
    answers_pairs = True
    outputs_meaning = "class probabilities of the pair (softmax over the head on u, v, |u-v|, u*v)"

    def make_head(self, config, input_dim: int, labels: list[str]):
        from ..heads import build_head

        return build_head(config, 4 * input_dim, self.output_size(labels))

    def logits(self, head, embeddings: list):
        return head(pair_features(embeddings))


@register_kind
class PairRegression(TaskKind):
    name = "pair_regression"
    text_columns = 2
    answers_single_texts = False
    answers_pairs = True
    score_metric = "spearman"
    table_metrics = (("pearson", "Pearson"), ("spearman", "Spearman"), ("support", "support"))
    outputs_meaning = "the cosine similarity of the pair's embeddings"
    output_noun = "scores"

    def parse(self, record: dict[str, Any], columns: TargetColumns, where: Where) -> float:
        column = single_column(columns, self.name, where)
        return _number(record[column], where, column)

    def fit(self, targets: list, columns: TargetColumns, where: Where, lines: list[int] | None = None) -> tuple[list[str], dict]:
        if len(set(targets)) < 2:
            raise InputError("every training pair has the same rating: there is nothing to learn", file=where.file, field=where.field)
        return ["similarity"], {}

    def make_head(self, config, input_dim: int, labels: list[str]):
        from torch import nn

        return nn.Identity()

    def target_tensor(self, targets: list, spec):
        import torch

        return torch.tensor(targets, dtype=torch.float32)

    def logits(self, head, embeddings: list):
        import torch.nn.functional as F

        u, v = embeddings
        return F.cosine_similarity(u.float(), v.float(), dim=-1)

    def loss(self, logits, targets, spec, weights=None):
        """CoSENT: log(1 + sum over pairs (i, j) with rating_i > rating_j of exp(scale * (cos_j - cos_i)))."""
        import torch

        differences = COSENT_SCALE * (logits[None, :] - logits[:, None])  # [i, j] = cos_j - cos_i, scaled
        ordered = targets[:, None] > targets[None, :]
        terms = differences[ordered]
        return torch.logsumexp(torch.cat([terms.new_zeros(1), terms]), dim=0)

    def outputs(self, logits, spec):
        return logits.reshape(-1, 1)

    def metrics(self, outputs: np.ndarray, targets: list, spec) -> dict[str, Any]:
        from scipy.stats import pearsonr, spearmanr

        predicted, true = np.asarray(outputs, dtype=np.float64).ravel(), np.asarray(targets, dtype=np.float64)
        constant = np.ptp(predicted) == 0 or np.ptp(true) == 0
        pearson = 0.0 if constant else float(pearsonr(true, predicted)[0])
        spearman = 0.0 if constant else float(spearmanr(true, predicted)[0])
        return {"kind": self.name, "score": spearman, "pearson": pearson, "spearman": spearman, "support": len(true)}

    def answer(self, row: list[float], spec) -> dict[str, Any]:
        return {"similarity": float(row[0])}
