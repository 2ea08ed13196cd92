"""What a Ray worker loads: a small picklable description, turned into a model on the worker.

The model itself never travels through Ray's object store; each worker process builds it
once from this spec with polyhead's own loaders, so a worker computes exactly what
`SentenceEncoder.encode` / `MultiTaskModel.predict` compute in a single process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError


@dataclass(frozen=True)
class ModelSpec:
    """A model to load on each worker, and how it computes."""

    model: str | None = None
    """A saved polyhead model directory, a sentence-transformers directory, a directory written by
    `polyhead export`, or a hub name; None means the built-in all-MiniLM-L6-v2."""
    backend: str | None = None
    """`auto`, `torch`, `torch-bf16`, `onnx`, `onnx-int8`; None: $POLYHEAD_BACKEND, else auto (as `encode`)."""
    pooling: str | None = None
    """Pooling mode override for a PyTorch encoder (None: the model's own)."""
    normalize: bool | None = None
    """L2-normalize embeddings (None: the model's own setting)."""
    max_seq_length: int | None = None
    """Truncate texts to this many tokens (None: the model's limit)."""
    max_int8_loss: float | None = None
    """For an exported directory: let `auto` take its int8 graph within this measured loss."""
    batch_size: int = 32
    """Texts per forward pass."""
    threads: int | None = None
    """Cores each worker encodes on (None: the CPUs Ray gave the worker, else all)."""

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {self.batch_size}", field="batch_size")
        if self.threads is not None and self.threads < 1:
            raise InputError(f"threads must be >= 1, got {self.threads}", field="threads")

    @property
    def exported(self) -> bool:
        from ..inference.manifest import is_exported_dir

        return self.model is not None and Path(self.model).is_dir() and is_exported_dir(self.model)

    def load_encoder(self):
        """A SentenceEncoder, or an OnnxEncoder for an exported directory, with `backend` applied."""
        self._prepare_worker()
        if self.exported:
            from ..inference import OnnxEncoder

            if self.pooling:
                raise InputError("pooling cannot change an exported model: its pooling is part of the graph", file=self.model)
            backend = self.backend or ("auto" if self.max_int8_loss is not None else None)
            return OnnxEncoder(self.model, max_seq_length=self.max_seq_length, max_int8_loss=self.max_int8_loss,
                               **({"backend": backend} if backend else {}))
        from ..encoder import SentenceEncoder

        encoder = SentenceEncoder(self.model, pooling=self.pooling, normalize=self.normalize, max_seq_length=self.max_seq_length)
        if self.backend is not None:
            encoder.backend = self.backend
        return encoder

    def load_task_model(self):
        """A MultiTaskModel, or an OnnxModel for an exported directory with task heads."""
        self._prepare_worker()
        if self.model is None:
            raise InputError("predicting needs a model with task heads; the built-in model has none", field="model")
        if self.exported:
            from ..inference import OnnxModel

            model = OnnxModel(self.model, **({"backend": self.backend} if self.backend else {}))
            if self.max_int8_loss is not None:
                if self.backend is None:
                    model.encoder.requested_backend = "auto"
                model.encoder.set_int8_budget(self.max_int8_loss)
            return model
        from ..model import MultiTaskModel

        model = MultiTaskModel.load(self.model)
        if self.backend is not None:
            model.encoder.backend = self.backend
        return model

    def encode_options(self) -> dict:
        """Keyword arguments of `encode` that this spec fixes."""
        return {"batch_size": self.batch_size, "normalize": self.normalize, "show_progress": False}

    def _prepare_worker(self) -> None:
        """Threads as Ray granted them, and no weight-loading bars: every worker's would reach the driver's terminal."""
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        threads = self.threads or _ray_cpus()
        if threads:
            from ..inference import set_threads

            set_threads(threads)


def _ray_cpus() -> int | None:
    """The CPUs Ray assigned to this worker (whole ones), or None outside a Ray worker."""
    try:
        import ray
    except ImportError:
        return None
    if not ray.is_initialized():
        return None
    try:
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
    except Exception:  # noqa: BLE001 - the driver has no assigned resources
        return None
    return max(1, int(cpus)) if cpus else None
