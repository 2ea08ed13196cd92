"""`make demo`: the main job on the built-in model and real data.

Encodes the Rotten Tomatoes validation reviews with the default model, runs a similarity
search over them, and scores the encoder on the lee similarity benchmark.
"""

from __future__ import annotations

import time
import warnings

from . import datasets
from .encoder import SentenceEncoder
from .similarity import evaluate_similarity, top_k

QUERIES = ["a heartwarming story with great acting", "boring, predictable and far too long", "a thriller full of suspense"]


def main() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    warnings.simplefilter("ignore", UserWarning)
    encoder = SentenceEncoder()
    corpus = datasets.rotten_tomatoes("sentiment").validation
    print(f"model: {encoder.source}\npooling: {encoder.pooling_mode}, normalize: {encoder.normalize}")
    start = time.perf_counter()
    vectors = encoder.encode(corpus.texts, batch_size=64, show_progress=True)
    elapsed = time.perf_counter() - start
    print(f"encoded {len(corpus)} Rotten Tomatoes reviews in {elapsed:.1f}s ({len(corpus) / elapsed:.0f} texts/s)\n")
    for query, hits in zip(QUERIES, top_k(encoder.encode(QUERIES), vectors, corpus.texts, k=3)):
        print(f"query: {query}")
        for hit in hits:
            print(f"  {hit.score:.3f}  [{corpus.labels[hit.index]}] {hit.text[:100]}")
        print()
    score = evaluate_similarity(encoder)
    print(f"lee similarity benchmark ({score.pairs} pairs): pearson {score.pearson:.4f}, spearman {score.spearman:.4f}")


if __name__ == "__main__":
    main()
