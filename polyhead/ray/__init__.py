"""Embed and predict a corpus on a Ray cluster (the `polyhead[ray]` extra).

`embed(dataset, model)` and `predict(dataset, model)` add columns to a Ray Dataset, so
Ray's own readers and writers do the I/O; `Embedder` and `Predictor` are the stateful
classes behind them (one model per worker) for users who call `map_batches` themselves.
`run_job` is the engine of `polyhead encode/predict --engine ray`: Parquet shards plus a
manifest, resumable. Ray is imported only when one of these is used.
"""

from __future__ import annotations

from ..lazy import lazy_exports

_EXPORTS = {
    "RayMissingError": ".require",
    "require_ray": ".require",
    "ModelSpec": ".loading",
    "InvalidTextError": ".texts",
    "Embedder": ".embedder",
    "Predictor": ".embedder",
    "embed": ".datasets",
    "predict": ".datasets",
    "count_invalid": ".datasets",
    "JobOptions": ".job",
    "JobResult": ".job",
    "run_job": ".job",
}
__getattr__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
