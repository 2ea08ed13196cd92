"""The pair tasks' heads as a second, small ONNX graph: two embeddings in, each pair task's outputs out.

A pair task (pair_classification, pair_regression) answers two texts. Each text goes through
the main graph on its own (its `embedding` output, as `predict_pairs` embeds each column), so the
pair graph holds only what follows the encoder: a head on (u, v, |u - v|, u * v), or the cosine.
Any int8 variant of the main graph feeds the same fp32 pair graph.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

PAIR_FILE = "pair_heads.onnx"
PAIR_INPUTS = ("first_embedding", "second_embedding")


def pair_output(task_index: int) -> str:
    """Pair graph output name of the pair task at `task_index`."""
    return f"pair_outputs_{task_index}"


class PairGraph(nn.Module):
    """(first_embedding, second_embedding) -> each pair task's outputs (`MultiTaskModel.output_modules(pairs=True)`)."""

    def __init__(self, heads: dict[str, nn.Module]) -> None:
        super().__init__()
        self.heads = nn.ModuleDict(heads)

    @property
    def output_names(self) -> list[str]:
        return [pair_output(i) for i in range(len(self.heads))]

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(head(first, second) for head in self.heads.values())


def write_pair_graph(heads: dict[str, nn.Module], embeddings: np.ndarray, path: Path, opset: int) -> float:
    """Trace the pair heads to `path`; the largest difference from PyTorch on pairs of `embeddings` (real texts' ones)."""
    from .session import make_session

    graph = PairGraph(heads).eval()
    device = next((p.device for p in graph.parameters()), torch.device("cpu"))
    first = torch.from_numpy(embeddings[:-1]).to(device)
    second = torch.from_numpy(embeddings[1:]).to(device)
    axes = {name: {0: "batch"} for name in (*PAIR_INPUTS, *graph.output_names)}
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shapes fixed for every input
        torch.onnx.export(graph, (first, second), str(path), dynamo=False, input_names=list(PAIR_INPUTS),
                          output_names=graph.output_names, dynamic_axes=axes, opset_version=opset, do_constant_folding=True)
        expected = [o.float().cpu().numpy() for o in graph(first, second)]
    got = make_session(path).run(None, dict(zip(PAIR_INPUTS, (first.cpu().numpy(), second.cpu().numpy()))))
    return max(float(np.max(np.abs(np.asarray(a).reshape(b.shape) - b))) for a, b in zip(got, expected))


def run_pair_graph(session, first: np.ndarray, second: np.ndarray, count: int) -> list[np.ndarray]:
    """Each pair task's outputs, shape (pairs, outputs), from the pair graph's session."""
    outputs = session.run(None, dict(zip(PAIR_INPUTS, (np.ascontiguousarray(first, np.float32), np.ascontiguousarray(second, np.float32)))))
    return [np.asarray(o).reshape(len(first), -1) for o in outputs[:count]]
