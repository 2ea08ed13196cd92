"""The model behind the server: an encoder, and task heads when the directory has them.

A MultiTaskModel directory (with polyhead_model.json) serves embeddings and predictions;
a plain encoder or sentence-transformers directory serves embeddings only.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..assets import DEFAULT_MODEL_NAME, default_model_path
from ..encoder import SentenceEncoder
from ..model import MODEL_CONFIG, MultiTaskModel


WARM_UP_TEXTS = [
    "A short sentence.",
    "A somewhat longer sentence, with a clause or two, so the warm-up sees more than one length.",
    "The longest of the warm-up texts runs on for a while, the way a review does when it has a lot to say about the film, its cast and the way it ends.",
]


@dataclass
class ServedModel:
    """What the routes need: a name, the encoder, the optional heads, and how to embed."""

    name: str
    encoder: SentenceEncoder
    multitask: MultiTaskModel | None
    encode_batch_size: int = 8
    backend: str | None = None
    """Passed to encode when set; None keeps the encoder's own default."""
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def task_names(self) -> list[str]:
        return self.multitask.answering_tasks if self.multitask is not None else []

    def embed(self, texts: list[str]) -> tuple[torch.Tensor, np.ndarray]:
        """Raw (unnormalized) embeddings on the CPU and each text's token count.

        Normalization is left to each request, so requests that ask for raw and for
        normalized vectors can share one batch.
        """
        options = {"backend": self.backend} if self.backend is not None else {}
        parts, tokens = [], None
        # A model with per-task adapters: one pass per encoder group, side by side (the shared encoder's first).
        for adapter in self.multitask.encoder_groups if self.multitask is not None else [None]:
            encoder = self.multitask.group_encoder(adapter) if self.multitask is not None else self.encoder
            parts.append(encoder.encode(
                texts, batch_size=self._batch_size(len(texts)), normalize=False, show_progress=False, output="torch", **options
            ).float().cpu())
            if tokens is None:  # the counts the encode itself tokenized: the texts are not tokenized twice
                tokens = encoder.last_encode_stats.lengths
        return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0], tokens

    def _batch_size(self, texts: int) -> int:
        """encode_batch_size, but small enough that a small shared batch still gives every
        CPU core a pass of its own (encode runs passes in parallel, one per core)."""
        if self.encoder.device.type != "cpu":
            return self.encode_batch_size
        from ..inference import get_threads

        return max(1, min(self.encode_batch_size, math.ceil(texts / get_threads())))

    def warm_up(self) -> None:
        """One encode before the server says ready: the backend builds what it caches (a bf16
        copy of the weights, its accuracy check) now rather than during the first requests."""
        self.embed(WARM_UP_TEXTS * (2 * self.encode_batch_size // len(WARM_UP_TEXTS) + 1))

    def card(self) -> dict:
        """The /v1/models entry: OpenAI's model object plus what a client needs to know."""
        tasks = [{"name": t.name, "labels": list(t.labels)} for t in self.multitask.tasks.values()] if self.multitask else []
        return {
            "id": self.name,
            "object": "model",
            "created": self.created,
            "owned_by": "polyhead",
            "embedding_dim": self.encoder.embedding_dim,
            "pooling": self.encoder.pooling_mode,
            "normalize": self.encoder.normalize,
            "max_seq_length": self.encoder.max_seq_length,
            "tasks": tasks,
        }


RUN_MODEL_FOLDER = "model"
"""Where a training run saves its model (RUN/model): such a model is served under the run's name."""


def model_name(model_dir: str | None) -> str:
    """The id a model directory is served under: its folder's name, or its run's for a run's `model/`."""
    if model_dir is None:
        return DEFAULT_MODEL_NAME
    path = Path(model_dir).resolve()
    if path.name == RUN_MODEL_FOLDER and path.parent.name:
        return path.parent.name
    return path.name or str(model_dir)


def load_served_model(model_dir: str | None, *, name: str | None = None, device: str | None = None) -> ServedModel:
    """Load a MultiTaskModel directory, or else an encoder; None means the built-in model."""
    source = Path(model_dir) if model_dir is not None else default_model_path()
    served_name = name or model_name(model_dir)
    if (source / MODEL_CONFIG).is_file():
        multitask = MultiTaskModel.load(source, device=device)
        multitask.eval()
        return ServedModel(served_name, multitask.encoder, multitask)
    encoder = SentenceEncoder(model_dir, device=device)
    return ServedModel(served_name, encoder, None)
