"""The texts static int8 is calibrated on, and the reader that feeds them to ONNX Runtime.

Static quantization fixes each activation's int8 range ahead of time, so the ranges must
come from texts like the ones the model will see: the model's own training data where its
tasks record a built-in dataset, else the built-in Rotten Tomatoes reviews (the texts
polyhead already measures every fast path on). Calibration texts come from train splits;
the accuracy cost is measured on validation texts, so the recorded cost is on texts the
ranges were not fitted to.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..tokenization import pad_arrays

FALLBACK_DATA = "rotten_tomatoes:sentiment"
"""Built-in dataset calibrated on when the model records none of its own."""


@dataclass
class CalibrationSet:
    """Texts for calibration and for the sensitivity search, with where they came from."""

    calibration: list[str]
    """Texts whose activations fix the int8 ranges."""
    probe: list[str]
    """Other texts the sensitivity search measures each candidate graph on."""
    source: str
    """Where they came from, for the manifest (e.g. `jeopardy+rotten_tomatoes:sentiment train`)."""


def task_data_names(model: object) -> list[str]:
    """The built-in dataset names a MultiTaskModel (object or directory) records for its tasks."""
    tasks: list = []
    if isinstance(model, (str, Path)):
        config = Path(model) / "polyhead_model.json"
        if config.is_file():
            tasks = [task.get("data") for task in json.loads(config.read_text(encoding="utf-8")).get("tasks", [])]
    else:
        tasks = [getattr(spec, "data", None) for spec in getattr(model, "tasks", {}).values()] if hasattr(model, "heads") else []
    from ..datasets import is_builtin

    return [name for name in tasks if isinstance(name, str) and is_builtin(name)]


def _spread(texts: list[str], count: int) -> list[str]:
    """Up to `count` non-empty texts taken evenly across the list (not just its head)."""
    texts = [t for t in texts if t.strip()]
    if len(texts) <= count:
        return texts
    return [texts[i] for i in np.linspace(0, len(texts) - 1, count).round().astype(int)]


def calibration_set(data_names: list[str], calibration: int, probe: int) -> CalibrationSet:
    """`calibration` + `probe` train texts, shared evenly among `data_names` (or the fallback).

    Raises LookupError naming the dataset when a built-in dataset cannot be read.
    """
    from ..datasets import get

    names = list(dict.fromkeys(data_names)) or [FALLBACK_DATA]
    per_name = -(-(calibration + probe) // len(names))
    pool: list[str] = []
    for name in names:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pool += _spread(get(name).train.texts, per_name)
        except Exception as error:  # a missing data package names itself in the message
            raise LookupError(f"calibration data {name!r} cannot be read: {error}") from error
    rng = np.random.default_rng(0)
    order = rng.permutation(len(pool))
    mixed = [pool[i] for i in order]
    return CalibrationSet(mixed[:calibration], mixed[calibration : calibration + probe], f"{'+'.join(names)} train")


class TokenBatchReader:
    """An onnxruntime `CalibrationDataReader`: padded batches of token ids, rewindable."""

    def __init__(self, ids: list[np.ndarray], pad_id: int, batch_size: int = 16) -> None:
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # little padding: ranges of real tokens
        self.batches = [pad_arrays([ids[i] for i in order[s : s + batch_size]], pad_id) for s in range(0, len(ids), batch_size)]
        self._next = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._next >= len(self.batches):
            return None
        input_ids, mask = self.batches[self._next]
        self._next += 1
        return {"input_ids": input_ids, "attention_mask": mask}

    def rewind(self) -> None:
        self._next = 0

    def __iter__(self):
        self.rewind()
        while (batch := self.get_next()) is not None:
            yield batch

    def __len__(self) -> int:
        return len(self.batches)
