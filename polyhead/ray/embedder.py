"""The stateful classes Ray Data's `map_batches` runs: one model per worker, loaded once.

Each batch (a pyarrow Table, or a dict of columns) comes back with every row and column it
had, plus the result column(s). Rows whose text cannot be embedded either stop the job with
an error naming the row, or keep a null result (`on_invalid="null"`); `invalid` counts them
per worker and a warning says how many per batch, so none go missing unnoticed.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..encoder import TruncationWarning
from .loading import ModelSpec
from .texts import InvalidText, check_on_invalid, invalid_error, split_valid

log = logging.getLogger(__name__)


@dataclass
class BatchStats:
    """What one call computed, for the caller's totals."""

    rows: int = 0
    invalid: int = 0
    truncated: int = 0
    tokens: int = 0


def as_table(batch):
    """A pyarrow Table from what `map_batches` hands over (Table, pandas DataFrame or dict of columns)."""
    import pyarrow as pa

    if isinstance(batch, pa.Table):
        return batch
    if hasattr(batch, "to_dict") and hasattr(batch, "columns"):  # a pandas DataFrame
        return pa.Table.from_pandas(batch, preserve_index=False)
    return pa.table({name: _as_arrow(values) for name, values in batch.items()})


def _as_arrow(values):
    import pyarrow as pa

    if isinstance(values, np.ndarray) and values.ndim > 1:
        return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(len(values), -1).reshape(-1)), int(np.prod(values.shape[1:])))
    return pa.array(list(values) if isinstance(values, np.ndarray) and values.dtype == object else values)


def vectors_column(vectors: np.ndarray, rows: int, valid: list[int], dim: int):
    """A fixed-size-list float32 column of `rows` rows: `vectors` at the `valid` positions, null elsewhere."""
    import pyarrow as pa

    full = np.zeros((rows, dim), dtype=np.float32)
    if valid:
        full[np.asarray(valid)] = vectors
    flat = pa.array(full.reshape(-1))
    if len(valid) == rows:
        return pa.FixedSizeListArray.from_arrays(flat, dim)
    missing = np.ones(rows, dtype=bool)
    missing[np.asarray(valid, dtype=np.int64)] = False
    return pa.FixedSizeListArray.from_arrays(flat, dim, mask=pa.array(missing))


def embed_values(encoder, values: Sequence[object], spec: ModelSpec, on_invalid: str, where, column: str) -> tuple[object, BatchStats]:
    """The embeddings column for `values` and what it took; `where(index)` names a row in an error."""
    valid, invalid = split_valid(values)
    _handle_invalid(invalid, on_invalid, where, column)
    texts = [values[i] for i in valid]
    vectors = np.zeros((0, encoder.embedding_dim), dtype=np.float32)
    stats = BatchStats(rows=len(values), invalid=len(invalid))
    if texts:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TruncationWarning)  # counted in the stats instead
            vectors = encoder.encode(texts, **spec.encode_options())
        stats.truncated, stats.tokens = encoder.last_encode_stats.truncated, encoder.last_encode_stats.tokens
    return vectors_column(vectors, len(values), valid, encoder.embedding_dim), stats


def predict_values(model, values: Sequence[object], tasks: list[str] | None, spec: ModelSpec, on_invalid: str, where, column: str,
                   all_probabilities: bool = False) -> tuple[dict[str, object], BatchStats]:
    """Per task, a struct column of answers (the kind's label/probability, values or labels); null for invalid rows."""
    import pyarrow as pa

    valid, invalid = split_valid(values)
    _handle_invalid(invalid, on_invalid, where, column)
    texts = [values[i] for i in valid]
    names = tasks or list(model.answering_tasks)
    answers: list[dict | None] = [None] * len(values)
    if texts:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TruncationWarning)
            predictions = model.predict(texts, tasks=names, batch_size=spec.batch_size)
        for index, prediction in zip(valid, predictions):
            answers[index] = prediction
    columns = {}
    for name in names:
        rows = [None if a is None else _answer(a[name].to_dict(), all_probabilities) for a in answers]
        columns[name] = pa.array(rows)
    return columns, BatchStats(rows=len(values), invalid=len(invalid))


def _answer(answer: dict, all_probabilities: bool) -> dict:
    if all_probabilities or "probabilities" not in answer:
        return answer
    return {k: v for k, v in answer.items() if k != "probabilities"}


def _handle_invalid(invalid: list[InvalidText], on_invalid: str, where, column: str) -> None:
    if not invalid:
        return
    if on_invalid == "error":
        raise invalid_error(invalid[0], len(invalid), where(invalid[0].index), column)
    log.warning("%d of the batch's texts are null, empty or not strings: kept with a null result", len(invalid))


class _BatchModel:
    """Shared by Embedder and Predictor: the column names, the invalid-text policy and the counts."""

    def __init__(self, spec: ModelSpec, text_column: str, on_invalid: str, id_column: str | None) -> None:
        self.spec, self.text_column, self.id_column = spec, text_column, id_column
        self.on_invalid = check_on_invalid(on_invalid)
        self.rows = self.invalid = self.truncated = 0

    def _texts(self, table) -> list[object]:
        if self.text_column not in table.column_names:
            from ..errors import InputError

            raise InputError(f"missing column; the dataset has {', '.join(map(repr, table.column_names))}", field=self.text_column)
        return table.column(self.text_column).to_pylist()

    def _where(self, table):
        def where(index: int) -> str:
            if self.id_column and self.id_column in table.column_names:
                return f"row {self.id_column}={table.column(self.id_column)[index].as_py()!r}"
            return f"row {index} of a batch of {table.num_rows} (pass id_column= to name rows by an id)"

        return where

    def _count(self, stats: BatchStats) -> None:
        self.rows += stats.rows
        self.invalid += stats.invalid
        self.truncated += stats.truncated


class Embedder(_BatchModel):
    """For `Dataset.map_batches(Embedder, fn_constructor_kwargs=..., concurrency=N, num_cpus=.., num_gpus=..)`.

    Loads the model once per worker (`ModelSpec.load_encoder`), then adds `output_column`
    (float32 vectors, a fixed-size list) to each batch, computed by the encoder's own `encode`.
    """

    def __init__(self, spec: ModelSpec, text_column: str = "text", output_column: str = "embedding", on_invalid: str = "error",
                 id_column: str | None = None) -> None:
        super().__init__(spec, text_column, on_invalid, id_column)
        self.output_column = output_column
        self.encoder = spec.load_encoder()

    def __call__(self, batch):
        table = as_table(batch)
        column, stats = embed_values(self.encoder, self._texts(table), self.spec, self.on_invalid, self._where(table), self.text_column)
        self._count(stats)
        return _with_column(table, self.output_column, column)


class Predictor(_BatchModel):
    """For `map_batches`: adds one column per task, each row the task's answer (a struct), null for invalid texts."""

    def __init__(self, spec: ModelSpec, text_column: str = "text", tasks: list[str] | None = None, on_invalid: str = "error",
                 id_column: str | None = None, all_probabilities: bool = False) -> None:
        super().__init__(spec, text_column, on_invalid, id_column)
        self.model = spec.load_task_model()
        self.tasks = _checked_tasks(self.model, tasks)
        self.all_probabilities = all_probabilities

    def __call__(self, batch):
        table = as_table(batch)
        columns, stats = predict_values(self.model, self._texts(table), self.tasks, self.spec, self.on_invalid, self._where(table),
                                        self.text_column, self.all_probabilities)
        self._count(stats)
        for name, column in columns.items():
            table = _with_column(table, name, column)
        return table


def _checked_tasks(model, tasks: list[str] | None) -> list[str]:
    from ..errors import InputError

    offered = list(model.answering_tasks)
    names = list(tasks) if tasks else offered
    unknown = [t for t in names if t not in offered]
    if unknown:
        raise InputError(f"unknown task(s) {unknown}; the model answers {offered} for one text", field="tasks")
    if not names:
        raise InputError("the model has no task that answers one text", field="tasks")
    return names


def _with_column(table, name: str, column):
    if name in table.column_names:
        return table.set_column(table.column_names.index(name), name, column)
    return table.append_column(name, column)
