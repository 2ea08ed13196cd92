"""Dynamic int8 quantization of an exported graph (`ExportOptions.int8_method="dynamic"`).

Weights are stored as int8 (one scale per output channel) and activations are quantized
per batch at run time, so no calibration data is needed, and every matrix product of the
graph runs in int8, fused attention included. The price is accuracy: embeddings drift
from fp32 (a worst cosine of ~0.96-0.98 for all-MiniLM-L6-v2), so the calibrated static
graph (`static_int8.py`) is the default; what either costs is measured in `cost.py`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

HEAD_NODE_PREFIX = "/heads/"
"""Node names of the task heads in a traced graph; heads stay fp32 (tiny, and accuracy-critical)."""


def quantize_graph(fp32_path: Path, int8_path: Path) -> None:
    """Write the dynamically int8-quantized version of `fp32_path` to `int8_path`."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(fp32_path), load_external_data=False)
    heads = [node.name for node in model.graph.node if node.name.startswith(HEAD_NODE_PREFIX)]
    with root_logger_quiet():  # the quantizer logs advice on the root logger
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
def root_logger_quiet() -> Iterator[None]:
    """onnxruntime.quantization logs advice on the root logger; keep it out of the user's output."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)
