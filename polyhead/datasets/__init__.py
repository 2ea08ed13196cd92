"""Built-in real datasets and the containers that user data is read into."""

from .builtin import CLASSIFICATION_DATASETS, get, is_builtin, jeopardy, lee, rotten_tomatoes
from .splits import SPLIT_SEED, stratified_splits
from .types import SPLIT_NAMES, SimilarityDataset, TextClassificationDataset, TextClassificationSplit

__all__ = [
    "CLASSIFICATION_DATASETS",
    "SPLIT_NAMES",
    "SPLIT_SEED",
    "SimilarityDataset",
    "TextClassificationDataset",
    "TextClassificationSplit",
    "get",
    "is_builtin",
    "jeopardy",
    "lee",
    "rotten_tomatoes",
    "stratified_splits",
]
