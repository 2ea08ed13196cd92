"""Trace an encoder (and task heads) into one ONNX graph: token ids in, embedding and each task's outputs out.

The traced graph includes what sentence-transformers users keep asking for in an export:
pooling and L2 normalization, plus every task's outputs as its kind defines them (softmax
probabilities, regression values rescaled to the targets' units, per-label sigmoids), so a
deployment needs the tokenizer and ONNX Runtime, nothing else.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .manifest import EMBEDDING_OUTPUT, INPUT_NAMES, POOLED_OUTPUT, probabilities_output


class ExportGraph(nn.Module):
    """(input_ids, attention_mask) -> embedding[, pooled_embedding], outputs per task.

    `heads` maps each task to a module from embeddings to the task's outputs
    (`MultiTaskModel.output_modules`).
    """

    def __init__(self, encoder: nn.Module, heads: dict[str, nn.Module] | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.heads = nn.ModuleDict(heads or {})

    @property
    def output_names(self) -> list[str]:
        names = [EMBEDDING_OUTPUT]
        if self.encoder.normalize:
            names.append(POOLED_OUTPUT)
        return names + [probabilities_output(i) for i in range(len(self.heads))]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        tokens = self.encoder.backbone(input_ids=input_ids, attention_mask=attention_mask)[0]
        pooled = self.encoder.pooling(tokens, attention_mask)
        embedding = F.normalize(pooled, p=2, dim=-1) if self.encoder.normalize else pooled
        outputs = [embedding, pooled] if self.encoder.normalize else [embedding]
        outputs += [head(embedding) for head in self.heads.values()]
        return tuple(outputs)


@contextlib.contextmanager
def eager_attention(backbone: nn.Module) -> Iterator[None]:
    """Trace attention as plain matmul + softmax, the pattern ONNX Runtime fuses into one op."""
    config = getattr(backbone, "config", None)
    original = getattr(config, "_attn_implementation", None)
    setter = getattr(backbone, "set_attn_implementation", None)
    if original in (None, "eager") or setter is None:
        yield
        return
    setter("eager")
    try:
        yield
    finally:
        setter(original)


def example_batch(tokenizer, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Two texts of different lengths, so the traced graph keeps the padding mask path."""
    input_ids, mask = tokenizer_batch(tokenizer, ["A short one.", "A somewhat longer sentence, so the first is padded."])
    return input_ids.to(device), mask.to(device)


def tokenizer_batch(tokenizer, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    batch = tokenizer.pad(tokenizer.tokenize(texts).ids)
    return batch["input_ids"], batch["attention_mask"]


def trace_to_onnx(graph: ExportGraph, tokenizer, path: Path, opset: int) -> None:
    """Write `graph` (in eval mode) as ONNX with batch and sequence axes dynamic."""
    device = next(graph.parameters()).device
    inputs = example_batch(tokenizer, device)
    axes = {name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES}
    axes.update({name: {0: "batch"} for name in graph.output_names})
    with eager_attention(graph.encoder.backbone), torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter is the one that ships with torch (the dynamo exporter
        # needs onnxscript); its tracer warnings concern branches fixed for every input here.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            inputs,
            str(path),
            dynamo=False,
            input_names=list(INPUT_NAMES),
            output_names=graph.output_names,
            dynamic_axes=axes,
            opset_version=opset,
            do_constant_folding=True,
        )
