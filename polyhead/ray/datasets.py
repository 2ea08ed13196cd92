"""`embed` and `predict`: Ray Datasets in, Ray Datasets out, so Ray's readers and writers do the I/O."""

from __future__ import annotations

from pathlib import Path

from .loading import ModelSpec
from .require import require_ray
from .texts import check_on_invalid


def _spec(model: str | Path | ModelSpec | None, **options) -> ModelSpec:
    if isinstance(model, ModelSpec):
        return model
    return ModelSpec(None if model is None else str(model), **options)


def _resources(concurrency: int | tuple[int, int], num_cpus: float | None, num_gpus: float | None) -> dict:
    """map_batches' arguments for a pool of workers (a fixed size, or (min, max) to autoscale)."""
    import ray.data

    sizes = {"min_size": concurrency[0], "max_size": concurrency[1]} if isinstance(concurrency, tuple) else {"size": concurrency}
    kept = {"num_cpus": num_cpus, "num_gpus": num_gpus}
    return {"compute": ray.data.ActorPoolStrategy(**sizes), **{k: v for k, v in kept.items() if v is not None}}


def embed(dataset, model: str | Path | ModelSpec | None = None, *, text_column: str = "text", output_column: str = "embedding",
          on_invalid: str = "error", id_column: str | None = None, batch_rows: int = 1024, concurrency: int | tuple[int, int] = 1,
          num_cpus: float | None = None, num_gpus: float | None = None, **spec_options):
    """`dataset` with an `output_column` of float32 embeddings (a fixed-size list), every other column kept.

    `model`: a model directory (polyhead, sentence-transformers or `polyhead export`), hub name,
    a `ModelSpec`, or None for the built-in model; `spec_options` are ModelSpec fields
    (`backend`, `normalize`, `batch_size`, ...). `concurrency` workers each load the model once
    and get `num_cpus`/`num_gpus`; `batch_rows` rows go to a worker at a time (each is encoded
    exactly as `encode` encodes that list). Null, empty and non-string texts raise an error naming
    the row (by `id_column` when given), or with `on_invalid="null"` keep a null embedding
    (see `count_invalid`).
    """
    require_ray("polyhead.ray.embed")
    from .embedder import Embedder

    check_on_invalid(on_invalid)
    spec = _spec(model, **spec_options)
    return dataset.map_batches(
        Embedder, fn_constructor_kwargs={"spec": spec, "text_column": text_column, "output_column": output_column,
                                         "on_invalid": on_invalid, "id_column": id_column},
        batch_size=batch_rows, batch_format="pyarrow", **_resources(concurrency, num_cpus, num_gpus),
    )


def predict(dataset, model: str | Path | ModelSpec, *, tasks: list[str] | None = None, text_column: str = "text",
            on_invalid: str = "error", id_column: str | None = None, all_probabilities: bool = False, batch_rows: int = 1024,
            concurrency: int | tuple[int, int] = 1, num_cpus: float | None = None, num_gpus: float | None = None, **spec_options):
    """`dataset` with one column per task (default: every task that answers one text), each row that task's answer.

    A classification answer is `{label, probability}` (plus `probabilities` with `all_probabilities`),
    as `polyhead predict` prints it; other kinds give their own fields. Workers, batches and
    invalid texts as in `embed`.
    """
    require_ray("polyhead.ray.predict")
    from .embedder import Predictor

    check_on_invalid(on_invalid)
    spec = _spec(model, **spec_options)
    return dataset.map_batches(
        Predictor, fn_constructor_kwargs={"spec": spec, "text_column": text_column, "tasks": tasks, "on_invalid": on_invalid,
                                          "id_column": id_column, "all_probabilities": all_probabilities},
        batch_size=batch_rows, batch_format="pyarrow", **_resources(concurrency, num_cpus, num_gpus),
    )


def count_invalid(dataset, column: str = "embedding") -> int:
    """Rows whose `column` is null: the texts `on_invalid="null"` kept without a result."""
    counts = dataset.map_batches(lambda t: {"nulls": [t.column(column).null_count]}, batch_format="pyarrow", batch_size=None)
    return int(sum(row["nulls"] for row in counts.take_all()))
