"""Cosine similarity, nearest-neighbour search and the `lee` similarity benchmark."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import pearsonr, spearmanr

from .datasets import SimilarityDataset, lee


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def cosine_matrix(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Pairwise cosine similarities between the rows of a and b (b defaults to a)."""
    a_unit = unit_rows(np.asarray(a, dtype=np.float32))
    b_unit = a_unit if b is None else unit_rows(np.asarray(b, dtype=np.float32))
    return a_unit @ b_unit.T


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of `a` with the same row of `b` (computed in float64)."""
    return np.sum(unit_rows(a.astype(np.float64)) * unit_rows(b.astype(np.float64)), axis=1)


@dataclass
class SearchHit:
    index: int
    score: float
    text: str


def top_k(query_vectors: np.ndarray, corpus_vectors: np.ndarray, corpus: list[str], k: int = 5) -> list[list[SearchHit]]:
    """The k most similar corpus texts for each query, best first."""
    scores = cosine_matrix(query_vectors, corpus_vectors)
    k = min(k, len(corpus))
    results = []
    for row in scores:
        best = np.argpartition(-row, k - 1)[:k] if k < len(row) else np.arange(len(row))
        best = best[np.argsort(-row[best], kind="stable")]
        results.append([SearchHit(int(i), float(row[i]), corpus[i]) for i in best])
    return results


@dataclass
class SimilarityScore:
    """Agreement of cosine similarities with human ratings."""

    pearson: float
    spearman: float
    pairs: int


def evaluate_similarity(encoder, dataset: SimilarityDataset | None = None, batch_size: int = 16) -> SimilarityScore:
    """Pearson and Spearman between the encoder's cosine similarities and human ratings."""
    dataset = dataset or lee()
    embeddings = encoder.encode(dataset.documents, batch_size=batch_size, show_progress=False)
    cosines = cosine_matrix(embeddings)
    predicted = np.array([cosines[i, j] for i, j, _ in dataset.pairs])
    human = np.array([score for _, _, score in dataset.pairs])
    return SimilarityScore(
        pearson=float(pearsonr(predicted, human).statistic),
        spearman=float(spearmanr(predicted, human).statistic),
        pairs=len(dataset.pairs),
    )
