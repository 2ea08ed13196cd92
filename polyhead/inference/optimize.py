"""ONNX Runtime's transformer fusions, applied only where they give the same numbers.

`onnxruntime.transformers.optimizer` rewrites a BERT-style graph into fused Attention,
SkipLayerNormalization, BiasGelu and EmbedLayerNormalization ops. Its patterns were
written for BERT; on another architecture a fusion could in principle change the
result, so the fused graph is checked against PyTorch and dropped if it disagrees.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class OptimizedGraph:
    path: Path
    fused_operators: dict[str, int]


def fuse_transformer_ops(raw: Path, out: Path, num_heads: int, hidden_size: int) -> OptimizedGraph:
    """Write the fused version of `raw` to `out`; report which fused ops it holds."""
    from onnxruntime.transformers import optimizer

    # The optimizer logs every fusion at INFO/WARNING; its result is summarised instead.
    logging.getLogger("onnxruntime.transformers").setLevel(logging.ERROR)
    model = optimizer.optimize_model(
        str(raw), model_type="bert", num_heads=num_heads, hidden_size=hidden_size, opt_level=0, use_gpu=False
    )
    fused = {name: int(count) for name, count in model.get_fused_operator_statistics().items() if count}
    model.save_model_to_file(str(out))
    return OptimizedGraph(out, fused)


def max_difference(session, batches: list[tuple[np.ndarray, np.ndarray]], expected: list[list[np.ndarray]]) -> float:
    """Largest absolute difference between the session's outputs and `expected`, over all batches."""
    worst = 0.0
    for (input_ids, mask), wanted in zip(batches, expected):
        got = session.run(None, {"input_ids": input_ids, "attention_mask": mask})
        for a, b in zip(got, wanted):
            worst = max(worst, float(np.max(np.abs(a - b))))
    return worst
