"""Built-in real datasets and the containers that user data is read into."""

from .builtin import BUILTIN_TASK_DATASETS, CLASSIFICATION_DATASETS, MULTILABEL_DATASETS, PAIR_DATASETS, REGRESSION_DATASETS, disaster_response, get, is_builtin, jeopardy, jeopardy_answer, jeopardy_value, lee, lee_pairs, rotten_tomatoes
from .splits import SPLIT_SEED, stratified_splits
from .types import SPLIT_NAMES, SimilarityDataset, TextClassificationDataset, TextClassificationSplit

__all__ = [
    "BUILTIN_TASK_DATASETS",
    "REGRESSION_DATASETS",
    "MULTILABEL_DATASETS",
    "PAIR_DATASETS",
    "jeopardy_answer",
    "lee_pairs",
    "disaster_response",
    "jeopardy_value",
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
