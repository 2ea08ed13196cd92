"""Turn one request's encoded rows into its response body, on the model thread.

Each builder returns the finished JSON bytes: serializing thousands of floats is real
work, and doing it here keeps the event loop free to accept and parse other requests.
"""

from __future__ import annotations

import base64
import json
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from ..model import MultiTaskModel, predictions_from_outputs


def _usage(tokens: int) -> dict:
    return {"prompt_tokens": tokens, "total_tokens": tokens}


def _dumps(body: dict) -> bytes:
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()


def embeddings_body(
    rows: torch.Tensor, tokens: int, *, model: str, normalize: bool, encoding_format: Literal["float", "base64"],
    dim: int | None = None,
) -> bytes:
    """OpenAI's embeddings response: one `embedding` object per text, in input order.

    The shared encoder's embedding: rows of a model with per-task adapters also hold each adapter's, after it.
    """
    rows = rows[:, :dim] if dim is not None else rows
    if normalize:
        rows = F.normalize(rows, p=2, dim=-1)
    matrix = rows.numpy()
    if encoding_format == "base64":
        little_endian = matrix.astype("<f4", copy=False)
        vectors: list = [base64.b64encode(row.tobytes()).decode("ascii") for row in little_endian]
    else:
        vectors = matrix.tolist()
    data = [{"object": "embedding", "index": i, "embedding": vector} for i, vector in enumerate(vectors)]
    return _dumps({"object": "list", "data": data, "model": model, "usage": _usage(tokens)})


@torch.inference_mode()
def predictions_body(rows: torch.Tensor, tokens: int, *, model: str, multitask: MultiTaskModel, tasks: list[str]) -> bytes:
    """Per text, per task: the kind's answer (a label and probabilities, values, a label set).

    The heads see what `MultiTaskModel.predict` gives them: the encoder's embedding,
    normalized when the encoder normalizes.
    """
    return _predictions_json(multitask.grouped_outputs([rows.to(multitask.device)], tasks, multitask.encoder.normalize), tokens,
                             model, multitask)


@torch.inference_mode()
def pair_predictions_body(rows: torch.Tensor, tokens: int, *, model: str, multitask: MultiTaskModel, tasks: list[str]) -> bytes:
    """Per pair, per pair task: its answer. The batch held every pair's first texts, then their second texts."""
    half = len(rows) // 2
    columns = [rows[:half].to(multitask.device), rows[half:].to(multitask.device)]
    return _predictions_json(multitask.grouped_outputs(columns, tasks, multitask.encoder.normalize), tokens, model, multitask)


def _predictions_json(outputs: dict[str, torch.Tensor], tokens: int, model: str, multitask: MultiTaskModel) -> bytes:
    per_text = predictions_from_outputs(outputs, multitask.tasks)
    data = [
        {"object": "prediction", "index": i, "predictions": {name: p.to_dict() for name, p in row.items()}}
        for i, row in enumerate(per_text)
    ]
    return _dumps({"object": "list", "data": data, "model": model, "usage": _usage(tokens)})


def decode_base64_embedding(text: str) -> np.ndarray:
    """Inverse of the base64 encoding format (what OpenAI clients do with it)."""
    return np.frombuffer(base64.b64decode(text), dtype="<f4")
