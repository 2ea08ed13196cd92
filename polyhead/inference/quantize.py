"""int8 quantization of an exported graph, and the measurement of what it costs in accuracy.

Dynamic quantization: weights are stored as int8 (one scale per output channel) and
activations are quantized per batch at run time, so no calibration data is needed.
Matrix products then run on the CPU's int8 dot-product instructions (VNNI). The price
is accuracy: embeddings drift from fp32 (typically a cosine of ~0.98-0.99 at worst for
a small BERT), which is why int8 is never chosen automatically and why every int8 graph
carries its measured cost.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..similarity import row_cosines
from .batching import run_batches
from .manifest import EMBEDDING_OUTPUT, QuantizationCost

HEAD_NODE_PREFIX = "/heads/"
"""Node names of the task heads in a traced graph; heads stay fp32 (tiny, and accuracy-critical)."""


def quantize_graph(fp32_path: Path, int8_path: Path) -> None:
    """Write the dynamically int8-quantized version of `fp32_path` to `int8_path`."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(fp32_path), load_external_data=False)
    heads = [node.name for node in model.graph.node if node.name.startswith(HEAD_NODE_PREFIX)]
    with _root_logger_quiet():  # the quantizer logs advice on the root logger
        quantize_dynamic(
            str(fp32_path),
            str(int8_path),
            weight_type=QuantType.QInt8,
            per_channel=True,
            nodes_to_exclude=heads,
            # Fused ops (Attention, SkipLayerNormalization) defeat shape inference; their outputs are fp32.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )


@contextlib.contextmanager
def _root_logger_quiet() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def measure_cost(
    fp32_session,
    int8_session,
    ids: list[np.ndarray],
    pad_id: int,
    outputs: list[str],
    tasks: list[str],
    source: str,
    batch_size: int = 32,
) -> QuantizationCost:
    """Compare the two graphs on the same tokenized texts: embedding cosines and label agreement."""

    def runner(session):
        def run(input_ids: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
            return dict(zip(outputs, session.run(None, {"input_ids": input_ids, "attention_mask": mask})))

        return run

    reference = run_batches(ids, runner(fp32_session), batch_size=batch_size, pad_id=pad_id)
    quantized = run_batches(ids, runner(int8_session), batch_size=batch_size, pad_id=pad_id)
    cosines = row_cosines(reference[EMBEDDING_OUTPUT], quantized[EMBEDDING_OUTPUT])
    probability_outputs = [name for name in outputs if name.startswith("probabilities_")]
    agreement = {
        task: float(np.mean(reference[name].argmax(1) == quantized[name].argmax(1)))
        for task, name in zip(tasks, probability_outputs)
    }
    return QuantizationCost(
        texts=len(ids),
        source=source,
        min_cosine=float(cosines.min()),
        mean_cosine=float(cosines.mean()),
        label_agreement=agreement,
    )
