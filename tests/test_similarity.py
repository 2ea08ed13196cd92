"""Cosine similarity, nearest-neighbour search and the lee similarity benchmark."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from polyhead import SentenceEncoder
from polyhead.datasets import SimilarityDataset
from polyhead.similarity import cosine_matrix, evaluate_similarity, top_k, unit_rows


def test_cosine_matrix_matches_the_definition():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 6)), rng.normal(size=(3, 6))
    expected = np.array([[x @ y / np.linalg.norm(x) / np.linalg.norm(y) for y in b] for x in a])
    np.testing.assert_allclose(cosine_matrix(a, b), expected, atol=1e-6)
    self_scores = cosine_matrix(a)
    np.testing.assert_allclose(np.diag(self_scores), 1.0, atol=1e-6)
    np.testing.assert_allclose(self_scores, self_scores.T, atol=1e-7)
    assert self_scores.dtype == np.float32


def test_a_zero_vector_does_not_divide_by_zero():
    scores = cosine_matrix(np.array([[0.0, 0.0], [1.0, 0.0]]))
    assert np.isfinite(scores).all() and scores[0, 1] == 0.0
    np.testing.assert_allclose(np.linalg.norm(unit_rows(np.array([[3.0, 4.0]])), axis=1), 1.0)


def test_top_k_returns_the_best_first():
    corpus = ["east", "north", "north-east", "west"]
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])
    queries = np.array([[1.0, 0.1], [-1.0, -0.1]])
    hits = top_k(queries, vectors, corpus, k=2)
    assert [[h.text for h in row] for row in hits] == [["east", "north-east"], ["west", "north"]]
    assert hits[0][0].index == 0 and hits[0][0].score > hits[0][1].score
    everything = top_k(queries, vectors, corpus, k=10)
    assert [len(row) for row in everything] == [4, 4]
    assert [h.text for h in everything[0]] == ["east", "north-east", "north", "west"]


def test_search_finds_the_paraphrase(encoder):
    corpus = [
        "The stock market fell sharply on Monday.",
        "A kitten is sleeping on the sofa.",
        "Heavy rain is expected over the weekend.",
        "The recipe needs two cups of flour.",
    ]
    queries = ["a cat naps on the couch", "shares dropped at the start of the week"]
    hits = top_k(encoder.encode(queries), encoder.encode(corpus), corpus, k=2)
    assert hits[0][0].index == 1 and hits[1][0].index == 0
    assert hits[0][0].score > hits[0][1].score + 0.2


def test_evaluate_similarity_recovers_a_known_ranking(encoder):
    """Ratings that are the encoder's own cosines correlate perfectly; reversed ones perfectly badly."""
    documents = ["a dog runs in the park", "a puppy plays outside", "the bank raised rates", "interest rates went up"]
    cosines = cosine_matrix(encoder.encode(documents))
    pairs = [(i, j, float(cosines[i, j])) for i in range(4) for j in range(i + 1, 4)]
    same = evaluate_similarity(encoder, SimilarityDataset("own", documents, pairs))
    assert same.pairs == 6 and same.pearson == pytest.approx(1.0, abs=1e-5) and same.spearman == pytest.approx(1.0)
    reversed_pairs = [(i, j, -score) for i, j, score in pairs]
    opposite = evaluate_similarity(encoder, SimilarityDataset("own", documents, reversed_pairs))
    assert opposite.pearson == pytest.approx(-1.0, abs=1e-5) and opposite.spearman == pytest.approx(-1.0)


# The exact-path (fp32) figures of the built-in model on lee, as the README publishes them.
LEE_FIGURES = {"mean": (0.6564, 0.5085), "cls": (0.6084, 0.4739), "max": (0.2490, 0.1923), "cls_pooler": (0.5925, 0.4783)}


def test_readme_publishes_the_pinned_lee_figures():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    for pooling, (pearson, spearman) in LEE_FIGURES.items():
        row = re.search(rf"^\| `polyhead eval-similarity[^|]*` \| {pooling}\b[^|]* \| ([\d.]+) \| ([\d.]+) \|$", readme, re.MULTILINE)
        assert row is not None, pooling
        assert (float(row.group(1)), float(row.group(2))) == (pearson, spearman), pooling


@pytest.mark.parametrize("pooling", list(LEE_FIGURES))
def test_default_model_on_lee_gives_the_published_figures(encoder, pooling):
    """Deterministic on the exact path: every pooling mode reproduces its published figures to 4 decimals."""
    model = encoder if pooling == "mean" else SentenceEncoder(pooling=pooling, device="cpu", backend="torch")
    score = evaluate_similarity(model)
    assert model.last_encode_stats.backend == "torch"
    assert score.pairs == 1225
    pearson, spearman = LEE_FIGURES[pooling]
    assert score.pearson == pytest.approx(pearson, abs=5e-5)
    assert score.spearman == pytest.approx(spearman, abs=5e-5)
