"""The training tests' tiny backbone, shared with the task-kind tests."""

from ..training.conftest import tiny_bert_dir  # noqa: F401  (a fixture)
